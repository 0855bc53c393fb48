"""The reference convolution layers: Conv2d, MaxPool2d, Flatten, Unflatten.

Each layer is a frozen dataclass with the network's layer interface:

    out_shape(in_shape) -> out_shape            per-sample shapes, no batch axis
    init(in_shape, rng, dtype) -> params        a tuple, () if none
    forward(params, A) -> (Z, cache)            A (B, *in_shape) -> Z (B, *out_shape)
    backward(params, cache, dZ) -> (dA, grads)  grads shaped like params

Notation: B batch, C channels, H × H a map (any H × H′ works; W is always a weight), k the kernel
size, H' = H − k + 1 (docs/derivations.md, sections 24 to 31).
Activations are NCHW, (B, C, H, W), and a convolution's W is (C_out, C_in, k, k), torch's
layout, so that weights and gradients compare with torch's one for one. Written for clarity
and float64 gradient checks; fast/conv.py computes the same numbers fast in float32.

The convolution (a cross-correlation, as in torch: the kernel is not flipped), stride 1, no
padding, as a product over the im2col windows P[b, c, y, x, i, j] = A[b, c, y + i, x + j]:

    Z[b, o, y, x] = Σ_{c,i,j} W[o, c, i, j] A[b, c, y + i, x + j] + b[o]
    ∂L/∂W[o, c, i, j] = Σ_{b,y,x} dZ[b, o, y, x] A[b, c, y + i, x + j]
    ∂L/∂b[o] = Σ_{b,y,x} dZ[b, o, y, x]
    ∂L/∂A[b, c, y, x] = Σ_{o,i,j} dZ[b, o, y − i, x − j] W[o, c, i, j]
                      = full correlation of dZ (zero-padded by k − 1) with the flipped kernel
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Conv2d:
    """k × k convolution, stride 1, no padding: (C_in, H, W) -> (C_out, H − k + 1, W − k + 1)."""

    c_in: int
    c_out: int
    k: int

    def out_shape(self, in_shape: Shape) -> Shape:
        c, h, w = in_shape
        if c != self.c_in or h < self.k or w < self.k:
            raise ValueError(
                f"Conv2d({self.c_in}, {self.c_out}, {self.k}) on {in_shape}"
            )
        return self.c_out, h - self.k + 1, w - self.k + 1

    def init(self, in_shape: Shape, rng: np.random.Generator, dtype=np.float32):
        """He: W ~ N(0, 2 / fan_in), fan_in = C_in·k·k (ReLU halves the variance); b = 0."""
        self.out_shape(in_shape)
        fan_in = self.c_in * self.k * self.k
        W = rng.standard_normal((self.c_out, self.c_in, self.k, self.k))
        return (W * math.sqrt(2.0 / fan_in)).astype(dtype), np.zeros(self.c_out, dtype)

    def forward(self, params, A: np.ndarray):
        W, b = params  # (C_out, C_in, k, k), (C_out,)
        k = self.k
        P = sliding_window_view(
            A, (k, k), axis=(2, 3)
        )  # (B, C_in, H', W', k, k), a view
        Z = np.tensordot(
            P, W, axes=([1, 4, 5], [1, 2, 3])
        )  # Σ_{c,i,j} (B, H', W', C_out)
        Z = Z.transpose(0, 3, 1, 2) + b[:, None, None]  # (B, C_out, H', W')
        return Z, A

    def backward(self, params, cache, dZ: np.ndarray):
        W, _ = params  # (C_out, C_in, k, k)
        A, k = cache, self.k  # A (B, C_in, H, W)
        P = sliding_window_view(A, (k, k), axis=(2, 3))  # (B, C_in, H', W', k, k)
        dW = np.tensordot(
            dZ, P, axes=([0, 2, 3], [0, 2, 3])
        )  # Σ_{b,y,x} (C_out, C_in, k, k)
        db = dZ.sum(axis=(0, 2, 3))  # Σ_{b,y,x} (C_out,)
        pad = ((0, 0), (0, 0), (k - 1, k - 1), (k - 1, k - 1))
        dZp = np.pad(
            dZ, pad
        )  # (B, C_out, H' + 2k − 2, W' + 2k − 2) = (…, H + k − 1, …)
        Q = sliding_window_view(dZp, (k, k), axis=(2, 3))  # (B, C_out, H, W, k, k)
        Wf = W[
            :, :, ::-1, ::-1
        ]  # flipped kernel: Wf[o, c, i, j] = W[o, c, k−1−i, k−1−j]
        dA = np.tensordot(
            Q, Wf, axes=([1, 4, 5], [0, 2, 3])
        )  # Σ_{o,i,j} (B, H, W, C_in)
        return dA.transpose(0, 3, 1, 2), (dW, db)  # (B, C_in, H, W)


@dataclass(frozen=True)
class MaxPool2d:
    """2 × 2 max-pool, stride 2: (C, H, W) -> (C, H // 2, W // 2); an odd last row or column
    is dropped (torch's floor). Its gradient goes to one position per window: the first
    maximum in row-major order (top-left, top-right, bottom-left, bottom-right), the one
    np.argmax and torch's CPU kernel pick when values tie."""

    def out_shape(self, in_shape: Shape) -> Shape:
        c, h, w = in_shape
        if h < 2 or w < 2:
            raise ValueError(f"MaxPool2d on {in_shape}: the map is smaller than 2x2")
        return c, h // 2, w // 2

    def init(self, in_shape: Shape, rng: np.random.Generator, dtype=np.float32):
        return ()

    def forward(self, params, A: np.ndarray):
        B, C, H, W = A.shape
        h, w = H // 2, W // 2
        Ac = A[:, :, : 2 * h, : 2 * w].reshape(B, C, h, 2, w, 2)  # (B, C, h, 2, w, 2)
        win = Ac.transpose(0, 1, 2, 4, 3, 5).reshape(
            B, C, h, w, 4
        )  # windows, row-major
        arg = win.argmax(axis=-1)  # (B, C, h, w) the first maximum's position, 0…3
        Z = np.take_along_axis(win, arg[..., None], axis=-1)[..., 0]  # (B, C, h, w)
        return Z, (A.shape, arg)

    def backward(self, params, cache, dZ: np.ndarray):
        """∂L/∂A is dZ sent to each window's chosen position, zero elsewhere: the pool's
        Jacobian is a selection matrix."""
        (B, C, H, W), arg = cache
        h, w = H // 2, W // 2
        onehot = arg[..., None] == np.arange(4)  # (B, C, h, w, 4)
        win = onehot * dZ[..., None]  # (B, C, h, w, 4)
        dA = np.zeros((B, C, H, W), dZ.dtype)  # (B, C, H, W), an odd edge stays 0
        blocks = win.reshape(B, C, h, w, 2, 2).transpose(
            0, 1, 2, 4, 3, 5
        )  # (B,C,h,2,w,2)
        dA[:, :, : 2 * h, : 2 * w] = blocks.reshape(B, C, 2 * h, 2 * w)
        return dA, ()


@dataclass(frozen=True)
class Flatten:
    """(C, H, W) -> (C·H·W,) in C order, index c·H·W + y·W + x, as torch's nn.Flatten."""

    def out_shape(self, in_shape: Shape) -> Shape:
        return (math.prod(in_shape),)

    def init(self, in_shape: Shape, rng: np.random.Generator, dtype=np.float32):
        return ()

    def forward(self, params, A: np.ndarray):
        return A.reshape(len(A), -1), A.shape[1:]  # (B, C·H·W)

    def backward(self, params, cache, dZ: np.ndarray):
        return dZ.reshape(len(dZ), *cache), ()  # (B, C, H, W)


@dataclass(frozen=True)
class Unflatten:
    """(C·H·W,) -> `shape`, e.g. (1, 28, 28) for a flat image, in C order."""

    shape: Shape

    def out_shape(self, in_shape: Shape) -> Shape:
        if math.prod(in_shape) != math.prod(self.shape):
            raise ValueError(f"Unflatten{self.shape} on {in_shape}: sizes differ")
        return self.shape

    def init(self, in_shape: Shape, rng: np.random.Generator, dtype=np.float32):
        return ()

    def forward(self, params, A: np.ndarray):
        return A.reshape(len(A), *self.shape), A.shape[1:]  # (B, *shape)

    def backward(self, params, cache, dZ: np.ndarray):
        return dZ.reshape(len(dZ), *cache), ()  # (B, *in_shape)
