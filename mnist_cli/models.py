"""The two models, their squared loss, and its analytic gradient.

Notation, used in every docstring and shape comment of the package:

    B   batch size              D = 784 inputs (28 x 28 pixels)     K = 10 classes
    U   (B, D) raw pixels 0..255, one sample per row
    X   (B, D) inputs, X = U / 255
    W   (K, D) weights, so that one sample's logits are z = Wx      b (K,) bias
    Z   (B, K) logits,  Z = X Wᵀ + b          (row i is zᵢ = W xᵢ + b)
    Ŷ   (B, K) predictions:  linear  Ŷ = Z;   softmax  Ŷ = S = softmax(Z), row by row
    Y   (B, K) one-hot targets

Two modules fold the bias into the weights by a constant column, each in its own layout:

    X̃ = [X, 1]     (N, D + 1)   Ŷ = X̃ β with β = [Wᵀ; bᵀ] (D + 1, K)         exact.py
    Ũ = [U, 255]   (B, D + 1)   Zᵀ = Θ Ũᵀ with Θ = [W, b] / 255 (K, D + 1)    fused.py

The loss of a batch is the mean over its B samples of the squared error ‖ŷ − y‖²:

    L = (1/B) Σᵢ Σₖ (Ŷᵢₖ − Yᵢₖ)²

Every gradient below is of that batch mean, so each carries the factor 1/B once, in ∂L/∂Ŷ.
Both models end in the same parameter gradient (the chain rule through Z = X Wᵀ + b):

    ∂L/∂W = (∂L/∂Z)ᵀ X     (K, D) — the sum over the batch of the outer products (∂L/∂zᵢ) xᵢᵀ
    ∂L/∂b = Σᵢ ∂L/∂zᵢ      (K,)

and only ∂L/∂Z differs: the identity for linear, the softmax Jacobian diag(S) − SSᵀ for softmax.
The functions are pure and work in any float dtype (training uses float32, gradient checks float64).
Every formula here is derived step by step in docs/derivations.md, and checked numerically by
gradcheck.py (mnist-gradcheck).
"""

# annotations stay unevaluated: `np.random.Generator` in a signature would import numpy.random
# (several ms) at the start of every command, also those that draw no random numbers
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

ModelKind = Literal["linear", "softmax"]
MODEL_KINDS: tuple[ModelKind, ...] = ("linear", "softmax")
INITS = ("zeros", "normal")
D, K = 784, 10


@dataclass(frozen=True)
class Params:
    """The parameters of either model, W (K, D) and b (K,); also their gradient, which has
    the parameters' shapes: Params(W=∂L/∂W, b=∂L/∂b)."""

    W: np.ndarray  # (K, D)
    b: np.ndarray  # (K,)


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


def logits(params: Params, X: np.ndarray) -> np.ndarray:
    """Z = X Wᵀ + b, (B, D) @ (D, K) + (K,) -> (B, K): one matrix product for the whole batch."""
    return X @ params.W.T + params.b  # (B, K)


def softmax(Z: np.ndarray) -> np.ndarray:
    """S = softmax(Z) row by row: Sᵢₖ = exp(Zᵢₖ) / Σⱼ exp(Zᵢⱼ).

    The row max is subtracted first: softmax is unchanged by a shift of its row, and the shift
    keeps exp from overflowing (every exponent is ≤ 0, and the largest term is exactly 1).
    """
    E = np.exp(Z - Z.max(axis=1, keepdims=True))  # (B, K), entries in (0, 1]
    return E / E.sum(axis=1, keepdims=True)  # (B, K), rows sum to 1


def output(kind: ModelKind, Z: np.ndarray) -> np.ndarray:
    """Ŷ from the logits: Z itself for linear, softmax(Z) for softmax.  (B, K)"""
    return softmax(Z) if kind == "softmax" else Z


def forward(kind: ModelKind, params: Params, X: np.ndarray) -> np.ndarray:
    """Ŷ for a batch X (B, D): the model's output, (B, K)."""
    return output(kind, logits(params, X))


def squared_loss(Y_hat: np.ndarray, Y: np.ndarray) -> float:
    """L = (1/B) Σᵢ ‖ŷᵢ − yᵢ‖²: the batch mean of the per-sample squared error."""
    return float(np.sum((Y_hat - Y) ** 2) / len(Y))


def loss_grad_output(Y_hat: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """G = ∂L/∂Ŷ = (2/B)(Ŷ − Y), (B, K): the derivative of ‖ŷ − y‖² is 2(ŷ − y), per sample,
    and the batch mean puts 1/B in front."""
    return (2.0 / len(Y)) * (Y_hat - Y)  # (B, K)


def softmax_backward(S: np.ndarray, G: np.ndarray) -> np.ndarray:
    """∂L/∂Z from G = ∂L/∂S through the softmax Jacobian, row by row.

    The Jacobian of one row is J = diag(s) − s sᵀ (∂Sᵢ/∂zⱼ = Sᵢ(1 − Sᵢ) if i = j, −SᵢSⱼ if i ≠ j).
    It is symmetric, so ∂L/∂z = J g = s ⊙ g − s (sᵀg) = s ⊙ (g − ⟨g, s⟩):
    no K × K matrix is ever built.
    """
    gs = np.sum(G * S, axis=1, keepdims=True)  # (B, 1), ⟨gᵢ, sᵢ⟩ per row
    return S * (G - gs)  # (B, K)


def grad_logits(kind: ModelKind, Y_hat: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """∂L/∂Z, (B, K): the only part of the gradient where the two models differ.

    linear:  Ŷ = Z, so ∂L/∂Z = G = (2/B)(Ŷ − Y)
    softmax: Ŷ = S, so ∂L/∂Z = S ⊙ (G − ⟨G, S⟩)   (see softmax_backward)
    """
    G = loss_grad_output(Y_hat, Y)  # (B, K)
    return softmax_backward(Y_hat, G) if kind == "softmax" else G


def param_grads(dZ: np.ndarray, X: np.ndarray) -> Params:
    """∂L/∂W = dZᵀ X, (K, B) @ (B, D) -> (K, D), and ∂L/∂b = Σᵢ dZᵢ, (K,).

    dZᵀ X is the batched form of the per-sample outer product: Σᵢ np.outer(dZ[i], X[i]).
    """
    return Params(W=dZ.T @ X, b=dZ.sum(axis=0))  # (K, D), (K,)


def loss_and_gradients(
    kind: ModelKind, params: Params, X: np.ndarray, Y: np.ndarray
) -> tuple[float, Params]:
    """The batch loss L and (∂L/∂W, ∂L/∂b) for inputs X (B, D) and one-hot targets Y (B, K)."""
    Y_hat = forward(kind, params, X)  # (B, K)
    dZ = grad_logits(kind, Y_hat, Y)  # (B, K)
    return squared_loss(Y_hat, Y), param_grads(dZ, X)


def sgd_step(params: Params, grads: Params, lr: float) -> Params:
    """W ← W − lr ∂L/∂W,  b ← b − lr ∂L/∂b (a new Params; the old one is left as it was)."""
    return Params(W=params.W - lr * grads.W, b=params.b - lr * grads.b)


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
