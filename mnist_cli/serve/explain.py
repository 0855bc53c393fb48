"""Why the model decides: each input pixel's contribution to one class's logit.

Notation of models.py and mlp.py: D = 784 inputs, K = 10 classes, x (D,) one image's pixels / 255,
z (K,) the logits of the last layer, z = f(x). For a class k, pixel j contributes

    c_kj = (∂z_k/∂x_j) x_j,    c_k = ∇ₓz_k ⊙ x   (D,)          "gradient × input"

For linear and softmax, z_k = W_k x + b_k, so ∇ₓz_k = W_k (the class template) and the picture
is exact: Σⱼ c_kj + b_k = z_k, each pixel's share of the logit. For an mlp, z is not affine in x
and c_k is the first-order picture around this x: what is left, z_k − Σⱼ c_kj, is what the
biases and the non-linearities add (for relu, whose net is affine where no unit switches, only
the biases along the active units).

∇ₓz_k comes from the model's own backward pass, not a second implementation: one forward pass
keeps its caches, and the backward pass started from dZ = e_k (row k of the K × K identity)
returns dX = ∂z_k/∂X, because dX is ∂(Σ dZ ⊙ Z)/∂X = ∂z_k/∂X. This module needs only such a pair,

    forward(X (B, D)) -> (Z (B, K), caches)        backward(caches, dZ (B, K)) -> dX (B, D)

which `passes` builds from mlp.py's hand-written layers (forward_trace, input_grad,
activation_grad).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..mlp import activation_grad, forward_trace, input_grad
from ..models import Params
from ..network import Network

Forward = Callable[[np.ndarray], tuple[np.ndarray, Any]]  # X (B, D) -> Z (B, K), caches
Backward = Callable[[Any, np.ndarray], np.ndarray]  # caches, dZ (B, K) -> dX (B, D)


def passes(network: Network) -> tuple[Forward, Backward]:
    """The network's forward pass and its backward pass to the input, chained from mlp.py's
    layer functions: dA_{l−1} = dZ_l W_l, then dZ_{l−1} = dA_{l−1} ⊙ act′(Z_{l−1}), down to
    dA₀ = dX. A one-layer model (linear, softmax) is the case L = 1: dX = dZ W."""
    layers, activation = network.layers, network.activation

    def forward(X: np.ndarray) -> tuple[np.ndarray, Any]:
        trace = forward_trace(layers, activation, X)
        return trace.Z[-1], trace  # (B, K)

    def backward(trace: Any, dZ: np.ndarray) -> np.ndarray:
        for l in range(len(layers), 0, -1):
            dA = input_grad(dZ, layers[l - 1].W)  # (B, n_{l−1}), dA₀ = dX
            if l > 1:
                Z_prev, A_prev = trace.Z[l - 2], trace.A[l - 1]  # (B, n_{l−1}) each
                dZ = dA * activation_grad(activation, Z_prev, A_prev)  # (B, n_{l−1})
        return dA  # (B, D)

    return forward, backward


def is_exact(network: Network) -> bool:
    """Whether the contributions are exact, Σⱼ c_kj + b_k = z_k: the model is affine in x
    (one layer: linear, softmax)."""
    return len(network.layers) == 1


def in_float64(network: Network) -> Network:
    """The same model with float64 weights: the contributions then add up to the logit to
    ~1e-15 instead of float32's ~1e-6, so a test (and the page) can check the sum."""
    layers = tuple(
        Params(W=p.W.astype(np.float64), b=p.b.astype(np.float64))
        for p in network.layers
    )
    return Network(network.kind, layers, network.activation)


@dataclass(frozen=True)
class Explanation:
    """One image, what the model says about it, and why it says class k."""

    logits: np.ndarray  # z (K,)
    output: np.ndarray  # ŷ (K,): softmax(z), or z itself for linear
    k: int  # the class explained
    gradient: np.ndarray  # ∇ₓz_k (D,): W_k for linear and softmax
    contributions: np.ndarray  # c_k = ∇ₓz_k ⊙ x (D,)
    exact: bool  # Σ c_k + b_k = z_k (linear, softmax)

    @property
    def rest(self) -> float:
        """z_k − Σⱼ c_kj: the bias b_k when exact, else what the first-order picture misses."""
        return float(self.logits[self.k] - self.contributions.sum())


def explain(network: Network, x: np.ndarray, k: int | None = None) -> Explanation:
    """The explanation of x (D,) (pixels / 255) for class k, by default the top class
    argmaxₖ z_k; in the network's dtype (in_float64 for sums that check to ~1e-15)."""
    forward, backward = passes(network)
    X = x.reshape(1, -1).astype(network.layers[0].W.dtype)  # (1, D)
    Z, caches = forward(X)  # (1, K)
    k = int(Z[0].argmax()) if k is None else k
    dZ = np.zeros_like(Z)  # (1, K)
    dZ[0, k] = 1.0  # e_k
    gradient = backward(caches, dZ)[0]  # (D,), ∂z_k/∂x
    return Explanation(
        logits=Z[0],
        output=network.output(Z)[0],
        k=k,
        gradient=gradient,
        contributions=gradient * X[0],  # (D,)
        exact=is_exact(network),
    )
