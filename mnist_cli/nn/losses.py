"""The output (identity or softmax), the two losses, and ∂ℒ/∂Z where the backward pass starts.

    squared        ℒ = (1/B) Σᵢ ‖ŷᵢ − yᵢ‖²          ŷ = z (identity) or s = softmax(z)
    cross-entropy  ℒ = −(1/B) Σᵢ log Sᵢ,yᵢ          softmax output only

Each loss is a batch mean, so each gradient carries the factor 1/B once. One softmax and one
stabilisation (the row max subtracted before exp) serve the reference, the fast path
(fast/dense.py, transposed and in place) and scoring.
"""

from typing import Literal

import numpy as np

from mnist_cli.nn import K

Output = Literal["identity", "softmax"]
OUTPUTS: tuple[Output, ...] = ("identity", "softmax")
Loss = Literal["squared", "cross-entropy"]


def softmax(Z: np.ndarray) -> np.ndarray:
    """S = softmax(Z) row by row: Sᵢₖ = exp(Zᵢₖ) / Σⱼ exp(Zᵢⱼ).

    The row max is subtracted first: softmax is unchanged by a shift of its row, and the shift
    keeps exp from overflowing (every exponent is ≤ 0, and the largest term is exactly 1).
    """
    E = np.exp(Z - Z.max(axis=1, keepdims=True))  # (B, K), entries in (0, 1]
    return E / E.sum(axis=1, keepdims=True)  # (B, K), rows sum to 1


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """log S = Z − m − log Σₖ exp(Zₖ − m) row by row, m the row max, (B, K).

    Never log(0): the sum holds the term exp(0) = 1, so its log is ≥ 0 and finite, and every
    entry is a finite number ≤ 0 even where S itself underflows to 0 (logits ±1000).
    """
    shifted = Z - Z.max(axis=1, keepdims=True)  # (B, K), every entry ≤ 0
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (B, K)


def predict(output: Output, Z: np.ndarray) -> np.ndarray:
    """Ŷ from the logits Z (B, K): Z itself for the identity output, softmax(Z) otherwise."""
    return softmax(Z) if output == "softmax" else Z


def check_pairing(output: Output, loss: Loss) -> None:
    """Cross-entropy needs probabilities: refuse it on an identity output."""
    if loss == "cross-entropy" and output != "softmax":
        raise ValueError(
            "cross-entropy needs a softmax output; a linear model has none"
        )


def batch_loss(output: Output, loss: Loss, Z: np.ndarray, Y: np.ndarray) -> float:
    """ℒ for the logits Z (B, K) and one-hot Y (B, K): squared, (1/B) Σᵢ ‖ŷᵢ − yᵢ‖², or
    cross-entropy, −(1/B) Σᵢ log Sᵢ,yᵢ = −(1/B) Σᵢ Σₖ Yᵢₖ log Sᵢₖ."""
    check_pairing(output, loss)
    if loss == "cross-entropy":
        return float(-np.sum(Y * log_softmax(Z)) / len(Y))
    return float(np.sum((predict(output, Z) - Y) ** 2) / len(Y))


def softmax_backward(S: np.ndarray, G: np.ndarray) -> np.ndarray:
    """∂ℒ/∂Z from G = ∂ℒ/∂S through the softmax Jacobian, row by row.

    The Jacobian of one row is J = diag(s) − s sᵀ (∂Sᵢ/∂zⱼ = Sᵢ(1 − Sᵢ) if i = j, −SᵢSⱼ if
    i ≠ j). It is symmetric, so ∂ℒ/∂z = J g = s ⊙ g − s (sᵀg) = s ⊙ (g − ⟨g, s⟩): no K × K
    matrix is ever built.
    """
    gs = np.sum(G * S, axis=1, keepdims=True)  # (B, 1), ⟨gᵢ, sᵢ⟩ per row
    return S * (G - gs)  # (B, K)


def grad_logits(output: Output, loss: Loss, Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """dZ = ∂ℒ/∂Z (B, K), the start of the backward pass; the only place the losses differ.

    squared:       G = ∂ℒ/∂Ŷ = (2/B)(Ŷ − Y); dZ = G (identity) or S ⊙ (G − ⟨G, S⟩) (softmax)
    cross-entropy: dZ = (S − Y)/B: the softmax Jacobian and the loss's −1/S cancel
    """
    check_pairing(output, loss)
    Y_hat = predict(output, Z)  # (B, K)
    if loss == "cross-entropy":
        return (Y_hat - Y) / len(Y)  # (B, K)
    G = squared_grad(Y_hat, Y)  # (B, K)
    return softmax_backward(Y_hat, G) if output == "softmax" else G


def squared_grad(Y_hat: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """G = ∂ℒ/∂Ŷ = (2/B)(Ŷ − Y), (B, K): the derivative of ‖ŷ − y‖² is 2(ŷ − y), per sample,
    and the batch mean puts 1/B in front."""
    return (2.0 / len(Y)) * (Y_hat - Y)  # (B, K)


def one_hot(labels: np.ndarray, dtype: np.dtype = np.float32) -> np.ndarray:
    """Y (N, K) with Yᵢₖ = 1 where k = labels[i], else 0."""
    Y = np.zeros((len(labels), K), dtype)
    Y[np.arange(len(labels)), labels] = 1
    return Y
