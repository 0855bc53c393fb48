"""The IDX format: round trips, and one distinct error per way a file can be malformed."""

import struct
from pathlib import Path

import numpy as np
import pytest
from helpers import write_idx

from mnist_cli.data.idx import read_idx
from mnist_cli.errors import IdxFormatError


@pytest.mark.parametrize(
    ("dtype", "shape", "type_code"),
    [
        ("u1", (3, 28, 28), 0x08),
        ("i1", (7,), 0x09),
        ("<i2", (2, 3, 4, 5), 0x0B),
        ("<i4", (10, 1), 0x0C),
        ("<f4", (4, 4), 0x0D),
        ("<f8", (1, 1, 2), 0x0E),
    ],
)
def test_round_trip(
    tmp_path: Path, dtype: str, shape: tuple[int, ...], type_code: int
) -> None:
    rng = np.random.default_rng(0)
    array = (rng.standard_normal(shape) * 100).astype(dtype)
    path = tmp_path / "x-idx"
    write_idx(path, array)

    raw = path.read_bytes()
    header = bytes([0, 0, type_code, len(shape)]) + struct.pack(
        f">{len(shape)}I", *shape
    )
    assert raw[: len(header)] == header, (
        f"header: expected {header.hex()}, got {raw[:16].hex()}"
    )
    result = read_idx(path)
    assert result.shape == shape, f"shape: expected {shape}, got {result.shape}"
    expected_dtype = np.dtype(dtype).newbyteorder(">")  # IDX items are big-endian
    assert result.dtype == expected_dtype, (
        f"dtype: expected {expected_dtype}, got {result.dtype}"
    )
    np.testing.assert_array_equal(result, array)


def test_result_is_a_read_only_memmap(tmp_path: Path) -> None:
    path = tmp_path / "x-idx"
    write_idx(path, np.arange(12, dtype=np.uint8).reshape(3, 4))
    result = read_idx(path)
    assert isinstance(result, np.memmap), (
        f"expected np.memmap, got {type(result).__name__}"
    )
    assert not result.flags.writeable, "expected a read-only array"
    with pytest.raises(ValueError):
        result[0, 0] = 1


def test_empty_array_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "empty-idx"
    write_idx(path, np.zeros((0, 28, 28), dtype=np.uint8))
    result = read_idx(path)
    assert result.shape == (0, 28, 28), f"expected (0, 28, 28), got {result.shape}"
    assert not result.flags.writeable, "expected a read-only array"


def labels_file(path: Path, count: int = 5, payload: int | None = None) -> Path:
    """A valid uint8 1-dim IDX file of `count` items with `payload` data bytes (default count)."""
    header = bytes([0, 0, 0x08, 1]) + struct.pack(">I", count)
    path.write_bytes(header + bytes(count if payload is None else payload))
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "t-idx: file is 0 bytes, shorter than the 4-byte IDX magic"),
        (b"\x00\x08\x01", "t-idx: file is 3 bytes, shorter than the 4-byte IDX magic"),
        (
            b"\x1f\x8b\x08\x01" + bytes(8),
            "t-idx: not an IDX file (magic starts 1f 8b, expected 00 00)",
        ),
        (b"\x00\x01\x08\x01" + bytes(8), "t-idx: not an IDX file (magic starts 00 01"),
        (b"\x00\x00\x0a\x01" + bytes(8), "t-idx: unknown IDX type code 0x0A"),
        (b"\x00\x00\x08\x00", "t-idx: header declares 0 dimensions"),
        (
            b"\x00\x00\x08\x03" + struct.pack(">I", 2),
            (
                "t-idx: header declares 3 dimensions (12 bytes of sizes) "
                "but the file ends after 8 bytes"
            ),
        ),
    ],
    ids=[
        "empty",
        "short-magic",
        "gzip",
        "nonzero-byte",
        "type-code",
        "ndim-0",
        "short-header",
    ],
)
def test_malformed_header(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "t-idx"
    path.write_bytes(content)
    with pytest.raises(IdxFormatError) as info:
        read_idx(path)
    assert str(info.value).startswith(message), (
        f"expected {message!r}, got {str(info.value)!r}"
    )


def test_truncated(tmp_path: Path) -> None:
    path = labels_file(tmp_path / "t10k-labels-idx1-ubyte", count=10000, payload=9999)
    expected = (
        "t10k-labels-idx1-ubyte: expected 10008 bytes (header 8 + 10000 items), "
        "found 10007 (truncated)"
    )
    with pytest.raises(IdxFormatError) as info:
        read_idx(path)
    assert str(info.value) == expected, (
        f"expected {expected!r}, got {str(info.value)!r}"
    )


def test_trailing_bytes(tmp_path: Path) -> None:
    path = labels_file(tmp_path / "t-idx", count=5, payload=8)
    expected = (
        "t-idx: expected 13 bytes (header 8 + 5 items), found 16 (3 trailing bytes)"
    )
    with pytest.raises(IdxFormatError) as info:
        read_idx(path)
    assert str(info.value) == expected, (
        f"expected {expected!r}, got {str(info.value)!r}"
    )


def test_length_counts_item_size(tmp_path: Path) -> None:
    path = tmp_path / "f-idx"
    write_idx(path, np.zeros((2, 3), dtype=np.float32))
    path.write_bytes(path.read_bytes()[:-1])
    expected = (
        "f-idx: expected 36 bytes (header 12 + 6 items x 4 bytes), found 35 (truncated)"
    )
    with pytest.raises(IdxFormatError) as info:
        read_idx(path)
    assert str(info.value) == expected, (
        f"expected {expected!r}, got {str(info.value)!r}"
    )


def test_write_rejects_unsupported_dtype(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot store dtype"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))
