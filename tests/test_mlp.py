"""The mlp's math (mlp.py): activations, losses, init, and its fused step (fused_mlp.py)
against that math, on real MNIST images.

Every layer's gradient against central differences, for each activation and loss, and the
slips the check must catch (a dropped activation derivative, a transposed weight, a missing
bias gradient): tests/test_gradcheck.py, through mnist_cli.gradcheck.check itself.
"""

import numpy as np
import pytest

from mnist_cli import mlp
from mnist_cli.fused import BLOCK_ROWS
from mnist_cli.fused_mlp import (
    MlpWork,
    from_thetas,
    fused_mlp_step,
    to_thetas,
)
from mnist_cli.models import D, K, Params, inputs, one_hot, softmax

SIZES = (D, 6, 6, 10)  # two hidden layers


@pytest.fixture(scope="module")
def few_images(mnist_splits):
    """The first 300 training images (uint8) and labels."""
    split = mnist_splits[0]
    return np.asarray(split.images[:300]), split.labels[:300]


def random_layers(activation, seed=0, sizes=SIZES):
    """Init weights (float64) with biases ~ N(0, 0.5²), and the output layer scaled so the
    softmax is neither uniform nor saturated (logits of spread ~1-3)."""
    rng = np.random.default_rng(seed)
    layers = mlp.init_layers(sizes, activation, rng, np.float64)
    out = []
    for l, p in enumerate(layers, start=1):
        W = p.W * (3.0 if l == len(layers) else 1.0)
        out.append(Params(W=W, b=0.5 * rng.standard_normal(p.b.shape)))
    return tuple(out)


def test_relu_derivative_is_zero_at_zero():
    Z = np.array([-1.0, 0.0, 2.0])
    got = mlp.activation_grad("relu", Z, mlp.activate("relu", Z))
    np.testing.assert_array_equal(got, [0.0, 0.0, 1.0])


def test_sigmoid_is_the_logistic_function_without_overflow():
    Z = np.array([-800.0, -3.0, 0.0, 2.0, 800.0])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        got = mlp.activate("sigmoid", Z)
    np.testing.assert_allclose(
        got, [0.0, 1 / (1 + np.exp(3)), 0.5, 1 / (1 + np.exp(-2)), 1.0]
    )


def test_cross_entropy_is_minus_the_mean_log_probability_of_the_true_class():
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((5, K)) * 2  # (B, K)
    labels = rng.integers(0, K, 5)
    S = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(S[np.arange(5), labels]))
    got = mlp.cross_entropy_loss(Z, one_hot(labels, np.float64))
    assert got == pytest.approx(expected, rel=1e-12), f"{got} != {expected}"


def test_cross_entropy_is_stable_for_logits_around_1000():
    """Where S underflows to 0, log S is still the finite −2000, not −inf."""
    Z = np.zeros((2, K))
    Z[:, 0], Z[:, 1] = 1000.0, -1000.0
    Y = one_hot(np.array([0, 1]), np.float64)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss = mlp.cross_entropy_loss(Z, Y)
        dZ = mlp.cross_entropy_grad_logits(softmax(Z), Y)
    # sample 0: −log S₀ ≈ 0 (e^−1000 terms); sample 1: −log S₁ = 2000 + log(1 + …) ≈ 2000
    assert loss == pytest.approx(1000.0, rel=1e-12), loss
    np.testing.assert_allclose(dZ[1, :2], [0.5, -0.5])  # (S − Y)/B: S ≈ e₀ for both


def test_init_scale_per_layer_and_the_same_seed_gives_the_same_weights():
    sizes = (D, 512, 256, K)
    for activation, gain in (("relu", 2.0), ("tanh", 1.0), ("sigmoid", 1.0)):
        layers = mlp.init_layers(sizes, activation, np.random.default_rng(0))
        for l, (p, fan_in) in enumerate(zip(layers, sizes[:-1]), start=1):
            assert p.W.dtype == np.float32 and p.W.shape == (sizes[l], fan_in)
            n = p.W.size
            var, expected = float(p.W.var()), gain / fan_in
            assert abs(var / expected - 1) < 6 * np.sqrt(2 / n), (
                f"{activation} W{l}: var {var:.3g}, expected {expected:.3g}"
            )
            assert abs(float(p.W.mean())) < 6 * np.sqrt(expected / n), p.W.mean()
            assert not p.b.any(), f"{activation} b{l} should start at 0"
    again = mlp.init_layers(sizes, "relu", np.random.default_rng(0))
    other = mlp.init_layers(sizes, "relu", np.random.default_rng(1))
    first = mlp.init_layers(sizes, "relu", np.random.default_rng(0))
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a.W, b.W)
        assert not np.array_equal(a.W, c.W), "another seed gave the same weights"


@pytest.mark.parametrize(
    "sizes, B", [((D, 32, K), 100), ((D, 24, 16, K), 100), ((D, 24, 16, K), 250)]
)
@pytest.mark.parametrize("loss", mlp.LOSSES)
@pytest.mark.parametrize("activation", mlp.ACTIVATIONS)
def test_fused_step_is_the_reference_step_for_every_layer(
    activation, loss, sizes, B, few_images
):
    """Three fused steps on X̃ = [pixels, 255] against three float64 reference steps (mlp's
    loss_and_layer_grads and sgd_update), batch for batch: the loss of each, and each layer's
    W and b after them (250 rows: blocks of 100, 100 and 50)."""
    images, labels = few_images
    layers = random_layers(activation, seed=4, sizes=sizes)
    thetas = to_thetas(layers)
    work = MlpWork.for_batch(B, thetas)
    assert len(work.blocks) == -(-B // BLOCK_ROWS)
    lr, reference = 0.3, layers
    for step in range(3):
        rows = slice(step * 17, step * 17 + B)  # overlapping, different batches
        X = inputs(images[rows], np.float64)
        Y = one_hot(labels[rows], np.float64)
        loss_ref, grads = mlp.loss_and_layer_grads(reference, activation, loss, X, Y)
        reference = mlp.sgd_update(reference, grads, lr)
        X_tilde = np.hstack([images[rows], np.full((B, 1), 255)]).astype(np.float32)
        Yt = np.ascontiguousarray(Y.T, np.float32)
        got = fused_mlp_step(activation, loss, thetas, X_tilde, Yt, lr, work)
        assert got == pytest.approx(loss_ref, rel=1e-5), f"step {step}: loss"
    for l, (fast, ref, before) in enumerate(
        zip(from_thetas(thetas), reference, layers)
    ):
        for name in ("W", "b"):
            moved = getattr(fast, name) - getattr(before, name)
            expected = getattr(ref, name) - getattr(before, name)
            error = np.max(np.abs(moved - expected)) / np.max(np.abs(expected))
            assert error < 1e-3, (
                f"{activation}, {loss}, {sizes}, B {B}: {name}{l + 1} moved "
                f"{error:.1e} of its update away from the reference"
            )


def test_thetas_round_trip(few_images):
    layers = mlp.init_layers((D, 5, 4, K), "tanh", np.random.default_rng(0))
    layers = tuple(Params(p.W, p.b + 0.25) for p in layers)
    back = from_thetas(to_thetas(layers))
    for p, q in zip(layers, back):
        np.testing.assert_allclose(q.W, p.W, rtol=1e-6)
        np.testing.assert_allclose(q.b, p.b, rtol=1e-6)


@pytest.mark.parametrize("loss", mlp.LOSSES)
def test_fused_step_is_stable_for_logits_around_1000(loss, few_images):
    """Output biases of ±1000: without the max subtracted, exp overflows and the loss is NaN."""
    images, labels = few_images
    layers = random_layers("relu", seed=5, sizes=(D, 8, K))
    top = layers[-1]
    big = 1000.0 * np.where(np.arange(K) % 2 == 0, 1.0, -1.0)  # (K,)
    layers = (layers[0], Params(W=top.W, b=top.b + big))
    X, Y = inputs(images[:50], np.float64), one_hot(labels[:50], np.float64)
    expected, grads = mlp.loss_and_layer_grads(layers, "relu", loss, X, Y)
    reference = mlp.sgd_update(layers, grads, 0.1)
    thetas = to_thetas(layers)
    X_tilde = np.hstack([images[:50], np.full((50, 1), 255)]).astype(np.float32)
    Yt = np.ascontiguousarray(Y.T, np.float32)
    work = MlpWork.for_batch(50, thetas)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        got = fused_mlp_step("relu", loss, thetas, X_tilde, Yt, 0.1, work)
    assert expected > 100 if loss == "cross-entropy" else expected > 0.5, expected
    assert got == pytest.approx(expected, rel=1e-5), f"{loss}: {got} != {expected}"
    moved = from_thetas(thetas)[-1].b - layers[-1].b
    np.testing.assert_allclose(moved, reference[-1].b - layers[-1].b, atol=1e-3)
