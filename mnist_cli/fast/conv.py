"""The cnn's float32 training step: loss and the gradient of every parameter, in place.

The same network and numbers as the reference layers (nn/conv.py chained with nn/layers.py's
Dense and relu): blocks of (k×k convolution, stride 1, no padding → ReLU → 2×2 max-pool), then
the dense layers, then a softmax; loss "cross-entropy" or "squared", each a batch mean. This
module only arranges the work so that numpy's own routines do it fast (docs/derivations.md,
sections 24 to 31, derives each step):

- parameters and gradients in torch's shapes and order: conv W (C_l, C_{l−1}, k, k), b (C_l,),
  dense W (n_out, n_in), b (n_out,), the first dense n_in = C·H''·H'' in torch's flatten order;
- the batch axis last: a map is (C, H, H, B) and the im2col matrix col (C_{l−1}·k·k, H'·H'·B),
  each row a copy of a shifted window whose contiguous runs are H'·B floats, so the copies and
  col2im's adds stream; one product a layer, Z = W col, in the same layout, and two for its
  gradients, dW = dZ colᵀ and dcol = Wᵀ dZ, folded back by k² slice-adds (no np.add.at);
- pool first: max-pool commutes with ReLU and with a per-channel bias, so each block pools
  the raw product and adds b and applies ReLU on 4× fewer elements;
- max-pool's gradient goes to the first maximum of each window in row-major order (as torch's
  CPU kernel and np.argmax), found by two pairwise maxima: ties keep the left, then the top.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mnist_cli.fast.loss import LOSSES, loss_and_dlogits
from mnist_cli.nn.conv import Conv2d
from mnist_cli.nn.layers import Dense
from mnist_cli.nn.network import Network


@dataclass(frozen=True)
class BlockShape:
    """One conv block's sizes: input (c_in, h, w), conv output (c_out, h−k+1, w−k+1), pooled
    (c_out, (h−k+1)//2, (w−k+1)//2): the pool drops an odd last row or column, as torch."""

    c_in: int
    c_out: int
    k: int
    h: int
    w: int

    @property
    def conv(self) -> tuple[int, int]:
        return self.h - self.k + 1, self.w - self.k + 1

    @property
    def pooled(self) -> tuple[int, int]:
        return self.conv[0] // 2, self.conv[1] // 2


class Buffers:
    """Every array one step of batch size B writes, allocated once per batch size."""

    def __init__(self, blocks: Sequence[BlockShape], dense: Sequence[int], B: int):
        f = np.float32
        c, h, w = blocks[0].c_in, blocks[0].h, blocks[0].w
        self.X = np.empty((c, h, w, B), f)  # the input batch, batch axis last
        self.col, self.Z, self.P, self.fR, self.fD, self.M = [], [], [], [], [], []
        self.dZ, self.dM, self.dA = [], [], []
        for s in blocks:
            (ho, wo), (hp, wp) = s.conv, s.pooled
            self.col.append(np.empty((s.c_in, s.k, s.k, ho, wo, B), f))  # im2col
            self.Z.append(np.empty((s.c_out, ho, wo, B), f))  # W col
            self.M.append(np.empty((s.c_out, 2 * hp, wp, B), f))  # max of column pairs
            self.fR.append(np.empty((s.c_out, 2 * hp, wp, B), f))  # 1 where right won
            self.P.append(np.empty((s.c_out, hp, wp, B), f))  # pooled, + b, ReLU
            self.fD.append(np.empty((s.c_out, hp, wp, B), f))  # 1 where bottom won
            self.dZ.append(np.zeros((s.c_out, ho, wo, B), f))  # an odd edge stays 0
            self.dM.append(np.empty((s.c_out, 2 * hp, wp, B), f))
            self.dA.append(np.empty((s.c_in, s.h, s.w, B), f))
        self.A = [np.empty((n, B), f) for n in dense[1:]]  # dense outputs (n, B)


@dataclass
class FastCNN:
    """The cnn's forward and backward pass in float32 on preallocated buffers.

    `loss_and_grads(params, X, y)` -> (loss, grads): grads is a list shaped like params
    (the reference's shapes above), overwritten by the next call. The buffers serve one
    call at a time: a thread that scores while another trains needs a FastCNN of its own,
    `dataclasses.replace(net)`.
    """

    channels: tuple[int, ...]
    kernel: int
    hidden: tuple[int, ...]
    loss: str = "cross-entropy"
    in_shape: tuple[int, int, int] = (1, 28, 28)
    classes: int = 10
    blocks: list[BlockShape] = field(init=False)
    dense: list[int] = field(init=False)
    _buffers: dict = field(init=False, default_factory=dict)
    _grads: list = field(init=False)

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; expected one of {LOSSES}")
        if self.kernel < 1 or min(self.channels, default=0) < 1:
            raise ValueError(
                f"channels {self.channels}, kernel {self.kernel}: need >= 1"
            )
        c, h, w = self.in_shape
        self.blocks = []
        for c_out in self.channels:
            s = BlockShape(c, c_out, self.kernel, h, w)
            if min(s.pooled) < 1:
                raise ValueError(
                    f"a {self.kernel}x{self.kernel} kernel does not fit {h}x{w}"
                )
            self.blocks.append(s)
            c, (h, w) = c_out, s.pooled
        self.dense = [c * h * w, *self.hidden, self.classes]
        self._grads = [np.empty(s, np.float32) for s in self.param_shapes()]

    @classmethod
    def of(cls, network: Network, loss: str = "cross-entropy") -> FastCNN:
        """The fast path of a network of convolution blocks (nn/conv.py) then dense layers."""
        convs = [la for la in network.layers if isinstance(la, Conv2d)]
        dense = [la for la in network.layers if isinstance(la, Dense)]
        return cls(
            tuple(c.c_out for c in convs),
            convs[0].k,
            tuple(d.units for d in dense[:-1]),
            loss,
        )

    def param_shapes(self) -> list[tuple[int, ...]]:
        """[W₁, b₁, …] in the reference's (and torch's) order and shapes."""
        shapes: list[tuple[int, ...]] = []
        for s in self.blocks:
            shapes += [(s.c_out, s.c_in, s.k, s.k), (s.c_out,)]
        for n_in, n_out in zip(self.dense[:-1], self.dense[1:]):
            shapes += [(n_out, n_in), (n_out,)]
        return shapes

    def buffers(self, B: int) -> Buffers:
        """The buffers of batch size B (a full batch, a last batch, a scoring size kept)."""
        if B not in self._buffers:
            if len(self._buffers) > 2:
                self._buffers.clear()
            self._buffers[B] = Buffers(self.blocks, self.dense, B)
        return self._buffers[B]

    def forward(
        self, params: Sequence[np.ndarray], X: np.ndarray, masks: bool = True
    ) -> np.ndarray:
        """Logits (K, B), batch axis last, of X (B, C·H·W) float32; fills the buffers, and
        with `masks` the pools' choices that the backward pass needs (scoring needs none)."""
        B, n = len(X), len(self.blocks)
        buf = self.buffers(B)
        A = buf.X  # (C₀, H, W, B)
        np.copyto(A, X.reshape(B, *self.in_shape).transpose(1, 2, 3, 0))
        for l, s in enumerate(self.blocks):
            A = self._block_forward(
                buf, l, s, params[2 * l], params[2 * l + 1], A, masks
            )
        A = A.reshape(-1, B)  # (C·H''·W'', B), rows in torch's flatten order (c, h, w)
        for m, out in enumerate(buf.A):
            W, b = params[2 * n + 2 * m], params[2 * n + 2 * m + 1]
            np.matmul(W, A, out=out)  # Z = W A (n_out, B)
            out += b[:, None]  # + b
            if m < len(buf.A) - 1:
                np.maximum(out, 0, out=out)  # ReLU, in place
            A = out
        return A  # (K, B) logits

    def logits(
        self, params: Sequence[np.ndarray], X: np.ndarray, chunk: int = 64
    ) -> np.ndarray:
        """Logits (N, K) of X (N, C·H·W) float32, `chunk` images at a time. Small chunks
        keep the buffers in cache (and share the training batch's): 10,000 images of the
        8/16 net took 0.13 s by 64, 0.18 s by 256 on one thread."""
        out = np.empty((len(X), self.classes), np.float32)  # (N, K)
        for i in range(0, len(X), chunk):
            out[i : i + chunk] = self.forward(params, X[i : i + chunk], masks=False).T
        return out

    def _block_forward(self, buf, l, s, W, b, A, masks):
        """A (C_in, H, W, B) -> pooled ReLU output (C_out, H'', W'', B)."""
        (ho, wo), (hp, wp) = s.conv, s.pooled
        col, Z = buf.col[l], buf.Z[l]  # (C_in, k, k, H', W', B), (C_out, H', W', B)
        win = sliding_window_view(A, (ho, wo), axis=(1, 2))  # (C_in, k, k, B, H', W')
        # col[c, i, j] = A[c, i:i+H', j:j+W'], each a copy with runs of W'·B floats
        np.copyto(col, win.transpose(0, 1, 2, 4, 5, 3))
        colm = col.reshape(s.c_in * s.k * s.k, -1)  # (C_in·k·k, H'·W'·B)
        np.matmul(W.reshape(s.c_out, -1), colm, out=Z.reshape(s.c_out, -1))  # Z = W col
        Zc = Z[:, : 2 * hp, : 2 * wp]  # (C_out, 2H'', 2W'', B), an odd edge dropped
        M, fR, P, fD = buf.M[l], buf.fR[l], buf.P[l], buf.fD[l]
        if masks:
            np.greater(
                Zc[:, :, 1::2], Zc[:, :, 0::2], out=fR
            )  # right > left: ties left
        np.maximum(Zc[:, :, 0::2], Zc[:, :, 1::2], out=M)  # (C_out, 2H'', W'', B)
        if masks:
            np.greater(M[:, 1::2], M[:, 0::2], out=fD)  # bottom > top: ties go up
        np.maximum(M[:, 0::2], M[:, 1::2], out=P)  # (C_out, H'', W'', B) pooled
        P += b[:, None, None, None]  # + b after the pool
        np.maximum(P, 0, out=P)  # ReLU after the pool
        return P

    def loss_and_grads(
        self, params: Sequence[np.ndarray], X: np.ndarray, y: np.ndarray
    ) -> tuple[float, list[np.ndarray]]:
        """The batch-mean loss of X (B, C·H·W) with labels y (B,) ints, and its gradient
        with respect to every parameter, a list shaped like `params` (float32 arrays, in
        torch's order and shapes), overwritten by the next call: step before calling again."""
        B, n, g = len(X), len(self.blocks), self._grads
        buf = self.buffers(B)
        loss, dZ = loss_and_dlogits(self.forward(params, X), y, self.loss)  # dZ (K, B)
        ins = [buf.P[-1].reshape(-1, B), *buf.A[:-1]]  # dense layers' inputs (n_in, B)
        for m in reversed(range(len(buf.A))):
            W, A_in = params[2 * n + 2 * m], ins[m]
            np.matmul(dZ, A_in.T, out=g[2 * n + 2 * m])  # ∂L/∂W = dZ Aᵀ (n_out, n_in)
            np.sum(dZ, axis=1, out=g[2 * n + 2 * m + 1])  # ∂L/∂b = Σᵢ dZ[:, i] (n_out,)
            dA = W.T @ dZ  # ∂L/∂A = Wᵀ dZ (n_in, B)
            dZ = dA * (A_in > 0) if m > 0 else dA  # through the ReLU below (n_in, B)
        dA = dA.reshape(buf.P[-1].shape)  # (C, H'', W'', B), the last block's output
        for l in reversed(range(n)):
            dA = self._block_backward(buf, l, self.blocks[l], params[2 * l], g, dA)
        return loss, g

    def _block_backward(self, buf, l, s, W, g, dP):
        """dP = ∂L/∂(pooled ReLU output) (C_out, H'', W'', B) -> ∂L/∂A (C_in, H, W, B)."""
        (ho, wo), (hp, wp) = s.conv, s.pooled
        P, fD, fR, dM, dZ = buf.P[l], buf.fD[l], buf.fR[l], buf.dM[l], buf.dZ[l]
        dP = dP * (P > 0)  # through the ReLU (C_out, H'', W'', B)
        # ∂L/∂b = the sum of dP over positions and images (b was added after the pool)
        np.sum(dP.reshape(s.c_out, -1), axis=1, out=g[2 * l + 1])
        np.multiply(dP, fD, out=dM[:, 1::2])  # to the bottom row where it won
        np.subtract(dP, dM[:, 1::2], out=dM[:, 0::2])  # else to the top
        dZc = dZ[:, : 2 * hp, : 2 * wp]  # (C_out, 2H'', 2W'', B)
        np.multiply(dM, fR, out=dZc[:, :, 1::2])  # to the right column where it won
        np.subtract(dM, dZc[:, :, 1::2], out=dZc[:, :, 0::2])  # else to the left
        dZm = dZ.reshape(s.c_out, -1)  # (C_out, H'·W'·B)
        col = buf.col[l]  # (C_in, k, k, H', W', B)
        colm = col.reshape(s.c_in * s.k * s.k, -1)  # (C_in·k·k, H'·W'·B)
        np.matmul(dZm, colm.T, out=g[2 * l].reshape(s.c_out, -1))  # ∂L/∂W = dZ colᵀ
        if l == 0:
            return None  # the input's gradient is not needed
        np.matmul(W.reshape(s.c_out, -1).T, dZm, out=colm)  # dcol = Wᵀ dZ, over col
        dA = buf.dA[l]  # (C_in, H, W, B)
        dA.fill(0)
        for i in range(s.k):  # col2im: each window offset's share, added back in place
            for j in range(s.k):
                dA[:, i : i + ho, j : j + wo] += col[:, i, j]
        return dA
