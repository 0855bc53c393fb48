"""Scoring a model: predicted labels, accuracy, per-class accuracy, the confusion matrix.

Prediction needs only the logits: softmax is increasing, so argmax softmax(z) = argmax z,
and both models classify a sample by the largest entry of z = Wx + b.
"""

from dataclasses import dataclass

import numpy as np

from .models import K, Params, inputs, logits


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
    """The confusion matrix as a text table: one row per true class (full name), one column per
    prediction (names cut to the column width), and the per-class accuracy at the end of each row."""
    width = max(5, len(str(int(C.max()))) + 1)
    columns = "".join(name[: width - 1].rjust(width) for name in class_names)
    corner = "true\\pred"
    label_width = max(len(corner), *(len(name) for name in class_names)) + 2
    lines = [corner.ljust(label_width) + columns + "  accuracy"]
    for i, (name, row) in enumerate(zip(class_names, C, strict=True)):
        total = row.sum()
        accuracy = f"{100 * row[i] / total:7.2f}%" if total else "       -"
        cells = "".join(str(int(v)).rjust(width) for v in row)
        lines.append(name.ljust(label_width) + cells + "  " + accuracy)
    return "\n".join(lines)
