"""Predictions on your own pictures: a picture file (pictures.py) made an MNIST digit
(preprocess.py), classified by the model's own forward pass, and shown as text."""

from pathlib import Path

import numpy as np

from mnist_cli.errors import ImageError
from mnist_cli.nn.layers import inputs
from mnist_cli.nn.network import Network
from mnist_cli.predict.pictures import load_image
from mnist_cli.predict.preprocess import preprocess

VALUE_NAMES: dict[str, str] = {
    "softmax": "probability",
    "mlp": "probability",
    "cnn": "probability",
    "linear": "score",
}
SHADES = " .:-=+*#%@"  # from no ink to full ink


def prepare(path: str | Path) -> np.ndarray:
    """The file `path` as MNIST pixels (784,) uint8 (see preprocess.py). Errors name the file."""
    grey = load_image(path)  # (H, W)
    try:
        return preprocess(grey)  # (D,)
    except ImageError as e:
        raise ImageError(f"{path}: {e}") from None


def classify(network: Network, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(digits (N,), values (N,)) for images (N, D) uint8: the predicted digit argmaxₖ Ŷᵢₖ and
    Ŷ at that digit: the probability Sᵢₖ for softmax and mlp, the score Zᵢₖ for linear."""
    Y_hat = network.predict(inputs(images))  # (N, K)
    digits = Y_hat.argmax(axis=1)  # (N,)
    return digits, Y_hat[np.arange(len(digits)), digits]  # (N,), (N,)


def as_text(pixels: np.ndarray) -> str:
    """The (784,) uint8 pixels as 28 lines of text, each pixel two characters wide (so that the
    picture looks square), darker characters for more ink: what the model is given."""
    levels = pixels.reshape(28, 28).astype(int) * len(SHADES) // 256  # (28, 28), 0..9
    return "\n".join("".join(2 * SHADES[v] for v in row) for row in levels)
