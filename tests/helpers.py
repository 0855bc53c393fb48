"""Helpers shared by the tests (imported as `from helpers import ...`)."""

import gzip
import hashlib
from pathlib import Path

import numpy as np

from mnist_cli.data.catalogue import DataFile
from mnist_cli.data.idx import DTYPES
from mnist_cli.network import Network
from mnist_cli.rundir.claim import claim_run_dir
from mnist_cli.rundir.weights import write_run

TINY = (
    "tiny-labels-idx1-ubyte"  # a small labels file the fetch tests serve as a dataset's
)


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


def tiny_labels(folder: Path) -> tuple[DataFile, bytes, Path]:
    """A small labels file TINY in `folder`: its DataFile (sha256 of the content), its
    content, and a mirror folder holding TINY.gz (serve it, or give it as a local mirror)."""
    write_idx(folder / "tiny", np.arange(100, dtype=np.uint8) % 10)
    content = (folder / "tiny").read_bytes()
    mirror = folder / "mirror"
    mirror.mkdir()
    (mirror / f"{TINY}.gz").write_bytes(gzip.compress(content))
    return DataFile(TINY, hashlib.sha256(content).hexdigest()), content, mirror


def save_run(
    out_dir: Path,
    *,
    network: Network,
    metrics: dict,
    config_toml: str,
    dataset: str = "mnist",
    force: bool = False,
) -> None:
    """A run directory written in one call, as mnist-train writes it (claimed, written and
    installed: the command claims before training, then artifacts.write_run)."""
    with claim_run_dir(out_dir, force) as claim:
        write_run(
            claim,
            network=network,
            metrics=metrics,
            config_toml=config_toml,
            dataset=dataset,
        )
