"""Scoring in the fused layout: metrics.evaluate's numbers, from Θ and raw pixels.

Training scores its monitored split after every epoch and the training split at the end.
metrics.evaluate turns Θ back into (W, b), casts each chunk of pixels to float32, divides it by
255, multiplies and adds the bias: three passes over the chunk besides the product. Here a
chunk is cast once into a reused buffer, as fused.py's Ũ = [U, 255] (n, D + 1) float32, and one
product gives the logits with their bias:

    Z = Ũ Θᵀ = X Wᵀ + 1 bᵀ                                          (n, K)
    predicted = argmax over k of Z, along each row                  (n,)

Prediction needs only the logits (softmax is increasing). With a loss, the mean loss comes
from the same logits, the squared L = (1/N) Σᵢ ‖ŷᵢ − yᵢ‖² or the cross-entropy
L = −(1/N) Σᵢ log Sᵢ,yᵢ, with each sample's max logit subtracted first (exp cannot overflow).
The mlp is scored by metrics.evaluate.

Why not cast a split once and keep it (the monitored split is scored ten times)? Measured on
10,000 test images: the product reading a kept float32 copy (31 MB, from memory) took 6.1 ms,
the cast and product of 1,000-row chunks (4 MB, in the cache) 4.3 ms: the copy is four times
the pixels' bytes, and memory is the bottleneck. tests/test_fused_scores.py checks these
numbers against metrics.evaluate.
"""

import numpy as np

from .fused import PIXEL, to_theta
from .metrics import Evaluation, evaluate, summarize
from .mlp import Loss
from .models import D, ModelKind
from .network import Network

CHUNK_ROWS = 1_000  # rows cast at a time: 3 MB of float32, in the cache for the product


def score(
    theta: np.ndarray,
    images: np.ndarray,
    labels: np.ndarray,
    kind: ModelKind | None = None,
    loss: Loss | None = None,
) -> Evaluation:
    """metrics.evaluate of the model `kind` with Θ = [W, b] / 255 (K, D + 1) on images (N, D)
    uint8 with true labels (N,): accuracy, per-class accuracy, the confusion matrix, and with
    `loss` the mean loss, (1/N) Σᵢ ‖ŷᵢ − yᵢ‖² or −(1/N) Σᵢ log Sᵢ,yᵢ."""
    if loss is not None and kind is None:
        raise ValueError("the loss needs the model kind")
    images = np.asarray(images)  # a plain view of a memmap: its slices are cheaper
    N = len(labels)
    predicted = np.empty(N, np.int64)  # (N,)
    U1 = np.empty((min(CHUNK_ROWS, N), D + 1), np.float32)  # Ũ of a chunk
    U1[:, D] = PIXEL  # Ũ's constant column, written once
    loss_sum = 0.0
    for start in range(0, N, CHUNK_ROWS):
        rows = slice(start, start + CHUNK_ROWS)
        n = len(labels[rows])
        U1[:n, :D] = images[rows]  # (n, D) cast to float32
        Z = U1[:n] @ theta.T  # (n, K) Z = Ũ Θᵀ
        predicted[rows] = Z.argmax(axis=1)
        if loss is not None:
            loss_sum += summed_loss(kind, loss, Z, labels[rows])
    mean = None if loss is None else loss_sum / max(N, 1)
    return summarize(labels, predicted, mean)


def evaluate_network(
    network: Network, images: np.ndarray, labels: np.ndarray, loss: Loss | None = None
) -> Evaluation:
    """metrics.evaluate(network, images, labels, loss), from Θ for linear and softmax."""
    if network.kind == "mlp":
        return evaluate(network, images, labels, loss)
    theta = to_theta(network.params)
    return score(theta, images, labels, network.kind, loss)


def summed_loss(
    kind: ModelKind, loss: Loss, Z: np.ndarray, labels: np.ndarray
) -> float:
    """Σᵢ ‖ŷᵢ − yᵢ‖² (ŷ = z for linear, softmax(z)) or −Σᵢ log Sᵢ,yᵢ over the rows of Z (n, K)."""
    n = len(labels)
    # transposed, as fused.py holds it: a sum or max over a sample's K classes is then K
    # vectorised passes over n numbers, not n short loops of K (3 times faster here)
    Zt = np.ascontiguousarray(Z.T)  # (K, n)
    if kind == "softmax":
        # the column max subtracted: every exponent ≤ 0, exp cannot overflow
        Zt -= np.maximum.reduce(Zt, axis=0)  # (K, n)
        if loss == "cross-entropy":  # −log Sᵢ,yᵢ = log Σₖ exp(zₖ − max) − (zᵢ,yᵢ − max)
            picked = float(Zt[labels, np.arange(n)].sum())
            return float(np.log(np.ones(len(Zt), Zt.dtype) @ np.exp(Zt)).sum()) - picked
        np.exp(Zt, out=Zt)
        Zt /= np.ones(len(Zt), Zt.dtype) @ Zt  # (K, n) Ŝᵀ, columns sum to 1
    Zt[labels, np.arange(n)] -= 1  # (K, n) (Ŷ − Y)ᵀ
    return float(np.vdot(Zt, Zt))
