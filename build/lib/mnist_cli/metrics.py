"""Scoring a model: predicted labels, accuracy, per-class accuracy, the confusion matrix.

Prediction needs only the logits: softmax is increasing, so argmax softmax(z) = argmax z,
and both models classify a sample by the largest entry of z = Wx + b.
"""

from dataclasses import dataclass

import numpy as np

from .models import K, ModelKind, Params, forward, inputs, logits, one_hot, squared_loss


@dataclass(frozen=True)
class Evaluation:
    """How a model scores on a labelled set of N samples."""

    accuracy: float  # fraction of the N samples classified correctly
    per_class_accuracy: np.ndarray  # (K,) accuracy among the samples of each true class
    confusion_matrix: np.ndarray  # (K, K) int, [true, predicted] counts

    def to_json(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "per_class_accuracy": [float(a) for a in self.per_class_accuracy],
            "confusion_matrix": self.confusion_matrix.tolist(),
        }


def predict_labels(
    params: Params, images: np.ndarray, chunk: int = 10_000
) -> np.ndarray:
    """argmaxₖ Zᵢₖ for each image, (N, D) uint8 -> (N,) int, in chunks so that the float
    copy of the inputs stays small (10,000 × 784 float32 = 31 MB)."""
    return np.concatenate(
        [
            logits(params, inputs(images[start : start + chunk])).argmax(axis=1)
            for start in range(0, len(images), chunk)
        ]
    )


def mean_loss(
    kind: ModelKind,
    params: Params,
    images: np.ndarray,
    labels: np.ndarray,
    chunk: int = 10_000,
) -> float:
    """L = (1/N) Σᵢ ‖ŷᵢ − yᵢ‖² over all N images (N, D) uint8, in chunks like predict_labels:
    the loss SGD minimises, of the final weights, comparable with the exact solver's optimum."""
    total = 0.0
    for start in range(0, len(labels), chunk):
        Y_hat = forward(kind, params, inputs(images[start : start + chunk]))  # (n, K)
        Y = one_hot(labels[start : start + chunk], Y_hat.dtype)  # (n, K)
        total += squared_loss(Y_hat, Y) * len(Y)
    return total / max(len(labels), 1)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """C (K, K) with Cᵢⱼ = number of samples of true class i predicted as j (rows = truth)."""
    return np.bincount(
        labels.astype(np.int64) * K + predicted, minlength=K * K
    ).reshape(K, K)


def evaluate(params: Params, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Score `params` on images (N, D) uint8 with true labels (N,)."""
    C = confusion_matrix(labels, predict_labels(params, images))  # (K, K)
    per_class_total = C.sum(axis=1)  # (K,) samples of each true class
    per_class = np.divide(
        np.diag(C), per_class_total, out=np.zeros(K), where=per_class_total > 0
    )
    return Evaluation(
        accuracy=float(np.trace(C) / max(C.sum(), 1)),
        per_class_accuracy=per_class,
        confusion_matrix=C,
    )


def format_confusion(C: np.ndarray, class_names: tuple[str, ...]) -> str:
    """The confusion matrix as a text table: one row per true class, one column per prediction,
    and the per-class accuracy at the end of each row.

    Rows are labelled "index name" ("9 Ankle boot"), or just the name when it is the index (MNIST's
    digits); columns by the class index, so that long names cost no width.
    """
    width = max(5, len(str(int(C.max()))) + 1)
    rows = [
        name if name == str(i) else f"{i} {name}" for i, name in enumerate(class_names)
    ]
    label_width = max(len("true\\pred"), *(len(r) for r in rows)) + 2
    header = "true\\pred".ljust(label_width) + "".join(
        str(i).rjust(width) for i in range(len(rows))
    )
    lines = [header + "  accuracy"]
    for i, (label, row) in enumerate(zip(rows, C)):
        total = row.sum()
        acc = f"{100 * row[i] / total:7.2f}%" if total else "       -"
        cells = "".join(str(int(v)).rjust(width) for v in row)
        lines.append(label.ljust(label_width) + cells + "  " + acc)
    return "\n".join(lines)
