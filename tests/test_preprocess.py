"""preprocess.py: MNIST's own preprocessing (polarity, crop, 20-px box, centre of mass) in numpy."""

import numpy as np
import pytest

from mnist_cli.data.idx import read_idx
from mnist_cli.errors import ImageError
from mnist_cli.predict.preprocess import (
    centre_in_field,
    centre_of_mass,
    median,
    percentile,
    preprocess,
    resample_matrix,
    resize,
    to_unit,
)


@pytest.fixture(scope="module")
def test_digits(mnist_cache):
    """The first 300 MNIST test images, (300, 28, 28) uint8."""
    return np.array(read_idx(mnist_cache / "mnist" / "t10k-images-idx3-ubyte")[:300])


def ink_box(pixels: np.ndarray) -> tuple[int, int]:
    """(height, width) of the bounding box of the non-zero pixels of a (784,) image."""
    image = pixels.reshape(28, 28)
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def paper_with_ink(shape, ink_rows, ink_cols, paper=0.85, ink=0.15):
    """A dark rectangle of ink on light paper, float grey (H, W)."""
    grey = np.full(shape, paper)
    grey[ink_rows, ink_cols] = ink
    return grey


def test_mnist_digits_come_back_almost_unchanged(test_digits):
    """MNIST digits are already what preprocess makes: redoing it changes little."""
    out = np.stack([preprocess(x) for x in test_digits]).astype(int)  # (300, 784)
    diff = np.abs(out - test_digits.reshape(300, 784)).mean()
    assert diff < 1.0, f"mean |change| {diff:.3f} grey levels, expected < 1"
    assert out.dtype == int and out.shape == (300, 784)


def test_output_is_784_uint8_in_a_20px_box_centred_by_mass(test_digits):
    for x in test_digits[:50]:
        pixels = preprocess(x)
        assert pixels.shape == (784,) and pixels.dtype == np.uint8
        assert max(ink_box(pixels)) <= 20, f"ink box {ink_box(pixels)}, expected ≤ 20"
        row, col = centre_of_mass(pixels.reshape(28, 28).astype(float))
        assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5, (
            f"centre of mass ({row:.2f}, {col:.2f}), expected (14, 14) ± 0.5"
        )


def test_dark_digit_on_light_paper_is_inverted(test_digits):
    for x in test_digits[:50]:
        normal, inverted = preprocess(x).astype(int), preprocess(255 - x).astype(int)
        worst = np.abs(normal - inverted).max()
        assert worst <= 1, f"inverted picture differs by up to {worst} grey levels"


def test_a_large_picture_is_scaled_with_its_aspect_ratio(test_digits):
    """A 400 × 100 dark bar on grey paper becomes a 20 × 5 light bar, centred."""
    grey = paper_with_ink((600, 500), slice(100, 500), slice(300, 400))
    pixels = preprocess(grey)
    assert ink_box(pixels) == (20, 5), f"ink box {ink_box(pixels)}, expected (20, 5)"
    image = pixels.reshape(28, 28)
    assert image[4:24, 12:17].min() == 255, "the bar is not solid where expected"
    assert image.sum() == 255 * 100, f"total ink {image.sum()}, expected {255 * 100}"


def test_shaded_noisy_paper_does_not_matter():
    """A photo of the digit (grey paper, shaded from one side, noisy) gives the same digit as
    a clean scan: the paper's shading and noise end at 0, and do not widen the crop."""
    clean = paper_with_ink((90, 60), slice(20, 70), slice(25, 35), paper=1.0, ink=0.0)
    shading = np.linspace(0.65, 0.9, 60)[None, :]  # (1, 60) paper grey, left to right
    noise = np.random.default_rng(0).uniform(-0.04, 0.04, clean.shape)
    grey = np.clip(np.where(clean > 0.5, shading, 0.2) + noise, 0, 1)  # ink 0.2
    noisy, plain = preprocess(grey), preprocess(clean)
    assert ink_box(noisy) == ink_box(plain) == (20, 4), (ink_box(noisy), ink_box(plain))
    ratio = noisy.sum() / plain.sum()
    assert 0.9 < ratio <= 1.0, f"total ink {ratio:.3f} of the clean picture's"
    # a symmetric bar's centre of mass sits on a half pixel: noise may tip it one pixel
    (r1, c1), (r2, c2) = (centre_of_mass(p.reshape(28, 28)) for p in (noisy, plain))
    assert abs(r1 - r2) <= 1 and abs(c1 - c2) <= 1, ((r1, c1), (r2, c2))


def test_a_digit_cropped_to_the_edges_keeps_its_strokes():
    """A stroke that touches the border (a tightly cropped "1") is not taken for paper."""
    grey = paper_with_ink((40, 30), slice(0, 40), slice(12, 18), paper=1.0, ink=0.0)
    pixels = preprocess(grey)
    assert ink_box(pixels) == (20, 3), f"ink box {ink_box(pixels)}, expected (20, 3)"
    assert pixels.max() == 255 and pixels.sum() == 255 * 60, pixels.sum()


@pytest.mark.parametrize(
    "grey",
    [
        np.full((40, 30), 255, np.uint8),  # white
        np.zeros((28, 28), np.uint8),  # black
        np.full((10, 10), 0.5),  # grey
        np.random.default_rng(1).uniform(0.9, 1.0, (50, 50)),  # faint paper texture
    ],
    ids=["white", "black", "grey", "paper-texture"],
)
def test_blank_picture_is_an_error(grey):
    with pytest.raises(ImageError, match="no digit found: the picture is blank"):
        preprocess(grey)


def test_uint8_uint16_and_float_inputs_agree(test_digits):
    x = test_digits[7]
    as_float = preprocess(x / 255)
    as_uint16 = preprocess(x.astype(np.uint16) * 257)  # 255 * 257 = 65535
    np.testing.assert_array_equal(as_float, preprocess(x))
    np.testing.assert_array_equal(as_uint16, preprocess(x))


def test_bad_arrays_are_rejected():
    with pytest.raises(ValueError, match="2-d grey image"):
        to_unit(np.zeros((28, 28, 3), np.uint8))
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        to_unit(np.full((28, 28), 255.0))


@pytest.mark.parametrize("n, m", [(28, 28), (200, 20), (7, 20), (1, 5), (33, 20)])
def test_resample_matrix_rows_are_weights(n, m):
    A = resample_matrix(n, m)
    assert A.shape == (m, n)
    np.testing.assert_allclose(A.sum(axis=1), 1.0, err_msg="rows must sum to 1")
    assert (A >= 0).all()
    if n == m:
        np.testing.assert_allclose(A, np.eye(n), err_msg="same size must be identity")
    if n > m:  # shrinking: every input pixel counts, none is skipped (no aliasing)
        assert (A.sum(axis=0) > 0).all(), "some input pixel has no weight"


def test_resize_keeps_constants_and_the_mean():
    np.testing.assert_allclose(resize(np.full((60, 40), 0.3), (20, 13)), 0.3)
    stripes = np.tile([0.0, 1.0], (100, 50))  # (100, 100) one-pixel stripes
    small = resize(stripes, (10, 10))
    assert np.abs(small - 0.5).max() < 0.05, "stripes must average out, not alias"


def test_lopsided_digit_is_kept_inside_the_field():
    digit = np.zeros((20, 20))
    digit[:, 0] = 1.0  # all the mass on the left edge: the shift would push it out
    field = centre_in_field(digit)
    assert field.sum() == digit.sum(), "ink was cut off"
    assert field[:, 8].sum() == 20, (
        "expected the column at the furthest right it can go"
    )


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 112, 2236])
def test_median_and_percentile_are_numpys_bit_for_bit(n):
    """Our border statistics (numpy's would import numpy.ma at start-up) give numpy's values:
    ties, rounded values and every q, including those where the mix is taken from either end."""
    rng = np.random.default_rng(n)
    for trial in range(60):
        values = rng.random(n)
        if trial % 3 == 0:
            values = np.round(values, 1)  # ties
        assert median(values) == np.median(values), (
            n,
            median(values),
            np.median(values),
        )
        for q in (0, 5, 37.5, 50, 95, 100):
            ours, theirs = percentile(values, q), np.percentile(values, q)
            assert ours == theirs, (n, q, ours, theirs)
