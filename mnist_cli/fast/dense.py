"""The gradients of a dense network, fused for speed: nn/'s equations computed in place.

nn/ states the math plainly, one function per equation; training runs it 600 times an epoch on
batches of 100, where each numpy call costs about as much as its arithmetic. This computes the
same gradients of any dense network (L ≥ 1 layers, identity or softmax output, either loss)
with as few calls as it can, in the layout they need, and hands them to the optimizer:

- The bias as a column. The batch arrives as X̃ = [X, 1] (B, D + 1) (fast/batches.py divides the
  pixels by 255 in its own thread), every layer is held as Θ_l = [W_l, b_l] (n_l, n_{l−1} + 1),
  and each hidden layer's output with a row of ones below it, Ãᵀ_l = [A_lᵀ; 1ᵀ] (n_l + 1, B).
  Then one product gives a layer's pre-activations with their bias, Z_lᵀ = Θ_l Ãᵀ_{l−1}, and one
  both its gradients, dZ_lᵀ Ã_{l−1} = [dW_l, db_l]; dA_{l−1}ᵀ = W_lᵀ dZ_lᵀ reads W_l as a view.
- Scaled once. The backward pass is linear in dZ_L, so the loss's factor (2/B or 1/B) and the
  caller's `scale` multiply the small (K, B) array once: with scale −lr (plain SGD) every
  product is directly the layer's update.
- Transposed. Every (B, n) array of nn/ is held as its (n, B) transpose, so a sum over a
  sample's K classes runs down the columns; a sum that is then divided or subtracted column by
  column is one product with a (K, K) matrix of ones, which leaves each column's sum in all K
  rows, so that the divide or subtract is between two (K, B) arrays, not a broadcast row.
- In blocks of at most BLOCK_ROWS rows: OpenBLAS multiplies small matrices with kernels made
  for them, faster per row than its general ones, so a larger batch is worked through in
  blocks, each block's gradients added up (the rows are independent until they are summed).
  A batch too large to gather at once arrives in pieces of whole blocks (fast/batches.py),
  and their blocks are summed in the same order: the same gradients, bit for bit.

Activations are applied in place into Ãᵀ_l, and act′ is taken from A_l alone (relu: A > 0,
sigmoid: A(1 − A), tanh: 1 − A²), so the hidden Z_l are never stored. tests/test_fast_dense.py
checks every gradient against nn/network.py's in float64.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mnist_cli.nn import K
from mnist_cli.nn.layers import Activation, Params
from mnist_cli.nn.losses import Loss, Output, check_pairing

BLOCK_ROWS = 100  # rows per block: 10 × 100 × 785 stays within OpenBLAS's small kernels


def to_thetas(params: Iterable[Params]) -> tuple[np.ndarray, ...]:
    """Θ_l = [W_l, b_l] (n_l, n_{l−1} + 1) float32, C-contiguous, for each dense layer."""
    return tuple(
        np.ascontiguousarray(np.hstack([p.W, p.b[:, None]]), np.float32) for p in params
    )


def from_thetas(thetas: Iterable[np.ndarray]) -> tuple[Params, ...]:
    """(W_l, b_l) back from each Θ_l = [W_l, b_l] (new arrays)."""
    return tuple(
        Params(W=np.ascontiguousarray(t[:, :-1]), b=t[:, -1].copy()) for t in thetas
    )


@dataclass(frozen=True)
class Scratch:
    """The arrays a block of m rows writes into; hidden layers have one each of At, dAt, Tt,
    mask."""

    At: tuple[np.ndarray, ...]  # (n_l + 1, m) Ãᵀ_l = [A_lᵀ; 1ᵀ], the last row ones
    dAt: tuple[np.ndarray, ...]  # (n_l, m) dA_lᵀ, then the scaled dZ_lᵀ
    Tt: tuple[np.ndarray, ...]  # (n_l, m) act′(Z_l)
    mask: tuple[np.ndarray, ...]  # (n_l, m) bool, A_l > 0 (relu)
    Zt: np.ndarray  # (K, m) Zᵀ, then Ŷᵀ
    Gt: np.ndarray  # (K, m) (Ŷ − Y)ᵀ, then the scaled dZᵀ
    Tk: np.ndarray  # (K, m) scratch
    Rt: np.ndarray  # (K, m) a sum over each sample's classes, in all K rows
    row: np.ndarray  # (m,) one number per sample
    ones: np.ndarray  # (K, K) ones @ Aᵀ puts each column's sum in all K rows

    @classmethod
    def for_rows(cls, m: int, hidden: tuple[int, ...]) -> "Scratch":
        At = [np.empty((n + 1, m), np.float32) for n in hidden]
        for n, A in zip(hidden, At):
            A[n] = 1.0  # the row of ones, written once
        hm = [(n, m) for n in hidden]
        km = [np.empty((K, m), np.float32) for _ in range(4)]
        return cls(
            tuple(At),
            tuple(np.empty(shape, np.float32) for shape in hm),
            tuple(np.empty(shape, np.float32) for shape in hm),
            tuple(np.empty(shape, bool) for shape in hm),
            *km,
            row=np.empty(m, np.float32),
            ones=np.ones((K, K), np.float32),
        )


@dataclass(frozen=True)
class DenseWork:
    """What a run's steps write into, allocated once: a Scratch per block size, per layer two
    arrays shaped like Θ_l (a block's gradient, the batch's sum), and the () float32 factor c
    (a numpy scalar multiplies a (K, m) array faster than a Python float, converted per call)."""

    activation: Activation | None
    output: Output
    loss: Loss
    hidden: tuple[int, ...]  # n_1, …, n_{L−1}
    grads: tuple[np.ndarray, ...]  # (n_l, n_{l−1} + 1) a block's scaled [dW_l, db_l]
    totals: tuple[np.ndarray, ...]  # (n_l, n_{l−1} + 1) the batch's, summed over blocks
    c: np.ndarray  # () float32: scale × the loss's 2/B or 1/B
    scratch: dict[int, Scratch]  # block rows -> its arrays
    layouts: dict[int, tuple[tuple[slice, Scratch], ...]]  # piece rows -> its blocks

    @classmethod
    def for_thetas(
        cls,
        thetas: tuple[np.ndarray, ...],
        activation: Activation | None,
        output: Output,
        loss: Loss,
    ) -> "DenseWork":
        check_pairing(output, loss)  # no cross-entropy on an identity output
        hidden = tuple(t.shape[0] for t in thetas[:-1])
        grads = tuple(np.empty_like(t) for t in thetas)
        totals = tuple(np.empty_like(t) for t in thetas)
        c = np.zeros((), np.float32)
        return cls(activation, output, loss, hidden, grads, totals, c, {}, {})

    def blocks_of(self, m: int) -> tuple[tuple[slice, Scratch], ...]:
        """The blocks of a piece of m rows: BLOCK_ROWS rows each, the last maybe fewer."""
        if m not in self.layouts:
            blocks = []
            for start in range(0, m, BLOCK_ROWS):
                rows = min(BLOCK_ROWS, m - start)
                if rows not in self.scratch:
                    self.scratch[rows] = Scratch.for_rows(rows, self.hidden)
                blocks.append((slice(start, start + rows), self.scratch[rows]))
            self.layouts[m] = tuple(blocks)
        return self.layouts[m]


def gradients(
    thetas: tuple[np.ndarray, ...],
    pieces: Iterable[tuple[np.ndarray, np.ndarray]],
    B: int,
    scale: float,
    work: DenseWork,
) -> float:
    """work.totals[l] = scale × [dW_l, db_l] (n_l, n_{l−1} + 1) for every layer, the gradient of
    the batch loss ℒ over B rows that arrive in pieces (X̃ (m, D + 1), Yᵀ (K, m)), their m adding
    up to B, each used before the next is asked for; returns ℒ before any step (NaN or inf if
    the weights diverged): (1/B) Σᵢ ‖ŷᵢ − yᵢ‖² or −(1/B) Σᵢ log Sᵢ,yᵢ."""
    # c = scale × ℒ's factor: G = (2/B)(Ŷ − Y) for squared, dZ = (S − Y)/B for cross-entropy
    work.c[()] = scale * (2.0 if work.loss == "squared" else 1.0) / B
    total = 0.0
    first = True  # the first block writes the totals themselves
    for X1, Yt in pieces:
        blocks = work.blocks_of(len(X1))
        for rows, s in blocks:
            X_b, Yt_b = (X1, Yt) if len(blocks) == 1 else (X1[rows], Yt[:, rows])
            total += block_gradients(
                thetas, X_b, Yt_b, work, s, work.totals if first else work.grads
            )
            if not first:
                for tot, grad in zip(work.totals, work.grads):
                    np.add(tot, grad, out=tot)  # Σ over the blocks
            first = False
    return total / B


def output_grad(work: DenseWork, Yt: np.ndarray, s: Scratch) -> float:
    """From s.Zt = Zᵀ (K, m): s.Gt = c·(B/f)·dZᵀ, f the loss's factor 2 or 1 (so c·that = scale
    × dZᵀ, c holding f/B); returns the rows' summed loss, Σᵢ ‖ŷᵢ − yᵢ‖² or −Σᵢ log Sᵢ,yᵢ.
    The softmax is losses.softmax, transposed and in place."""
    Zt, Gt, Tk, Rt, ones, row = s.Zt, s.Gt, s.Tk, s.Rt, s.ones, s.row
    softmax = work.output == "softmax"
    if softmax:
        np.maximum.reduce(Zt, axis=0, out=row)  # (m,) each sample's max logit
        np.subtract(
            Zt, row, out=Zt
        )  # (K, m) Z − max, every entry ≤ 0: exp cannot overflow
        if work.loss == "cross-entropy":
            picked = float(np.vdot(Yt, Zt))  # Σᵢ (z_{i,yᵢ} − maxᵢ)
        np.exp(Zt, out=Zt)  # (K, m) in (0, 1]
        np.dot(ones, Zt, out=Rt)  # (K, m) Σₖ exp in every row, ≥ 1
        if (
            work.loss == "cross-entropy"
        ):  # −log S_{i,yᵢ} = log Σₖ exp(zₖ − max) − (z_{i,yᵢ} − max)
            np.log(
                Rt[0], out=row
            )  # (m,) ≥ 0: never log 0            (losses.log_softmax)
            summed = float(row.sum()) - picked
        np.divide(Zt, Rt, out=Zt)  # (K, m) Sᵀ, columns sum to 1
    np.subtract(Zt, Yt, out=Gt)  # (K, m) (Ŷ − Y)ᵀ: B dZᵀ for cross-entropy
    if work.loss == "squared":
        summed = float(np.vdot(Gt, Gt))  # Σᵢ ‖ŷᵢ − yᵢ‖²
        if (
            softmax
        ):  # dZ = S ⊙ (G − ⟨G, S⟩)                       (losses.softmax_backward)
            np.multiply(Gt, Zt, out=Tk)  # (K, m)
            np.dot(ones, Tk, out=Rt)  # (K, m) ⟨ŷᵢ − yᵢ, sᵢ⟩ in every row
            np.subtract(Gt, Rt, out=Gt)  # (K, m)
            np.multiply(Gt, Zt, out=Gt)  # (K, m) (B/2) dZᵀ
    np.multiply(Gt, work.c, out=Gt)  # (K, m) scale × dZᵀ
    return summed


def block_gradients(
    thetas: tuple[np.ndarray, ...],
    X1: np.ndarray,
    Yt: np.ndarray,
    work: DenseWork,
    s: Scratch,
    outs: tuple[np.ndarray, ...],
) -> float:
    """outs[l] = scale × [dW_l, db_l] from the rows X̃ (m, D + 1), Yᵀ (K, m) of a batch of B;
    returns the rows' summed loss."""
    act, L = work.activation, len(thetas)
    # forward: Z_lᵀ = Θ_l Ãᵀ_{l−1} (n_l, m), A_l = act(Z_l) in place    (layers.Dense, layers.Act)
    below = X1.T  # (D + 1, m) X̃ᵀ
    for l in range(L - 1):
        H = s.At[l][: thetas[l].shape[0]]  # (n_l, m) the view above the row of ones
        np.matmul(thetas[l], below, out=H)  # (n_l, m) Z_lᵀ
        if act == "relu":
            np.maximum(H, 0, out=H)
        elif act == "sigmoid":  # σ(z) = (1 + tanh(z/2)) / 2
            np.multiply(H, 0.5, out=H)
            np.tanh(H, out=H)
            np.multiply(H, 0.5, out=H)
            np.add(H, 0.5, out=H)
        else:
            np.tanh(H, out=H)
        below = s.At[l]  # (n_l + 1, m) Ãᵀ_l
    np.matmul(thetas[-1], below, out=s.Zt)  # (K, m) Zᵀ
    summed = output_grad(work, Yt, s)
    # backward, from the top                                             (network.backward)
    dZt = s.Gt  # (n_l, m) scale × dZ_lᵀ
    for l in range(L - 1, 0, -1):
        np.matmul(dZt, s.At[l - 1].T, out=outs[l])  # (n_l, n_{l−1} + 1) dZ_lᵀ Ã_{l−1}
        n = thetas[l - 1].shape[0]
        H, dA, T = s.At[l - 1][:n], s.dAt[l - 1], s.Tt[l - 1]  # (n_{l−1}, m) each
        np.matmul(
            thetas[l][:, :n].T, dZt, out=dA
        )  # (n_{l−1}, m) dA_{l−1}ᵀ = W_lᵀ dZ_lᵀ
        if act == "relu":  # act′ = 1 where A > 0, else 0 (0 at z = 0)
            np.greater(H, 0, out=s.mask[l - 1])
            np.multiply(dA, s.mask[l - 1], out=dA)
        else:
            np.multiply(H, H, out=T)  # (n_{l−1}, m) A²
            if act == "sigmoid":
                np.subtract(H, T, out=T)  # A(1 − A)
            else:
                np.subtract(1, T, out=T)  # 1 − A²
            np.multiply(dA, T, out=dA)
        dZt = dA  # (n_{l−1}, m) scale × dZ_{l−1}ᵀ
    np.matmul(dZt, X1, out=outs[0])  # (n₁, D + 1) dZ₁ᵀ X̃
    return summed
