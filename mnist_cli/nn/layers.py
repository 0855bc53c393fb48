"""Layers as forward/backward pairs, each written like its equation.

Every layer is a small frozen value with four methods (the Layer protocol):

    out_shape(in_shape)                 a sample's output shape from its input shape
    init(in_shape, rng, dtype)          its parameters, a tuple of arrays (() if it has none)
    forward(params, A) -> (Z, cache)    A (B, *in_shape) -> Z (B, *out_shape)
    backward(params, cache, dZ) -> (dA, grads)
                                        dA = ∂ℒ/∂A from dZ = ∂ℒ/∂Z (a vector-Jacobian product:
                                        no Jacobian is built), grads shaped like params

A network chains them (network.py); nn/conv.py adds convolution and pooling to the same
protocol. The functions are pure and work in any float dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

import numpy as np

from mnist_cli.config.choices import ACTIVATIONS

Activation = Literal["relu", "sigmoid", "tanh"]  # one of ACTIVATIONS


class Layer(Protocol):
    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]: ...

    def init(
        self, in_shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype
    ) -> tuple[np.ndarray, ...]: ...

    def forward(
        self, params: tuple[np.ndarray, ...], A: np.ndarray
    ) -> tuple[np.ndarray, object]: ...

    def backward(
        self, params: tuple[np.ndarray, ...], cache: object, dZ: np.ndarray
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]: ...


class Params(NamedTuple):
    """A dense layer's parameters, W (n_l, n_{l−1}) and b (n_l,); also their gradient, which
    has their shapes. A tuple, so an optimizer sees the arrays of every layer alike."""

    W: np.ndarray  # (n_l, n_{l−1})
    b: np.ndarray  # (n_l,)


@dataclass(frozen=True)
class Dense:
    """Z = A Wᵀ + b: every output unit a weighted sum of every input, plus its bias.

    Initial W ~ N(0, std²), std = sqrt(gain / fan_in) (He for relu: gain 2; 1 for sigmoid and
    tanh: docs/derivations.md, section 14), or the fixed `std` given; std 0 starts at zeros.
    The bias starts at zero."""

    units: int
    gain: float = 2.0
    std: float | None = None

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.units,)

    def init(
        self, in_shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype
    ) -> Params:
        (fan_in,) = in_shape
        shape = (self.units, fan_in)
        if self.std == 0:
            W = np.zeros(shape, dtype)
        else:
            std = np.sqrt(self.gain / fan_in) if self.std is None else self.std
            W = (std * rng.standard_normal(shape)).astype(dtype)  # (n_l, n_{l−1})
        return Params(W=W, b=np.zeros(self.units, dtype))

    def forward(self, params: Params, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Z = A Wᵀ + b, (B, n_{l−1}) @ (n_{l−1}, n_l) + (n_l,) -> (B, n_l); keeps A."""
        W, b = params
        return A @ W.T + b, A  # (B, n_l)

    def backward(
        self, params: Params, A: np.ndarray, dZ: np.ndarray
    ) -> tuple[np.ndarray, Params]:
        """(dA, (dW, db)) from dZ (B, n_l): dense_grads and input_grad."""
        return input_grad(dZ, params[0]), dense_grads(dZ, A)


def dense_grads(dZ: np.ndarray, A: np.ndarray) -> Params:
    """dW = dZᵀ A, (n_l, B) @ (B, n_{l−1}) -> (n_l, n_{l−1}): the batch sum of the per-sample
    outer products np.outer(dz, a); db = Σᵢ dZᵢ (n_l,), since ∂z/∂b = I."""
    return Params(W=dZ.T @ A, b=dZ.sum(axis=0))


def input_grad(dZ: np.ndarray, W: np.ndarray) -> np.ndarray:
    """dA = dZ W, (B, n_l) @ (n_l, n_{l−1}) -> (B, n_{l−1}): row by row the vector-Jacobian
    product of z = W a + b, whose Jacobian in a is W."""
    return dZ @ W


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


@dataclass(frozen=True)
class Act:
    """A = act(Z) elementwise (relu, sigmoid or tanh); its Jacobian is diagonal, so the
    backward pass is dZ = dA ⊙ act′(Z)."""

    name: Activation

    def __post_init__(self) -> None:
        if self.name not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.name!r}; expected one of {ACTIVATIONS}"
            )

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return in_shape

    def init(
        self, in_shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype
    ) -> tuple[()]:
        return ()

    def forward(self, params: tuple[()], Z: np.ndarray) -> tuple[np.ndarray, tuple]:
        A = activate(self.name, Z)  # (B, …) as Z
        return A, (Z, A)

    def backward(
        self, params: tuple[()], cache: tuple, dA: np.ndarray
    ) -> tuple[np.ndarray, tuple[()]]:
        Z, A = cache
        return dA * activation_grad(self.name, Z, A), ()  # dZ = dA ⊙ act′(Z)


def inputs(images: np.ndarray, dtype: np.dtype = np.float32) -> np.ndarray:
    """X = pixels / 255, (N, D) uint8 -> (N, D) floats in [0, 1].

    Cast first, then divide: dividing uint8 by an int would go through float64 (twice the
    memory), and an in-place divide on uint8 would truncate.
    """
    X = images.astype(dtype)
    X /= 255
    return X
