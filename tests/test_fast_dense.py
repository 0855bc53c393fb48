"""The fast path against the reference math: fast/dense.py's gradients, the training step of
training/step.py and fast/scoring.py's scores, against nn/ in float64.

The kernel computes in float32 (its scratch arrays are float32, whatever the dtype of Θ), so
it runs on float32 Θ_l and Ũ = [U, 255], and the reference on the same weights cast to float64;
they agree to float32 rounding. Far logits (about ±1000): exp overflows float32 above 88 and
underflows to 0 below −103, so only the row-max subtraction keeps softmax finite there. The
float64 softmax of the scoring checks (helpers.reference_softmax, a log-sum-exp) shares no
code with what it checks.
"""

from dataclasses import replace

import numpy as np
import pytest
from helpers import far_logits, far_logits_batch, reference_softmax
from test_nn import CASES, random_network, rel_error

from mnist_cli.fast.dense import (
    BLOCK_ROWS,
    DenseWork,
    from_thetas,
    gradients,
    to_thetas,
)
from mnist_cli.fast.scoring import score
from mnist_cli.metrics import evaluate
from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import activation_of, dense_params, one_layer
from mnist_cli.nn.layers import Act, Dense, Params, inputs
from mnist_cli.nn.losses import one_hot
from mnist_cli.nn.network import Network, sgd_update
from mnist_cli.optim import OptimizerSpec
from mnist_cli.predict.images import classify
from mnist_cli.training.step import trainer_for

TOL = (
    2e-5  # float32 against float64, relative to the largest entry of a layer's gradient
)


def some_images(B: int, seed: int = 1):
    """(images (B, D) uint8, about half the pixels 0 as in MNIST, labels (B,))."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (B, D)) * (rng.random((B, D)) < 0.5)
    return images.astype(np.uint8), rng.integers(0, K, B)


def as_pieces(images, labels, sizes=None):
    """The batch as the fast path takes it: pieces (Ũ = [U, 255] (m, D + 1), Yᵀ (K, m)) float32 of
    `sizes` rows each (one piece by default)."""
    sizes, pieces, start = sizes or [len(images)], [], 0
    for m in sizes:
        rows = slice(start, start + m)
        U1 = np.hstack([images[rows], np.full((m, 1), 255)]).astype(np.float32)
        pieces.append((U1, np.ascontiguousarray(one_hot(labels[rows]).T)))
        start += m
    assert start == len(images)
    return pieces


def fast_gradients(network, loss, images, labels, scale, work=None, sizes=None):
    """(ℒ, copies of work.totals) of fast.dense.gradients on the network's weights."""
    thetas = to_thetas(dense_params(network))
    if work is None:
        work = DenseWork.for_thetas(
            thetas, activation_of(network), network.output, loss
        )
    pieces = as_pieces(images, labels, sizes)
    got = gradients(thetas, pieces, len(images), scale, work)
    return got, [t.copy() for t in work.totals]


def as_float64(network):
    return network.with_params(
        tuple(tuple(a.astype(np.float64) for a in p) for p in network.params)
    )


def reference_gradients(network, loss, images, labels):
    """(ℒ, [dW_l, db_l] per dense layer) of nn/ in float64, on the network's weights."""
    net = as_float64(network)
    X, Y = inputs(images, np.float64), one_hot(labels, np.float64)
    value, grads = net.loss_and_grads(loss, X, Y)
    layers = dense_params(net.with_params(grads))
    return value, [np.hstack([g.W, g.b[:, None]]) for g in layers]


def assert_gradients_match(got, expected, scale, what, tol=TOL, loss_tol=1e-5):
    (loss, totals), (ref_loss, ref_grads) = got, expected
    assert np.isfinite(loss) and loss == pytest.approx(ref_loss, rel=loss_tol), (
        f"{what}: loss {loss}, float64 reference {ref_loss}"
    )
    assert len(totals) == len(ref_grads)
    for l, (total, grad) in enumerate(zip(totals, ref_grads), start=1):
        assert total.shape == grad.shape and total.dtype == np.float32
        error = rel_error(total, scale * grad)
        assert error < tol, f"{what}: [dW{l}, db{l}] off by {error:.1e} of its size"


@pytest.mark.parametrize("B", [1, BLOCK_ROWS, BLOCK_ROWS + 1, 250])
@pytest.mark.parametrize("kind, hidden, activation, loss", CASES)
def test_fast_gradients_are_the_float64_reference(kind, hidden, activation, loss, B):
    """Every depth, activation, output and loss; batches of one row, exactly one block, one
    row over it, and several blocks. totals = scale × [dW_l, db_l]."""
    network = random_network(kind, hidden, activation, seed=B, dtype=np.float32)
    images, labels = some_images(B, seed=B)
    got = fast_gradients(network, loss, images, labels, -0.3)
    expected = reference_gradients(network, loss, images, labels)
    assert_gradients_match(
        got, expected, -0.3, f"{kind} {hidden} {activation} {loss} B {B}"
    )


def test_the_comparison_fails_for_a_slightly_wrong_gradient():
    """The comparison above notices a gradient off by 1 % (a factor 1/B with B one row
    off) and the kernel run with another activation (sigmoid for tanh)."""
    network = random_network("mlp", (6, 6), "tanh", dtype=np.float32)
    images, labels = some_images(101)
    expected = reference_gradients(network, "squared", images, labels)
    got = fast_gradients(network, "squared", images, labels, -0.3)
    assert_gradients_match(got, expected, -0.3, "right")
    with pytest.raises(AssertionError, match="off by"):
        assert_gradients_match(got, expected, -0.3 * 1.01, "1 % off")
    thetas = to_thetas(dense_params(network))
    wrong = DenseWork.for_thetas(thetas, "sigmoid", "softmax", "squared")
    value = gradients(thetas, as_pieces(images, labels), 101, -0.3, wrong)
    with pytest.raises(AssertionError, match="sigmoid"):
        assert_gradients_match((value, wrong.totals), expected, -0.3, "sigmoid")


@pytest.mark.parametrize("shift", [1000.0, -1000.0])
@pytest.mark.parametrize("B", [60, 250])
@pytest.mark.parametrize(
    "kind, loss",
    [("linear", "squared"), ("softmax", "squared"), ("softmax", "cross-entropy")],
)
def test_fast_gradients_on_far_logits_are_the_float64_reference(kind, loss, B, shift):
    """Logits about ±1000, some rows spread over ±300: no overflow, no NaN, and the float64
    gradient to float32 rounding of logits that large. (For linear the logits are the outputs:
    large but finite numbers.)"""
    images, labels, params = far_logits_batch(B, shift)
    network = one_layer(kind, params)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        got = fast_gradients(network, loss, images, labels, 1.0)
    expected = reference_gradients(network, loss, images, labels)
    assert_gradients_match(got, expected, 1.0, f"{kind} {loss} B {B}", 3e-4, 1e-4)


@pytest.mark.parametrize("loss", ["squared", "cross-entropy"])
def test_mlp_fast_gradients_with_output_biases_of_1000(loss):
    """Output biases of ±1000: without the max subtracted, exp overflows and the loss is NaN."""
    network = random_network("mlp", (8,), "relu", seed=5, dtype=np.float32)
    first, top = dense_params(network)
    big = 1000.0 * np.where(np.arange(K) % 2 == 0, 1.0, -1.0)  # (K,)
    top = Params(W=top.W, b=(top.b + big).astype(np.float32))
    network = network.with_params((first, (), top))
    images, labels = some_images(50, seed=6)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        got = fast_gradients(network, loss, images, labels, -0.1)
    expected = reference_gradients(network, loss, images, labels)
    assert expected[0] > (100 if loss == "cross-entropy" else 0.5), expected[0]
    assert_gradients_match(got, expected, -0.1, f"mlp {loss} far", 1e-4)


@pytest.mark.parametrize("kind, hidden, activation, loss", CASES[::2])
def test_a_batch_in_pieces_gives_the_same_gradients_bit_for_bit(
    kind, hidden, activation, loss
):
    """A streamed batch (pieces of whole blocks) sums the same blocks in the same order."""
    network = random_network(kind, hidden, activation, dtype=np.float32)
    images, labels = some_images(250)
    whole = fast_gradients(network, loss, images, labels, -0.3)
    for sizes in ([200, 50], [100, 100, 50]):
        pieces = fast_gradients(network, loss, images, labels, -0.3, sizes=sizes)
        assert pieces[0] == whole[0], sizes
        for a, b in zip(pieces[1], whole[1]):
            np.testing.assert_array_equal(a, b, f"pieces of {sizes}")


@pytest.mark.parametrize("kind, hidden, activation, loss", CASES)
def test_the_arrays_are_reused_without_carrying_anything_over(
    kind, hidden, activation, loss
):
    """DenseWork is allocated once and reused: after batches of other sizes and contents, a
    batch gives what a fresh DenseWork gives (nothing left from before is read)."""
    network = random_network(kind, hidden, activation, dtype=np.float32)
    thetas = to_thetas(dense_params(network))
    work = DenseWork.for_thetas(thetas, activation, network.output, loss)
    for B, seed in ((250, 2), (101, 3), (1, 4)):
        images, labels = some_images(B, seed)
        fast_gradients(network, loss, images, labels, -0.5, work)
    images, labels = some_images(250, seed=5)
    reused = fast_gradients(network, loss, images, labels, -0.3, work)
    fresh = fast_gradients(network, loss, images, labels, -0.3)
    assert reused[0] == fresh[0]
    for a, b in zip(reused[1], fresh[1]):
        np.testing.assert_array_equal(a, b)


def test_cross_entropy_is_refused_on_an_identity_output():
    params = Params(np.zeros((K, D), np.float32), np.zeros(K, np.float32))
    with pytest.raises(ValueError, match="needs a softmax output"):
        DenseWork.for_thetas(to_thetas([params]), None, "identity", "cross-entropy")
    with pytest.raises(ValueError, match="needs a softmax output"):
        trainer_for(one_layer("linear", params), "cross-entropy", OptimizerSpec())


def test_thetas_hold_w_and_b_and_give_them_back():
    network = random_network("mlp", (5, 4), "tanh", dtype=np.float64)
    layers = dense_params(network)
    thetas = to_thetas(layers)
    for p, theta in zip(layers, thetas):
        assert (
            theta.shape == (p.W.shape[0], p.W.shape[1] + 1)
            and theta.dtype == np.float32
        )
        assert theta.flags.c_contiguous
        np.testing.assert_array_equal(theta[:, :-1], p.W.astype(np.float32))
        np.testing.assert_array_equal(theta[:, -1], p.b.astype(np.float32))
    for p, q in zip(layers, from_thetas(thetas)):
        np.testing.assert_allclose(q.W, p.W, rtol=1e-6)
        np.testing.assert_allclose(q.b, p.b, rtol=1e-6)
        assert q.W.flags.c_contiguous and q.b.flags.c_contiguous


@pytest.mark.parametrize("kind, hidden, activation, loss", CASES)
def test_the_folded_sgd_step_is_the_reference_sgd_update(
    kind, hidden, activation, loss
):
    """Three steps of trainer_for(…, plain SGD) (−lr folded into the kernel, then one add
    per layer) against three float64 steps of nn.network.sgd_update, batch for batch: the
    loss of each, and each layer's W and b after them."""
    network = random_network(kind, hidden, activation, seed=4, dtype=np.float32)
    trainer = trainer_for(network, loss, OptimizerSpec())
    assert trainer.folded
    lr = 0.3 if kind != "linear" else 0.05
    reference = as_float64(network)
    images, labels = some_images(200 + 17 * 3, seed=7)
    for step in range(3):
        rows = slice(step * 17, step * 17 + 101)  # overlapping, different batches
        X, Y = inputs(images[rows], np.float64), one_hot(labels[rows], np.float64)
        ref_loss, grads = reference.loss_and_grads(loss, X, Y)
        reference = reference.with_params(sgd_update(reference.params, grads, lr))
        got = trainer.step(as_pieces(images[rows], labels[rows]), 101, lr)
        assert got == pytest.approx(ref_loss, rel=1e-5), f"step {step}: loss"
    now = trainer.current()
    assert now.layers == network.layers and now.output == network.output
    for l, (fast, ref, before) in enumerate(
        zip(dense_params(now), dense_params(reference), dense_params(network)), start=1
    ):
        for name in ("W", "b"):
            moved = getattr(fast, name) - getattr(before, name)
            expected = getattr(ref, name) - getattr(before, name)
            error = rel_error(moved, expected)
            assert error < 1e-3, (
                f"{kind} {hidden} {activation} {loss}: {name}{l} moved {error:.1e} of "
                "its update away from the reference"
            )


class Recorder:
    """An optimizer that records what it is handed and changes nothing."""

    def __init__(self):
        self.calls = []

    def step(self, params, grads, lr):
        self.calls.append(([g.copy() for g in grads], lr))


@pytest.mark.parametrize("kind, hidden, activation, loss", CASES[1::2])
def test_another_optimizer_is_handed_the_gradient_itself(
    kind, hidden, activation, loss
):
    """Not plain SGD (here SGD with weight decay): the kernel runs at scale 1 and the
    optimizer gets [dW_l, db_l] of every layer and the learning rate, the weights as they were."""
    network = random_network(kind, hidden, activation, dtype=np.float32)
    trainer = trainer_for(network, loss, OptimizerSpec(weight_decay=0.1))
    assert not trainer.folded
    trainer = replace(trainer, optimizer=Recorder())
    images, labels = some_images(101, seed=8)
    got = trainer.step(as_pieces(images, labels), 101, 0.25)
    ((grads, lr),) = trainer.optimizer.calls
    assert lr == 0.25
    expected = reference_gradients(network, loss, images, labels)
    assert_gradients_match((got, grads), expected, 1.0, f"{kind} {loss}")
    for theta, p in zip(trainer.thetas, dense_params(network)):
        np.testing.assert_array_equal(theta, to_thetas([p])[0])


def test_the_trainer_refuses_two_activations():
    network = random_network("mlp", (6, 5), "relu", dtype=np.float32)
    layers = (Dense(6), Act("relu"), Dense(5), Act("tanh"), Dense(K))
    mixed = Network(layers, network.params, "softmax", (D,))
    with pytest.raises(ValueError, match="one activation"):
        trainer_for(mixed, "squared", OptimizerSpec())


@pytest.mark.parametrize("shift", [1000.0, -1000.0])
def test_the_batch_has_logits_about_plus_or_minus_1000(shift):
    images, _, params = far_logits_batch(12, shift)
    Z = far_logits(images, params)
    assert np.abs(Z - shift).max() < 350, f"logits from {Z.min()} to {Z.max()}"
    spread = np.ptp(Z, axis=1)
    assert spread[::3].min() > 500, f"rows with pixels 1-10 lit spread {spread[::3]}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_softmax_of_far_logits_is_the_float64_reference(dtype):
    rng = np.random.default_rng(1)
    small = rng.standard_normal((4, K))
    Z = np.vstack([1000 + small, -1000 + small, 300 * small]).astype(dtype)  # (12, K)
    network = Network((), (), "softmax", (K,))  # no layers: Ŷ = softmax(X)
    S = network.predict(Z)
    assert np.isfinite(S).all(), f"softmax is not finite at ±1000: {S}"
    np.testing.assert_allclose(S, reference_softmax(Z), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(S[:4], S[4:8], rtol=1e-4, atol=1e-6)  # shift-invariant


def reference_scores(kind, loss, images, labels, params):
    """(mean loss, accuracy) in float64, with helpers.reference_softmax."""
    Z = far_logits(images, params)  # (N, K)
    Y = one_hot(labels, np.float64)
    if loss == "cross-entropy":
        value = -np.mean(np.log(reference_softmax(Z))[np.arange(len(Y)), labels])
    else:
        Y_hat = reference_softmax(Z) if kind == "softmax" else Z
        value = np.sum((Y_hat - Y) ** 2) / len(Y)
    return float(value), float(np.mean(Z.argmax(axis=1) == labels))


@pytest.mark.parametrize("scorer", ["score", "evaluate"])
@pytest.mark.parametrize("shift", [1000.0, -1000.0])
@pytest.mark.parametrize(
    "kind, loss",
    [("linear", "squared"), ("softmax", "squared"), ("softmax", "cross-entropy")],
)
def test_scoring_far_logits_gives_the_float64_loss(kind, loss, shift, scorer):
    images, labels, params = far_logits_batch(300, shift)
    network = one_layer(kind, params)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        if scorer == "score":
            result = score(network, images, labels, loss, threads=2)
        else:
            result = evaluate(network, images, labels, loss, chunk=128)
    expected, accuracy = reference_scores(kind, loss, images, labels, params)
    assert result.loss == pytest.approx(expected, rel=1e-4), (
        f"{kind} {loss}: scored loss {result.loss}, float64 reference {expected}"
    )
    assert result.accuracy == pytest.approx(accuracy, abs=2 / len(labels))


@pytest.mark.parametrize("shift", [1000.0, -1000.0])
def test_classifying_far_logits_gives_the_float64_probabilities(shift):
    images, _, params = far_logits_batch(20, shift)
    digits, values = classify(one_layer("softmax", params), images)
    S = reference_softmax(far_logits(images, params))
    np.testing.assert_array_equal(digits, S.argmax(axis=1))
    np.testing.assert_allclose(values, S.max(axis=1), rtol=1e-4)
