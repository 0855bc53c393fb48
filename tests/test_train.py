"""The training loop's fast step is the reference math, step for step.

train() holds Θ = [W, b], feeds Ũ = [U, 255], works on transposed (K, B) arrays
(fast/dense.py) and gathers batches in a background thread (fast/batches.py); the reference is
the plain equations of nn/ in float64: X = pixels / 255, Network.loss_and_grads,
network.sgd_update, on the same shuffles.
"""

import threading
import time
import tracemalloc
from contextlib import closing

import numpy as np
import pytest
from helpers import init_params

import mnist_cli.training.loop
import mnist_cli.training.step
from mnist_cli.errors import TrainingDivergedError
from mnist_cli.fast.batches import shuffled_batches
from mnist_cli.fast.dense import BLOCK_ROWS
from mnist_cli.fast.scoring import score
from mnist_cli.metrics import evaluate
from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import build, dense_params, one_layer
from mnist_cli.nn.layers import Params, inputs
from mnist_cli.nn.losses import one_hot
from mnist_cli.nn.network import sgd_update
from mnist_cli.optim import OptimizerSpec
from mnist_cli.training.step import trainer_for

MODEL_KINDS = ("linear", "softmax")
from mnist_cli.training.loop import train

LR = {"softmax": 0.5, "linear": 0.005}


@pytest.fixture(scope="module")
def few_images(mnist_splits):
    """The first 1,050 training images: 10 batches of 100 and a last, smaller batch of 50."""
    split = mnist_splits[0]
    return split.images[:1050], split.labels[:1050]


def reference_train(kind, images, labels, *, epochs, batch_size, lr, seed):
    """SGD written as plainly as nn/ states it: float64, new arrays every step."""
    rng = np.random.default_rng(seed)
    params = init_params("normal", rng, np.float64)
    Y_all = one_hot(labels, np.float64)
    losses = []
    for _ in range(epochs):
        order = rng.permutation(len(labels))
        for start in range(0, len(labels), batch_size):
            idx = order[start : start + batch_size]
            X = inputs(images[idx], np.float64)  # (B, D) pixels / 255
            network = one_layer(kind, params)
            loss, grads = network.loss_and_grads("squared", X, Y_all[idx])
            params = Params(*sgd_update(network.params, grads, lr)[0])
            losses.append(loss)
    return params, losses


@pytest.mark.parametrize("kind", MODEL_KINDS)
@pytest.mark.parametrize("B", [32, 250])  # 250: blocks of 100, 100 and 50 rows
def test_fast_step_is_the_plain_loss_gradient_and_update(kind, B, few_images):
    """One SGD step of the trainer on Ũ = [pixels, 255] and Θ = [W, b] returns nn's loss
    and moves (W, b) exactly as sgd_update of Network.loss_and_grads does, whether the batch
    fits one block of rows or is worked through in several."""
    images, labels = few_images
    rng = np.random.default_rng(2)
    params = init_params("normal", rng, np.float64)
    params = type(params)(W=params.W, b=0.1 * rng.standard_normal(K))
    Y = one_hot(labels[:B], np.float64)
    network = one_layer(kind, params)
    loss, grads = network.loss_and_grads("squared", inputs(images[:B], np.float64), Y)
    expected = Params(*sgd_update(network.params, grads, LR[kind])[0])
    trainer = trainer_for(network, "squared", OptimizerSpec())
    U1 = np.hstack([images[:B], np.full((B, 1), 255)]).astype(np.float32)  # Ũ
    assert len(trainer.work.blocks_of(B)) == -(-B // BLOCK_ROWS), f"blocks for {B}"
    fast_loss = trainer.step([(U1, np.ascontiguousarray(Y.T, np.float32))], B, LR[kind])
    (moved,) = dense_params(trainer.current())
    assert fast_loss == pytest.approx(loss, rel=1e-5), (
        f"{kind}, B {B}: {fast_loss} != {loss}"
    )
    for name, fast, plain, before in (
        ("W", moved.W, expected.W, params.W),
        ("b", moved.b, expected.b, params.b),
    ):
        step, expected_step = fast - before, plain - before
        error = np.max(np.abs(step - expected_step)) / np.max(np.abs(expected_step))
        assert error < 1e-3, (
            f"{kind}, B {B}: the {name} step differs by {error:.1e} of its size"
        )


def test_shuffled_batches_are_each_epochs_permutation_with_the_constant_column(
    few_images,
):
    """Two epochs of batches: the rows of rng.permutation(N), then of the next one."""
    images, labels = few_images
    Yt_all = np.ascontiguousarray(one_hot(labels).T)
    batches = shuffled_batches(images, Yt_all, 64, 2, np.random.default_rng(0))
    got = [(X.copy(), Yt.copy()) for X, Yt in batches]
    sizes = ([64] * 16 + [26]) * 2
    assert [len(X) for X, _ in got] == sizes, [len(X) for X, _ in got]
    same_draws = np.random.default_rng(0)
    order = np.concatenate([same_draws.permutation(len(labels)) for _ in range(2)])
    X = np.vstack([X for X, _ in got])
    np.testing.assert_array_equal(X[:, :D], images[order].astype(np.float32))
    assert (X[:, D] == 255).all(), "the constant column of Ũ must be 255"
    np.testing.assert_array_equal(np.hstack([Yt for _, Yt in got]), Yt_all[:, order])


@pytest.mark.parametrize("buffers", [2, 1])
def test_shuffled_batches_chunks_larger_than_a_batch(few_images, monkeypatch, buffers):
    """Batches span several chunks and chunks several batches; the gathered rows don't move,
    whether the thread fills a second buffer ahead or refills the one buffer in turn."""
    import mnist_cli.fast.batches

    monkeypatch.setattr(mnist_cli.fast.batches, "CHUNK_ROWS", 150)
    if buffers == 1:
        monkeypatch.setattr(mnist_cli.fast.batches, "DOUBLE_BUFFER_BYTES", 0)
    images, labels = few_images
    Yt_all = np.ascontiguousarray(one_hot(labels).T)
    batches = shuffled_batches(images, Yt_all, 40, 3, np.random.default_rng(5))
    rows = [X[:, :D].copy() for X, _ in batches]
    same_draws = np.random.default_rng(5)
    order = np.concatenate([same_draws.permutation(len(labels)) for _ in range(3)])
    np.testing.assert_array_equal(np.vstack(rows), images[order].astype(np.float32))


class FailingGenerator:
    """An rng whose second permutation fails, as an error inside the thread would."""

    def __init__(self):
        self.calls = 0

    def permutation(self, n):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("no second permutation")
        return np.arange(n)


def test_an_error_in_the_gathering_thread_reaches_the_caller(few_images):
    images, labels = few_images
    Yt_all = np.ascontiguousarray(one_hot(labels).T)
    batches = shuffled_batches(images, Yt_all, 100, 2, FailingGenerator())
    seen = 0
    with pytest.raises(RuntimeError, match="no second permutation"):
        for _ in batches:
            seen += 1
    assert seen == 11, f"the first epoch's 11 batches come first, got {seen}"


def gatherers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("mnist-cli batches")]


def test_closing_the_batches_early_stops_the_thread(few_images):
    images, labels = few_images
    Yt_all = np.ascontiguousarray(one_hot(labels).T)
    batches = shuffled_batches(images, Yt_all, 10, 50, np.random.default_rng(0))
    next(batches)
    assert len(gatherers()) == 1, f"expected one batches thread, got {gatherers()}"
    batches.close()
    assert gatherers() == [], f"the batches thread outlived close(): {gatherers()}"


def test_an_error_in_the_caller_stops_the_thread(few_images):
    """Leaving the loop by an exception (as Ctrl-C or a failed step does) while the thread
    is filling ahead: once the generator is closed, no thread is left."""
    images, labels = few_images
    Yt_all = np.ascontiguousarray(one_hot(labels).T)
    batches = shuffled_batches(images, Yt_all, 10, 50, np.random.default_rng(0))
    with pytest.raises(KeyboardInterrupt), closing(batches):
        for i, _ in enumerate(batches):
            if i == 150:  # in the second epoch's chunk, the third being filled
                raise KeyboardInterrupt
    assert gatherers() == [], f"the batches thread outlived the error: {gatherers()}"


def test_targets_for_other_images_are_refused(few_images):
    images, labels = few_images
    Yt_all = np.ascontiguousarray(one_hot(labels[:-1]).T)
    with pytest.raises(ValueError, match="1049 targets for 1050 images"):
        next(shuffled_batches(images, Yt_all, 10, 1, np.random.default_rng(0)))


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_fast_training_equals_the_reference_math(kind, few_images):
    images, labels = few_images
    ref, ref_losses = reference_train(
        kind, images, labels, epochs=2, batch_size=100, lr=LR[kind], seed=7
    )
    losses = []
    rng = np.random.default_rng(7)
    network, history = train(
        one_layer(kind, init_params("normal", rng)),  # float32, as mnist-train
        images,
        labels,
        epochs=2,
        batch_size=100,
        lr=LR[kind],
        rng=rng,
        on_batch=lambda n, loss: losses.append(loss),
    )
    (params,) = dense_params(network)
    assert params.W.dtype == np.float32, f"expected float32 W, got {params.W.dtype}"
    assert len(losses) == len(ref_losses) == 22, f"{len(losses)} batches, expected 22"
    for name, fast, slow in (("W", params.W, ref.W), ("b", params.b, ref.b)):
        error = np.max(np.abs(fast - slow)) / np.max(np.abs(slow))
        assert error < 1e-5, (
            f"{kind}: {name} after 22 steps differs from the float64 reference by "
            f"{error:.2e} of its largest entry, expected < 1e-5 (float32 rounding)"
        )
    np.testing.assert_allclose(
        losses, ref_losses, rtol=1e-5, err_msg=f"{kind}: batch losses"
    )
    epoch_means = [np.average(ref_losses[:11], weights=[100] * 10 + [50])]
    assert history[0].train_loss == pytest.approx(epoch_means[0], rel=1e-5), (
        f"{kind}: epoch 1 loss {history[0].train_loss}, expected {epoch_means[0]}"
    )


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_same_seed_same_weights_and_given_params_untouched(kind, few_images):
    images, labels = few_images
    start = init_params("normal", np.random.default_rng(1))
    before = start.W.copy()
    runs = [
        train(
            one_layer(kind, start),
            images,
            labels,
            epochs=1,
            batch_size=64,
            lr=LR[kind],
            rng=np.random.default_rng(3),
        )[0].params[0]
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].W, runs[1].W, f"{kind}: same seed, other W")
    np.testing.assert_array_equal(runs[0].b, runs[1].b, f"{kind}: same seed, other b")
    np.testing.assert_array_equal(start.W, before, f"{kind}: train() changed its input")


def test_a_batch_larger_than_a_chunk_is_streamed_in_pieces(few_images, monkeypatch):
    """With batch_size > CHUNK_ROWS each batch comes as pieces of piece_rows() rows (whole
    blocks of the step), never past the batch's end, in the order of the permutation."""
    from mnist_cli.fast import batches

    monkeypatch.setattr(batches, "CHUNK_ROWS", 150)
    assert batches.piece_rows() == BLOCK_ROWS == 100
    images, labels = few_images  # 1050: batches of 450, 450 and 150
    Yt_all = np.ascontiguousarray(one_hot(labels).T)
    stream = shuffled_batches(images, Yt_all, 450, 2, np.random.default_rng(3))
    pieces = [(X[:, :D].copy(), Yt.copy()) for X, Yt in stream]
    sizes = [100, 100, 100, 100, 50] * 2 + [100, 50]
    assert [len(X) for X, _ in pieces] == sizes * 2, [len(X) for X, _ in pieces]
    assert [batches.pieces_per_batch(B, 450) for B in (450, 150)] == [5, 2]
    same_draws = np.random.default_rng(3)
    order = np.concatenate([same_draws.permutation(len(labels)) for _ in range(2)])
    np.testing.assert_array_equal(
        np.vstack([X for X, _ in pieces]), images[order].astype(np.float32)
    )
    np.testing.assert_array_equal(np.hstack([Yt for _, Yt in pieces]), Yt_all[:, order])


@pytest.mark.parametrize("kind, loss", [*((k, "squared") for k in MODEL_KINDS),
                                        ("softmax", "cross-entropy"), ("mlp", "squared")])  # fmt: skip
def test_a_streamed_batch_trains_the_same_weights_bit_for_bit(
    kind, loss, few_images, monkeypatch
):
    """Batches of 450 in one piece (chunks of 2048 rows) and streamed in pieces of 100
    (chunks of 150): the same blocks summed in the same order, so the same weights and
    losses exactly (the mlp's step streams its pieces as the one-layer step does)."""
    from mnist_cli.fast import batches

    images, labels = few_images

    def run():
        losses = []
        rng = np.random.default_rng(11)
        start = build(kind, "normal", rng, (32,) if kind == "mlp" else (), "relu")
        network, history = train(
            start, images, labels, epochs=2, batch_size=450, lr=0.1, rng=rng, loss=loss,
            on_batch=lambda n, batch_loss: losses.append((n, batch_loss)),
        )  # fmt: skip
        return network, losses, [r.train_loss for r in history]

    whole = run()
    monkeypatch.setattr(batches, "CHUNK_ROWS", 150)
    streamed = run()
    assert [n for n, _ in streamed[1]] == [450, 450, 150] * 2, streamed[1]
    pairs = zip(dense_params(streamed[0]), dense_params(whole[0]), strict=True)
    for i, (a, b) in enumerate(pairs):
        np.testing.assert_array_equal(a.W, b.W, f"{kind}: W{i + 1} differs")
        np.testing.assert_array_equal(a.b, b.b, f"{kind}: b{i + 1} differs")
    assert streamed[1:] == whole[1:], f"{kind}: losses differ"


def test_memory_before_the_first_batch_does_not_grow_with_the_epochs(few_images):
    """The schedule of chunks is drawn as it goes: 10⁶ or 10¹² epochs cost what 1 does (a
    list over all epochs held 1.26 GB for 10⁶ epochs of MNIST, 5.9 GB for 10¹²)."""
    images, labels = few_images[0][:50], few_images[1][:50]
    Yt_all = np.ascontiguousarray(one_hot(labels).T)

    def peak_bytes(epochs: int) -> int:
        """Peak memory allocated from the call to the first batch."""
        tracemalloc.start()
        try:
            rng = np.random.default_rng(0)
            with closing(shuffled_batches(images, Yt_all, 10, epochs, rng)) as batches:
                next(batches)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    one = peak_bytes(1)
    for epochs in (10**6, 10**12):  # in this order: 10¹² would not end on main
        more = peak_bytes(epochs) - one
        assert more < 100_000, f"{epochs} epochs: {more} bytes more than for 1 epoch"


def test_only_the_last_epoch_keeps_its_evaluation(few_images):
    """The history grows with the epochs: its entries hold numbers, and only the last one the
    whole evaluation (confusion matrix, per-class accuracy) that run.fit reuses."""
    images, labels = few_images
    seen = []
    _, history = train(
        one_layer("softmax", init_params("zeros", None)),
        images,
        labels,
        epochs=3,
        batch_size=100,
        lr=LR["softmax"],
        rng=np.random.default_rng(0),
        monitored=(images, labels),
        on_epoch=lambda r: seen.append(r.evaluation is not None),
    )
    assert seen == [True, True, True], "each epoch's callback sees its evaluation"
    assert [r.evaluation is not None for r in history] == [False, False, True]
    assert history[-1].evaluation.accuracy == history[-1].monitor_accuracy


# --- the monitor, scored beside the next epoch ------------------------------------------


def monitored_train(kind, few_images, epochs, **kwargs):
    images, labels = few_images
    network = build(kind, "normal", np.random.default_rng(3), (16,), "relu")
    return train(
        network, images, labels, epochs=epochs, batch_size=100,
        lr=0.5 if kind != "linear" else LR["linear"], rng=np.random.default_rng(3),
        monitored=(images[:700], labels[:700]), **kwargs,
    )  # fmt: skip


def scoring_threads_alive() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("mnist-cli")]


@pytest.mark.parametrize("kind", ["softmax", "mlp"])
def test_each_epoch_is_scored_on_the_weights_it_ended_with(kind, few_images):
    """The monitor of epoch e, computed while epoch e + 1 trains, is the score of the weights
    epoch e ended with (those of a run of e epochs on the same seed), not of weights that
    went on changing: its whole confusion matrix, epoch by epoch, in order."""
    reported = []
    _, history = monitored_train(kind, few_images, 3, on_epoch=reported.append)
    assert [r.epoch for r in reported] == [1, 2, 3]
    for result in reported:
        shorter, _ = monitored_train(kind, few_images, result.epoch)
        again = evaluate(shorter, *(a[:700] for a in few_images))
        np.testing.assert_array_equal(
            result.evaluation.confusion_matrix, again.confusion_matrix
        )
        assert result.monitor_accuracy == again.accuracy
    assert [r.monitor_accuracy for r in history] == [
        r.monitor_accuracy for r in reported
    ]


def test_epochs_are_reported_in_order_when_a_score_is_slow(few_images, monkeypatch):
    """Epoch 1's score is slow to come: epoch 2's, ready first, waits for it; every epoch is
    reported once, in order, before train returns."""
    calls = []

    def slow_first(network, images, labels, loss=None, threads=None):
        calls.append(threads)
        if len(calls) == 1:
            time.sleep(0.3)
        return score(network, images, labels, loss, threads)

    monkeypatch.setattr(mnist_cli.training.step, "score", slow_first)
    reported = []
    monitored_train(
        "softmax", few_images, 4, on_epoch=lambda r: reported.append(r.epoch)
    )
    assert reported == [1, 2, 3, 4]
    # the first three beside the next epoch, on one thread; the last at once, on
    # scoring's choice of threads
    assert calls == [1, 1, 1, None]


def test_an_error_in_the_monitor_reaches_the_caller_and_no_thread_is_left(
    few_images, monkeypatch
):
    def broken(*args, **kwargs):
        raise MemoryError("no room for the scores")

    monkeypatch.setattr(mnist_cli.training.step, "score", broken)
    with pytest.raises(MemoryError, match="no room"):
        monitored_train("softmax", few_images, 3)
    assert scoring_threads_alive() == []


def test_a_diverged_run_leaves_no_monitor_thread(few_images, monkeypatch):
    """Training stops at the first loss that is not finite, here in epoch 2's fourth batch,
    with epoch 1's score perhaps still being computed: the error comes, and the scoring
    thread is gone."""
    steps = []
    real_step = mnist_cli.training.step.gradients

    def diverging(*args, **kwargs):
        steps.append(real_step(*args, **kwargs))
        return float("nan") if len(steps) == 15 else steps[-1]  # 11 batches an epoch

    monkeypatch.setattr(mnist_cli.training.step, "gradients", diverging)
    with pytest.raises(TrainingDivergedError, match="in epoch 2"):
        monitored_train("softmax", few_images, 3)
    assert scoring_threads_alive() == []


def test_time_in_the_callbacks_is_not_an_epochs_time(few_images):
    """An epoch's result reaches on_epoch during the next epoch: what the callback takes is
    not counted in that next epoch's seconds (a 0.3 s callback against ~10 ms epochs)."""
    _, history = monitored_train(
        "softmax", few_images, 3, on_epoch=lambda r: time.sleep(0.3)
    )
    assert all(r.seconds < 0.2 for r in history), [r.seconds for r in history]


def test_the_monitor_thread_scores_in_the_training_error_state(few_images, monkeypatch):
    """numpy's error state is per context, and a new thread starts from numpy's defaults:
    the monitor's thread runs in the training loop's (overflow and invalid ignored, as a
    score in line was), so it prints no RuntimeWarning the loop would not."""
    states = []

    def recording(network, images, labels, loss=None, threads=None):
        states.append(np.geterr())
        return score(network, images, labels, loss, threads)

    monkeypatch.setattr(mnist_cli.training.step, "score", recording)
    monitored_train("softmax", few_images, 3)
    assert [(s["over"], s["invalid"]) for s in states] == [("ignore", "ignore")] * 3
