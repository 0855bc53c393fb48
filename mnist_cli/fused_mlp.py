"""One SGD step of the mlp, fused for speed: the equations of mlp.py, computed in place.

The same three rewritings as fused.py's (see its docstring and docs/derivations.md, section 10),
carried through every layer:

- Constant columns. The batch arrives as X̃ = [U, 255] (B, D + 1), U the raw pixels, and the
  first layer is held as Θ₁ = [W₁, b₁] / 255 (n₁, D + 1), so Θ₁ X̃ᵀ = Z₁ᵀ. Each hidden layer's
  activations are held with a row of ones below them, Ãᵀ_l = [A_lᵀ; 1ᵀ] (n_l + 1, B), and the
  layers above as Θ_l = [W_l, b_l] (n_l, n_{l−1} + 1), so Θ_l Ãᵀ_{l−1} = Z_lᵀ: one product per
  layer gives the pre-activations with their bias, and one the weight and bias gradients,
      dZ_lᵀ Ã_{l−1} = [∂L/∂W_l, ∂L/∂b_l]            (l ≥ 2)
      dZ₁ᵀ X̃ = 255 [∂L/∂W₁, ∂L/∂b₁]                 (so Θ₁ moves by −(lr/255²) dZ₁ᵀ X̃)
  and the backward product dA_{l−1}ᵀ = W_lᵀ dZ_lᵀ reads W_l as a view of Θ_l, no copy.
- Scaled once. Every step of the backward pass is linear in dZ_L, so −lr and the loss's
  factor (2/B for squared, 1/B for cross-entropy) multiply the small (K, B) array dZ_Lᵀ once,
  and every layer's product is then directly its update −lr [∂L/∂W_l, ∂L/∂b_l]; the first
  layer's extra 1/255² multiplies dZ₁ᵀ (n₁, B), never a weight-sized array.
- Transposed, in blocks. Every (B, n) array of mlp.py is held as its (n, B) transpose
  (sums over the K classes of a sample are one product with a vector of ones), and a batch of
  more than BLOCK_ROWS rows is worked through in blocks, each block's updates summed before
  the one update of every layer (the rows are independent until their gradients are summed).

Activations are computed in place into Ãᵀ_l, and act′ is taken from A_l alone (relu: A > 0,
sigmoid: A(1 − A), tanh: 1 − A²), so the hidden Z_l are never stored.
tests/test_mlp.py checks this step against mlp.loss_and_layer_grads in float64, layer by layer.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mnist_cli.fused import PIXEL, block_layout
from mnist_cli.mlp import Activation, Layers, Loss
from mnist_cli.models import K, Params


def to_thetas(layers: Layers) -> tuple[np.ndarray, ...]:
    """Θ₁ = [W₁, b₁] / 255 (n₁, D + 1) and Θ_l = [W_l, b_l] (n_l, n_{l−1} + 1) for l ≥ 2,
    float32, C-contiguous (updated in place by fused_mlp_step)."""
    thetas = []
    for l, p in enumerate(layers, start=1):
        Wb = np.hstack([p.W, p.b[:, None]]).astype(np.float64)  # (n_l, n_{l−1} + 1)
        thetas.append(np.ascontiguousarray(Wb / PIXEL if l == 1 else Wb, np.float32))
    return tuple(thetas)


def from_thetas(thetas: tuple[np.ndarray, ...]) -> Layers:
    """The layers of mlp.py back from the Θ_l: [W₁, b₁] = 255 Θ₁, [W_l, b_l] = Θ_l."""
    layers = []
    for l, theta in enumerate(thetas, start=1):
        Wb = theta * np.float32(PIXEL) if l == 1 else theta  # (n_l, n_{l−1} + 1)
        layers.append(Params(W=np.ascontiguousarray(Wb[:, :-1]), b=Wb[:, -1].copy()))
    return tuple(layers)


@dataclass(frozen=True)
class Scratch:
    """The arrays a block of m rows writes into; hidden layers l = 1…L−1 have one each of
    At, dAt, Tt, mask."""

    At: tuple[np.ndarray, ...]  # (n_l + 1, m) Ãᵀ_l = [A_lᵀ; 1ᵀ], the last row ones
    dAt: tuple[np.ndarray, ...]  # (n_l, m) dA_lᵀ, then the scaled dZ_lᵀ
    Tt: tuple[np.ndarray, ...]  # (n_l, m) act′(Z_l)
    mask: tuple[np.ndarray, ...]  # (n_l, m) bool, A_l > 0 (relu)
    Zt: np.ndarray  # (K, m) Z_Lᵀ, then Sᵀ
    Gt: np.ndarray  # (K, m) (S − Y)ᵀ, then −lr dZ_Lᵀ
    KTt: np.ndarray  # (K, m) scratch
    ones: np.ndarray  # (K,) ones @ Aᵀ sums A over its classes
    row: np.ndarray  # (m,) one number per sample
    row2: np.ndarray  # (m,)

    @classmethod
    def for_rows(cls, m: int, hidden: tuple[int, ...]) -> "Scratch":
        At = []
        for n in hidden:
            A = np.empty((n + 1, m), np.float32)
            A[n] = 1.0  # the row of ones, written once
            At.append(A)
        f32 = [(n, m) for n in hidden]
        return cls(
            At=tuple(At),
            dAt=tuple(np.empty(s, np.float32) for s in f32),
            Tt=tuple(np.empty(s, np.float32) for s in f32),
            mask=tuple(np.empty(s, bool) for s in f32),
            Zt=np.empty((K, m), np.float32),
            Gt=np.empty((K, m), np.float32),
            KTt=np.empty((K, m), np.float32),
            ones=np.ones(K, np.float32),
            row=np.empty(m, np.float32),
            row2=np.empty(m, np.float32),
        )


@dataclass(frozen=True)
class MlpWork:
    """The arrays a step writes into, allocated once for a run: a Scratch per block size, and
    per layer two arrays shaped like Θ_l (a block's update, the batch's sum). A piece of m
    rows is cut into blocks once per m (`blocks_of`); `blocks` are those of for_batch's B."""

    blocks: tuple[tuple[slice, Scratch], ...]
    grads: tuple[np.ndarray, ...]  # (n_l, n_{l−1} + 1) a block's −lr [∂L/∂W_l, ∂L/∂b_l]
    totals: tuple[np.ndarray, ...]  # (n_l, n_{l−1} + 1) summed over the blocks
    hidden: tuple[int, ...]  # n_1, ..., n_{L−1}
    scratch: dict[int, Scratch]  # block rows -> its arrays
    layouts: dict[int, tuple[tuple[slice, Scratch], ...]]  # piece rows -> its blocks

    @classmethod
    def for_batch(cls, B: int, thetas: tuple[np.ndarray, ...]) -> "MlpWork":
        hidden = tuple(theta.shape[0] for theta in thetas[:-1])
        grads = tuple(np.empty_like(theta) for theta in thetas)
        totals = tuple(np.empty_like(theta) for theta in thetas)
        work = cls((), grads, totals, hidden, {}, {})
        object.__setattr__(work, "blocks", work.blocks_of(B))  # frozen: set once, here
        return work

    def blocks_of(self, m: int) -> tuple[tuple[slice, Scratch], ...]:
        """The blocks of a piece of m rows: BLOCK_ROWS rows each, the last maybe fewer."""
        if m not in self.layouts:
            self.layouts[m] = block_layout(
                m, self.scratch, lambda rows: Scratch.for_rows(rows, self.hidden)
            )
        return self.layouts[m]


def fused_mlp_step(
    activation: Activation,
    loss: Loss,
    thetas: tuple[np.ndarray, ...],
    X: np.ndarray,
    Yt: np.ndarray,
    lr: float,
    work: MlpWork,
) -> float:
    """Update every Θ_l in place by one SGD step on the batch X̃ (B, D + 1), one-hot Yᵀ (K, B);
    return the batch loss before the step (squared or cross-entropy; NaN or inf if diverged)."""
    return streamed_mlp_step(activation, loss, thetas, ((X, Yt),), len(X), lr, work)


def streamed_mlp_step(
    activation: Activation,
    loss: Loss,
    thetas: tuple[np.ndarray, ...],
    pieces: Iterable[tuple[np.ndarray, np.ndarray]],
    B: int,
    lr: float,
    work: MlpWork,
) -> float:
    """fused_mlp_step on a batch of B rows that arrives in pieces (X̃ (m, D + 1), Yᵀ (K, m)),
    each used before the next is asked for (batches.py streams a large batch); every piece but
    the last has whole blocks, so the blocks and the order of their sums are the batch's."""
    # c = −lr × the loss's factor: dZ_L = (2/B) S ⊙ (G' − ⟨G', S⟩) or (1/B)(S − Y)
    c = -lr * (2.0 if loss == "squared" else 1.0) / B
    total = 0.0
    first = True  # the first block writes the totals themselves
    for X, Yt in pieces:
        blocks = work.blocks_of(len(X))
        for rows, scratch in blocks:
            X_b, Yt_b = (X, Yt) if len(blocks) == 1 else (X[rows], Yt[:, rows])
            outs = work.totals if first else work.grads
            total += block_updates(
                activation, loss, thetas, X_b, Yt_b, c, scratch, outs
            )
            if not first:
                for tot, grad in zip(work.totals, work.grads):
                    np.add(tot, grad, out=tot)  # Σ over the blocks
            first = False
    # Θ_l ← Θ_l − lr [∂L/∂W_l, ∂L/∂b_l]  (for Θ₁ = [W₁, b₁] / 255, that over 255)
    for theta, tot in zip(thetas, work.totals):
        np.add(theta, tot, out=theta)
    return total / B


def block_updates(
    activation: Activation,
    loss: Loss,
    thetas: tuple[np.ndarray, ...],
    X: np.ndarray,
    Yt: np.ndarray,
    c: float,
    s: Scratch,
    outs: tuple[np.ndarray, ...],
) -> float:
    """outs[l] = the update of Θ_l from the rows X̃ (m, D + 1), Yᵀ (K, m) of a batch of B,
    with c = −lr × (2/B or 1/B); return the rows' summed loss, B L over these rows."""
    L = len(thetas)
    # forward: Z_lᵀ = Θ_l Ãᵀ_{l−1} (n_l, m), A_l = act(Z_l) in place   (mlp.forward_trace)
    inputs = X.T  # (D + 1, m) X̃ᵀ
    for l in range(L - 1):
        n = thetas[l].shape[0]
        H = s.At[l][:n]  # (n_l, m) view above the row of ones
        np.matmul(thetas[l], inputs, out=H)  # (n_l, m) Z_lᵀ
        if activation == "relu":
            np.maximum(H, 0, out=H)
        elif activation == "sigmoid":  # σ(z) = (1 + tanh(z/2)) / 2
            np.multiply(H, 0.5, out=H)
            np.tanh(H, out=H)
            np.multiply(H, 0.5, out=H)
            np.add(H, 0.5, out=H)
        else:
            np.tanh(H, out=H)
        inputs = s.At[l]  # (n_l + 1, m) Ãᵀ_l
    Zt, Gt, Tt, ones, rs, r2 = s.Zt, s.Gt, s.KTt, s.ones, s.row, s.row2
    np.matmul(thetas[-1], inputs, out=Zt)  # (K, m) Z_Lᵀ
    # softmax, the loss and dZ_L                 (models.softmax, mlp.output_grad_logits)
    picked = 0.0
    np.maximum.reduce(Zt, axis=0, out=rs)  # (m,) max of each sample's logits
    np.subtract(Zt, rs, out=Zt)  # (K, m) Z − max, every entry ≤ 0
    if loss == "cross-entropy":
        picked = float(np.vdot(Yt, Zt))  # Σᵢ (z_{i,yᵢ} − maxᵢ)
    np.exp(Zt, out=Zt)  # (K, m) in (0, 1]
    np.dot(ones, Zt, out=rs)  # (m,) Σₖ exp, ≥ 1
    if loss == "cross-entropy":  # −log S_{i,yᵢ} = log Σₖ exp(zₖ − max) − (z_{yᵢ} − max)
        np.log(rs, out=r2)  # (m,) ≥ 0, never log 0
        total = float(r2.sum()) - picked
    np.divide(Zt, rs, out=Zt)  # (K, m) Sᵀ
    np.subtract(Zt, Yt, out=Gt)  # (K, m) (S − Y)ᵀ = B dZ_Lᵀ for cross-entropy
    if loss == "squared":
        total = float(np.vdot(Gt, Gt))  # Σᵢ ‖sᵢ − yᵢ‖²
        np.multiply(Gt, Zt, out=Tt)  # (K, m)
        np.dot(ones, Tt, out=r2)  # (m,) ⟨sᵢ − yᵢ, sᵢ⟩
        np.subtract(Gt, r2, out=Gt)  # (K, m)
        np.multiply(Gt, Zt, out=Gt)  # (K, m) (B/2) dZ_Lᵀ
    np.multiply(Gt, c, out=Gt)  # (K, m) −lr dZ_Lᵀ
    # backward, from the top                               (mlp.backward)
    dZt = Gt
    for l in range(L - 1, -1, -1):
        if l == 0:  # (n₁, D + 1) −(lr/255²) dZ₁ᵀ X̃
            np.matmul(dZt, X, out=outs[0])
            break
        np.matmul(dZt, s.At[l - 1].T, out=outs[l])  # (n_l, n_{l−1} + 1) dZ_lᵀ Ã_{l−1}
        n = thetas[l - 1].shape[0]
        H, dA, T = s.At[l - 1][:n], s.dAt[l - 1], s.Tt[l - 1]  # (n_{l−1}, m) each
        # (n_{l−1}, m) dA_{l−1}ᵀ = W_lᵀ dZ_lᵀ, W_l a view of Θ_l
        np.matmul(thetas[l][:, :n].T, dZt, out=dA)
        if activation == "relu":  # act′ = 1 where A > 0, else 0 (0 at z = 0)
            np.greater(H, 0, out=s.mask[l - 1])
            np.multiply(dA, s.mask[l - 1], out=dA)
        else:
            np.multiply(H, H, out=T)  # (n_{l−1}, m) A²
            if activation == "sigmoid":
                np.subtract(H, T, out=T)  # A(1 − A)
            else:
                np.subtract(1, T, out=T)  # 1 − A²
            np.multiply(dA, T, out=dA)
        if l == 1:  # Θ₁ = [W₁, b₁] / 255 moves by 1/255² of dZ₁ᵀ X̃ (see above)
            np.multiply(dA, 1 / PIXEL**2, out=dA)
        dZt = dA  # (n_{l−1}, m) dZ_{l−1}ᵀ, scaled
    return total
