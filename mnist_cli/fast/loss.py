"""The softmax output and its two batch-mean losses, on logits laid out (K, B), batch axis last.

    S = softmax(Z) down each column                  (K, B)
    cross-entropy  L = −(1/B) Σᵢ log S_{yᵢ,i}        ∂L/∂Z = (S − Y) / B
    squared        L = (1/B) Σᵢ ‖sᵢ − yᵢ‖²           ∂L/∂Z = S ⊙ (G − 1 (1ᵀ (G ⊙ S))),  G = 2 (S − Y) / B

(the second is the softmax Jacobian diag(s) − s sᵀ applied to each column g of G), with Y the
one-hot targets (K, B). The same losses as nn/losses.py, transposed.
"""

import numpy as np

LOSSES = ("cross-entropy", "squared")


def loss_and_dlogits(
    Z: np.ndarray, y: np.ndarray, loss: str
) -> tuple[float, np.ndarray]:
    """(L, ∂L/∂Z) for logits Z (K, B) and labels y (B,)."""
    B = Z.shape[1]
    Zs = Z - Z.max(axis=0)  # (K, B): exp cannot overflow after the shift
    E = np.exp(Zs)  # (K, B)
    sumE = E.sum(axis=0)  # (B,)
    S = E / sumE  # (K, B) softmax
    cols = np.arange(B)
    if loss == "cross-entropy":  # log S_{y,i} = Zs_{y,i} − log Σₖ E_{k,i}
        L = float(np.log(sumE).sum() - Zs[y, cols].sum()) / B
        S[y, cols] -= 1  # S − Y
        S /= B
        return L, S  # (K, B)
    if loss != "squared":
        raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")
    S[y, cols] -= 1  # S − Y
    L = float(np.square(S).sum()) / B
    G = (2.0 / B) * S  # ∂L/∂S (K, B)
    S[y, cols] += 1  # S again
    return L, S * (G - (G * S).sum(axis=0))  # (K, B)
