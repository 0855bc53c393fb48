"""Predictions on your own pictures: read an image file, make it an MNIST digit, classify it.

Reading is the only part that needs Pillow (the `images` extra), and it is imported here, when a
picture is read, so that the rest of the package works without it. The preprocessing is
preprocess.py (pure numpy); the classification is the models' own forward pass.
"""

from pathlib import Path

import numpy as np

from .errors import ImageError, MissingExtraError
from .models import ModelKind, Params, inputs, logits, output
from .preprocess import preprocess

VALUE_NAMES: dict[str, str] = {"softmax": "probability", "linear": "score"}
SHADES = " .:-=+*#%@"  # from no ink to full ink


def load_image(path: str | Path) -> np.ndarray:
    """The picture in `path` (PNG, JPEG, or any format Pillow reads) as grey levels (H, W)
    float64 in [0, 1], 0 black and 1 white.

    The EXIF orientation of photos is applied; transparent pixels are taken as white paper
    (a drawing exported with a transparent background); 16-bit and float pictures are scaled
    from their darkest to their lightest pixel. Raises ImageError naming the file if it cannot
    be read, and MissingExtraError if Pillow is not installed.
    """
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise MissingExtraError(
            "reading images needs Pillow, which is not installed: "
            "pip install 'mnist-cli[images]'"
        ) from None
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so that a truncated file fails here
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                paper = Image.new("RGBA", rgba.size, "white")
                image = Image.alpha_composite(paper, rgba)
            if image.mode in ("I", "F") or image.mode.startswith("I;16"):
                g = np.asarray(image, dtype=np.float64)  # (H, W), any range
                span = g.max() - g.min()
                return (g - g.min()) / span if span > 0 else np.zeros_like(g)
            return np.asarray(image.convert("L"), dtype=np.float64) / 255  # (H, W)
    except Image.UnidentifiedImageError:
        raise ImageError(
            f"{path}: not an image Pillow can read; give a PNG or JPEG file"
        ) from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"{path}: cannot read the image ({e})") from None


def prepare(path: str | Path) -> np.ndarray:
    """The file `path` as MNIST pixels (784,) uint8 (see preprocess.py). Errors name the file."""
    grey = load_image(path)  # (H, W)
    try:
        return preprocess(grey)  # (D,)
    except ImageError as e:
        raise ImageError(f"{path}: {e}") from None


def classify(
    kind: ModelKind, params: Params, images: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(digits (N,), values (N,)) for images (N, D) uint8: the predicted digit argmaxₖ Ŷᵢₖ and
    Ŷ at that digit: the probability Sᵢₖ for softmax, the score Zᵢₖ for linear."""
    Y_hat = output(kind, logits(params, inputs(images)))  # (N, K)
    digits = Y_hat.argmax(axis=1)  # (N,)
    return digits, Y_hat[np.arange(len(digits)), digits]  # (N,), (N,)


def as_text(pixels: np.ndarray) -> str:
    """The (784,) uint8 pixels as 28 lines of text, each pixel two characters wide (so that the
    picture looks square), darker characters for more ink: what the model is given."""
    levels = pixels.reshape(28, 28).astype(int) * len(SHADES) // 256  # (28, 28), 0..9
    return "\n".join("".join(2 * SHADES[v] for v in row) for row in levels)
