"""One SGD step, fused for speed: the equations of models.py, computed in place.

models.py states the math plainly, one function per equation; training runs it 600 times an
epoch on batches of 100, where each numpy call costs about as much as its arithmetic. So this
step computes the same numbers with as few calls as it can, in a layout chosen for them:

- Raw pixels and a constant column. The batch arrives as X̃ = [U, 255] (B, D + 1), U the pixels
  0..255 so that X = U / 255, and the parameters are held as Θ = [W, b] / 255 (K, D + 1). Then
  one product gives the logits with their bias,
      Θ X̃ᵀ = (W Uᵀ)/255 + b 1ᵀ = W Xᵀ + b 1ᵀ = Zᵀ                                (K, B)
  and one product gives both parameter gradients,
      dZᵀ X̃ = [dZᵀ U, 255 dZᵀ 1] = 255 [∂L/∂W, ∂L/∂b]                           (K, D + 1)
  so plain SGD, [W, b] ← [W, b] − lr [∂L/∂W, ∂L/∂b], divided by 255 on both sides, is
      Θ ← Θ − (lr / 255²) dZᵀ X̃.
- Transposed. Every (B, K) array of models.py is held as its (K, B) transpose, so the sums
  over the K classes of a sample run down the columns: K vectorised passes over B numbers,
  and a sum over classes is one product with a vector of ones (np.dot: for a vector it
  costs less per call than np.matmul).

Notation of models.py: Z = XWᵀ + b, S = softmax(Z), G = ∂L/∂Ŷ = (2/B)(Ŷ − Y), dZ = ∂L/∂Z.
tests/test_train.py checks this step against models.loss_and_gradients and models.sgd_step.
"""

from dataclasses import dataclass

import numpy as np

from .models import K, ModelKind, Params

PIXEL = 255.0  # X = U / PIXEL


@dataclass(frozen=True)
class Work:
    """The arrays one step at batch size B writes into, allocated once."""

    Zt: np.ndarray  # (K, B) Zᵀ, then Ŷᵀ
    Gt: np.ndarray  # (K, B) (Ŷ − Y)ᵀ, then c·dZᵀ
    Tt: np.ndarray  # (K, B) scratch
    ones: np.ndarray  # (K,) ones @ Aᵀ sums A over its classes
    row: np.ndarray  # (B,) one number per sample
    row2: np.ndarray  # (B,)
    grad: np.ndarray  # (K, D + 1) the step, c·dZᵀ X̃

    @classmethod
    def for_batch(cls, B: int, D1: int) -> "Work":
        def kb() -> np.ndarray:
            return np.empty((K, B), np.float32)

        ones = np.ones(K, np.float32)
        row, row2 = np.empty(B, np.float32), np.empty(B, np.float32)
        grad = np.empty((K, D1), np.float32)
        return cls(kb(), kb(), kb(), ones, row, row2, grad)


def to_theta(params: Params) -> np.ndarray:
    """Θ = [W, b] / 255, (K, D + 1) float32."""
    return (np.hstack([params.W, params.b[:, None]]) / PIXEL).astype(np.float32)


def from_theta(theta: np.ndarray) -> Params:
    """[W, b] = 255 Θ, back to the Params of models.py."""
    Wb = theta * np.float32(PIXEL)  # (K, D + 1)
    return Params(W=np.ascontiguousarray(Wb[:, :-1]), b=Wb[:, -1].copy())


def sgd_step(
    kind: ModelKind,
    theta: np.ndarray,
    X: np.ndarray,
    Yt: np.ndarray,
    lr: float,
    work: Work,
) -> float:
    """Update Θ (K, D + 1) in place by one SGD step on the batch X̃ (B, D + 1), one-hot Yᵀ (K, B);
    return the batch loss L = (1/B) Σᵢ ‖ŷᵢ − yᵢ‖² before the step (NaN or inf if it diverged)."""
    B = X.shape[0]
    Zt, Gt, Tt, ones, s, gs = work.Zt, work.Gt, work.Tt, work.ones, work.row, work.row2
    np.matmul(theta, X.T, out=Zt)  # (K, B) Zᵀ = Θ X̃ᵀ = W Xᵀ + b 1ᵀ  (models.logits)
    if kind == "softmax":  # (K, B) Sᵀ                              (models.softmax)
        np.maximum.reduce(Zt, axis=0, out=s)  # (B,) row max of Z: exp cannot overflow
        np.subtract(Zt, s, out=Zt)  # (K, B) Z − max, every entry ≤ 0
        np.exp(Zt, out=Zt)  # (K, B) in (0, 1]
        np.dot(ones, Zt, out=s)  # (B,) Σₖ exp
        np.divide(Zt, s, out=Zt)  # (K, B) Sᵀ, columns sum to 1
    np.subtract(Zt, Yt, out=Gt)  # (K, B) (Ŷ − Y)ᵀ
    loss = float(np.vdot(Gt, Gt)) / B  # (1/B) Σᵢ ‖ŷᵢ − yᵢ‖²  (models.squared_loss)
    if kind == "softmax":  # dZ = S ⊙ (G − ⟨G, S⟩)  (models.softmax_backward)
        np.multiply(Gt, Zt, out=Tt)  # (K, B)
        np.dot(ones, Tt, out=gs)  # (B,) ⟨ŷᵢ − yᵢ, sᵢ⟩
        np.subtract(Gt, gs, out=Gt)  # (K, B)
        np.multiply(Gt, Zt, out=Gt)  # (K, B) (B/2) dZᵀ
    # c = −lr (2/B) / 255²: G's 2/B (models.loss_grad_output), SGD's −lr, Θ's 1/255²
    c = -lr * 2.0 / B / PIXEL**2
    np.multiply(Gt, c, out=Gt)  # (K, B) c (B/2) dZᵀ = −(lr/255²) dZᵀ
    np.matmul(Gt, X, out=work.grad)  # (K, D + 1) −(lr/255²) dZᵀ X̃  (models.param_grads)
    np.add(theta, work.grad, out=theta)  # Θ ← Θ − (lr/255²) dZᵀ X̃  (models.sgd_step)
    return loss
