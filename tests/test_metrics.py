import re

import numpy as np
import pytest

from mnist_cli.metrics import confusion_matrix, evaluate, format_confusion
from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import one_layer
from mnist_cli.nn.layers import Params, inputs
from mnist_cli.nn.losses import one_hot


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
    expected = np.diag(np.full(K, 2))
    expected[3, 3], expected[3, 7] = 1, 1  # image 3 predicted 7, the others their label
    for chunk in (7, 100):  # chunks that split the images, or hold them all
        result = evaluate(template_params(), images, labels, chunk=chunk)
        np.testing.assert_array_equal(
            result.confusion_matrix, expected, f"chunk {chunk}"
        )
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


def test_format_confusion_labels_rows_with_class_names_and_aligns_columns():
    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat")
    names += ("Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    C = np.diag(np.full(K, 1000))
    C[9, 7] = 12345
    lines = format_confusion(C, names).splitlines()
    assert lines[1].startswith("0 T-shirt/top ") and lines[10].startswith(
        "9 Ankle boot "
    )
    header_ends = [m.end() for m in re.finditer(r"\d+", lines[0])]
    for line in lines[1:]:
        cells = line.rsplit("  ", 1)[0]  # drop the accuracy column
        row_ends = [m.end() for m in re.finditer(r"\d+", cells)][-K:]
        assert row_ends == header_ends, f"{lines[0]!r}\n{line!r}: columns misaligned"
    digits = format_confusion(C, tuple(str(d) for d in range(K))).splitlines()
    assert digits[8].split()[0] == "7", "MNIST rows are labelled by the digit alone"


def test_evaluate_loss_is_the_squared_loss_over_all_images_in_any_chunking():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (25, D), dtype=np.uint8)
    labels = rng.integers(0, K, 25)
    params = Params(W=0.01 * rng.standard_normal((K, D)), b=rng.standard_normal(K))
    for kind in ("linear", "softmax"):
        Y_hat = one_layer(kind, params).predict(inputs(images, np.float64))
        expected = np.sum((Y_hat - one_hot(labels, np.float64)) ** 2) / 25
        for chunk in (7, 100):
            net = one_layer(kind, params)
            result = evaluate(net, images, labels, "squared", chunk=chunk)
            assert result.loss == pytest.approx(expected, rel=1e-5), (
                f"{kind}, chunk {chunk}: expected {expected}, got {result.loss}"
            )
            accuracy = np.mean(Y_hat.argmax(axis=1) == labels)
            assert result.accuracy == pytest.approx(accuracy), f"chunk {chunk}"
    assert evaluate(params, images, labels).loss is None, "no loss asked, none given"
