"""Helpers shared by the tests (imported as `from helpers import ...`)."""

from pathlib import Path

import numpy as np

from mnist_cli.data.idx import DTYPES


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write `array` to `path` as an IDX file (the inverse of `read_idx`).

    The item type is chosen from the array's kind and size (uint8, int8, int16, int32,
    float32, float64); the data is converted to big-endian as the format requires.
    """
    array = np.asarray(array)
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"IDX holds arrays of 1 to 255 dimensions, got {array.ndim}")
    for type_code, dtype in DTYPES.items():
        if array.dtype.kind == dtype.kind and array.dtype.itemsize == dtype.itemsize:
            break
    else:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = (
        bytes([0, 0, type_code, array.ndim])
        + np.asarray(array.shape, dtype=">u4").tobytes()
    )
    data = np.ascontiguousarray(array, dtype=dtype).tobytes()
    with open(path, "wb") as f:
        f.write(header)
        f.write(data)
