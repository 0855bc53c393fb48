"""The analytic gradients, checked against their definitions (float64 throughout)."""

import numpy as np
import pytest

from mnist_cli.models import (
    MODEL_KINDS,
    D,
    K,
    Params,
    forward,
    grad_logits,
    init_params,
    inputs,
    logits,
    loss_and_gradients,
    one_hot,
    sgd_step,
    softmax,
    softmax_backward,
    squared_loss,
)


def random_batch(rng, B=8):
    X = rng.random((B, D))  # pixels / 255 lie in [0, 1]
    Y = one_hot(rng.integers(0, K, B), np.float64)
    params = Params(
        W=0.05 * rng.standard_normal((K, D)), b=0.1 * rng.standard_normal(K)
    )
    return params, X, Y


def loss_at(kind, params, X, Y):
    return squared_loss(forward(kind, params, X), Y)


def rel_error(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-12)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_gradient_matches_central_differences(kind):
    rng = np.random.default_rng(0)
    params, X, Y = random_batch(rng)
    _, grads = loss_and_gradients(kind, params, X, Y)
    h = 1e-6
    coords = [(k, j) for k in range(K) for j in rng.choice(D, 6, replace=False)]
    numeric_W = []
    for k, j in coords:
        Wp, Wm = params.W.copy(), params.W.copy()
        Wp[k, j] += h
        Wm[k, j] -= h
        numeric_W.append(
            (
                loss_at(kind, Params(Wp, params.b), X, Y)
                - loss_at(kind, Params(Wm, params.b), X, Y)
            )
            / (2 * h)
        )
    analytic_W = np.array([grads.W[k, j] for k, j in coords])
    numeric_b = []
    for k in range(K):
        bp, bm = params.b.copy(), params.b.copy()
        bp[k] += h
        bm[k] -= h
        numeric_b.append(
            (
                loss_at(kind, Params(params.W, bp), X, Y)
                - loss_at(kind, Params(params.W, bm), X, Y)
            )
            / (2 * h)
        )
    err_W = rel_error(analytic_W, np.array(numeric_W))
    err_b = rel_error(grads.b, np.array(numeric_b))
    assert err_W < 1e-6, f"{kind}: dL/dW relative error {err_W:.2e}, expected < 1e-6"
    assert err_b < 1e-6, f"{kind}: dL/db relative error {err_b:.2e}, expected < 1e-6"


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_batched_gradient_is_mean_of_per_sample_outer_products(kind):
    """The per-sample `np.outer` loop, grad = np.outer(2*(y_hat - y), x) per sample (through the softmax
    Jacobian for softmax), averaged over the batch, equals the one-matrix-product form."""
    rng = np.random.default_rng(1)
    params, X, Y = random_batch(rng, B=5)
    _, grads = loss_and_gradients(kind, params, X, Y)
    loop_W, loop_b = np.zeros((K, D)), np.zeros(K)
    for x, y in zip(X, Y):
        z = params.W @ x + params.b
        if kind == "linear":
            y_hat, dz = z, 2 * (z - y)
        else:
            s = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            J = np.diag(s) - np.outer(s, s)
            y_hat, dz = s, J @ (2 * (s - y))
        loop_W += np.outer(dz, x) / len(X)
        loop_b += dz / len(X)
        assert y_hat.shape == (K,)
    np.testing.assert_allclose(grads.W, loop_W, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads.b, loop_b, rtol=1e-10, atol=1e-14)


def test_softmax_jacobian_matches_its_definition():
    """∂Sᵢ/∂zⱼ = Sᵢ(1 − Sᵢ) for i = j and −SᵢSⱼ for i ≠ j, by central differences; and
    softmax_backward applies that Jacobian to a vector without building it."""
    rng = np.random.default_rng(2)
    z = rng.standard_normal(K)
    s = softmax(z[None])[0]
    h = 1e-6
    numeric = np.empty((K, K))
    for j in range(K):
        e = np.zeros(K)
        e[j] = h
        numeric[:, j] = (softmax((z + e)[None])[0] - softmax((z - e)[None])[0]) / (
            2 * h
        )
    expected = np.where(np.eye(K, dtype=bool), s * (1 - s), -np.outer(s, s))
    np.testing.assert_allclose(numeric, expected, atol=1e-9)
    g = rng.standard_normal(K)
    np.testing.assert_allclose(
        softmax_backward(s[None], g[None])[0], expected @ g, atol=1e-15
    )


def test_softmax_is_stable_and_normalised():
    Z = np.array([[1000.0, 1000.0, -1000.0] + [0.0] * 7, [-1e4] * 10])
    S = softmax(Z)
    assert np.isfinite(S).all(), f"softmax overflowed: {S}"
    np.testing.assert_allclose(S.sum(axis=1), 1.0)
    np.testing.assert_allclose(S[0, :2], 0.5)
    np.testing.assert_allclose(S[1], 0.1)


def test_loss_is_batch_mean_of_squared_error():
    Y_hat = np.array([[0.5, 0.5], [1.0, 0.0]])
    Y = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert squared_loss(Y_hat, Y) == pytest.approx(0.25)  # (0.25 + 0.25 + 0) / 2


def test_linear_grad_logits_is_two_residual_over_batch():
    Y_hat = np.array([[0.5, 0.5], [1.0, 0.0]])
    Y = np.array([[1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(
        grad_logits("linear", Y_hat, Y), [[-0.5, 0.5], [0.0, 0.0]]
    )


def test_logits_orientation():
    params = Params(
        W=np.arange(K * D, dtype=float).reshape(K, D), b=np.arange(K, dtype=float)
    )
    x = np.zeros(D)
    x[3] = 1.0
    np.testing.assert_array_equal(logits(params, x[None])[0], params.W[:, 3] + params.b)


def test_sgd_step_moves_against_the_gradient_and_lowers_the_loss():
    rng = np.random.default_rng(3)
    params, X, Y = random_batch(rng, B=32)
    for kind in MODEL_KINDS:
        before, grads = loss_and_gradients(kind, params, X, Y)
        after = loss_at(kind, sgd_step(params, grads, 1e-3), X, Y)
        assert after < before, f"{kind}: loss {before} -> {after} after a small step"


def test_init_params():
    rng = np.random.default_rng(0)
    zeros = init_params("zeros", rng)
    assert zeros.W.shape == (K, D) and zeros.W.dtype == np.float32 and not zeros.W.any()
    normal = init_params("normal", np.random.default_rng(5))
    again = init_params("normal", np.random.default_rng(5))
    np.testing.assert_array_equal(normal.W, again.W)
    assert 0.005 < normal.W.std() < 0.015, f"std {normal.W.std()}, expected about 0.01"
    with pytest.raises(ValueError, match="unknown init"):
        init_params("ones", rng)


def test_inputs_scale_uint8_to_unit_float32():
    X = inputs(np.array([[0, 128, 255]], dtype=np.uint8))
    assert X.dtype == np.float32
    np.testing.assert_allclose(X, [[0.0, 128 / 255, 1.0]], rtol=1e-7)
