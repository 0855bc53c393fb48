"""docs/derivations.md's worked numbers, measured again (issue 22): each test computes a number
on MNIST and checks that the doc states it, so that the doc cannot drift from what it claims.
Plain numpy where the doc describes plain math; the package's reference network where the doc
describes what it does."""

import re
from pathlib import Path

import numpy as np
import pytest

from mnist_cli.nn.architecture import dense_params, from_dense
from mnist_cli.nn.layers import Params
from mnist_cli.nn.losses import one_hot

DOC = Path(__file__).resolve().parents[1] / "docs" / "derivations.md"


def section(number: int) -> str:
    """The text of section `number` of docs/derivations.md, its lines joined by spaces."""
    text = DOC.read_text(encoding="utf-8")
    body = re.split(rf"\n## {number}\. ", text)[1].split("\n## ")[0]
    return " ".join(body.split())


@pytest.fixture(scope="module")
def pixels(mnist_splits) -> np.ndarray:
    """The first 2,000 training images as X (2000, D), float64 in [0, 1]."""
    return mnist_splits[0].images[:2000].astype(np.float64) / 255


def test_section_8_the_five_dependencies_beyond_the_black_pixels(mnist_splits):
    """Rank 713 of 785: 67 zero columns, and 5 null vectors of X among the pixels lit in one
    or two images, exhibited exactly (X v = 0 with integer pixel values)."""
    images = mnist_splits[0].images  # (N, D) uint8
    lit = np.count_nonzero(images, axis=0)  # (D,)
    assert int((lit == 0).sum()) == 67
    support = {p: tuple(np.flatnonzero(images[:, p])) for p in np.flatnonzero(lit <= 2)}
    stated = {
        (14,): (12352,),
        (15,): (12352,),
        (12, 13): (12352, 12905),
        (588, 616): (21699,),
        (615, 643): (17025,),
        (392,): (29049,),
        (420,): (15513, 29049),
        (448,): (15513,),
    }
    for group, rows in stated.items():
        for p in group:
            assert support[p] == rows, (p, support[p], rows)
    # the columns of each group, restricted to the images they are lit in
    groups = [[12, 13, 14, 15], [588, 616], [615, 643], [392, 420, 448]]
    nullity = 0
    for group in groups:
        rows = sorted({r for p in group for r in support[p]})
        block = images[np.ix_(rows, group)].astype(np.float64)  # (images, pixels)
        nullity += len(group) - np.linalg.matrix_rank(block)
    assert nullity == 5
    text = section(8)
    assert "rank 713 of 785" in text and "718 − 5 = 713" in text


def slip_error(
    X: np.ndarray, labels: np.ndarray, W: np.ndarray, b: np.ndarray
) -> float:
    """The largest relative error (section 9's, floor 0.01 |L|) over ∂L/∂W of the softmax and
    squared loss when the backward pass drops −⟨G, S⟩."""
    B, Y = len(X), np.eye(10)[labels]  # (B, K)
    Z = X @ W.T + b  # (B, K)
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    S = E / E.sum(axis=1, keepdims=True)  # (B, K)
    L = ((S - Y) ** 2).sum() / B
    G = 2 / B * (S - Y)  # (B, K)
    right = S * (G - (G * S).sum(axis=1, keepdims=True))  # (B, K)
    a, n = (S * G).T @ X, right.T @ X  # (K, D) slipped, right
    return float((abs(a - n) / np.maximum(np.maximum(abs(a), abs(n)), 0.01 * L)).max())


def test_section_9_what_a_dropped_term_shows(mnist_splits, pixels):
    X, labels = pixels[:100], mnist_splits[0].labels[:100].astype(np.int64)
    text = section(9)
    for s, shown in [(1e-5, "3.4 \\times 10^{-5}"), (1e-3, "3.3 \\times 10^{-3}")]:
        W = s * np.random.default_rng(0).standard_normal((10, 784))
        error = slip_error(X, labels, W, np.zeros(10))
        mantissa, exponent = f"{error:.1e}".split("e")
        assert f"{mantissa} \\times 10^{{{int(exponent)}}}" == shown, (s, error)
        assert f"${shown}$ for $s = 10^{{{int(np.log10(s))}}}$" in text, shown
    W = 1e-2 * np.random.default_rng(0).standard_normal((10, 784))
    assert f"{slip_error(X, labels, W, np.zeros(10)):.1e}" == "3.9e-02"
    assert "$3.9 \\times 10^{-2}$ for $s = 10^{-2}$" in text
    rng = np.random.default_rng(0)
    W, b = 0.1 * rng.standard_normal((10, 784)), 0.5 * rng.standard_normal(10)
    error = slip_error(X, labels, W, b)
    assert f"{error:.1f}" == "1.8" and "relative error of 1.8" in text, error


def test_section_14_the_input_norm_and_the_variance_through_four_layers(
    mnist_splits, pixels
):
    images = mnist_splits[
        0
    ].images  # (N, D) uint8: Σ u² in int64, 10,000 rows at a time
    total = sum(
        int(np.square(images[i : i + 10_000], dtype=np.int64).sum())
        for i in range(0, len(images), 10_000)
    )
    mean_square_norm = total / 255**2 / len(images)
    text = section(14)
    assert f"{mean_square_norm:.2f}" == "87.81" and "= 87.81$ over" in text
    shown = {"relu": "0.24, 0.25, 0.29, 0.39", "tanh": "0.12, 0.096, 0.081, 0.054"}
    for activation, gain in (("relu", 2.0), ("tanh", 1.0)):
        rng, A, means = np.random.default_rng(0), pixels[:2000], []
        for n_in, n_out in [(784, 256), (256, 256), (256, 256), (256, 10)]:
            W = rng.standard_normal((n_out, n_in)) * np.sqrt(gain / n_in)
            Z = A @ W.T  # (2000, n_out)
            means.append(f"{(Z**2).mean():.2g}")
            A = np.maximum(Z, 0) if activation == "relu" else np.tanh(Z)
        measured = ", ".join(
            f"{float(m):.2f}" if activation == "relu" else m for m in means
        )
        assert measured == shown[activation], (activation, measured)
        assert shown[activation] in text


@pytest.mark.parametrize(
    "activation, learns",
    [("relu", {"b2"}), ("tanh", {"b2"}), ("sigmoid", {"W1", "b1", "W2", "b2"})],
)
def test_section_14_from_all_zero_weights(mnist_splits, pixels, activation, learns):
    """Over two steps from all-zero weights: with ReLU or tanh only b_L ever has a gradient;
    with sigmoid (1/2 at 0) W_L has one at once, and the hidden layer from the second step."""
    zeros = [
        Params(np.zeros((8, 784)), np.zeros(8)),
        Params(np.zeros((10, 8)), np.zeros(10)),
    ]
    network = from_dense("mlp", zeros, activation)
    X, Y = pixels[:100], one_hot(mnist_splits[0].labels[:100], np.float64)
    nonzero = set()
    for _ in range(2):  # two steps of lr 1
        _, grads = network.loss_and_grads("squared", X, Y)
        dense = [g for g in grads if g]
        for l, g in enumerate(dense, start=1):
            nonzero |= {f"{n}{l}" for n, a in zip("Wb", g) if np.abs(a).max() > 0}
        params = [
            Params(p.W - g[0], p.b - g[1]) for p, g in zip(dense_params(network), dense)
        ]
        network = from_dense("mlp", params, activation)
    assert nonzero == learns, (activation, nonzero)
    assert "only the last bias $b_L$ learns" in section(14)


def test_sections_10_and_15_scale_the_array_without_the_losss_factor():
    """dZ already holds 2/B (or 1/B): a step c · dZ with c = −η·2/B, as the doc said, was 50
    times too small at B = 100. The doc names Δ = dZ/α and writes c Δ, with c = −ηα."""
    ten, fifteen = section(10), section(15)
    assert "\\Delta = dZ / \\alpha" in ten and "c = -\\eta\\,\\alpha" in ten
    assert "c\\, dZ" not in ten + fifteen and "c\\, \\Delta_2^\\top" in fifteen
    alpha, lr = 2 / 100, 0.5  # squared loss, B = 100, the default lr
    assert (-lr * alpha, 1 / alpha) == (-0.01, 50.0)
    assert (
        "$c = -0.5 \\times 0.02 = -0.01$ multiplies $\\Delta$, which is $50\\,dZ$"
        in ten
    )
    assert "(K, K) matrix of ones" in ten and "vector of ones" not in ten
