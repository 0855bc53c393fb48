"""The softmax model's cross-entropy step (fused.fused_sgd_step with loss "cross-entropy") and
its scoring, against a float64 reference written here: L = −(1/B) Σᵢ log Sᵢ,yᵢ with log S
from a log-sum-exp around the row max, and dZ = (S − Y)/B. Far logits (±1000) and every
block boundary, as tests/test_fused.py does for the squared loss."""

import numpy as np
import pytest
from test_fused import far_logits_batch, moderate_batch, reference_softmax

from mnist_cli.fused import BLOCK_ROWS, Work, fused_sgd_step, to_theta
from mnist_cli.metrics import evaluate
from mnist_cli.models import D, Params, one_hot
from mnist_cli.network import Network

LR = 0.5


def reference_ce_step(
    params: Params, images: np.ndarray, labels: np.ndarray, lr: float
):
    """(loss, W after, b after) of one cross-entropy SGD step in float64."""
    W, b = params.W.astype(np.float64), params.b.astype(np.float64)
    X = images.astype(np.float64) / 255  # (B, D)
    Y = one_hot(labels, np.float64)  # (B, K)
    Z = X @ W.T + b  # (B, K)
    m = Z.max(axis=1, keepdims=True)
    log_S = Z - m - np.log(np.exp(Z - m).sum(axis=1, keepdims=True))  # (B, K)
    loss = float(-np.sum(Y * log_S) / len(Y))
    dZ = (reference_softmax(Z) - Y) / len(Y)  # (B, K)
    return loss, W - lr * dZ.T @ X, b - lr * dZ.sum(axis=0)


def ce_step(params: Params, images, labels, lr, work=None):
    """One fused cross-entropy step: (loss, ΔW, Δb), the step read from Θ in float64."""
    B = len(images)
    theta = to_theta(params)
    before = theta.astype(np.float64)
    U1 = np.hstack([images, np.full((B, 1), 255)]).astype(np.float32)  # Ũ
    Yt = np.ascontiguousarray(one_hot(labels).T)  # (K, B)
    work = work or Work.for_batch(B, D + 1)
    loss = fused_sgd_step("softmax", theta, U1, Yt, lr, work, "cross-entropy")
    step = 255 * (theta.astype(np.float64) - before)
    return loss, step[:, :D], step[:, D]


def assert_matches(B, params, images, labels, got):
    loss, dW, db = got
    ref_loss, ref_W, ref_b = reference_ce_step(params, images, labels, LR)
    assert np.isfinite(loss) and loss == pytest.approx(ref_loss, rel=1e-4), (
        f"B {B}: cross-entropy {loss}, float64 reference {ref_loss}"
    )
    for name, step, expected in (
        ("W", dW, ref_W - params.W),
        ("b", db, ref_b - params.b),
    ):
        assert np.isfinite(step).all(), f"B {B}: the {name} step is not finite"
        error = np.max(np.abs(step - expected)) / np.max(np.abs(expected))
        assert error < 1e-2, f"B {B}: the {name} step is off by {error:.1e} of its size"


@pytest.mark.parametrize("B", [1, BLOCK_ROWS, BLOCK_ROWS + 1, 250])
def test_cross_entropy_step_is_the_float64_step(B):
    images, labels, params = moderate_batch(B)
    assert_matches(B, params, images, labels, ce_step(params, images, labels, LR))


@pytest.mark.parametrize("shift", [1000.0, -1000.0])
@pytest.mark.parametrize("B", [60, 250])
def test_cross_entropy_step_on_far_logits_is_the_float64_step(B, shift):
    """Rows whose logits spread over ±300: S of the true class underflows to 0 in float32,
    and only log-sum-exp keeps −log S finite (a log(S) would give inf)."""
    images, labels, params = far_logits_batch(B, shift)
    assert_matches(B, params, images, labels, ce_step(params, images, labels, LR))


def test_cross_entropy_step_reuses_its_arrays():
    first_images, first_labels, params = moderate_batch(250, seed=4)
    images, labels, _ = moderate_batch(250, seed=5)
    work = Work.for_batch(250, D + 1)
    ce_step(params, first_images, first_labels, LR, work)
    reused = ce_step(params, images, labels, LR, work)
    fresh = ce_step(params, images, labels, LR)
    for name, a, b in zip(("loss", "W", "b"), reused, fresh):
        np.testing.assert_array_equal(a, b, f"{name} differs")


def test_cross_entropy_is_refused_for_linear():
    images, labels, params = moderate_batch(4)
    U1 = np.hstack([images, np.full((4, 1), 255)]).astype(np.float32)
    Yt = np.ascontiguousarray(one_hot(labels).T)
    with pytest.raises(ValueError, match="needs a softmax output"):
        fused_sgd_step(
            "linear",
            to_theta(params),
            U1,
            Yt,
            LR,
            Work.for_batch(4, D + 1),
            "cross-entropy",
        )


@pytest.mark.parametrize("shift", [1000.0, -1000.0])
def test_scoring_cross_entropy_gives_the_float64_loss(shift):
    images, labels, params = far_logits_batch(300, shift)
    expected, *_ = reference_ce_step(params, images, labels, 0.0)
    net = Network.one_layer("softmax", params)
    result = evaluate(net, images, labels, "cross-entropy", chunk=128)
    assert result.loss == pytest.approx(expected, rel=1e-4), (
        f"scored cross-entropy {result.loss}, float64 reference {expected}"
    )
