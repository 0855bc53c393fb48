"""Helpers shared by the tests (imported as `from helpers import ...`)."""

import gzip
import hashlib
from pathlib import Path

import numpy as np

from mnist_cli.data.catalogue import DataFile
from mnist_cli.data.idx import DTYPES
from mnist_cli.nn.architecture import build
from mnist_cli.nn.layers import Params
from mnist_cli.nn.network import Network
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


def init_params(init: str, rng, dtype=np.float32) -> Params:
    """A linear or softmax model's starting (W, b): zeros or N(0, 0.01²), as mnist-train."""
    (params,) = build("softmax", init, rng, dtype=dtype).params
    return params


def init_layers(sizes, activation: str, rng, dtype=np.float32) -> tuple[Params, ...]:
    """An mlp's starting (W_l, b_l) for layer sizes (D, n₁, …, K), as mnist-train."""
    network = build("mlp", "normal", rng, tuple(sizes[1:-1]), activation, dtype)
    return tuple(Params(*p) for p in network.params if p)


def reference_softmax(Z: np.ndarray) -> np.ndarray:
    """softmax(Z) row by row in float64: exp(Z − logsumexp(Z)), logsumexp taken around the
    row max so that nothing overflows (shares no code with what it checks)."""
    Z = np.asarray(Z, np.float64)
    m = Z.max(axis=1, keepdims=True)  # (B, 1)
    lse = m + np.log(np.exp(Z - m).sum(axis=1, keepdims=True))  # (B, 1)
    return np.exp(Z - lse)  # (B, K)


def far_logits_batch(B: int, shift: float = 1000.0, seed: int = 0):
    """(images (B, D) uint8, labels (B,), params float32) whose logits lie about `shift`.

    The bias is `shift` for every class (softmax is unchanged by a shift of its row), the
    weights small: most rows' softmax is far from one-hot and the gradient not zero. Pixels
    1-10, lit in every third row only, spread those rows' logits over ±300 as well: there
    exp(Z − min) would overflow too.
    """
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (B, 784)).astype(np.uint8)
    images[:, 1:11] = 0
    images[::3, 1:11] = 255
    labels = rng.integers(0, 10, B)
    W = 0.003 * rng.standard_normal((10, 784))  # logits of spread ≈ 1 on these pixels
    W[:, 1:11] = np.linspace(-30.0, 30.0, 10)[:, None]
    b = shift + 0.3 * rng.standard_normal(10)
    return images, labels, Params(W=W.astype(np.float32), b=b.astype(np.float32))


def far_logits(images: np.ndarray, params: Params) -> np.ndarray:
    """Z in float64 for uint8 images and (W, b)."""
    return images.astype(np.float64) / 255 @ params.W.T.astype(np.float64) + params.b
