"""mnist-predict: pictures of digits in, digits out, as well as the model scores MNIST itself."""

import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import EpsImagePlugin, Image

from mnist_cli.cli import predict_command
from mnist_cli.data.idx import read_idx
from mnist_cli.errors import ImageError
from mnist_cli.metrics import evaluate
from mnist_cli.nn.layers import inputs
from mnist_cli.nn.losses import softmax
from mnist_cli.predict.images import classify
from mnist_cli.predict.pictures import load_image
from mnist_cli.rundir.weights import load_weights

N = 50  # test-set digits written as pictures


@pytest.fixture
def runs(trained_runs):
    """The shared default softmax and linear runs (conftest.py), by model."""
    return {model: trained_runs[model][0] for model in ("softmax", "linear")}


@pytest.fixture(scope="module")
def digits(mnist_cache):
    """The first N test images (N, 28, 28) uint8 and their labels (N,)."""
    folder = mnist_cache / "mnist"
    images = read_idx(folder / "t10k-images-idx3-ubyte")[:N]
    return np.array(images), np.array(read_idx(folder / "t10k-labels-idx1-ubyte")[:N])


VARIANTS = {
    "as-is": lambda x: Image.fromarray(x),  # light digit on black, 28 × 28
    "inverted": lambda x: Image.fromarray(255 - x),  # dark digit on white paper
    "upscaled": lambda x: Image.fromarray(x).resize((200, 200), Image.BICUBIC),
    "inverted-upscaled-jpeg": lambda x: Image.fromarray(255 - x).resize(
        (200, 200), Image.BICUBIC
    ),
}


@pytest.fixture(scope="module")
def pictures(tmp_path_factory, digits):
    """{variant: [N paths]}: the N digits written as picture files, each variant in a folder."""
    root = tmp_path_factory.mktemp("pictures")
    paths = {}
    for variant, draw in VARIANTS.items():
        (root / variant).mkdir()
        ext = "jpg" if variant.endswith("jpeg") else "png"
        paths[variant] = [root / variant / f"{i:02d}.{ext}" for i in range(N)]
        for x, path in zip(digits[0], paths[variant]):
            draw(x).save(path)
    return paths


def predict(args):
    result = CliRunner().invoke(predict_command, [str(a) for a in args])
    return result


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("model", ["softmax", "linear"])
def test_pictures_are_classified_as_well_as_mnist_itself(
    runs, digits, pictures, model, variant
):
    images, labels = digits
    params = load_weights(runs[model]).params
    # (N,) what mnist-eval predicts: the largest logit
    on_mnist = (inputs(images.reshape(N, 784)) @ params.W.T + params.b).argmax(axis=1)
    mnist_accuracy = evaluate(params, images.reshape(N, 784), labels).accuracy

    result = predict([runs[model], *pictures[variant], "--json"])
    assert result.exit_code == 0, result.output
    predicted = np.array(
        [json.loads(line)["digit"] for line in result.stdout.splitlines()]
    )
    agreement = np.mean(predicted == on_mnist)
    accuracy = np.mean(predicted == labels)
    assert agreement >= 0.9, (
        f"{variant}: agrees with the raw digits on {agreement:.0%}, expected ≥ 90%"
    )
    assert abs(accuracy - mnist_accuracy) <= 0.06, (
        f"{variant}: accuracy {accuracy:.0%} on the pictures, {mnist_accuracy:.0%} on the same MNIST digits"
    )


@pytest.mark.parametrize(
    "model, key", [("softmax", "probability"), ("linear", "score")]
)
def test_json_lines(runs, pictures, model, key):
    first, second = pictures["inverted"][:2]
    # the path exactly as typed, not normalised
    as_given = f"{first.parent}/./{first.name}"
    result = predict([runs[model], as_given, second, "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [sorted(line) for line in lines] == [sorted(["image", "digit", key])] * 2, (
        lines
    )
    assert [line["image"] for line in lines] == [as_given, str(second)]
    assert lines[0]["digit"] == 7 and lines[1]["digit"] == 2, (
        lines
    )  # test digits 0 and 1
    if key == "probability":
        assert all(0.5 < line[key] <= 1 for line in lines), lines
    else:
        assert all(isinstance(line[key], float) for line in lines), lines


@pytest.mark.parametrize(
    "model, key", [("softmax", "probability"), ("linear", "score")]
)
def test_human_output_is_one_line_per_image(runs, pictures, model, key):
    paths = pictures["upscaled"][:3]
    result = predict([runs[model], *paths])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3, lines
    for path, line, digit in zip(paths, lines, (7, 2, 1)):
        pattern = rf"{re.escape(str(path))}: {digit}  {key} -?\d+\.\d{{4}}"
        assert re.fullmatch(pattern, line), f"{line!r} does not match {pattern!r}"


def test_a_file_that_is_not_an_image_is_a_one_line_error(runs, pictures, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    result = predict([runs["softmax"], pictures["as-is"][0], bad])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {bad}: not a picture in a format mnist-predict reads "
        "(PNG, JPEG, GIF, BMP, TIFF, WebP)\n"
    )
    assert result.stdout == "", "no prediction is printed when any picture is bad"


@pytest.mark.parametrize(
    "fmt, name", [("PNG", "digit.jpg"), ("JPEG", "digit.gif"), ("BMP", "digit")]
)
def test_a_picture_is_read_whatever_its_name_says(tmp_path, fmt, name):
    """load_image tries the plugin the suffix names first (to import no other), then all of
    them: a picture under a wrong suffix, or none, reads as it does under its own."""
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    right = tmp_path / f"right.{fmt.lower()}"
    Image.fromarray(digit).save(right, format=fmt)
    wrong = tmp_path / name
    wrong.write_bytes(right.read_bytes())
    np.testing.assert_array_equal(load_image(wrong), load_image(right))


def test_a_truncated_image_is_a_one_line_error(runs, pictures, tmp_path):
    cut = tmp_path / "cut.png"
    data = pictures["upscaled"][0].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    result = predict([runs["softmax"], cut])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {cut}: cannot read the image ("), (
        result.output
    )
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_a_blank_image_is_an_error(runs, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("L", (120, 80), 255).save(blank)
    result = predict([runs["softmax"], blank])
    assert result.exit_code == 1
    assert result.output.startswith(
        f"Error: {blank}: no digit found: the picture is blank"
    ), result.output


def test_missing_image_is_a_usage_error(runs, tmp_path):
    result = predict([runs["softmax"], tmp_path / "nothing.png"])
    assert result.exit_code == 2
    assert "nothing.png' does not exist" in result.output


def test_missing_pillow_is_a_one_line_error(runs, pictures, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)  # `from PIL import Image` now fails
    result = predict([runs["softmax"], pictures["as-is"][0]])
    assert result.exit_code == 1
    assert result.output == (
        "Error: reading images needs Pillow, which is not installed: run `make dev` in the "
        "repository, or `.venv/bin/pip install -e '.[images]'`\n"
    )


def test_transparent_background_is_paper(tmp_path):
    """A drawing exported with a transparent background: black strokes on alpha 0."""
    rgba = np.zeros((60, 40, 4), np.uint8)  # transparent black everywhere
    rgba[10:50, 18:22] = (0, 0, 0, 255)  # an opaque black stroke
    Image.fromarray(rgba, "RGBA").save(tmp_path / "drawing.png")
    grey = load_image(tmp_path / "drawing.png")
    assert grey.shape == (60, 40)
    assert grey[0, 0] == 1.0 and grey[30, 20] == 0.0, (grey[0, 0], grey[30, 20])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_turned_as_pillow_turns_it(tmp_path, orientation):
    from PIL import ImageOps

    rng = np.random.default_rng(orientation)
    picture = Image.fromarray(
        rng.integers(0, 256, (7, 12), dtype=np.uint8)
    )  # no symmetry
    exif = Image.Exif()
    exif[0x0112] = orientation
    picture.save(tmp_path / "photo.png", exif=exif)
    with Image.open(tmp_path / "photo.png") as reference:
        expected = np.asarray(ImageOps.exif_transpose(reference), np.float64) / 255
    np.testing.assert_array_equal(load_image(tmp_path / "photo.png"), expected)


def test_photo_orientation_and_16_bit_pictures(tmp_path):
    photo = Image.new("L", (30, 10), 200)  # 30 wide, 10 tall
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF orientation: the camera was turned, rotate 90° to view
    photo.save(tmp_path / "photo.jpg", exif=exif)
    assert load_image(tmp_path / "photo.jpg").shape == (30, 10), (
        "EXIF orientation ignored"
    )
    deep = np.array([[0, 30000], [60000, 65535]], np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    grey = load_image(tmp_path / "deep.png")
    np.testing.assert_allclose(grey, deep / 65535, atol=1e-6)


def test_show_prints_what_the_model_sees(runs, pictures, digits):
    path = pictures["inverted-upscaled-jpeg"][0]
    result = predict([runs["softmax"], path, "--show"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{path}: 7  probability "), lines[0]
    picture = lines[1:]
    assert len(picture) == 28 and {len(line) for line in picture} == {56}, picture
    # the text picture's ink follows MNIST's own picture of that digit (light = more ink)
    ink = np.array([[c != " " for c in line[::2]] for line in picture])  # (28, 28)
    mnist_ink = digits[0][0] > 64
    overlap = (ink & mnist_ink).sum() / mnist_ink.sum()
    assert overlap > 0.8, (
        f"only {overlap:.0%} of the digit's ink shows in the text picture"
    )


def test_show_and_json_do_not_mix(runs, pictures):
    result = predict([runs["softmax"], pictures["as-is"][0], "--show", "--json"])
    assert result.exit_code == 2
    assert (
        "Error: --show prints pictures as text; it cannot go with --json"
        in result.output
    )


def test_help_version_and_the_console_script(runs, tmp_path):
    help_text = CliRunner().invoke(predict_command, ["-h"]).output
    assert "Example:" in help_text and "--json" in help_text and "--show" in help_text
    assert "0.1.0" in CliRunner().invoke(predict_command, ["--version"]).output
    script = Path(sys.executable).parent / "mnist-predict"  # the installed entry point
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    out = subprocess.run(
        [script, runs["softmax"], bad], capture_output=True, text=True, check=False
    )
    assert out.returncode == 1 and out.stdout == "", out
    assert out.stderr.startswith(f"Error: {bad}: ") and out.stderr.count("\n") == 1
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("model", ["softmax", "linear"])
def test_probability_is_softmax_and_score_is_the_logit(runs, digits, model):
    weights = load_weights(runs[model])
    kind, params = weights.kind, weights.params
    images = digits[0].reshape(N, 784)
    Z = inputs(images) @ params.W.T + params.b  # (N, K)
    expected = softmax(Z) if kind == "softmax" else Z  # (N, K)
    predicted, values = classify(weights.network, images)
    np.testing.assert_array_equal(predicted, Z.argmax(axis=1))
    np.testing.assert_allclose(values, expected.max(axis=1), rtol=1e-6)


def png_declaring(path, width, height):
    """A 1 × 1 grey PNG whose header (IHDR, CRC recomputed) declares width × height."""
    Image.new("L", (1, 1), 255).save(path)
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR", data[:32]
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "width, height, size",
    [
        (6000, 6000, "6000 x 6000 = 36,000,000 pixels"),  # above ours, below Pillow's
        (13000, 13000, "13000 x 13000 = 169,000,000 pixels"),  # Pillow warns
        (20000, 20000, "400,000,000 pixels"),  # Pillow refuses, without the size
        (5001, 5000, "5001 x 5000 = 25,005,000 pixels"),  # "25.0 megapixels" before
    ],
)
def test_a_picture_too_large_is_refused_from_its_header(
    runs, tmp_path, width, height, size
):
    """A 46 KB PNG of 13000 × 13000 took 6.6 GB and 17 s; it is refused before decoding (the
    file holds one pixel: decoding it would be a truncated-file error), with no warning."""
    huge = tmp_path / "huge.png"
    png_declaring(huge, width, height)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = predict([runs["softmax"], huge])
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"Error: {huge}: too large to read ({size}; "
        "the most a picture may have is 25,000,000)\n"
    )
    assert [str(w.message) for w in caught] == [], "Pillow's warning was let through"


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_a_float_picture_with_non_finite_pixels_is_one_line(runs, tmp_path, value):
    tiff = tmp_path / "float.tif"
    pixels = np.zeros((40, 30), np.float32)
    pixels[10:30, 14:16] = 1.0  # a stroke
    pixels[0, 0] = value
    Image.fromarray(pixels).save(tiff)
    assert Image.open(tiff).mode == "F"
    result = predict([runs["softmax"], tiff])
    assert result.exit_code == 1, result.exception
    assert result.output == (
        f"Error: {tiff}: the picture holds non-finite pixels (NaN or infinity)\n"
    )


def test_formats_outside_the_allow_list_are_refused_unread(runs, tmp_path, monkeypatch):
    """An EPS file made Pillow look for Ghostscript, an interpreter of programs."""
    started = []
    monkeypatch.setattr(
        EpsImagePlugin, "Ghostscript", lambda *a, **k: started.append(a)
    )
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: started.append(1))
    eps = tmp_path / "seven.eps"
    eps.write_text(
        "%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n"
        "newpath 6 24 moveto 22 24 lineto 10 4 lineto stroke\nshowpage\n%%EOF\n"
    )
    assert Image.open(eps).format == "EPS", "Pillow itself would read it as EPS"
    result = predict([runs["softmax"], eps])
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"Error: {eps}: not a picture in a format mnist-predict reads "
        "(PNG, JPEG, GIF, BMP, TIFF, WebP)\n"
    )
    assert started == [], "Ghostscript was looked for"


def unblock_readers_of(fifo, seconds=5.0):
    """Should the code under test open `fifo` and wait for a writer (forever), be that
    writer: open and close it at once, so that the reader sees an empty file and the test
    fails instead of hanging. Gives up after `seconds` if nobody opens it for reading."""

    def writer():
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # ENXIO: no reader
                return
            except OSError:
                time.sleep(0.01)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    return thread


def test_a_fifo_or_a_device_is_refused_before_it_is_opened(runs, pictures, tmp_path):
    """A FIFO passed to mnist-predict hung (waiting for a writer); /dev/zero never ends."""
    fifo = tmp_path / "digit.png"
    os.mkfifo(fifo)
    unblock_readers_of(fifo)
    result = predict([runs["softmax"], pictures["as-is"][0], fifo])
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"Error: {fifo}: not a regular file (a FIFO); give the picture's file\n"
    )
    if Path("/dev/zero").exists():
        result = predict([runs["softmax"], "/dev/zero"])
        assert result.output == (
            "Error: /dev/zero: not a regular file (a character device); "
            "give the picture's file\n"
        )
    with pytest.raises(ImageError) as error:  # the CLI refuses folders itself (exit 2)
        load_image(tmp_path)
    assert str(error.value) == (
        f"{tmp_path}: not a regular file (a directory); give the picture's file"
    )


@pytest.mark.parametrize(
    "name, size, decoded",
    [
        ("photo.jpg", (6000, 4500), (1125, 1500)),  # 27 MP, decoded at 1/4 (draft)
        ("scan.png", (2000, 1500), (750, 1000)),  # decoded whole, then halved
    ],
)
def test_a_large_picture_is_read_reduced(runs, digits, tmp_path, name, size, decoded):
    """A JPEG is decoded reduced (Image.draft), a JPEG beyond MAX_PIXELS too; any picture
    is reduced by whole factors while its shorter side stays ≥ 640; the digit is the same."""
    big, small = tmp_path / name, tmp_path / "small.png"
    digit = Image.fromarray(255 - digits[0][0])  # a 7, dark on white
    digit.resize(size, Image.NEAREST).save(big)
    digit.resize((200, 200), Image.BICUBIC).save(small)
    assert load_image(big).shape == decoded
    result = predict([runs["softmax"], small, big, "--json"])
    assert result.exit_code == 0, result.output
    found = [json.loads(line)["digit"] for line in result.stdout.splitlines()]
    assert found == [7, 7], found


def test_every_accepted_format_predicts_the_digit_a_png_does(runs, digits, tmp_path):
    """The allow-list keeps every format it names: each gives the PNG's prediction."""
    formats = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]
    saved = {"JPEG": {"quality": 95}, "WEBP": {"lossless": True}}
    paths = []
    for i, x in enumerate(digits[0][:4]):
        picture = Image.fromarray(255 - x).resize((120, 120), Image.BICUBIC)
        for format in formats:
            paths.append(tmp_path / f"{i}.{format.lower()}")
            picture.save(paths[-1], format=format, **saved.get(format, {}))
    result = predict([runs["softmax"], *paths, "--json"])
    assert result.exit_code == 0, result.output
    found = np.array(
        [json.loads(line)["digit"] for line in result.stdout.splitlines()]
    ).reshape(4, len(formats))  # (digits, formats)
    assert (found == found[:, :1]).all(), dict(zip(formats, found.T.tolist()))
    assert found[:, 0].tolist() == [7, 2, 1, 0], found[:, 0]
