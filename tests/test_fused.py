"""The fused step, the scoring path and models.softmax on logits far from 0 (about ±1000), and
the fused step's every line pinned down by a test that fails without it.

exp overflows float32 above 88 (float64 above 709) and underflows to 0 below −103, so only the
row-max subtraction keeps softmax finite out there: without it exp(1000) is inf, and a row
of exp(−1000) sums to 0, both NaN after the division. The reference is float64, with its own
stable softmax written here (log-sum-exp), so it shares no code with what it checks.
"""

import numpy as np
import pytest

from mnist_cli.fused import BLOCK_ROWS, Work, from_theta, fused_sgd_step, to_theta
from mnist_cli.metrics import evaluate
from mnist_cli.models import (
    MODEL_KINDS,
    D,
    K,
    Params,
    grad_logits,
    one_hot,
    output,
    param_grads,
    softmax,
)
from mnist_cli.network import Network
from mnist_cli.predict.images import classify

LR = {"softmax": 0.5, "linear": 0.005}


def reference_softmax(Z: np.ndarray) -> np.ndarray:
    """softmax(Z) row by row in float64: exp(Z − logsumexp(Z)), logsumexp taken around the
    row max so that nothing overflows."""
    Z = np.asarray(Z, np.float64)
    m = Z.max(axis=1, keepdims=True)  # (B, 1)
    lse = m + np.log(np.exp(Z - m).sum(axis=1, keepdims=True))  # (B, 1)
    return np.exp(Z - lse)  # (B, K)


def reference_step(kind, params: Params, images: np.ndarray, labels: np.ndarray, lr):
    """(loss, W after, b after) of one plain SGD step in float64, softmax from above."""
    p = Params(W=params.W.astype(np.float64), b=params.b.astype(np.float64))
    X = images.astype(np.float64) / 255  # (B, D)
    Y = one_hot(labels, np.float64)  # (B, K)
    Z = X @ p.W.T + p.b  # (B, K)
    Y_hat = reference_softmax(Z) if kind == "softmax" else Z  # (B, K)
    loss = float(np.sum((Y_hat - Y) ** 2) / len(Y))
    grads = param_grads(grad_logits(kind, Y_hat, Y), X)
    return loss, p.W - lr * grads.W, p.b - lr * grads.b


def far_logits_batch(B: int, shift: float = 1000.0, seed: int = 0):
    """(images (B, D) uint8, labels (B,), params float32) whose logits lie about `shift`.

    The bias is `shift` for every class (softmax is unchanged by a shift of its row), the
    weights small: most rows' softmax is far from one-hot and the gradient not zero. Pixels
    1-10, lit in every third row only, spread those rows' logits over ±300 as well: there
    exp(Z − min) would overflow too.
    """
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (B, D)).astype(np.uint8)
    images[:, 1:11] = 0
    images[::3, 1:11] = 255
    labels = rng.integers(0, K, B)
    W = 0.003 * rng.standard_normal((K, D))  # logits of spread ≈ 1 on these pixels
    W[:, 1:11] = np.linspace(-30.0, 30.0, K)[:, None]
    b = shift + 0.3 * rng.standard_normal(K)
    return images, labels, Params(W=W.astype(np.float32), b=b.astype(np.float32))


def far_logits(images, params):
    return images.astype(np.float64) / 255 @ params.W.T.astype(np.float64) + params.b


@pytest.mark.parametrize("shift", [1000.0, -1000.0])
def test_the_batch_has_logits_about_plus_or_minus_1000(shift):
    images, _, params = far_logits_batch(12, shift)
    Z = far_logits(images, params)
    assert np.abs(Z - shift).max() < 350, f"logits from {Z.min()} to {Z.max()}"
    spread = np.ptp(Z, axis=1)
    assert spread[::3].min() > 500, f"rows with pixels 1-10 lit spread {spread[::3]}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_models_softmax_of_far_logits_is_the_float64_reference(dtype):
    rng = np.random.default_rng(1)
    small = rng.standard_normal((4, K))
    Z = np.vstack([1000 + small, -1000 + small, 300 * small]).astype(dtype)  # (12, K)
    S = softmax(Z)
    assert np.isfinite(S).all(), f"softmax is not finite at ±1000: {S}"
    np.testing.assert_allclose(S, reference_softmax(Z), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(S[:4], S[4:8], rtol=1e-4, atol=1e-6)  # shift-invariant
    np.testing.assert_allclose(output("softmax", Z), S)


@pytest.mark.parametrize("shift", [1000.0, -1000.0])
@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_scoring_far_logits_gives_the_float64_loss(kind, shift):
    images, labels, params = far_logits_batch(300, shift)
    expected, *_ = reference_step(kind, params, images, labels, 0.0)
    result = evaluate(Network.one_layer(kind, params), images, labels, "squared", 128)
    assert result.loss == pytest.approx(expected, rel=1e-4), (
        f"{kind}: scored loss {result.loss}, float64 reference {expected}"
    )


@pytest.mark.parametrize("shift", [1000.0, -1000.0])
def test_classifying_far_logits_gives_the_float64_probabilities(shift):
    images, _, params = far_logits_batch(20, shift)
    digits, values = classify(Network.one_layer("softmax", params), images)
    S = reference_softmax(far_logits(images, params))
    np.testing.assert_array_equal(digits, S.argmax(axis=1))
    np.testing.assert_allclose(values, S.max(axis=1), rtol=1e-4)


def fused_step(kind, params: Params, images, labels, lr, work=None):
    """One fused_sgd_step from `params` on the batch: (loss, ΔW, Δb), the step read from Θ
    in float64 (255 ΔΘ), so that it is not lost in the rounding of large weights."""
    B = len(images)
    theta = to_theta(params)  # (K, D + 1)
    before = theta.astype(np.float64)
    U1 = np.hstack([images, np.full((B, 1), 255)]).astype(np.float32)  # Ũ
    Yt = np.ascontiguousarray(one_hot(labels).T)  # (K, B)
    loss = fused_sgd_step(kind, theta, U1, Yt, lr, work or Work.for_batch(B, D + 1))
    step = 255 * (theta.astype(np.float64) - before)  # (K, D + 1) [ΔW, Δb]
    return loss, step[:, :D], step[:, D]


def assert_step_matches(kind, B, params, images, labels, lr, got):
    loss, dW, db = got
    ref_loss, ref_W, ref_b = reference_step(kind, params, images, labels, lr)
    assert loss == pytest.approx(ref_loss, rel=1e-4), (
        f"{kind}, B {B}: loss {loss}, float64 reference {ref_loss}"
    )
    for name, step, expected, before in (
        ("W", dW, ref_W, params.W),
        ("b", db, ref_b, params.b),
    ):
        expected_step = expected - before
        assert np.isfinite(step).all(), f"{kind}, B {B}: the {name} step is not finite"
        error = np.max(np.abs(step - expected_step)) / np.max(np.abs(expected_step))
        assert error < 1e-2, (
            f"{kind}, B {B}: the {name} step differs from the float64 reference by "
            f"{error:.1e} of its size"
        )


@pytest.mark.parametrize("shift", [1000.0, -1000.0])
@pytest.mark.parametrize("kind", MODEL_KINDS)
@pytest.mark.parametrize("B", [60, 250])  # one block of rows, and three
def test_fused_step_on_far_logits_is_the_float64_step(kind, B, shift):
    """The loss and the update of one step with logits about ±1000, against float64.
    (For linear, the logits are the outputs: no softmax, large but finite numbers.)"""
    images, labels, params = far_logits_batch(B, shift)
    lr = LR[kind] if kind == "softmax" else 1e-4  # linear: a step larger than rounding
    got = fused_step(kind, params, images, labels, lr)
    assert_step_matches(kind, B, params, images, labels, lr, got)


def moderate_batch(B: int, seed: int = 3):
    """(images, labels, params) with logits of spread ≈ 1, a non-zero bias."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (B, D)).astype(np.uint8)
    labels = rng.integers(0, K, B)
    W = 0.003 * rng.standard_normal((K, D))
    b = 0.3 * rng.standard_normal(K)
    return images, labels, Params(W=W.astype(np.float32), b=b.astype(np.float32))


@pytest.mark.parametrize("kind", MODEL_KINDS)
@pytest.mark.parametrize("B", [1, BLOCK_ROWS, BLOCK_ROWS + 1, 250])
def test_fused_step_at_every_block_boundary_is_the_float64_step(kind, B):
    """Batches of one row, exactly one block, one row over it, and several blocks."""
    images, labels, params = moderate_batch(B)
    got = fused_step(kind, params, images, labels, LR[kind])
    assert_step_matches(kind, B, params, images, labels, LR[kind], got)


@pytest.mark.parametrize("kind", MODEL_KINDS)
@pytest.mark.parametrize("B", [60, 250])
def test_fused_step_reuses_its_arrays_without_carrying_anything_over(kind, B):
    """Work is allocated once and reused: a second step on another batch gives what a
    fresh Work gives (nothing left from the first step is read)."""
    first_images, first_labels, params = moderate_batch(B, seed=4)
    images, labels, _ = moderate_batch(B, seed=5)
    work = Work.for_batch(B, D + 1)
    fused_step(kind, params, first_images, first_labels, LR[kind], work)
    reused = fused_step(kind, params, images, labels, LR[kind], work)
    fresh = fused_step(kind, params, images, labels, LR[kind])
    for name, a, b in zip(("loss", "W", "b"), reused, fresh):
        np.testing.assert_array_equal(a, b, f"{kind}, B {B}: {name} differs")


def test_theta_holds_the_weights_over_255_and_gives_them_back():
    """Θ = [W, b] / 255 (K, D + 1), and from_theta(Θ) is (W, b) again, to float32 rounding."""
    _, _, params = moderate_batch(1)
    theta = to_theta(params)
    assert theta.shape == (K, D + 1) and theta.dtype == np.float32, theta.shape
    np.testing.assert_allclose(theta[:, :D], params.W / 255, rtol=1e-6)
    np.testing.assert_allclose(theta[:, D], params.b / 255, rtol=1e-6)
    back = from_theta(theta)
    np.testing.assert_allclose(back.W, params.W, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(back.b, params.b, rtol=1e-6, atol=1e-12)
