"""The multi-layer perceptron: hidden layers, backprop by hand, and the cross-entropy loss.

Notation of models.py (B batch, D = 784 inputs, K = 10 classes, X (B, D) pixels / 255, Y (B, K)
one-hot), extended to L layers l = 1…L of sizes n₀ = D, n₁ … n_{L−1} hidden, n_L = K:

    W_l (n_l, n_{l−1})   b_l (n_l,)   one models.Params per layer; `layers` is their tuple
    A₀ = X                                                       (B, D)
    Z_l = A_{l−1} W_lᵀ + b_l                                     (B, n_l)   pre-activations
    A_l = act(Z_l)   for the hidden layers l < L                 (B, n_l)   activations
    S = softmax(Z_L)                                             (B, K)     the prediction Ŷ

act is relu, sigmoid or tanh, the same for every hidden layer; the output layer has none of its
own: its logits Z_L go through the softmax. Two losses, each a batch mean:

    squared        L = (1/B) Σᵢ ‖sᵢ − yᵢ‖²             (models.squared_loss, as the softmax model)
    cross-entropy  L = −(1/B) Σᵢ log Sᵢ,yᵢ              (cross_entropy_loss)

The backward pass is the chain rule evaluated from the top as vector-Jacobian products (no
Jacobian matrix is built). From dZ_L = ∂L/∂Z_L, which is where the two losses differ,

    ∂L/∂W_l = dZ_lᵀ A_{l−1}       (n_l, n_{l−1})     ∂L/∂b_l = Σᵢ (dZ_l)ᵢ    (n_l,)
    dA_{l−1} = dZ_l W_l           (B, n_{l−1})
    dZ_{l−1} = dA_{l−1} ⊙ act′(Z_{l−1})                 (B, n_{l−1})

for l = L down to 1. The functions are pure and work in any float dtype (training uses
float32, gradient checks float64); fused_mlp.py computes the same numbers in place.
docs/derivations.md (sections 11 to 15) derives each formula.
"""

# annotations stay unevaluated: `np.random.Generator` in a signature would import numpy.random
# (and secrets, hashlib) at the start of every command that loads weights
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import numpy as np

from mnist_cli.models import (
    D,
    K,
    Params,
    loss_grad_output,
    softmax,
    softmax_backward,
    squared_loss,
)

Activation = Literal["relu", "sigmoid", "tanh"]
ACTIVATIONS: tuple[Activation, ...] = ("relu", "sigmoid", "tanh")
Loss = Literal["squared", "cross-entropy"]
LOSSES: tuple[Loss, ...] = ("squared", "cross-entropy")
MAX_UNITS = 4096  # units in one hidden layer, at most
MAX_HIDDEN_LAYERS = 4
Layers = tuple[Params, ...]  # (W_l, b_l) for l = 1…L


# ---- losses on a softmax output: also usable by the softmax model (L = 1, Z_L = Z) ----


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """log S = Z − m − log Σₖ exp(Zₖ − m) row by row, m the row max, (B, K).

    Never log(0): the sum holds the term exp(0) = 1, so its log is ≥ 0 and finite, and every
    entry is a finite number ≤ 0 even where S itself underflows to 0 (logits ±1000).
    """
    shifted = Z - Z.max(axis=1, keepdims=True)  # (B, K), every entry ≤ 0
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (B, K)


def cross_entropy_loss(Z: np.ndarray, Y: np.ndarray) -> float:
    """L = −(1/B) Σᵢ log Sᵢ,yᵢ = −(1/B) Σᵢ Σₖ Yᵢₖ log Sᵢₖ, from the logits Z (B, K): the batch
    mean of minus the log-probability given to each sample's true class."""
    return float(-np.sum(Y * log_softmax(Z)) / len(Y))


def cross_entropy_grad_logits(S: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """dZ = ∂L/∂Z = (S − Y)/B, (B, K), for S = softmax(Z): the softmax Jacobian and the loss's
    −1/S cancel (docs/derivations.md, section 13), so no ⟨G, S⟩ term is left."""
    return (S - Y) / len(Y)  # (B, K)


def output_loss(loss: Loss, Z: np.ndarray, Y: np.ndarray) -> float:
    """The batch loss of the logits Z (B, K) against one-hot Y (B, K), through the softmax."""
    if loss == "cross-entropy":
        return cross_entropy_loss(Z, Y)
    return squared_loss(softmax(Z), Y)


def output_grad_logits(loss: Loss, S: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """dZ_L = ∂L/∂Z_L (B, K) from S = softmax(Z_L): (S − Y)/B for cross-entropy; for the
    squared loss S ⊙ (G − ⟨G, S⟩) with G = (2/B)(S − Y) (models.softmax_backward)."""
    if loss == "cross-entropy":
        return cross_entropy_grad_logits(S, Y)
    return softmax_backward(S, loss_grad_output(S, Y))  # (B, K)


# ---- activations ----


def activate(activation: Activation, Z: np.ndarray) -> np.ndarray:
    """A = act(Z) elementwise, same shape:

    relu     max(0, z)
    sigmoid  σ(z) = 1 / (1 + e^(−z)), computed as (1 + tanh(z/2)) / 2 (the same function;
             no exp to overflow for z ≪ 0)
    tanh     tanh(z)
    """
    if activation == "relu":
        return np.maximum(Z, 0)
    if activation == "sigmoid":
        return 0.5 + 0.5 * np.tanh(0.5 * Z)
    if activation == "tanh":
        return np.tanh(Z)
    raise ValueError(
        f"unknown activation {activation!r}; expected one of {ACTIVATIONS}"
    )


def activation_grad(activation: Activation, Z: np.ndarray, A: np.ndarray) -> np.ndarray:
    """act′(Z) elementwise, from Z and A = act(Z), same shape:

    relu     1 where z > 0, else 0 (at z = 0 exactly, where relu has no derivative, 0)
    sigmoid  σ′(z) = σ(z)(1 − σ(z)) = A(1 − A)
    tanh     tanh′(z) = 1 − tanh²(z) = 1 − A²
    """
    if activation == "relu":
        return (Z > 0).astype(Z.dtype)
    if activation == "sigmoid":
        return A * (1 - A)
    if activation == "tanh":
        return 1 - A * A
    raise ValueError(
        f"unknown activation {activation!r}; expected one of {ACTIVATIONS}"
    )


# ---- initial weights ----


def init_layers(
    sizes: Sequence[int],
    activation: Activation,
    rng: np.random.Generator,
    dtype: np.dtype = np.float32,
) -> Layers:
    """Layers of sizes (n₀ = D, n₁, …, n_L = K): W_l ~ N(0, gain / n_{l−1}) (n_l, n_{l−1}) with
    gain 2 for relu (He) and 1 for sigmoid and tanh, b_l = 0, drawn from `rng` in layer order
    (the same seed gives the same weights). The scale keeps each layer's pre-activations at
    about the variance of the last one's (docs/derivations.md, section 14)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected {ACTIVATIONS}")
    gain = 2.0 if activation == "relu" else 1.0
    layers = []
    for fan_in, fan_out in pairwise(sizes):
        std = np.sqrt(gain / fan_in)
        W = std * rng.standard_normal((fan_out, fan_in))  # (n_l, n_{l−1})
        layers.append(Params(W=W.astype(dtype), b=np.zeros(fan_out, dtype)))
    return tuple(layers)


def layer_sizes(hidden: Sequence[int]) -> tuple[int, ...]:
    """(D, n₁, …, K): the sizes of every layer's input and output, hidden widths in between."""
    return (D, *hidden, K)


# ---- forward and backward ----


@dataclass(frozen=True)
class Trace:
    """What the forward pass keeps for the backward one: Z_l for l = 1…L, and A_l for
    l = 0…L−1 (A₀ = X), so Z[l − 1] and A[l − 1] are layer l's pre-activation and input."""

    Z: tuple[np.ndarray, ...]  # (B, n_l) each, l = 1…L
    A: tuple[np.ndarray, ...]  # (B, n_l) each, l = 0…L−1


def layer_logits(layer: Params, A_prev: np.ndarray) -> np.ndarray:
    """Z_l = A_{l−1} W_lᵀ + b_l, (B, n_{l−1}) @ (n_{l−1}, n_l) + (n_l,) -> (B, n_l)."""
    return A_prev @ layer.W.T + layer.b  # (B, n_l)


def forward_trace(layers: Layers, activation: Activation, X: np.ndarray) -> Trace:
    """The forward pass from X (B, D), keeping every Z_l and A_l; the last Z is Z_L (B, K)."""
    A, Zs, As = X, [], []
    for l, layer in enumerate(layers, start=1):
        As.append(A)  # A_{l−1}, layer l's input
        Z = layer_logits(layer, A)  # (B, n_l)
        Zs.append(Z)
        if l < len(layers):
            A = activate(activation, Z)  # (B, n_l)
    return Trace(Z=tuple(Zs), A=tuple(As))


def probabilities(layers: Layers, activation: Activation, X: np.ndarray) -> np.ndarray:
    """S = softmax(Z_L) (B, K) for inputs X (B, D): the model's prediction."""
    return softmax(forward_trace(layers, activation, X).Z[-1])


def layer_grads(dZ: np.ndarray, A_prev: np.ndarray) -> Params:
    """∂L/∂W_l = dZ_lᵀ A_{l−1}, (n_l, B) @ (B, n_{l−1}) -> (n_l, n_{l−1}), and
    ∂L/∂b_l = Σᵢ (dZ_l)ᵢ (n_l,): models.param_grads, for any layer."""
    return Params(W=dZ.T @ A_prev, b=dZ.sum(axis=0))


def input_grad(dZ: np.ndarray, W: np.ndarray) -> np.ndarray:
    """dA_{l−1} = ∂L/∂A_{l−1} = dZ_l W_l, (B, n_l) @ (n_l, n_{l−1}) -> (B, n_{l−1}): row by row
    the vector-Jacobian product of Z_l = A_{l−1} W_lᵀ + b_l, whose Jacobian in a_{l−1} is W_l."""
    return dZ @ W  # (B, n_{l−1})


def backward(
    layers: Layers, activation: Activation, trace: Trace, dZ_top: np.ndarray
) -> Layers:
    """(∂L/∂W_l, ∂L/∂b_l) for l = 1…L from dZ_L (B, K), the chain rule from the top:
    each layer's gradients from its dZ_l and input A_{l−1}, then dA_{l−1} = dZ_l W_l and
    dZ_{l−1} = dA_{l−1} ⊙ act′(Z_{l−1}), down to the first layer."""
    grads: list[Params] = []
    dZ = dZ_top  # (B, K)
    for l in range(len(layers), 0, -1):
        A_prev = trace.A[l - 1]  # (B, n_{l−1})
        grads.append(layer_grads(dZ, A_prev))
        if l > 1:
            dA = input_grad(dZ, layers[l - 1].W)  # (B, n_{l−1})
            Z_prev = trace.Z[l - 2]  # (B, n_{l−1})
            dZ = dA * activation_grad(activation, Z_prev, A_prev)  # (B, n_{l−1})
    return tuple(reversed(grads))


def loss_and_layer_grads(
    layers: Layers, activation: Activation, loss: Loss, X: np.ndarray, Y: np.ndarray
) -> tuple[float, Layers]:
    """The batch loss L and (∂L/∂W_l, ∂L/∂b_l) for every layer, for X (B, D), Y (B, K)."""
    trace = forward_trace(layers, activation, X)
    Z_top = trace.Z[-1]  # (B, K)
    dZ = output_grad_logits(loss, softmax(Z_top), Y)  # (B, K)
    return output_loss(loss, Z_top, Y), backward(layers, activation, trace, dZ)


def batch_loss(
    layers: Layers, activation: Activation, loss: Loss, X: np.ndarray, Y: np.ndarray
) -> float:
    """The batch loss L alone (for central differences)."""
    return output_loss(loss, forward_trace(layers, activation, X).Z[-1], Y)


def sgd_update(layers: Layers, grads: Layers, lr: float) -> Layers:
    """W_l ← W_l − lr ∂L/∂W_l, b_l ← b_l − lr ∂L/∂b_l for every layer (new arrays)."""
    return tuple(
        Params(W=p.W - lr * g.W, b=p.b - lr * g.b) for p, g in zip(layers, grads)
    )
