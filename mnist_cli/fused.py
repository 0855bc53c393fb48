"""One SGD step, fused for speed: the equations of models.py, computed in place.

models.py states the math plainly, one function per equation; training runs it 600 times an
epoch on batches of 100, where each numpy call costs about as much as its arithmetic. So this
step computes the same numbers with as few calls as it can, in a layout chosen for them:

- Raw pixels and a constant column (the Ũ and Θ of models.py's notation). The batch arrives
  as Ũ = [U, 255] (B, D + 1), U the pixels 0..255 so that X = U / 255, and the parameters are
  held as Θ = [W, b] / 255 (K, D + 1). Then one product gives the logits with their bias,
      Θ Ũᵀ = (W Uᵀ)/255 + b 1ᵀ = W Xᵀ + b 1ᵀ = Zᵀ                                (K, B)
  and one product gives both parameter gradients,
      dZᵀ Ũ = [dZᵀ U, 255 dZᵀ 1] = 255 [∂L/∂W, ∂L/∂b]                             (K, D + 1)
  so plain SGD, [W, b] ← [W, b] − lr [∂L/∂W, ∂L/∂b], divided by 255 on both sides, is
      Θ ← Θ − (lr / 255²) dZᵀ Ũ.
- Transposed. Every (B, K) array of models.py is held as its (K, B) transpose, so the sums
  over the K classes of a sample run down the columns: K vectorised passes over B numbers.
  A sum over classes that is then divided or subtracted column by column is one product
  with a (K, K) matrix of ones, which puts each column's sum in all of its K rows: the
  division or subtraction is then between two (K, B) arrays, cheaper than broadcasting a
  (B,) row (this and c as a numpy scalar, Work.c, took the step from 1.32 × to 1.25 × its two
  products, measured on 600 batches of 100).
- In blocks of at most 100 rows. OpenBLAS multiplies small matrices (M·N·K up to about 10⁶
  here) with kernels made for them, 2-3× faster per row than its general ones: 10 × 100 × 785
  is small, 10 × 128 × 785 is not. So a larger batch is worked through in blocks of
  BLOCK_ROWS rows, each block's c·dZᵀ Ũ added up before the one update (the rows of a batch
  are independent until their gradients are summed, and a block's rows, read twice, are
  still in the cache the second time): a batch of 1,000 then costs about what ten batches
  of 100 do, not twice as much. A batch too large to gather at once arrives in pieces of
  whole blocks (batches.py), and streamed_sgd_step sums their blocks in the same order.

Notation of models.py: Z = XWᵀ + b, S = softmax(Z), G = ∂L/∂Ŷ = (2/B)(Ŷ − Y), dZ = ∂L/∂Z.
The softmax model may instead minimise the cross-entropy (mlp.py): then dZ = (S − Y)/B.
tests/test_fused.py checks this step against models.loss_and_gradients and models.sgd_step,
and the cross-entropy step against mlp.loss_and_layer_grads (one layer).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

# the step's numpy functions by their own names: it makes ~15 calls a batch, 600 batches an
# epoch, and an `np.` attribute lookup costs ~0.1 µs of the 0.4-1 µs each small call takes
# (measured: the step 1.25 → 1.22 × its two products at batch 100, 1.53 → 1.42 × at 32)
from numpy import add, divide, dot, exp, log, matmul, maximum, multiply, subtract, vdot

from mnist_cli.mlp import Loss
from mnist_cli.models import K, ModelKind, Params

S = TypeVar("S")  # a block's scratch arrays (this module's Scratch, or fused_mlp's)

PIXEL = 255.0  # X = U / PIXEL, and Ũ's constant column

BLOCK_ROWS = 100  # rows per block: 10 × 100 × 785 stays within OpenBLAS's small kernels


@dataclass(frozen=True)
class Scratch:
    """The arrays a block of m rows writes into."""

    Zt: np.ndarray  # (K, m) Zᵀ, then Ŷᵀ
    Gt: np.ndarray  # (K, m) (Ŷ − Y)ᵀ, then c·dZᵀ
    Tt: np.ndarray  # (K, m) scratch
    Rt: np.ndarray  # (K, m) a sum over each sample's classes, in all K rows
    row: np.ndarray  # (m,) one number per sample
    # (K, K) ones: ones @ At (K, m) puts the sum over each column of At in all K rows (see
    # "Transposed" above): 0.8 µs for 10 × 10 × 100, and a divide or subtract then costs
    # 0.7 µs less than with a broadcast (m,) row
    ones: np.ndarray

    @classmethod
    def for_rows(cls, m: int) -> "Scratch":
        def km() -> np.ndarray:
            return np.empty((K, m), np.float32)

        ones = np.ones((K, K), np.float32)
        return cls(km(), km(), km(), km(), np.empty(m, np.float32), ones)


@dataclass(frozen=True)
class Work:
    """The arrays a step writes into, allocated once for a run: one Scratch per block size
    (BLOCK_ROWS, and a last block's if smaller) and two (K, D + 1) gradients. A piece of m
    rows is cut into blocks once per m (`blocks_of`); `blocks` are those of for_batch's B."""

    blocks: tuple[tuple[slice, Scratch], ...]  # each block's rows and its arrays
    grad: np.ndarray  # (K, D + 1) a block's c·dZᵀ Ũ
    total: np.ndarray  # (K, D + 1) the batch's, summed over its blocks
    scratch: dict[int, Scratch]  # block rows -> its arrays
    layouts: dict[int, tuple[tuple[slice, Scratch], ...]]  # piece rows -> its blocks
    # () float32: the step's c, set once a step (a numpy scalar array multiplies a (K, m)
    # array faster than a Python float, which numpy must convert on every call)
    c: np.ndarray

    @classmethod
    def for_batch(cls, B: int, D1: int) -> "Work":
        grad, total = np.empty((K, D1), np.float32), np.empty((K, D1), np.float32)
        work = cls((), grad, total, {}, {}, np.zeros((), np.float32))
        object.__setattr__(work, "blocks", work.blocks_of(B))  # frozen: set once, here
        return work

    def blocks_of(self, m: int) -> tuple[tuple[slice, Scratch], ...]:
        """The blocks of a piece of m rows: BLOCK_ROWS rows each, the last maybe fewer."""
        if m not in self.layouts:
            self.layouts[m] = block_layout(m, self.scratch, Scratch.for_rows)
        return self.layouts[m]


def block_layout(
    m: int, scratch: dict[int, S], make: Callable[[int], S]
) -> tuple[tuple[slice, S], ...]:
    """(rows, arrays) for each block of a piece of m rows: BLOCK_ROWS rows each, the last maybe
    fewer; the arrays of a block size are made once, by make(rows), and kept in `scratch`."""
    blocks = []
    for start in range(0, m, BLOCK_ROWS):
        rows = min(BLOCK_ROWS, m - start)
        if rows not in scratch:
            scratch[rows] = make(rows)
        blocks.append((slice(start, start + rows), scratch[rows]))
    return tuple(blocks)


def to_theta(params: Params) -> np.ndarray:
    """Θ = [W, b] / 255, (K, D + 1) float32."""
    return (np.hstack([params.W, params.b[:, None]]) / PIXEL).astype(np.float32)


def from_theta(theta: np.ndarray) -> Params:
    """[W, b] = 255 Θ, back to the Params of models.py."""
    Wb = theta * np.float32(PIXEL)  # (K, D + 1)
    return Params(W=np.ascontiguousarray(Wb[:, :-1]), b=Wb[:, -1].copy())


def fused_sgd_step(
    kind: ModelKind,
    theta: np.ndarray,
    U1: np.ndarray,
    Yt: np.ndarray,
    lr: float,
    work: Work,
    loss: Loss = "squared",
) -> float:
    """Update Θ (K, D + 1) in place by one SGD step on the batch U1 = Ũ (B, D + 1) with one-hot
    targets Yᵀ (K, B); return the batch loss before the step (NaN or inf if it diverged):
    L = (1/B) Σᵢ ‖ŷᵢ − yᵢ‖², or for loss "cross-entropy" (softmax only) L = −(1/B) Σᵢ log Sᵢ,yᵢ.
    models.sgd_step of models.loss_and_gradients (or mlp.cross_entropy_grad_logits), in Θ's
    layout."""
    return streamed_sgd_step(kind, theta, ((U1, Yt),), len(U1), lr, work, loss)


def streamed_sgd_step(
    kind: ModelKind,
    theta: np.ndarray,
    pieces: Iterable[tuple[np.ndarray, np.ndarray]],
    B: int,
    lr: float,
    work: Work,
    loss: Loss = "squared",
) -> float:
    """fused_sgd_step on a batch of B rows that arrives in pieces (Ũ (m, D + 1), Yᵀ (K, m)),
    their m adding up to B: each piece is used before the next is asked for, so a large batch
    never needs to be in memory whole (batches.py streams it). Every piece but the last has a
    whole number of blocks, so the blocks, and the order their gradients are summed in, are
    those of the batch in one piece: the same step, bit for bit."""
    if loss == "cross-entropy" and kind != "softmax":
        raise ValueError("cross-entropy needs a softmax output; linear has none")
    # c = −lr (2/B) / 255²: G's 2/B (models.loss_grad_output), SGD's −lr, Θ's 1/255²;
    # cross-entropy's dZ = (S − Y)/B has 1/B
    work.c[()] = -lr * (2.0 if loss == "squared" else 1.0) / B / PIXEL**2
    total = 0.0
    first = True  # the first block writes the total itself
    for U1, Yt in pieces:
        for rows, scratch in work.blocks_of(len(U1)):
            out = work.total if first else work.grad
            total += scaled_gradient(
                kind, theta, U1[rows], Yt[:, rows], work.c, scratch, out, loss
            )
            if not first:
                add(work.total, work.grad, out=work.total)  # Σ over the blocks
            first = False
    add(theta, work.total, out=theta)  # Θ ← Θ − (lr/255²) dZᵀ Ũ  (models.sgd_step)
    return total / B  # (1/B) Σᵢ ‖ŷᵢ − yᵢ‖² or −(1/B) Σᵢ log Sᵢ,yᵢ


def scaled_gradient(
    kind: ModelKind,
    theta: np.ndarray,
    U1: np.ndarray,
    Yt: np.ndarray,
    c: np.ndarray,
    scratch: Scratch,
    out: np.ndarray,
    loss: Loss = "squared",
) -> float:
    """out = −(lr/255²) dZᵀ Ũ (K, D + 1) over the rows U1 = Ũ (m, D + 1), Yᵀ (K, m) of a
    batch of B, with c = −lr (2/B) / 255² (cross-entropy: −lr (1/B) / 255²) for the whole
    batch, a () float32 array; return the rows' Σᵢ ‖ŷᵢ − yᵢ‖² (cross-entropy: −Σᵢ log Sᵢ,yᵢ).
    """
    s = scratch
    Zt, Gt, Tt, Rt, ones, rs = s.Zt, s.Gt, s.Tt, s.Rt, s.ones, s.row
    matmul(theta, U1.T, out=Zt)  # (K, m) Zᵀ = Θ Ũᵀ = W Xᵀ + b 1ᵀ  (models.logits)
    if kind == "softmax":  # (K, m) Sᵀ                              (models.softmax)
        maximum.reduce(Zt, axis=0, out=rs)  # (m,) row max of Z: exp cannot overflow
        subtract(Zt, rs, out=Zt)  # (K, m) Z − max, every entry ≤ 0
        if loss == "cross-entropy":
            picked = float(vdot(Yt, Zt))  # Σᵢ (zᵢ,yᵢ − maxᵢ)
        exp(Zt, out=Zt)  # (K, m) in (0, 1]
        dot(ones, Zt, out=Rt)  # (K, m) Σₖ exp in every row, ≥ 1
        if loss == "cross-entropy":  # −log Sᵢ,yᵢ = log Σₖ exp(zₖ − max) − (zᵢ,yᵢ − max)
            log(Rt[0], out=rs)  # (m,) ≥ 0: never log 0               (mlp.log_softmax)
            entropy = float(rs.sum()) - picked
        divide(Zt, Rt, out=Zt)  # (K, m) Sᵀ, columns sum to 1
    subtract(Zt, Yt, out=Gt)  # (K, m) (Ŷ − Y)ᵀ
    # cross-entropy: dZ = (S − Y)/B, no ⟨G, S⟩ term             (mlp.cross_entropy_grad_logits)
    if loss == "cross-entropy":
        multiply(Gt, c, out=Gt)  # (K, m) −(lr/255²) dZᵀ
        matmul(Gt, U1, out=out)  # (K, D + 1) −(lr/255²) dZᵀ Ũ
        return entropy
    squares = float(vdot(Gt, Gt))  # Σᵢ ‖ŷᵢ − yᵢ‖²
    if kind == "softmax":  # dZ = S ⊙ (G − ⟨G, S⟩)  (models.softmax_backward)
        multiply(Gt, Zt, out=Tt)  # (K, m)
        dot(ones, Tt, out=Rt)  # (K, m) ⟨ŷᵢ − yᵢ, sᵢ⟩ in every row
        subtract(Gt, Rt, out=Gt)  # (K, m)
        multiply(Gt, Zt, out=Gt)  # (K, m) (B/2) dZᵀ
    multiply(Gt, c, out=Gt)  # (K, m) c (B/2) dZᵀ = −(lr/255²) dZᵀ
    matmul(Gt, U1, out=out)  # (K, D + 1) −(lr/255²) dZᵀ Ũ  (models.param_grads)
    return squares
