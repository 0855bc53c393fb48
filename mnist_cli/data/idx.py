"""The IDX file format, as MNIST publishes it.

An IDX file is a header followed by a dense array in C order, big-endian:

    bytes 0-1   zero
    byte  2     type code of the items (0x08 uint8, 0x09 int8, 0x0B int16,
                0x0C int32, 0x0D float32, 0x0E float64)
    byte  3     ndim, the number of dimensions
    then        ndim big-endian uint32 sizes, one per dimension
    then        prod(sizes) items of the type, big-endian

So `train-images-idx3-ubyte` starts 00 00 08 03 (uint8, 3 dims) then 60000, 28, 28, and its
header is 4 + 3 * 4 = 16 bytes long. `read_idx` parses the header, checks that the file holds
exactly the bytes the header promises, and maps the data read-only without reading it.
(tests/helpers.py writes IDX files for the tests.)
"""

import math
from pathlib import Path

import numpy as np

from mnist_cli.errors import IdxFormatError

DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""Type code byte -> item dtype (always big-endian, as the format prescribes)."""

PREFIX_SIZE = 4  # two zero bytes, the type code, ndim
DIM_SIZE = 4  # each dimension is a big-endian uint32


def read_idx(path: Path) -> np.ndarray:
    """Parse the IDX file at `path` and return its array as a read-only memmap.

    The data is mapped, not read: a 47 MB image file costs nothing until its pixels are used.
    Raises IdxFormatError, naming the file and the problem, if the header is malformed or the
    file is not exactly header + prod(dims) * itemsize bytes long.
    """
    path = Path(path)
    name = path.name
    with open(path, "rb") as f:
        prefix = f.read(PREFIX_SIZE)
        if len(prefix) < PREFIX_SIZE:
            raise IdxFormatError(
                f"{name}: file is {len(prefix)} bytes, shorter than the {PREFIX_SIZE}-byte IDX magic"
            )
        zero0, zero1, type_code, ndim = prefix
        if zero0 != 0 or zero1 != 0:
            raise IdxFormatError(
                f"{name}: not an IDX file (magic starts {prefix[:2].hex(' ')}, expected 00 00)"
            )
        if type_code not in DTYPES:
            known = ", ".join(f"0x{code:02X}" for code in DTYPES)
            raise IdxFormatError(
                f"{name}: unknown IDX type code 0x{type_code:02X} (known: {known})"
            )
        if ndim == 0:
            raise IdxFormatError(f"{name}: header declares 0 dimensions")
        dims_bytes = f.read(ndim * DIM_SIZE)
        if len(dims_bytes) < ndim * DIM_SIZE:
            raise IdxFormatError(
                f"{name}: header declares {ndim} dimensions ({ndim * DIM_SIZE} bytes of sizes) "
                f"but the file ends after {PREFIX_SIZE + len(dims_bytes)} bytes"
            )
        size = f.seek(0, 2)  # the file's length in bytes
    shape = tuple(int(d) for d in np.frombuffer(dims_bytes, dtype=">u4"))
    dtype = DTYPES[type_code]
    header = PREFIX_SIZE + ndim * DIM_SIZE
    count = math.prod(shape)
    expected = header + count * dtype.itemsize
    if size != expected:
        items = f"{count} items" + (
            f" x {dtype.itemsize} bytes" if dtype.itemsize > 1 else ""
        )
        problem = (
            "truncated" if size < expected else f"{size - expected} trailing bytes"
        )
        raise IdxFormatError(
            f"{name}: expected {expected} bytes (header {header} + {items}), "
            f"found {size} ({problem})"
        )
    if count == 0:
        # mmap cannot map zero bytes; an empty read-only array is the same answer.
        empty = np.empty(shape, dtype=dtype)
        empty.flags.writeable = False
        return empty
    return np.memmap(path, dtype=dtype, mode="r", offset=header, shape=shape)
