import numpy as np

from mnist_cli.metrics import (
    confusion_matrix,
    evaluate,
    format_confusion,
    predict_labels,
)
from mnist_cli.models import D, K, Params


def test_confusion_matrix_rows_are_true_labels():
    labels = np.array([0, 0, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 2, 0, 2])
    C = confusion_matrix(labels, predicted)
    assert C.shape == (K, K)
    assert (C[0, 0], C[0, 1], C[1, 1], C[2, 2], C[2, 0]) == (1, 1, 1, 2, 1)
    assert C.sum() == len(labels)


def template_params():
    """Class k's template is pixel k lit: image with pixel k at 255 is classified as k."""
    W = np.zeros((K, D), np.float32)
    W[np.arange(K), np.arange(K)] = 1.0
    return Params(W=W, b=np.zeros(K, np.float32))


def test_predict_and_evaluate_on_constructed_images():
    images = np.zeros((20, D), np.uint8)
    labels = np.arange(20) % K
    images[np.arange(20), labels] = 255
    images[3] = 0
    images[3, 7] = 255  # true label 3, looks like a 7
    predicted = predict_labels(template_params(), images, chunk=7)
    assert predicted.tolist() == [7 if i == 3 else i % K for i in range(20)]
    result = evaluate(template_params(), images, labels)
    assert result.accuracy == 19 / 20
    assert result.per_class_accuracy[3] == 0.5 and result.per_class_accuracy[7] == 1.0
    assert result.confusion_matrix[3, 7] == 1


def test_format_confusion_shows_counts_and_accuracy():
    C = np.diag(np.full(K, 98))
    C[3, 5] = 2
    text = format_confusion(C, tuple(str(d) for d in range(K)))
    lines = text.splitlines()
    assert len(lines) == K + 1
    assert lines[4].split()[0] == "3" and lines[4].split()[-1] == "98.00%"
    assert lines[1].split()[-1] == "100.00%"


def test_format_confusion_columns_line_up_with_long_names():
    C = np.arange(K * K).reshape(K, K) * 13
    names = ("T-shirt/top",) + tuple(f"class {k}" for k in range(1, K))
    lines = format_confusion(C, names).splitlines()
    assert len({len(line) for line in lines}) == 1, (
        "rows of different widths:\n" + "\n".join(lines)
    )
    assert lines[1].startswith("T-shirt/top ")
