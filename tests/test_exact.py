"""The closed-form solver: its answer solves the normal equations, and it is least squares."""

import numpy as np
import pytest

from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import one_layer
from mnist_cli.nn.exact import least_squares
from mnist_cli.nn.layers import Params, inputs
from mnist_cli.nn.losses import one_hot

N = 1200  # more samples than the D + 1 = 785 unknowns per class: a unique optimum


@pytest.fixture(scope="module")
def problem():
    """Random uint8 images (N, D) with labels that depend on them (so there is a signal)."""
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (N, D), dtype=np.uint8)
    labels = (images[:, :K].argmax(axis=1) + rng.integers(0, 2, N)) % K
    return images, labels.astype(np.uint8)


@pytest.fixture(scope="module")
def solution(problem) -> Params:
    """least_squares(problem) with l2 = 0, solved once for the module."""
    return least_squares(*problem)


def gradients64(params: Params, images, labels):
    """∂L/∂W, ∂L/∂b of the mean squared loss, all in float64 (the network's backward pass)."""
    p64 = Params(W=params.W.astype(np.float64), b=params.b.astype(np.float64))
    X, Y = inputs(images, np.float64), one_hot(labels, np.float64)
    loss, (grads,) = one_layer("linear", p64).loss_and_grads("squared", X, Y)
    return loss, Params(*grads)


def design(images):
    """X̃ = (pixels / 255, 1), (N, D+1) float64."""
    return np.hstack([inputs(images, np.float64), np.ones((len(images), 1))])


def test_the_solution_is_where_the_gradient_vanishes(problem, solution):
    images, labels = problem
    params = solution
    assert params.W.shape == (K, D) and params.b.shape == (K,)
    assert params.W.dtype == np.float32 and params.b.dtype == np.float32
    _, grads = gradients64(params, images, labels)
    _, at_zero = gradients64(Params(np.zeros((K, D)), np.zeros(K)), images, labels)
    size = max(np.abs(grads.W).max(), np.abs(grads.b).max())
    start = np.abs(at_zero.W).max()
    # float32 rounding of β leaves a residue of order 1e-7 relative to the start's gradient
    assert size < 1e-5 * start, (
        f"gradient at the solution {size:.2e}, at 0: {start:.2e}"
    )


def test_the_solution_is_numpys_minimum_norm_least_squares(problem):
    """Pixels that are 0 in every image (MNIST's corners) make X̃ᵀX̃ singular: their weights
    are free, and the minimum-norm solution, np.linalg.lstsq's on X̃ itself, sets them to 0.
    (With full rank the optimum is unique: the test above pins it.)"""
    images, labels = problem
    images = images.copy()
    dead = np.arange(D - 100, D)  # the last 100 pixels are never lit
    images[:, dead] = 0
    params = least_squares(images, labels)
    assert np.all(np.isfinite(params.W)), "singular system gave NaN or inf weights"
    dead_size = np.abs(params.W[:, dead]).max()
    assert dead_size < 1e-6, f"weights of always-black pixels: max {dead_size:.2e}"
    beta, *_ = np.linalg.lstsq(design(images), one_hot(labels, np.float64), rcond=None)
    np.testing.assert_allclose(params.W, beta[:D].T, atol=2e-5, rtol=1e-4)


def test_ridge_solves_the_penalised_normal_equations(problem):
    """With l2 > 0 the objective is Σ‖ŷ − y‖² + l2‖W‖², i.e. N·L_mean + l2‖W‖²: its gradient
    N ∂L/∂W + 2 l2 W vanishes, and ∂L/∂b alone vanishes (the bias is not penalised)."""
    images, labels = problem
    l2 = 50.0
    params = least_squares(images, labels, l2=l2)
    _, grads = gradients64(params, images, labels)
    residual = np.abs(N * grads.W + 2 * l2 * params.W.astype(np.float64)).max()
    assert residual < 1e-3, f"penalised gradient at the ridge solution: {residual:.2e}"
    assert np.abs(N * grads.b).max() < 1e-3, f"N ∂L/∂b = {N * grads.b}"


def test_larger_l2_shrinks_the_weights(problem, solution):
    images, labels = problem
    norms = [float(np.linalg.norm(solution.W))] + [
        float(np.linalg.norm(least_squares(images, labels, l2=l2).W))
        for l2 in (1.0, 100.0, 10_000.0)
    ]
    assert norms == sorted(norms, reverse=True) and norms[-1] < norms[0] / 2, (
        f"expected ‖W‖ to decrease with l2, got {norms}"
    )


def test_negative_l2_is_refused(problem):
    with pytest.raises(ValueError, match="l2 must be ≥ 0"):
        least_squares(*problem, l2=-1.0)
