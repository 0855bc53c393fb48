"""A model of any kind as one value: its kind, its layers and, for the mlp, its activation.

linear and softmax are one layer, (W, b) of models.py; the mlp is L layers of mlp.py. So every
model is a tuple of layers, and the code that only runs a model forward (scoring, prediction,
pictures, the weights file) needs no case of its own per kind:

    Z = the logits of the last layer (B, K)           Network.logits
    Ŷ = Z for linear, softmax(Z) otherwise (B, K)     Network.output
"""

# annotations stay unevaluated: `np.random.Generator` in a signature would import numpy.random
# (and secrets, hashlib) at the start of every command that loads weights
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mnist_cli.mlp import (
    ACTIVATIONS,
    Activation,
    Layers,
    Loss,
    activate,
    cross_entropy_loss,
    init_layers,
    layer_logits,
    layer_sizes,
)
from mnist_cli.models import MODEL_KINDS, Params, init_params, softmax, squared_loss

Kind = Literal["linear", "softmax", "mlp"]
KINDS: tuple[Kind, ...] = (*MODEL_KINDS, "mlp")


@dataclass(frozen=True)
class Network:
    """A model: `kind`, its `layers` (W_l (n_l, n_{l−1}), b_l (n_l,)) for l = 1…L, one layer for
    linear and softmax, and the activation of the mlp's hidden layers (None for the others)."""

    kind: Kind
    layers: Layers
    activation: Activation | None = None

    @classmethod
    def one_layer(cls, kind: Kind, params: Params) -> Network:
        """The linear or softmax model of `params` (W (K, D), b (K,))."""
        return cls(kind, (params,))

    @property
    def params(self) -> Params:
        """W (K, D) and b (K,) of a linear or softmax model."""
        if self.kind == "mlp":
            raise ValueError("an mlp has one Params per layer: use .layers")
        return self.layers[0]

    @property
    def sizes(self) -> tuple[int, ...]:
        """(D, n₁, …, K): every layer's input size, then the last one's output size."""
        return (self.layers[0].W.shape[1], *(p.W.shape[0] for p in self.layers))

    @property
    def hidden(self) -> tuple[int, ...]:
        """The hidden layers' widths, () for linear and softmax."""
        return self.sizes[1:-1]

    def describe(self) -> str:
        """The model in one phrase: "linear", "softmax", or the mlp's architecture,
        "mlp 784-256-10 relu"."""
        if self.kind != "mlp":
            return self.kind
        return f"mlp {'-'.join(map(str, self.sizes))} {self.activation}"

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Z_L (B, K) for inputs X (B, D): each hidden layer A_l = act(A_{l−1} W_lᵀ + b_l),
        then the last layer's Z_L = A_{L−1} W_Lᵀ + b_L (mlp.forward_trace, keeping nothing)."""
        A = X  # (B, D)
        for layer in self.layers[:-1]:
            A = activate(self.activation, layer_logits(layer, A))  # (B, n_l)
        return layer_logits(self.layers[-1], A)  # (B, K)

    def output(self, Z: np.ndarray) -> np.ndarray:
        """Ŷ from the logits Z (B, K): Z itself for linear, softmax(Z) otherwise."""
        return Z if self.kind == "linear" else softmax(Z)

    def loss(self, loss: Loss, Z: np.ndarray, Y: np.ndarray) -> float:
        """The batch mean loss of the logits Z (B, K) against one-hot Y (B, K): squared,
        (1/B) Σᵢ ‖ŷᵢ − yᵢ‖², or cross-entropy, −(1/B) Σᵢ log Sᵢ,yᵢ (softmax outputs only)."""
        if loss == "cross-entropy":
            if self.kind == "linear":
                raise ValueError(
                    "cross-entropy needs a softmax output; linear has none"
                )
            return cross_entropy_loss(Z, Y)
        return squared_loss(self.output(Z), Y)


def init_network(
    kind: Kind,
    init: str,
    rng: np.random.Generator,
    hidden: tuple[int, ...] = (),
    activation: Activation | None = None,
) -> Network:
    """A model's starting weights, drawn from `rng` (same seed, same weights).

    linear and softmax: models.init_params (zeros, or N(0, 0.01²) for "normal"). mlp: only
    "normal", which for it is mlp.init_layers' scaled normal, N(0, 2/fan_in) for relu (He)
    and N(0, 1/fan_in) for sigmoid and tanh: zeros would keep every hidden unit identical.
    """
    if kind != "mlp":
        return Network.one_layer(kind, init_params(init, rng))
    if init != "normal":
        raise ValueError(f"an mlp starts from init 'normal', not {init!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected {ACTIVATIONS}")
    return Network(kind, init_layers(layer_sizes(hidden), activation, rng), activation)
