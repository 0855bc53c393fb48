"""Checking the analytic gradients against central finite differences, in float64.

The derivative of the loss along a direction V of parameter space is, by definition,

    ∂L/∂V = lim (L(θ + hV) − L(θ − hV)) / 2h   as h → 0

and the analytic gradient claims it equals ⟨∂L/∂θ, V⟩. Every model is a tuple of layers
(W_l, b_l), l = 1…L (L = 1 for linear and softmax), and `check_gradients` compares the two, layer
by layer, for three blocks: coordinates of b_l (every one for the output layer, V = eₖ), a random
subset of the coordinates of W_l, and one random unit direction over all of W_l at once (which
catches a wrong entry anywhere in W_l, even where no coordinate was drawn). The loss always
comes from the forward pass alone; the gradient from a function the caller can replace, so a test
can hand in a deliberately wrong one.

What is checked (a Subject): a model and loss; the gradient is the network's own backward pass
(nn/network.py: every layer's backward, from losses.grad_logits down).

Numerical care. The central difference errs by h²|L'''|/6 (truncation) plus about ε|L|/h
(each loss is rounded to ε|L|, ε = 2.2e-16, and the difference is divided by 2h). The sum is
smallest near h = ε^(1/3) ≈ 6e-6, where the rounding part is ≈ 4e-11·|L|. So a derivative
much smaller than that cannot be measured at all, and one of 1e-5 only to ≈ 4e-6·|L| relative:
a relative error is therefore taken against max(|a|, |n|, 1 % of |L|), and derivatives below
1 % of the loss are judged by their absolute error (rounding alone then stays below ≈ 4e-9).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import assemble, cnn_layers, from_dense
from mnist_cli.nn.layers import Activation, Params
from mnist_cli.nn.losses import Loss
from mnist_cli.nn.network import Network

Layers = tuple[Params, ...]  # (W_l, b_l) of each dense layer, l = 1…L

EPS = np.finfo(np.float64).eps  # 2.2e-16, the spacing of float64 numbers near 1
H = EPS ** (1 / 3)  # ≈ 6.1e-6: balances truncation (∝ h²) against rounding (∝ ε/h)
FLOOR = 1e-2  # derivatives below FLOOR·|L| are compared by absolute error (see above)


@dataclass(frozen=True)
class Subject:
    """A model and loss whose gradient is checked."""

    model: str  # "linear", "softmax", "mlp" or "cnn"
    loss: Loss = "squared"
    hidden: tuple[int, ...] = ()  # the mlp's and cnn's hidden widths; () for the others
    activation: Activation = "relu"  # the mlp's hidden units
    channels: tuple[int, ...] = ()  # the cnn's convolutions' channels
    kernel: int = 5  # the cnn's kernel size

    @property
    def sizes(self) -> tuple[int, ...]:
        """(D, n₁, …, K): every dense layer's input and output size (an mlp's)."""
        return (D, *self.hidden, K)


@dataclass(frozen=True)
class BlockCheck:
    """How one block of the gradient compares with central differences."""

    block: str  # e.g. "W1 (32, 784)", "W1·V", "b2 (10,)"
    what: str  # which derivatives were compared, e.g. "100 random coordinates"
    checked: int  # how many derivatives were compared
    max_rel_error: float  # the largest relative error among them
    worst: str  # where it occurred, e.g. "W1[3, 407]"
    analytic: float  # the analytic derivative there
    numeric: float  # the central difference there


GradientFn = Callable[[Subject, Layers, np.ndarray, np.ndarray], Layers]


def network_of(subject: Subject, layers: Layers) -> Network:
    """The network of the subject's model with these layers' (W, b)."""
    if subject.model == "cnn":
        shape = cnn_layers(subject.channels, subject.kernel, subject.hidden)
        return assemble(shape, "softmax", layers)
    return from_dense(
        subject.model, layers, subject.activation if subject.hidden else None
    )


def forward_loss(
    subject: Subject, layers: Layers, X: np.ndarray, Y: np.ndarray
) -> float:
    """ℒ of the batch X (N, D), Y (N, K) from the forward pass alone."""
    network = network_of(subject, layers)
    return network.loss(subject.loss, network.logits(X), Y)


def reference_gradient(
    subject: Subject, layers: Layers, X: np.ndarray, Y: np.ndarray
) -> Layers:
    """(∂ℒ/∂W_l, ∂ℒ/∂b_l) for every layer, by the network's backward pass."""
    grads = network_of(subject, layers).loss_and_grads(subject.loss, X, Y)[1]
    return tuple(Params(*g) for g in grads if g)


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


def unit(params: Params, name: str, index: tuple[int, ...]) -> Params:
    """The direction eᵢ: 1 at `index` of params.W (name "W") or params.b ("b"), 0 elsewhere."""
    V = Params(W=np.zeros_like(params.W), b=np.zeros_like(params.b))
    getattr(V, name)[index] = 1.0
    return V


def compare(
    block: str,
    what: str,
    loss: Callable[[Params], float],
    params: Params,
    entries: Iterable[tuple[str, float, Params]],
    h: float,
    tiny: float,
) -> BlockCheck:
    """The block's worst relative error over `entries` (where, a = ⟨∂L/∂θ, V⟩, V), each V's
    central difference taken as it comes (a direction is the size of a whole layer)."""
    where, analytic, numeric = [], [], []
    for label, a, V in entries:
        where.append(label)
        analytic.append(float(a))
        numeric.append(central_difference(loss, params, V, h))
    errors = relative_error(analytic, numeric, tiny)  # (checked,)
    i = int(np.argmax(errors))
    return BlockCheck(
        block, what, len(errors), float(errors[i]), where[i], analytic[i], numeric[i]
    )


def layer_checks(
    name: str,
    loss: Callable[[Params], float],
    p: Params,
    g: Params,
    columns: np.ndarray,
    bias_coords: int,
    rng: np.random.Generator,
    *,
    coords: int,
    h: float,
    tiny: float,
) -> list[BlockCheck]:
    """The blocks W_l, W_l·V and b_l of one layer: `coords` coordinates of W_l drawn among
    `columns`, one unit direction V over W_l, `bias_coords` coordinates of b_l."""
    n_out = p.W.shape[0]  # a dense W (n_out, n_in); a convolution's (C_out, C_in, k, k)
    flat = rng.choice(n_out * len(columns), min(coords, n_out * len(columns)), False)
    W_at = [
        (k, *np.unravel_index(int(columns[j]), p.W.shape[1:]))
        for k, j in (divmod(i, len(columns)) for i in sorted(flat))
    ]
    every = bias_coords >= n_out
    b_at = range(n_out) if every else sorted(rng.choice(n_out, bias_coords, False))
    V = rng.standard_normal(p.W.shape)
    V /= np.linalg.norm(V)  # a unit direction: the step is h in parameter space
    W, b = f"W{name}", f"b{name}"
    return [
        compare(
            f"{W} {p.W.shape}", f"{len(W_at)} random coordinates", loss, p,
            ((f"{W}[{', '.join(map(str, at))}]", g.W[at], unit(p, "W", at)) for at in W_at),
            h, tiny,
        ),
        compare(
            f"{W}·V", "1 random direction", loss, p,
            [(f"⟨∂L/∂{W}, V⟩", np.sum(g.W * V), Params(W=V, b=np.zeros_like(p.b)))],
            h, tiny,
        ),
        compare(
            f"{b} ({n_out},)",
            "every coordinate" if every else f"{len(b_at)} random coordinates",
            loss, p, ((f"{b}[{k}]", g.b[k], unit(p, "b", (k,))) for k in b_at), h, tiny,
        ),
    ]  # fmt: skip


def check_gradients(
    subject: Subject,
    X: np.ndarray,
    Y: np.ndarray,
    layers: Layers,
    rng: np.random.Generator,
    *,
    coords: int = 100,
    h: float = H,
    gradient: GradientFn = reference_gradient,
) -> list[BlockCheck]:
    """Compare `gradient` with central differences of the batch loss at `layers`.

    X (N, D) and Y (N, K) one-hot, both float64. For each layer l = 1…L, in order: `coords`
    coordinates of W_l drawn from `rng` (for W₁ among the pixels lit in at least one sample:
    for the others ∂L/∂W₁ₖⱼ is exactly 0 on both sides, which tests nothing; the random
    direction covers them), one random direction over W_l, and the coordinates of b_l: every
    one for the output layer, `coords` at most below it. Blocks are named W, b for one layer,
    W1, b1, … for several.
    """
    grads = gradient(subject, layers, X, Y)
    tiny = FLOOR * abs(forward_loss(subject, layers, X, Y)) + np.finfo(np.float64).tiny
    lit = np.flatnonzero((X != 0).any(axis=0))  # pixels non-zero in some sample
    checks: list[BlockCheck] = []
    for l, (p, g) in enumerate(zip(layers, grads)):

        def loss(q: Params, l: int = l) -> float:  # L with layer l replaced by q
            return forward_loss(subject, (*layers[:l], q, *layers[l + 1 :]), X, Y)

        top = l == len(layers) - 1
        checks += layer_checks(
            str(l + 1) if len(layers) > 1 else "",
            loss, p, g,
            lit if l == 0 and p.W.ndim == 2 else np.arange(p.W[0].size),
            p.b.size if top else coords,
            rng, coords=coords, h=h, tiny=tiny,
        )  # fmt: skip
    return checks
