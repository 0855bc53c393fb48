"""MNIST's own preprocessing, applied to any picture of a digit: pure numpy, no I/O.

An MNIST digit is a light stroke on black, size-normalised so that its bounding box fits a
20 × 20 box (aspect ratio kept, edges anti-aliased by the scaling), and placed in a 28 × 28 field
by an integer shift that puts its centre of mass on pixel (14, 14) (row, column; the test set's
mean centre of mass is (13.99, 14.01)). A photo or a drawing is none of that, so `preprocess`
redoes those steps on a grey picture G (H, W) with values in [0, 1]:

    1. polarity  the border is paper: if its median is light, the ink is dark, so I = 1 − G
    2. contrast  subtract the paper level and divide by the ink range, so paper is 0, ink is 1;
                 then cut the paper's shading and noise (the border's 95th percentile) to 0
    3. crop      to the bounding box of the pixels with I ≥ THRESHOLD
    4. scale     the longer side to 20 px, aspect kept, with a triangle (bilinear) filter that
                 widens to average every input pixel when shrinking (anti-aliasing)
    5. centre    in 28 × 28 by an integer shift of the centre of mass onto (14, 14)

and returns the 784 pixels as uint8, as the IDX files store them.

The border's median and percentile are computed here (`median`, `percentile`), as numpy's do,
because numpy.median and numpy.percentile import numpy.ma, ≈ 5 ms of mnist-predict's start-up.
"""

import math

import numpy as np

from mnist_cli.errors import ImageError

FIELD = 28  # MNIST images are FIELD × FIELD
BOX = 20  # the longer side of the digit, in pixels
CENTRE = 14.0  # where the centre of mass goes, in pixel indices (row, column)
THRESHOLD = 0.25  # ink level (0 paper, 1 darkest ink) that counts for the bounding box
MIN_CONTRAST = 0.15  # below this difference between ink and paper, there is no digit
MAX_FLOOR = 0.5  # the most of the ink range taken as the paper's shading and noise


def to_unit(grey: np.ndarray) -> np.ndarray:
    """Grey levels as float64 in [0, 1]: uint8/uint16 are divided by their maximum, floats are
    taken as they are (and must lie in [0, 1])."""
    if grey.ndim != 2:
        raise ValueError(f"expected a 2-d grey image, got shape {grey.shape}")
    if grey.dtype.kind == "u":
        return grey.astype(np.float64) / np.iinfo(grey.dtype).max
    if grey.dtype.kind == "b":
        return grey.astype(np.float64)
    g = grey.astype(np.float64)
    if not (np.isfinite(g).all() and g.min() >= 0 and g.max() <= 1):
        raise ValueError("float grey levels must be finite and in [0, 1]")
    return g


def ink_levels(grey: np.ndarray) -> np.ndarray:
    """Steps 1 and 2: I (H, W) in [0, 1], 0 on the paper and 1 on the strongest ink, whichever
    way round the picture is. Raises ImageError if there is no contrast (a blank picture).

    The border is taken to be paper: its median is the paper level, and 95 % of its pixels
    (shading, noise, JPEG ripples) end at 0 after the floor is subtracted. The floor is at
    most MAX_FLOOR, so a digit cropped so tightly that it touches the border keeps its strokes.
    """
    g = to_unit(grey)  # (H, W)
    paper = median(border_of(g))  # the paper's grey level
    if paper > 0.5:  # dark digit on light paper: invert, so that ink is high
        g, paper = 1.0 - g, 1.0 - paper
    contrast = float(g.max()) - paper
    if contrast < MIN_CONTRAST:
        raise ImageError(
            "no digit found: the picture is blank (one flat colour, or too little contrast "
            "between ink and paper)"
        )
    ink = np.clip((g - paper) / contrast, 0.0, 1.0)  # (H, W)
    # the paper's own shading and noise, as high as the border shows it, is cut to 0
    floor = min(percentile(border_of(ink), 95), MAX_FLOOR)
    return np.clip((ink - floor) / (1.0 - floor), 0.0, 1.0)  # (H, W)


def median(values: np.ndarray) -> float:
    """The median of values (n,), n ≥ 1: the middle one, or the mean of the two middle ones,
    bit for bit numpy.median's."""
    n = len(values)
    middle = np.partition(values, [(n - 1) // 2, n // 2])  # (n,)
    return float((middle[(n - 1) // 2] + middle[n // 2]) / 2)


def percentile(values: np.ndarray, q: float) -> float:
    """The q-th percentile of values (n,), n ≥ 1, bit for bit numpy.percentile's (its default,
    linear method): the sorted values at ranks i = ⌊v⌋ and i + 1, v = (n − 1) q / 100, mixed
    by t = v − i as numpy mixes them (from the nearer end, for accuracy)."""
    ranked = np.sort(values)  # (n,)
    v = (len(ranked) - 1) * (q / 100)
    i = math.floor(v)
    a, b = float(ranked[i]), float(ranked[min(i + 1, len(ranked) - 1)])
    t = v - i
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def border_of(image: np.ndarray) -> np.ndarray:
    """The outermost pixels of image (H, W), as one array."""
    return np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])


def crop_to_ink(ink: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Step 3: the smallest rectangle of `ink` holding every pixel ≥ threshold.  (h, w)"""
    rows = np.flatnonzero((ink >= threshold).any(axis=1))
    cols = np.flatnonzero((ink >= threshold).any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def resample_matrix(n: int, m: int) -> np.ndarray:
    """A (m, n) that resamples a line of n pixels to m: output pixel i is Σⱼ Aᵢⱼ xⱼ.

    Output pixel i is centred at cᵢ = (i + ½)·n/m − ½ in input pixel indices, and weighs input
    pixel j by the triangle max(0, 1 − |j − cᵢ| / s), s = max(n/m, 1): linear interpolation
    when enlarging, and when shrinking a triangle as wide as the output pixel, so that every
    input pixel contributes (no aliasing). Rows are normalised to sum to 1.
    """
    scale = n / m
    centres = (np.arange(m) + 0.5) * scale - 0.5  # (m,)
    distance = np.abs(np.arange(n)[None, :] - centres[:, None])  # (m, n)
    A = np.maximum(0.0, 1.0 - distance / max(scale, 1.0))  # (m, n)
    return A / A.sum(axis=1, keepdims=True)


def resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """image (h, w) -> (H, W) = A_rows image A_colsᵀ: the filter applied along each axis."""
    rows = resample_matrix(image.shape[0], shape[0])  # (H, h)
    cols = resample_matrix(image.shape[1], shape[1])  # (W, w)
    return rows @ image @ cols.T  # (H, W)


def scale_to_box(digit: np.ndarray, box: int = BOX) -> np.ndarray:
    """Step 4: the longer side to `box` pixels, the other in proportion (at least 1).  (h', w')"""
    h, w = digit.shape
    longer = max(h, w)
    shape = (max(1, round(box * h / longer)), max(1, round(box * w / longer)))
    return resize(digit, shape)


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) of the intensity-weighted mean pixel index of image (h, w)."""
    mass = image.sum()
    row = image.sum(axis=1) @ np.arange(image.shape[0]) / mass
    col = image.sum(axis=0) @ np.arange(image.shape[1]) / mass
    return float(row), float(col)


def centre_in_field(digit: np.ndarray, field: int = FIELD) -> np.ndarray:
    """Step 5: digit (h, w) placed in a (field, field) zero image, shifted by whole pixels so
    that its centre of mass lands on (CENTRE, CENTRE). A lopsided digit whose shift would push
    ink out of the field is shifted only as far as keeps all of it inside."""
    h, w = digit.shape
    row, col = centre_of_mass(digit)
    top = int(np.clip(round(CENTRE - row), 0, field - h))
    left = int(np.clip(round(CENTRE - col), 0, field - w))
    out = np.zeros((field, field))
    out[top : top + h, left : left + w] = digit
    return out  # (field, field)


def preprocess(grey: np.ndarray) -> np.ndarray:
    """Any grey picture G (H, W) of one digit -> the (784,) uint8 pixels of an MNIST image.

    `grey` is uint8 (0 black, 255 white), uint16, bool, or float in [0, 1]. Raises ImageError
    if the picture is blank.
    """
    ink = ink_levels(grey)  # (H, W) in [0, 1], digit light on black
    digit = scale_to_box(crop_to_ink(ink))  # (h', w'), max(h', w') = BOX
    field = centre_in_field(digit)  # (28, 28)
    return np.rint(255 * np.clip(field, 0.0, 1.0)).astype(np.uint8).reshape(-1)
