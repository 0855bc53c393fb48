"""fused_scores.py: metrics.evaluate's numbers from Θ and raw pixels, and run.fit scoring each
split once."""

import numpy as np
import pytest
from test_fused import far_logits, far_logits_batch, reference_softmax

import mnist_cli.training.loop
import mnist_cli.training.run
from mnist_cli.config.settings import TrainConfig
from mnist_cli.data import MNIST, Split, load_split
from mnist_cli.fast import scoring as fused_scores
from mnist_cli.fast.scoring import evaluate_network, score
from mnist_cli.fused import to_theta
from mnist_cli.metrics import evaluate
from mnist_cli.models import D, K, Params, init_params
from mnist_cli.network import Network


@pytest.fixture(scope="module")
def test_images(mnist_cache, mnist_server_url):
    """The first 3,000 test images and labels."""
    split = load_split(MNIST, "test", mnist_cache, mirrors=[mnist_server_url])
    return np.asarray(split.images[:3000]), split.labels[:3000]


def some_params(kind) -> Params:
    """Weights that classify well above chance and give a loss far from 0 and from 1."""
    rng = np.random.default_rng(4)
    scale = 0.05 if kind == "softmax" else 0.002
    return Params(
        W=(scale * rng.standard_normal((K, D))).astype(np.float32),
        b=(0.1 * rng.standard_normal(K)).astype(np.float32),
    )


@pytest.mark.parametrize(
    "kind, loss",
    [("linear", "squared"), ("softmax", "squared"), ("softmax", "cross-entropy")],
)
@pytest.mark.parametrize("chunk", [1000, 700, 5000])
def test_scores_from_theta_are_metrics_evaluate(
    kind, loss, chunk, test_images, monkeypatch
):
    """In chunks that split the images or hold them all: the same predictions as
    metrics.evaluate, and the same loss to float32 rounding."""
    monkeypatch.setattr(fused_scores, "CHUNK_ROWS", chunk)
    images, labels = test_images
    network = Network.one_layer(kind, some_params(kind))
    expected = evaluate(network, images, labels, loss)
    got = score(to_theta(network.params), images, labels, kind, loss)
    np.testing.assert_array_equal(got.confusion_matrix, expected.confusion_matrix)
    assert got.accuracy == expected.accuracy
    np.testing.assert_array_equal(got.per_class_accuracy, expected.per_class_accuracy)
    assert got.loss == pytest.approx(expected.loss, rel=1e-5), (got.loss, expected.loss)
    assert score(to_theta(network.params), images, labels).loss is None
    again = evaluate_network(network, images, labels, loss)
    assert (again.accuracy, again.loss) == (got.accuracy, got.loss)


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_the_scores_do_not_depend_on_the_threads(threads, test_images, monkeypatch):
    """82 chunks of 37 rows shared out among threads: the predictions and the loss of one
    thread, bit for bit (each thread casts into a buffer of its own: one shared buffer fails
    this; the chunks' losses are added in chunk order)."""
    monkeypatch.setattr(fused_scores, "CHUNK_ROWS", 37)
    images, labels = test_images
    theta = to_theta(some_params("softmax"))
    monkeypatch.setattr(fused_scores, "scoring_threads", lambda N: 1)
    alone = score(theta, images, labels, "softmax", "cross-entropy")
    monkeypatch.setattr(fused_scores, "scoring_threads", lambda N: threads)
    shared = score(theta, images, labels, "softmax", "cross-entropy")
    np.testing.assert_array_equal(shared.confusion_matrix, alone.confusion_matrix)
    assert shared.loss == alone.loss, (shared.loss, alone.loss)


def test_in_parallel_does_each_item_once_and_raises_a_threads_error():
    """Every item is handed to exactly one thread; an error in any thread reaches the caller."""
    done = []
    fused_scores.in_parallel(lambda items: done.extend(items), 50, 4)
    assert sorted(done) == list(range(50)), sorted(done)

    def fails_at_7(items):
        for item in items:
            if item == 7:
                raise ValueError("item 7")

    with pytest.raises(ValueError, match="item 7"):
        fused_scores.in_parallel(fails_at_7, 20, 3)


def test_scoring_threads_one_per_5000_rows_at_most_one_per_core(monkeypatch):
    monkeypatch.setattr(
        fused_scores.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False
    )
    got = [fused_scores.scoring_threads(N) for N in (0, 4999, 10_000, 60_000)]
    assert got == [1, 1, 2, 2], got


@pytest.mark.parametrize("shift", [1000.0, -1000.0])
def test_the_softmax_loss_survives_logits_about_1000(shift):
    """The column max is subtracted before exp: logits about ±1000 (spread over ±300) give
    the float64 log-sum-exp reference's loss, not inf or NaN (checked to fail without it)."""
    images, labels, params = far_logits_batch(60, shift)
    S = reference_softmax(far_logits(images, params))  # (B, K) float64
    Y = np.eye(K)[labels]
    expected = np.sum((S - Y) ** 2) / len(labels)
    got = score(to_theta(params), images, labels, "softmax", "squared").loss
    assert got == pytest.approx(expected, rel=1e-4), (got, expected)


@pytest.mark.parametrize("val_size", [0, 500])
def test_fit_scores_each_split_once(val_size, test_images, monkeypatch):
    """The monitored split is scored after each epoch, and its last score is reused: at the
    end only the training split (and the test split, when --val-size monitors another) is
    scored, and the test result is what scoring it again gives."""
    calls = []

    def counted(theta, images, labels, kind=None, loss=None, threads=None):
        calls.append(len(labels))
        return score(theta, images, labels, kind, loss, threads)

    monkeypatch.setattr(fused_scores, "score", counted)  # run.fit's, at the end
    monkeypatch.setattr(mnist_cli.training.loop, "score", counted)  # the monitor's
    images, labels = test_images
    train_split, test_split = Split(images[:2000], labels[:2000]), Split(*test_images)
    config = TrainConfig(epochs=2, val_size=val_size)
    start = init_params("zeros", None)
    start = Network.one_layer("softmax", start)
    result = mnist_cli.training.run.fit(
        config, MNIST, train_split, test_split, start=start
    )
    monitored = val_size or 3000
    expected = [monitored, monitored, 2000 - val_size] + ([3000] if val_size else [])
    assert calls == expected, f"scored {calls}, expected {expected}"
    again = evaluate(result.network, *test_images)
    np.testing.assert_array_equal(result.test.confusion_matrix, again.confusion_matrix)
    assert result.metrics["test_accuracy"] == again.accuracy
    if val_size:
        assert result.val.accuracy == result.metrics["history"][-1]["monitor_accuracy"]
