"""A picture file read as grey pixels, bounded: the only part of the package that needs
Pillow (the `images` extra), imported when a picture is read, so that the rest works without it.
Only the formats people use are opened; sizes are checked from the header before decoding."""

import importlib
import math
import os
import re
import stat
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnist_cli.errors import ImageError, MissingExtraError

if TYPE_CHECKING:
    import PIL.Image

# The formats a picture is opened as: Pillow's name -> the name people know. Every other
# Pillow plugin stays unused: EPS and PS run Ghostscript, an interpreter of programs.
FORMATS: dict[str, str] = {
    "PNG": "PNG",
    "JPEG": "JPEG",
    "GIF": "GIF",
    "BMP": "BMP",
    "TIFF": "TIFF",
    "WEBP": "WebP",
}
# Pillow's plugin for each of FORMATS, and the format a file name's suffix announces: Image.open
# meeting a format whose plugin is not imported yet imports every plugin Pillow has (Image.init,
# ≈ 30 ms, most of mnist-predict's start-up for a JPEG), so open_picture imports them itself.
PLUGINS: dict[str, str] = {
    "PNG": "PngImagePlugin",
    "JPEG": "JpegImagePlugin",
    "GIF": "GifImagePlugin",
    "BMP": "BmpImagePlugin",
    "TIFF": "TiffImagePlugin",
    "WEBP": "WebPImagePlugin",
}
SUFFIXES: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".jfif": "JPEG",
    ".gif": "GIF",
    ".bmp": "BMP",
    ".dib": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}
# The most pixels decoded from one picture (Pillow warns at 89 M and refuses 179 M, which
# take gigabytes here): a digit needs a few thousand, a 24-megapixel photo is still read.
MAX_PIXELS = 25_000_000
MAX_SIDE = 20_000  # and the longest side: a 1 × 20,000,000 picture shows no digit
READ_SIDE = 640  # a large picture is read reduced, its shorter side kept ≥ READ_SIDE
READ_PIXELS = 2_000_000  # ... and to at most this many (a thin 25 MP cost 1 GB before)


def load_image(path: str | Path) -> np.ndarray:
    """The picture in `path` (one of FORMATS) as grey levels (H, W) float64 in [0, 1], 0 black
    and 1 white.

    Only a regular file is opened, and only as one of FORMATS, so that no other Pillow plugin
    (EPS would start Ghostscript) ever sees it. Its size is checked from the header before it
    is decoded: a JPEG is decoded reduced (1/2 to 1/8, its shorter side kept ≥ READ_SIDE),
    and more than MAX_PIXELS pixels to decode, or a side longer than MAX_SIDE, is refused.
    A picture whose shorter side is at least twice READ_SIDE, or of more than READ_PIXELS
    pixels, is then reduced by an integer factor (mean of k × k blocks), which the digit,
    scaled to 20 px in the end, does not miss.

    The EXIF orientation of photos is applied; transparent pixels are taken as white paper
    (a drawing exported with a transparent background); 16-bit and float pictures are scaled
    from their darkest to their lightest pixel. Raises ImageError naming the file if it cannot
    be read, and MissingExtraError if Pillow is not installed.
    """
    try:
        from PIL import Image
    except ImportError:
        raise MissingExtraError(
            "reading images needs Pillow, which is not installed: run `make dev` in the "
            "repository, or `.venv/bin/pip install -e '.[images]'`"
        ) from None
    check_picture_file(path)
    try:
        with warnings.catch_warnings():  # the size is checked below, in one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = open_picture(path)
        with opened as image:
            if image.format == "JPEG":
                image.draft("L", (READ_SIDE, READ_SIDE))  # decoded at 1/2, 1/4 or 1/8
            check_pixels(path, image.size)
            image.load()  # decode now, so that a truncated file fails here
            image = upright(image)
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                paper = Image.new("RGBA", rgba.size, "white")
                image = Image.alpha_composite(paper, rgba)
            if image.mode in ("I", "F") or image.mode.startswith("I;16"):
                image = image.convert("F")  # float32: exact for 16 bits
                if not np.isfinite(np.asarray(image)).all():
                    raise ImageError(
                        f"{path}: the picture holds non-finite pixels (NaN or infinity)"
                    )
                lo, hi = image.getextrema()  # any range
                if hi == lo:
                    return np.zeros(reduced(image).size[::-1])  # (H, W)
                a, b = 1 / (hi - lo), -lo / (hi - lo)  # darkest 0, lightest 1
                image = image.point(lambda v: v * a + b)  # before reduce: no overflow
                return np.asarray(reduced(image), dtype=np.float64)  # (H, W)
            grey = reduced(image.convert("L"))
            return np.asarray(grey, dtype=np.float64) / 255  # (H, W)
    except Image.UnidentifiedImageError:
        raise ImageError(
            f"{path}: not a picture in a format mnist-predict reads "
            f"({', '.join(FORMATS.values())})"
        ) from None
    except Image.DecompressionBombError as e:  # Pillow's own bound, twice its warning's
        declared = re.search(r"\((\d+) pixels\)", str(e))  # the size is not given
        raise too_large(path, int(declared[1]) if declared else None) from None
    except (OSError, ValueError) as e:
        raise ImageError(f"{path}: cannot read the image ({e})") from None


def open_picture(path: str | Path) -> "PIL.Image.Image":
    """Image.open(path) as one of FORMATS, importing only the plugins it needs: the one for the
    format the suffix announces, tried alone first, and the others only if that one does not
    read the file. The same picture or error as Image.open(path, formats=list(FORMATS)): each
    plugin accepts only its own signature bytes, so the order they are tried in does not matter.
    """
    from PIL import Image

    announced = SUFFIXES.get(Path(path).suffix.lower())
    if announced:
        import_plugins([announced])
        try:
            with (
                warnings.catch_warnings()
            ):  # a failure's warnings come from the call below
                warnings.simplefilter("ignore")
                return Image.open(path, formats=[announced])
        except Image.UnidentifiedImageError:
            pass  # not the format its name says: try them all
    import_plugins(FORMATS)
    return Image.open(path, formats=list(FORMATS))


def import_plugins(formats: Iterable[str]) -> None:
    """Import Pillow's plugins for `formats` (keys of PLUGINS); one that cannot be imported is
    left out, as Pillow itself does."""
    for name in formats:
        try:
            importlib.import_module(f"PIL.{PLUGINS[name]}")
        except ImportError:
            pass


# EXIF orientation (tag 0x0112) -> the Image.Transpose that shows the picture upright, as
# PIL.ImageOps.exif_transpose does it (which imports ~3 ms of modules we do not otherwise need)
ORIENTATION = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}


def upright(image):
    """`image` turned as its EXIF orientation says a camera held it (a new image), or itself."""
    from PIL import Image

    method = ORIENTATION.get(image.getexif().get(0x0112))
    return image.transpose(getattr(Image.Transpose, method)) if method else image


def check_picture_file(path: str | Path) -> None:
    """Raise ImageError unless `path` (symbolic links followed) is a regular file: reading a
    FIFO waits for a writer forever, a device such as /dev/zero never ends."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise ImageError(f"{path}: cannot read the image ({e.strerror})") from None
    if not stat.S_ISREG(mode):
        kinds = {
            stat.S_ISDIR: "a directory",
            stat.S_ISFIFO: "a FIFO",
            stat.S_ISCHR: "a character device",
            stat.S_ISBLK: "a block device",
            stat.S_ISSOCK: "a socket",
        }
        kind = next((k for test, k in kinds.items() if test(mode)), "not a file")
        raise ImageError(
            f"{path}: not a regular file ({kind}); give the picture's file"
        )


def check_pixels(path: str | Path, size: tuple[int, int]) -> None:
    """Raise ImageError if a picture of size (width, height) has more than MAX_PIXELS pixels
    or a side longer than MAX_SIDE."""
    if size[0] * size[1] > MAX_PIXELS:
        raise too_large(path, size[0] * size[1], f"{size[0]} x {size[1]} = ")
    if max(size) > MAX_SIDE:
        raise ImageError(
            f"{path}: too long to read ({size[0]} x {size[1]} pixels; the longest side a "
            f"picture may have is {MAX_SIDE:,})"
        )


def too_large(path: str | Path, pixels: int | None, size: str = "") -> ImageError:
    """The error for a picture of `pixels` pixels (None: unknown, beyond Pillow's bound)."""
    count = f"{pixels:,} pixels" if pixels else "beyond Pillow's own bound"
    return ImageError(
        f"{path}: too large to read ({size}{count}; "
        f"the most a picture may have is {MAX_PIXELS:,})"
    )


def reduced(image: "PIL.Image.Image") -> "PIL.Image.Image":
    """`image` reduced k times along each axis (each pixel the mean of a k × k block), with k
    the largest integer that keeps the shorter side ≥ READ_SIDE, or the smallest that leaves
    at most READ_PIXELS pixels if that is larger; `image` itself if k < 2."""
    fit = math.ceil(math.sqrt(image.size[0] * image.size[1] / READ_PIXELS))
    k = max(min(image.size) // READ_SIDE, fit)
    return image.reduce(k) if k >= 2 else image
