"""fast/scoring.py: metrics.evaluate's numbers from raw pixels and the folded first layer, and
run.fit scoring each split once."""

import numpy as np
import pytest
from helpers import far_logits, far_logits_batch, init_params, reference_softmax

import mnist_cli.training.run
import mnist_cli.training.step
from mnist_cli.config.settings import TrainConfig
from mnist_cli.data import MNIST, Split, load_split
from mnist_cli.fast import scoring
from mnist_cli.fast.scoring import score
from mnist_cli.metrics import evaluate
from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import one_layer
from mnist_cli.nn.layers import Params


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
def test_scores_are_metrics_evaluate(kind, loss, chunk, test_images, monkeypatch):
    """In chunks that split the images or hold them all: the same predictions as
    metrics.evaluate, and the same loss to float32 rounding."""
    monkeypatch.setattr(scoring, "SCORE_ROWS", chunk)
    images, labels = test_images
    network = one_layer(kind, some_params(kind))
    expected = evaluate(network, images, labels, loss)
    got = score(network, images, labels, loss)
    np.testing.assert_array_equal(got.confusion_matrix, expected.confusion_matrix)
    assert got.accuracy == expected.accuracy
    np.testing.assert_array_equal(got.per_class_accuracy, expected.per_class_accuracy)
    assert got.loss == pytest.approx(expected.loss, rel=1e-5), (got.loss, expected.loss)
    assert score(network, images, labels).loss is None


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_the_scores_do_not_depend_on_the_threads(threads, test_images, monkeypatch):
    """82 chunks of 37 rows shared out among threads: the predictions and the loss of one
    thread, bit for bit (each thread casts into a buffer of its own: one shared buffer fails
    this; the chunks' losses are added in chunk order)."""
    monkeypatch.setattr(scoring, "SCORE_ROWS", 37)
    images, labels = test_images
    network = one_layer("softmax", some_params("softmax"))
    monkeypatch.setattr(scoring, "scoring_threads", lambda N: 1)
    alone = score(network, images, labels, "cross-entropy")
    monkeypatch.setattr(scoring, "scoring_threads", lambda N: threads)
    shared = score(network, images, labels, "cross-entropy")
    np.testing.assert_array_equal(shared.confusion_matrix, alone.confusion_matrix)
    assert shared.loss == alone.loss, (shared.loss, alone.loss)


def test_in_parallel_does_each_item_once_and_raises_a_threads_error():
    """Every item is handed to exactly one thread; an error in any thread reaches the caller."""
    done = []
    scoring.in_parallel(lambda items: done.extend(items), 50, 4)
    assert sorted(done) == list(range(50)), sorted(done)

    def fails_at_7(items):
        for item in items:
            if item == 7:
                raise ValueError("item 7")

    with pytest.raises(ValueError, match="item 7"):
        scoring.in_parallel(fails_at_7, 20, 3)


def test_scoring_threads_one_per_5000_rows_at_most_one_per_core(monkeypatch):
    monkeypatch.setattr(
        scoring.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False
    )
    got = [scoring.scoring_threads(N) for N in (0, 4999, 10_000, 60_000)]
    assert got == [1, 1, 2, 2], got


@pytest.mark.parametrize("shift", [1000.0, -1000.0])
def test_the_softmax_loss_survives_logits_about_1000(shift):
    """The column max is subtracted before exp: logits about ±1000 (spread over ±300) give
    the float64 log-sum-exp reference's loss, not inf or NaN (checked to fail without it)."""
    images, labels, params = far_logits_batch(60, shift)
    S = reference_softmax(far_logits(images, params))  # (B, K) float64
    Y = np.eye(K)[labels]
    expected = np.sum((S - Y) ** 2) / len(labels)
    got = score(one_layer("softmax", params), images, labels, "squared").loss
    assert got == pytest.approx(expected, rel=1e-4), (got, expected)


@pytest.mark.parametrize("val_size", [0, 500])
def test_fit_scores_each_split_once(val_size, test_images, monkeypatch):
    """The monitored split is scored after each epoch, and its last score is reused: at the
    end only the training split (and the test split, when --val-size monitors another) is
    scored, and the test result is what scoring it again gives."""
    calls = []

    def counted(network, images, labels, loss=None, threads=None):
        calls.append(len(labels))
        return score(network, images, labels, loss, threads)

    monkeypatch.setattr(
        mnist_cli.training.run, "score", counted
    )  # run.fit's, at the end
    monkeypatch.setattr(mnist_cli.training.step, "score", counted)  # the monitor's
    images, labels = test_images
    train_split, test_split = Split(images[:2000], labels[:2000]), Split(*test_images)
    config = TrainConfig(epochs=2, val_size=val_size)
    start = init_params("zeros", None)
    start = one_layer("softmax", start)
    result = mnist_cli.training.run.fit(
        config, MNIST, train_split, test_split, start=start
    )
    monitored = val_size or 3000
    expected = [monitored, monitored, 2000 - val_size] + ([3000] if val_size else [])
    assert calls == expected, f"scored {calls}, expected {expected}"
    again = evaluate(result.network, *test_images)
    np.testing.assert_array_equal(result.test.confusion_matrix, again.confusion_matrix)
    assert result.record.test_accuracy == again.accuracy
    if val_size:
        assert result.val.accuracy == result.record.history[-1]["monitor_accuracy"]
