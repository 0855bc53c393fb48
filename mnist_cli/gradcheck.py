"""Checking the analytic gradient against central finite differences, in float64.

The derivative of the loss along a direction V of parameter space is, by definition,

    ∂L/∂V = lim (L(θ + hV) − L(θ − hV)) / 2h   as h → 0

and the analytic gradient claims it equals ⟨∂L/∂θ, V⟩. `check_gradients` compares the two for
three blocks: every coordinate of b (V = eₖ), a random subset of the coordinates of W, and one
random unit direction over all of W at once (which catches a wrong entry anywhere in W, even
where no coordinate was drawn). The loss itself always comes from models.py; the gradient comes
from a function the caller can replace, so a test can hand in a deliberately wrong one.

Numerical care. The central difference errs by h²|L'''|/6 (truncation) plus about ε|L|/h
(each loss is rounded to ε|L|, ε = 2.2e-16, and the difference is divided by 2h). The sum is
smallest near h = ε^(1/3) ≈ 6e-6, where the rounding part is ≈ 4e-11·|L|. So a derivative
much smaller than that cannot be measured at all, and one of 1e-5 only to ≈ 4e-6·|L| relative:
a relative error is therefore taken against max(|a|, |n|, 1 % of |L|), and derivatives below
1 % of the loss are judged by their absolute error (rounding alone then stays below ≈ 4e-9).
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .models import (
    D,
    K,
    ModelKind,
    Params,
    forward,
    inputs,
    loss_and_gradients,
    one_hot,
    squared_loss,
)

GradientFn = Callable[[ModelKind, Params, np.ndarray, np.ndarray], tuple[float, Params]]

EPS = np.finfo(np.float64).eps  # 2.2e-16, the spacing of float64 numbers near 1
H = EPS ** (1 / 3)  # ≈ 6.1e-6: balances truncation (∝ h²) against rounding (∝ ε/h)
FLOOR = 1e-2  # derivatives below FLOOR·|L| are compared by absolute error (see above)
W_SCALE, B_SCALE = 0.1, 0.5  # random weights: logits of std ≈ 1 on MNIST (‖x‖ ≈ 9)


@dataclass(frozen=True)
class BlockCheck:
    """How one block of the gradient compares with central differences."""

    block: str  # "∂L/∂b", "∂L/∂W" or "∂L/∂W·V"
    what: str  # which derivatives were compared, e.g. "100 random coordinates"
    checked: int  # how many derivatives were compared
    max_rel_error: float  # the largest relative error among them
    worst: str  # where it occurred, e.g. "W[3, 407]"
    analytic: float  # the analytic derivative there
    numeric: float  # the central difference there


def random_params(rng: np.random.Generator) -> Params:
    """W ~ N(0, 0.1²) (K, D) and b ~ N(0, 0.5²) (K,), float64.

    Sized so that softmax is neither saturated (S near one-hot: every derivative vanishes) nor
    uniform (S ≈ 1/K: then ⟨g, S⟩ ≈ 0 for every sample, and a dropped −⟨g, S⟩ term would go
    unnoticed). MNIST inputs have ‖x‖ ≈ 9, so the logits Z = XWᵀ + b have a spread of about 1.
    """
    W = W_SCALE * rng.standard_normal((K, D))  # (K, D)
    b = B_SCALE * rng.standard_normal(K)  # (K,)
    return Params(W=W, b=b)


def sample_batch(
    images: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """X (n, D) and one-hot Y (n, K), both float64, of n distinct samples drawn from `rng`.
    float64 throughout: in float32 the rounding error of each loss (≈ 1e-7·|L|) divided by 2h
    would swamp the derivative."""
    idx = np.sort(rng.choice(len(labels), size=n, replace=False))  # (n,)
    return inputs(images[idx], np.float64), one_hot(labels[idx], np.float64)


def relative_error(a: np.ndarray, n: np.ndarray, tiny: float) -> np.ndarray:
    """|a − n| / max(|a|, |n|, tiny), elementwise: 0 when they agree, 1 or more when one is
    zero or they have opposite signs; `tiny` keeps 0/0 and noise-sized derivatives finite."""
    a, n = np.asarray(a, np.float64), np.asarray(n, np.float64)
    return np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), tiny)


def central_difference(
    loss: Callable[[Params], float], params: Params, direction: Params, h: float = H
) -> float:
    """(L(θ + hV) − L(θ − hV)) / 2h for V = direction: the derivative of L along V,
    with an error of O(h²) (the h¹ terms of the two Taylor expansions cancel)."""
    plus = Params(W=params.W + h * direction.W, b=params.b + h * direction.b)
    minus = Params(W=params.W - h * direction.W, b=params.b - h * direction.b)
    return (loss(plus) - loss(minus)) / (2 * h)


def check_gradients(
    kind: ModelKind,
    X: np.ndarray,
    Y: np.ndarray,
    params: Params,
    rng: np.random.Generator,
    *,
    coords: int = 100,
    h: float = H,
    gradient: GradientFn = loss_and_gradients,
) -> list[BlockCheck]:
    """Compare `gradient` with central differences of the batch loss at `params`.

    X (N, D) and Y (N, K) one-hot, both float64. The `coords` coordinates of W are drawn from
    `rng` among the pixels lit in at least one sample (for the others ∂L/∂Wₖⱼ is exactly 0 on
    both sides, which tests nothing; the random direction covers them). Returns the blocks
    ∂L/∂b, ∂L/∂W and ∂L/∂W·V, each with its largest relative error and where it occurred.
    """

    def loss(p: Params) -> float:
        return squared_loss(forward(kind, p, X), Y)

    _, grads = gradient(kind, params, X, Y)
    tiny = FLOOR * abs(loss(params)) + np.finfo(np.float64).tiny
    zero_W, zero_b = np.zeros((K, D)), np.zeros(K)

    def unit_b(k: int) -> Params:
        e = zero_b.copy()
        e[k] = 1.0
        return Params(W=zero_W, b=e)

    def unit_W(k: int, j: int) -> Params:
        e = zero_W.copy()
        e[k, j] = 1.0
        return Params(W=e, b=zero_b)

    def block(name, what, labels, analytic, directions) -> BlockCheck:
        numeric = np.array([central_difference(loss, params, v, h) for v in directions])
        errors = relative_error(analytic, numeric, tiny)  # (checked,)
        i = int(np.argmax(errors))
        return BlockCheck(
            name,
            what,
            len(errors),
            float(errors[i]),
            labels[i],
            float(analytic[i]),
            float(numeric[i]),
        )

    lit = np.flatnonzero((X != 0).any(axis=0))  # pixels non-zero in some sample
    pairs = [(k, j) for k in range(K) for j in lit]
    chosen = rng.choice(len(pairs), size=min(coords, len(pairs)), replace=False)
    W_coords = [pairs[i] for i in np.sort(chosen)]
    V = rng.standard_normal((K, D))
    V /= np.linalg.norm(V)  # (K, D), a unit direction: the step is h in parameter space

    return [
        block(
            "∂L/∂b",
            "every coordinate",
            [f"b[{k}]" for k in range(K)],
            grads.b,
            (unit_b(k) for k in range(K)),
        ),
        block(
            "∂L/∂W",
            f"{len(W_coords)} random coordinates",
            [f"W[{k}, {j}]" for k, j in W_coords],
            np.array([grads.W[k, j] for k, j in W_coords]),
            (unit_W(k, j) for k, j in W_coords),  # one at a time: each is (K, D)
        ),
        block(
            "∂L/∂W·V",
            "1 random direction",
            ["⟨∂L/∂W, V⟩"],
            np.array([np.sum(grads.W * V)]),
            [Params(W=V, b=zero_b)],
        ),
    ]
