"""The gradients of a dense network, fused for speed: nn/'s equations computed in place.

At batches of 100 each numpy call costs about as much as its arithmetic, so this computes
nn/'s gradients of any dense network (L ≥ 1 layers, identity or softmax output, either loss)
with as few calls as it can, in the layout they need, for the optimizer:

- The bias as a column. Every layer is held as Θ_l = [W_l, b_l] (n_l, n_{l−1} + 1), the
  parameters the optimizer steps, and each hidden layer's output with a row of ones below it,
  Ãᵀ_l = [A_lᵀ; 1ᵀ] (n_l + 1, B). Then one product gives a layer's pre-activations with their
  bias, Z_lᵀ = Θ_l Ãᵀ_{l−1}, and one both its gradients, dZ_lᵀ Ã_{l−1} = [dW_l, db_l];
  dA_{l−1}ᵀ = W_lᵀ dZ_lᵀ reads W_l as a view.
- The pixels as they are. The batch arrives as Ũ = [U, 255] (B, D + 1), the raw pixels cast to
  float32 and a column of 255 (X = U / 255 is never formed: dividing the B × D pixels costs more
  than the products); 1/255 multiplies the small (n₁, B) arrays instead:
      Z₁ᵀ = (Θ₁ Ũᵀ) / 255 = W₁ Xᵀ + b₁ 1ᵀ,      [dW₁, db₁] = (dZ₁ᵀ / 255) Ũ.
- Scaled once. The backward pass is linear in dZ_L, so the loss's factor (2/B or 1/B) and the
  caller's `scale` multiply the small (K, B) array once: with scale −lr (plain SGD) every
  product is directly the layer's update.
- Transposed. Every (B, n) array of nn/ is held as its (n, B) transpose, so a sum over a
  sample's K classes runs down the columns, one product with a vector of ones.
- In blocks of at most BLOCK_ROWS rows (OpenBLAS's kernels for small matrices are faster per
  row), each block's gradients added up; a batch too large to gather at once arrives in pieces
  of whole blocks (fast/batches.py), summed in the same order: the same gradients, bit for bit.

Activations are applied in place into Ãᵀ_l and act′ taken from A_l alone (relu: A > 0, sigmoid:
A(1 − A), tanh: 1 − A²). tests/test_fast_dense.py checks every gradient against nn/'s.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mnist_cli.nn import K
from mnist_cli.nn.layers import Activation, Params
from mnist_cli.nn.losses import Loss, Output, check_pairing

BLOCK_ROWS = 100  # rows per block: 10 × 100 × 785 stays within OpenBLAS's small kernels
PIXEL = 255.0  # X = U / PIXEL, and Ũ's constant column
INV_PIXEL = np.float32(1 / PIXEL)


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
    row: np.ndarray  # (m,) one number per sample
    ones: np.ndarray  # (K,) ones @ Aᵀ sums each column of A

    @classmethod
    def for_rows(cls, m: int, hidden: tuple[int, ...]) -> "Scratch":
        At = [np.empty((n + 1, m), np.float32) for n in hidden]
        for n, A in zip(hidden, At):
            A[n] = 1.0  # the row of ones, written once
        hm = [(n, m) for n in hidden]
        km = [np.empty((K, m), np.float32) for _ in range(3)]
        return cls(
            tuple(At),
            tuple(np.empty(shape, np.float32) for shape in hm),
            tuple(np.empty(shape, np.float32) for shape in hm),
            tuple(np.empty(shape, bool) for shape in hm),
            *km,
            row=np.empty(m, np.float32),
            ones=np.ones(K, np.float32),
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
    the batch loss ℒ over B rows that arrive in pieces (Ũ (m, D + 1), Yᵀ (K, m)), their m adding
    up to B, each used before the next is asked for; returns ℒ before any step (NaN or inf if
    the weights diverged): (1/B) Σᵢ ‖ŷᵢ − yᵢ‖² or −(1/B) Σᵢ log Sᵢ,yᵢ."""
    # c = scale × ℒ's factor: G = (2/B)(Ŷ − Y) for squared, dZ = (S − Y)/B for cross-entropy
    work.c[()] = scale * (2.0 if work.loss == "squared" else 1.0) / B
    total = 0.0
    first = True  # the first block writes the totals themselves
    for U1, Yt in pieces:
        blocks = work.blocks_of(len(U1))
        for rows, s in blocks:
            U_b, Yt_b = (U1, Yt) if len(blocks) == 1 else (U1[rows], Yt[:, rows])
            total += block_gradients(
                thetas, U_b, Yt_b, work, s, work.totals if first else work.grads
            )
            if not first:
                for tot, grad in zip(work.totals, work.grads):
                    np.add(tot, grad, out=tot)  # Σ over the blocks
            first = False
    return total / B


def output_grad(work: DenseWork, Yt: np.ndarray, s: Scratch) -> float:
    """From s.Zt = Zᵀ (K, m): s.Gt = c·(B/f)·dZᵀ, f the loss's factor 2 or 1 (so c·that = scale
    × dZᵀ, c holding f/B); returns the rows' summed loss, Σᵢ ‖ŷᵢ − yᵢ‖² or −Σᵢ log Sᵢ,yᵢ.
    The softmax is losses.softmax, transposed and in place: a sum over a sample's classes is
    a product with a (K,) vector of ones, which a column-wise divide or subtract broadcasts."""
    Zt, Gt, Tk, ones, row = s.Zt, s.Gt, s.Tk, s.ones, s.row
    softmax, entropy = work.output == "softmax", work.loss == "cross-entropy"
    if softmax:
        np.maximum.reduce(Zt, axis=0, out=row)  # (m,) each sample's max logit
        np.subtract(Zt, row, out=Zt)  # (K, m) Z − max ≤ 0: exp cannot overflow
        if entropy:
            picked = float(np.vdot(Yt, Zt))  # Σᵢ (z_{i,yᵢ} − maxᵢ)
        np.exp(Zt, out=Zt)  # (K, m) in (0, 1]
        np.dot(ones, Zt, out=row)  # (m,) Σₖ exp(zₖ − max), ≥ 1
        if (
            entropy
        ):  # −log S_{i,yᵢ} = log Σₖ exp(zₖ − max) − (z_{i,yᵢ} − max), never log 0
            summed = float(np.log(row).sum()) - picked  # (losses.log_softmax)
        np.divide(Zt, row, out=Zt)  # (K, m) Sᵀ, columns sum to 1
    np.subtract(Zt, Yt, out=Gt)  # (K, m) (Ŷ − Y)ᵀ: B dZᵀ for cross-entropy
    if not entropy:
        summed = float(np.vdot(Gt, Gt))  # Σᵢ ‖ŷᵢ − yᵢ‖²
        if (
            softmax
        ):  # dZ = S ⊙ (G − ⟨G, S⟩)                    (losses.softmax_backward)
            np.multiply(Gt, Zt, out=Tk)  # (K, m)
            np.dot(ones, Tk, out=row)  # (m,) ⟨ŷᵢ − yᵢ, sᵢ⟩
            np.subtract(Gt, row, out=Gt)  # (K, m)
            np.multiply(Gt, Zt, out=Gt)  # (K, m) (B/2) dZᵀ
    np.multiply(Gt, work.c, out=Gt)  # (K, m) scale × dZᵀ
    return summed


def block_gradients(
    thetas: tuple[np.ndarray, ...],
    U1: np.ndarray,
    Yt: np.ndarray,
    work: DenseWork,
    s: Scratch,
    outs: tuple[np.ndarray, ...],
) -> float:
    """outs[l] = scale × [dW_l, db_l] from the rows Ũ (m, D + 1), Yᵀ (K, m) of a batch of B;
    returns the rows' summed loss."""
    act, L = work.activation, len(thetas)
    # forward: Z_lᵀ = Θ_l Ãᵀ_{l−1} (n_l, m), A_l = act(Z_l) in place    (layers.Dense, layers.Act)
    below = U1.T  # (D + 1, m) Ũᵀ
    for l in range(L - 1):
        H = s.At[l][: thetas[l].shape[0]]  # (n_l, m) the view above the row of ones
        np.matmul(thetas[l], below, out=H)  # (n_l, m) Z_lᵀ (255 Z₁ᵀ for l = 1)
        if l == 0:
            np.multiply(H, INV_PIXEL, out=H)  # (n₁, m) Z₁ᵀ = (Θ₁ Ũᵀ) / 255
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
    if L == 1:
        np.multiply(s.Zt, INV_PIXEL, out=s.Zt)  # (K, m) Zᵀ = (Θ Ũᵀ) / 255
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
    np.multiply(dZt, INV_PIXEL, out=dZt)  # (n₁, m) scale × dZ₁ᵀ / 255
    np.matmul(dZt, U1, out=outs[0])  # (n₁, D + 1) (dZ₁ᵀ / 255) Ũ = [dW₁, db₁]
    return summed
