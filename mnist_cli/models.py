"""The two models, their squared loss, and its analytic gradient.

Notation, used in every docstring and shape comment of the package:

    B   batch size              D = 784 inputs (28 x 28 pixels)     K = 10 classes
    X   (B, D) inputs, pixels / 255, one sample per row
    W   (K, D) weights, so that one sample's logits are z = Wx      b (K,) bias
    Z   (B, K) logits,  Z = X Wᵀ + b          (row i is zᵢ = W xᵢ + b)
    Ŷ   (B, K) predictions:  linear  Ŷ = Z;   softmax  Ŷ = S = softmax(Z), row by row
    Y   (B, K) one-hot targets

The loss of a batch is the mean over its B samples of the squared error ‖ŷ − y‖²:

    L = (1/B) Σᵢ Σₖ (Ŷᵢₖ − Yᵢₖ)²

Every gradient below is of that batch mean, so each carries the factor 1/B once, in ∂L/∂Ŷ.
Both models end in the same parameter gradient (the chain rule through Z = X Wᵀ + b):

    ∂L/∂W = (∂L/∂Z)ᵀ X     (K, D) — the sum over the batch of the outer products (∂L/∂zᵢ) xᵢᵀ
    ∂L/∂b = Σᵢ ∂L/∂zᵢ      (K,)

and only ∂L/∂Z differs: the identity for linear, the softmax Jacobian diag(S) − SSᵀ for softmax.
The functions are pure (they write only into `out=` arrays given to them) and work in any float
dtype (training uses float32, gradient checks float64).

Training calls the same functions with two speed-ups that change no equation (see `Workspace`):
`out=` arrays preallocated once, so a step allocates only small temporaries, and
`x_scale`, which lets X be the raw pixels 0..255 with the 1/255 applied to the small products:
Z = (X_u8 Wᵀ)/255 + b, (B, K), and ∂L/∂W = (∂L/∂Zᵀ X_u8)/255, (K, D).
Every formula here is derived step by step in docs/derivations.md, and checked numerically by
gradcheck.py (mnist-gradcheck).
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

ModelKind = Literal["linear", "softmax"]
MODEL_KINDS: tuple[ModelKind, ...] = ("linear", "softmax")
INITS = ("zeros", "normal")
D, K = 784, 10


@dataclass(frozen=True)
class Params:
    """The parameters of either model: W (K, D) and b (K,)."""

    W: np.ndarray  # (K, D)
    b: np.ndarray  # (K,)


@dataclass(frozen=True)
class Gradients:
    """∂L/∂W (K, D) and ∂L/∂b (K,), same shapes as the parameters they update."""

    W: np.ndarray  # (K, D)
    b: np.ndarray  # (K,)


@dataclass(frozen=True)
class Workspace:
    """The arrays a training step writes into, allocated once per batch size B.

    Z and G are (B, K) but laid out column-major (as the transpose of a (K, B) array): the
    per-row reductions over the K = 10 entries of a row (softmax's max and sum, ⟨g, s⟩) then run
    as K vectorised passes over B numbers instead of B tiny ones, several times faster at B = 100.
    """

    Z: np.ndarray  # (B, K) the logits Z, then overwritten by Ŷ
    G: np.ndarray  # (B, K) ∂L/∂Ŷ, then overwritten by ∂L/∂Z
    grads: Gradients  # ∂L/∂W (K, D) and ∂L/∂b (K,)

    @classmethod
    def for_batch(cls, B: int, dtype: np.dtype = np.float32) -> "Workspace":
        return cls(
            Z=np.empty((K, B), dtype).T,  # (B, K), column-major
            G=np.empty((K, B), dtype).T,  # (B, K), column-major
            grads=Gradients(W=np.empty((K, D), dtype), b=np.empty(K, dtype)),
        )


def init_params(
    init: str, rng: np.random.Generator, dtype: np.dtype = np.float32
) -> Params:
    """Zeros (the default: the squared loss is convex for linear, and softmax starts uniform),
    or small normal weights N(0, 0.01²) drawn from `rng`; the bias starts at zero either way."""
    if init == "zeros":
        W = np.zeros((K, D), dtype)
    elif init == "normal":
        W = (0.01 * rng.standard_normal((K, D))).astype(dtype)
    else:
        raise ValueError(f"unknown init {init!r}; expected one of {INITS}")
    return Params(W=W, b=np.zeros(K, dtype))


def logits(
    params: Params,
    X: np.ndarray,
    *,
    x_scale: float = 1.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Z = X Wᵀ + b, (B, D) @ (D, K) + (K,) -> (B, K): one matrix product for the whole batch.

    The inputs are x_scale · X: with raw pixels X_u8 and x_scale = 1/255,
    Z = (X_u8 Wᵀ)/255 + b, which scales B × K numbers instead of B × D.
    `out` (B, K), if given, receives Z.
    """
    Z = np.matmul(X, params.W.T, out=out)  # (B, K)
    if x_scale != 1.0:
        Z *= x_scale  # (B, K)
    Z += params.b  # (B, K)
    return Z


def softmax(Z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """S = softmax(Z) row by row: Sᵢₖ = exp(Zᵢₖ) / Σⱼ exp(Zᵢⱼ).  `out` may be Z itself.

    The row max is subtracted first: softmax is unchanged by a shift of its row, and the shift
    keeps exp from overflowing (every exponent is ≤ 0, and the largest term is exactly 1).
    """
    E = np.subtract(Z, Z.max(axis=1, keepdims=True), out=out)  # (B, K), entries ≤ 0
    np.exp(E, out=E)  # (B, K), entries in (0, 1]
    E /= E.sum(axis=1, keepdims=True)  # (B, K), rows sum to 1
    return E


def predict(
    kind: ModelKind, Z: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Ŷ from the logits: Z itself for linear, softmax(Z) for softmax.  (B, K)
    For softmax, `out` (which may be Z itself) receives S."""
    return softmax(Z, out=out) if kind == "softmax" else Z


def forward(kind: ModelKind, params: Params, X: np.ndarray) -> np.ndarray:
    """Ŷ for a batch X (B, D): the model's output, (B, K)."""
    return predict(kind, logits(params, X))


def squared_loss(Y_hat: np.ndarray, Y: np.ndarray) -> float:
    """L = (1/B) Σᵢ ‖ŷᵢ − yᵢ‖²: the batch mean of the per-sample squared error."""
    R = (Y_hat - Y).ravel(order="K")  # (B·K,) every residual, in memory order (no copy)
    return float(R @ R) / len(Y)


def loss_grad_output(
    Y_hat: np.ndarray, Y: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """G = ∂L/∂Ŷ = (2/B)(Ŷ − Y), (B, K): the derivative of ‖ŷ − y‖² is 2(ŷ − y), per sample,
    and the batch mean puts 1/B in front."""
    G = np.subtract(Y_hat, Y, out=out)  # (B, K)
    G *= 2.0 / len(Y)  # (B, K)
    return G


def softmax_backward(
    S: np.ndarray, G: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """∂L/∂Z from G = ∂L/∂S through the softmax Jacobian, row by row.  `out` may be G itself.

    The Jacobian of one row is J = diag(s) − s sᵀ (∂Sᵢ/∂zⱼ = Sᵢ(1 − Sᵢ) if i = j, −SᵢSⱼ if i ≠ j).
    It is symmetric, so ∂L/∂z = J g = s ⊙ g − s (sᵀg) = s ⊙ (g − ⟨g, s⟩):
    no K × K matrix is ever built.
    """
    gs = np.sum(G * S, axis=1, keepdims=True)  # (B, 1), ⟨gᵢ, sᵢ⟩ per row
    dZ = np.subtract(G, gs, out=out)  # (B, K)
    dZ *= S  # (B, K)
    return dZ


def grad_logits(
    kind: ModelKind, Y_hat: np.ndarray, Y: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """∂L/∂Z, (B, K): the only part of the gradient where the two models differ.

    linear:  Ŷ = Z, so ∂L/∂Z = G = (2/B)(Ŷ − Y)
    softmax: Ŷ = S, so ∂L/∂Z = S ⊙ (G − ⟨G, S⟩)   (see softmax_backward)
    """
    G = loss_grad_output(Y_hat, Y, out=out)  # (B, K)
    return softmax_backward(Y_hat, G, out=G) if kind == "softmax" else G


def param_grads(
    dZ: np.ndarray,
    X: np.ndarray,
    *,
    x_scale: float = 1.0,
    out: Gradients | None = None,
) -> Gradients:
    """∂L/∂W = dZᵀ X, (K, B) @ (B, D) -> (K, D), and ∂L/∂b = Σᵢ dZᵢ, (K,).

    dZᵀ X is the batched form of the per-sample outer product: Σᵢ np.outer(dZ[i], X[i]).
    With inputs x_scale · X (see `logits`): ∂L/∂W = (dZᵀ X_u8)/255 for raw pixels X_u8.
    """
    gW = np.matmul(dZ.T, X, out=None if out is None else out.W)  # (K, D)
    if x_scale != 1.0:
        gW *= x_scale  # (K, D)
    gb = np.sum(dZ, axis=0, out=None if out is None else out.b)  # (K,)
    return Gradients(W=gW, b=gb) if out is None else out


def loss_and_gradients(
    kind: ModelKind,
    params: Params,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    x_scale: float = 1.0,
    work: Workspace | None = None,
) -> tuple[float, Gradients]:
    """The batch loss L and (∂L/∂W, ∂L/∂b) for inputs X (B, D) and one-hot targets Y (B, K).

    The inputs are x_scale · X (see `logits`). With `work`, every array is written into it and
    the returned Gradients is `work.grads`, overwritten by the next call.
    """
    Z = logits(params, X, x_scale=x_scale, out=None if work is None else work.Z)
    Y_hat = predict(kind, Z, out=Z)  # (B, K), softmax in place of Z
    dZ = grad_logits(kind, Y_hat, Y, out=None if work is None else work.G)  # (B, K)
    grads = param_grads(
        dZ, X, x_scale=x_scale, out=None if work is None else work.grads
    )
    return squared_loss(Y_hat, Y), grads


def sgd_step(
    params: Params, grads: Gradients, lr: float, *, out: Params | None = None
) -> Params:
    """W ← W − lr ∂L/∂W,  b ← b − lr ∂L/∂b: a new Params, or written into `out` (which may
    be `params` itself, for an update in place)."""
    W = np.subtract(params.W, lr * grads.W, out=None if out is None else out.W)
    b = np.subtract(params.b, lr * grads.b, out=None if out is None else out.b)
    return Params(W=W, b=b) if out is None else out


def one_hot(labels: np.ndarray, dtype: np.dtype = np.float32) -> np.ndarray:
    """Y (N, K) with Yᵢₖ = 1 where k = labels[i], else 0."""
    Y = np.zeros((len(labels), K), dtype)
    Y[np.arange(len(labels)), labels] = 1
    return Y


def inputs(images: np.ndarray, dtype: np.dtype = np.float32) -> np.ndarray:
    """X = pixels / 255, (N, D) uint8 -> (N, D) floats in [0, 1].

    Cast first, then divide: dividing uint8 by an int would go through float64 (twice the memory),
    and an in-place divide on uint8 would truncate.
    """
    X = images.astype(dtype)
    X /= 255
    return X
