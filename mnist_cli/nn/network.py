"""A network: a list of layers, their parameters, and an output (identity or softmax).

    A₀ = X;  A_l, cache_l = layer_l.forward(params_l, A_{l−1});  Z = A_L;  Ŷ = Z or softmax(Z)

The backward pass is the chain rule from the top, one vector-Jacobian product per layer:

    dA_L = dZ (losses.grad_logits);  dA_{l−1}, grads_l = layer_l.backward(params_l, cache_l, dA_l)

so a new kind of layer (nn/conv.py) needs only its own pair. Nothing here knows a model's name:
architecture.py builds the networks a user names and tells them apart again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mnist_cli.nn.layers import Layer
from mnist_cli.nn.losses import Loss, Output, batch_loss, grad_logits, predict

Grads = tuple[
    tuple[np.ndarray, ...], ...
]  # one tuple per layer, shaped like its params


@dataclass(frozen=True)
class Network:
    """`layers` (the Layer pairs), `params` (one tuple of arrays per layer, () for a layer with
    none), `output` ("identity" or "softmax" on the last layer's Z) and `in_shape`, a sample's
    input shape ((D,) for a flat image)."""

    layers: tuple[Layer, ...]
    params: tuple[tuple[np.ndarray, ...], ...]
    output: Output
    in_shape: tuple[int, ...]

    def forward(self, X: np.ndarray) -> tuple[np.ndarray, tuple]:
        """Z (B, K) for inputs X (B, *in_shape), and every layer's cache for backward."""
        A, caches = X, []
        for layer, params in zip(self.layers, self.params):
            A, cache = layer.forward(params, A)  # (B, *out_shape of layer l)
            caches.append(cache)
        return A, tuple(caches)

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Z (B, K) for inputs X (B, *in_shape), keeping nothing."""
        return self.forward(X)[0]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Ŷ (B, K): the logits, or their softmax (probabilities)."""
        return predict(self.output, self.logits(X))

    def backward(self, caches: tuple, dZ: np.ndarray) -> tuple[np.ndarray, Grads]:
        """(dX, grads) from dZ = ∂ℒ/∂Z (B, K): dX (B, *in_shape) the gradient with respect to
        the input (mnist-serve's "why"), grads shaped like params."""
        dA, grads = dZ, []
        for layer, params, cache in zip(
            reversed(self.layers), reversed(self.params), reversed(caches)
        ):
            dA, g = layer.backward(params, cache, dA)
            grads.append(g)
        return dA, tuple(reversed(grads))

    def loss(self, loss: Loss, Z: np.ndarray, Y: np.ndarray) -> float:
        """ℒ of the logits Z (B, K) against one-hot Y (B, K) (losses.batch_loss)."""
        return batch_loss(self.output, loss, Z, Y)

    def loss_and_grads(
        self, loss: Loss, X: np.ndarray, Y: np.ndarray
    ) -> tuple[float, Grads]:
        """ℒ and its gradient for every parameter, for X (B, *in_shape) and one-hot Y (B, K)."""
        Z, caches = self.forward(X)  # (B, K)
        dZ = grad_logits(self.output, loss, Z, Y)  # (B, K)
        return self.loss(loss, Z, Y), self.backward(caches, dZ)[1]

    def with_params(self, params: tuple[tuple[np.ndarray, ...], ...]) -> Network:
        """The same network with other parameters (of the same shapes)."""
        return replace(self, params=tuple(params))


def init_network(
    layers: tuple[Layer, ...],
    output: Output,
    in_shape: tuple[int, ...],
    rng: np.random.Generator,
    dtype: np.dtype = np.float32,
) -> Network:
    """The network of `layers` with parameters drawn from `rng`, layer after layer (the same
    seed gives the same weights)."""
    params, shape = [], in_shape
    for layer in layers:
        params.append(layer.init(shape, rng, dtype))
        shape = layer.out_shape(shape)
    return Network(tuple(layers), tuple(params), output, in_shape)


def sgd_update(params: Grads, grads: Grads, lr: float) -> Grads:
    """θ ← θ − lr ∂ℒ/∂θ for every array of every layer (new arrays): the plain reference
    step that the fast path and optim.py are checked against."""
    return tuple(
        tuple(p - lr * g for p, g in zip(ps, gs)) for ps, gs in zip(params, grads)
    )
