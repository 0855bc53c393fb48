"""Why the model decides: each input pixel's contribution to one class's logit.

Notation of nn/ (D = 784 inputs, K = 10 classes): x (D,) one image's pixels / 255, z (K,) the
logits of the last layer, z = f(x). For a class k, pixel j contributes

    c_kj = (∂z_k/∂x_j) x_j,    c_k = ∇ₓz_k ⊙ x   (D,)          "gradient × input"

For linear and softmax, z_k = W_k x + b_k, so ∇ₓz_k = W_k (the class template) and the picture
is exact: Σⱼ c_kj + b_k = z_k, each pixel's share of the logit. For an mlp (or a cnn), z is not
affine in x and c_k is the first-order picture around this x: what is left, z_k − Σⱼ c_kj, is
what the biases and the non-linearities add (for relu, whose net is affine where no unit
switches, only the biases along the active units).

∇ₓz_k comes from the model's own backward pass, not a second implementation: one forward pass
keeps its caches, and the backward pass started from dZ = e_k (row k of the K × K identity)
returns dX = ∂z_k/∂X, because dX is ∂(Σ dZ ⊙ Z)/∂X = ∂z_k/∂X. This module needs only that pair,
nn/network.py's

    forward(X (B, *in_shape)) -> (Z (B, K), caches)     backward(caches, dZ (B, K)) -> (dX, grads)
"""

from dataclasses import dataclass

import numpy as np

from mnist_cli.nn.losses import predict
from mnist_cli.nn.network import Network


def is_exact(network: Network) -> bool:
    """Whether the contributions are exact, Σⱼ c_kj + b_k = z_k: the model is one dense layer,
    affine in x (linear, softmax)."""
    return len(network.layers) == 1


def in_float64(network: Network) -> Network:
    """The same model with float64 parameters: the contributions then add up to the logit to
    ~1e-15 instead of float32's ~1e-6, so a test (and the page) can check the sum."""
    return network.with_params(
        tuple(tuple(a.astype(np.float64) for a in p) for p in network.params)
    )


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
    argmaxₖ z_k; in the parameters' dtype (in_float64 for sums that check to ~1e-15)."""
    dtype = next(a.dtype for p in network.params for a in p)
    X = x.astype(dtype).reshape(1, *network.in_shape)  # (1, *in_shape)
    Z, caches = network.forward(X)  # (1, K)
    k = int(Z[0].argmax()) if k is None else k
    dZ = np.zeros_like(Z)  # (1, K)
    dZ[0, k] = 1.0  # e_k
    dX, _ = network.backward(caches, dZ)  # (1, *in_shape), ∂z_k/∂X
    gradient = dX.reshape(-1)  # (D,)
    return Explanation(
        logits=Z[0],
        output=predict(network.output, Z)[0],
        k=k,
        gradient=gradient,
        contributions=gradient * X.reshape(-1),  # (D,)
        exact=is_exact(network),
    )
