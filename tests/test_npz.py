"""Hostile weights files: npz.py inspects an archive before reading it (issue 13, items 13-14).

Each archive is crafted here with zipfile: members numpy never wrote, .npy headers declaring
shapes no memory holds, declared sizes far beyond what the format needs (a zip bomb: zeros
deflate about 1000 to 1).
"""

import io
import tracemalloc
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from numpy.lib import format as npy

from mnist_cli.cli import eval_command, predict_command
from mnist_cli.errors import WeightsError
from mnist_cli.nn import D, K
from mnist_cli.rundir.weights import load_weights

GOOD = {
    "W": np.zeros((K, D), np.float32),
    "b": np.zeros(K, np.float32),
    "model": np.array("linear"),
    "format_version": np.array(1),
}
GIVE = "give a run directory written by mnist-train or the weights.npz inside one"


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def header(descr: str, shape: tuple[int, ...]) -> bytes:
    """A .npy header alone, declaring `shape` of `descr`, with no data after it."""
    buffer = io.BytesIO()
    npy.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


def write_archive(path, arrays=GOOD, **raw: bytes):
    """An .npz of `arrays` (as np.savez writes them) plus `raw` members (name: bytes)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, array in arrays.items():
            z.writestr(f"{name}.npy", npy_bytes(array))
        for name, data in raw.items():
            z.writestr(f"{name}.npy", data)
    return path


def refusal(path) -> str:
    with pytest.raises(WeightsError) as e:
        load_weights(path)
    return str(e.value)


def test_a_zip_bomb_member_is_refused_unread(tmp_path):
    """An extra array of 32 MiB of zeros, 32 KB deflated: refused by its name, before a byte
    of it is inflated (numpy.load inflated it whole: a 4 GiB one took 4.2 GB)."""
    bomb = header("<f4", (2**23,)) + bytes(2**25)
    path = write_archive(tmp_path / "weights.npz", extra=bomb)
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    try:
        message = refusal(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message == (
        f"{path}: not an mnist-cli weights file (unexpected member 'extra.npy'); {GIVE}"
    )
    assert peak < 4 * 2**20, f"allocated {peak / 2**20:.1f} MiB before refusing"


def test_a_known_member_declaring_more_than_it_may_hold_is_refused_unread(tmp_path):
    """W followed by 8 MiB of zeros (the bound: 8 bytes an element): the declared size is refused from the zip's listing."""
    padded = npy_bytes(GOOD["W"]) + bytes(2**23)
    arrays = {k: v for k, v in GOOD.items() if k != "W"}
    path = write_archive(tmp_path / "weights.npz", arrays, W=padded)
    bound = 10_000 + 16 + K * D * 8
    assert refusal(path) == (
        f"{path}: W declares {len(padded):,} bytes, more than the {bound:,} it may hold; "
        "refused unread"
    )


@pytest.mark.parametrize(
    "descr, shape, message",
    [
        ("<f4", (2**20, 2**20), "more than the 7,840 elements it may hold"),
        ("<f4", (2**62, 2**62), "more than the 7,840 elements it may hold"),
        ("<f4", (K * D,), "expected 2 dimensions"),
        ("<f2", (K, D), "has dtype float16, expected float32"),
        ("|O", (K, D), "holds Python objects (a pickle), which mnist-cli never loads"),
    ],
)
def test_a_header_is_checked_before_the_data_is_read(tmp_path, descr, shape, message):
    """numpy.load allocated what the header declared: _ArrayMemoryError, a traceback."""
    arrays = {k: v for k, v in GOOD.items() if k != "W"}
    path = write_archive(tmp_path / "weights.npz", arrays, W=header(descr, shape))
    got = refusal(path)
    assert got.startswith(f"{path}: W ") and message in got, got


def test_float16_or_float64_weights_are_refused(tmp_path):
    """The format stores float32; numpy.load gave float16 W, silently widened."""
    for dtype in (np.float16, np.float64):
        path = write_archive(tmp_path / "w.npz", {**GOOD, "W": GOOD["W"].astype(dtype)})
        assert refusal(path) == (
            f"{path}: W has dtype {np.dtype(dtype)}, expected float32"
        )


@pytest.mark.parametrize(
    "version, dtype",
    [
        (np.array("abc"), "<U3"),
        (np.array([1, 2]), None),
        (np.array(np.nan), "float64"),
        (np.array(True), "bool"),
        (np.array(1.0), "float64"),
    ],
)
def test_format_version_must_be_an_integer_scalar(tmp_path, version, dtype):
    path = write_archive(tmp_path / "w.npz", {**GOOD, "format_version": version})
    expected = (
        f"{path}: format_version has dtype {dtype}, expected an integer scalar"
        if dtype
        else f"{path}: format_version has shape (2,), expected a scalar"
    )
    assert refusal(path) == expected


def test_a_format_version_below_one_is_refused(tmp_path):
    path = write_archive(tmp_path / "w.npz", {**GOOD, "format_version": np.array(-3)})
    assert refusal(path) == f"{path}: format version -3 is not one mnist-cli writes"


def test_a_member_cut_short_or_bit_flipped_is_one_error(tmp_path):
    short = npy_bytes(GOOD["W"])[:-4]
    arrays = {k: v for k, v in GOOD.items() if k != "W"}
    path = write_archive(tmp_path / "short.npz", arrays, W=short)
    assert refusal(path) == (
        f"{path}: W's declared size does not match its shape (a broken file)"
    )
    path = write_archive(tmp_path / "flipped.npz")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("b.npy")
    # the byte in the middle of b's stored (deflated) data: the CRC no longer matches
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert refusal(path).startswith(f"{path}: not an mnist-cli weights file (")


def test_fortran_order_and_big_archives_written_by_numpy_still_load(tmp_path):
    """What np.savez and np.savez_compressed write loads, in either memory order."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((K, D)).astype(np.float32)
    arrays = {**GOOD, "W": np.asfortranarray(W)}
    np.savez_compressed(tmp_path / "w.npz", **arrays)
    loaded = load_weights(tmp_path / "w.npz").params.W
    np.testing.assert_array_equal(loaded, W)
    assert loaded.dtype == np.float32


@pytest.mark.parametrize(
    "content", [b"not a zip at all", b"\x80\x04K\x01.", b"", b"PK\x03\x04garbage"]
)
def test_a_garbage_file_never_suggests_loading_it_unsafely(tmp_path, content):
    """numpy's message advised "load it unsafely using the allow_pickle= keyword"."""
    path = tmp_path / "weights.npz"
    path.write_bytes(content)
    message = refusal(path)
    assert "pickle" not in message and "unsafe" not in message, message
    assert message.startswith(f"{path}: not an mnist-cli weights file ("), message
    assert message.endswith(GIVE), message


@pytest.fixture
def bomb_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_archive(run / "weights.npz", extra=header("<f4", (2**40,)))
    return run


def test_mnist_eval_refuses_hostile_weights_with_one_line(bomb_run):
    result = CliRunner().invoke(eval_command, [str(bomb_run)])
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"Error: {bomb_run / 'weights.npz'}: not an mnist-cli weights file "
        f"(unexpected member 'extra.npy'); {GIVE}\n"
    )


def test_mnist_predict_refuses_hostile_weights_with_one_line(bomb_run, tmp_path):
    picture = tmp_path / "seven.png"
    picture.write_bytes(b"never read")
    weights = bomb_run / "weights.npz"
    result = CliRunner().invoke(predict_command, [str(weights), str(picture)])
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"Error: {weights}: not an mnist-cli weights file "
        f"(unexpected member 'extra.npy'); {GIVE}\n"
    )
