"""What a run leaves on disk, written atomically, and read back strictly.

A run directory holds
    weights.npz   W float32 (10, 784), b float32 (10,), model (string), format_version (int),
                  dataset (string): everything mnist-eval needs; plain arrays, no pickles
    metrics.json  accuracies, per-epoch history, confusion matrix, resolved config, data checksums
    config.toml   the resolved configuration, re-runnable with `mnist-train --config`

The directory is built under a temporary name beside its destination and renamed into place
only when every file is written (atomic.py), so a run that fails or is interrupted never leaves
a `weights.npz` that a later command would trust. It gets the user's umask, like any directory.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import npz
from .atomic import fsync_files, replace_dir, temp_dir
from .errors import RunDirectoryError, WeightsError
from .models import MODEL_KINDS, D, K, ModelKind, Params

FORMAT_VERSION = 1
WEIGHTS = "weights.npz"
METRICS = "metrics.json"
CONFIG = "config.toml"


def check_out_dir(out_dir: Path, force: bool) -> None:
    """Refuse an output path that is a file, or a non-empty directory without `force`.
    Called before training (fail fast) and again before writing."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirectoryError(
            f"--out {out_dir} is an existing file; give a directory"
        )
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise RunDirectoryError(
            f"--out {out_dir} exists and is not empty; "
            "use --force to replace it or choose another --out"
        )


def save_run(
    out_dir: Path,
    *,
    kind: ModelKind,
    params: Params,
    metrics: dict,
    config_toml: str,
    dataset: str = "mnist",
    force: bool = False,
) -> None:
    """Write weights.npz, metrics.json and config.toml into `out_dir`, all or nothing."""
    check_out_dir(out_dir, force)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with temp_dir(out_dir) as staging:
        np.savez(
            staging / WEIGHTS,
            W=params.W.astype(np.float32),
            b=params.b.astype(np.float32),
            model=np.array(kind),
            dataset=np.array(dataset),
            format_version=np.array(FORMAT_VERSION),
        )
        (staging / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
        (staging / CONFIG).write_text(config_toml)
        # the data is on disk before the rename makes it visible
        fsync_files(staging)
        replace_dir(staging, out_dir)


def weights_path(path: Path) -> Path:
    """A run directory's weights.npz, or `path` itself if it is a file."""
    return path / WEIGHTS if path.is_dir() else path


@dataclass(frozen=True)
class Weights:
    """What a weights.npz holds, checked: everything mnist-eval and --init-from need."""

    kind: ModelKind  # "linear" or "softmax"
    params: Params  # W float32 (K, D), b float32 (K,)
    dataset: str  # the dataset trained on ("mnist" in files older than that key)
    format_version: int  # of the file, at most FORMAT_VERSION


# What a weights.npz may hold (npz.py checks each array's dtype and size before reading it;
# any other array is refused unread)
WEIGHTS_SPEC = {
    "W": npz.float32(K * D, ndim=2),
    "b": npz.float32(K, ndim=1),
    "model": npz.string(),
    "dataset": npz.string(),
    "format_version": npz.integer_scalar(),
}


def load_weights(path: Path) -> Weights:
    """The Weights of a run directory or a weights.npz file, checked strictly."""
    file = weights_path(path)
    if not file.exists():
        raise WeightsError(
            f"{file}: no such file; give a run directory or a weights.npz"
        )
    arrays = npz.read_npz(file, WEIGHTS_SPEC.get)
    missing = [key for key in ("W", "b", "model") if key not in arrays]
    if missing:
        raise WeightsError(
            f"{file}: not a mnist-cli weights file (missing {', '.join(missing)})"
        )
    kind = str(arrays["model"])
    if kind not in MODEL_KINDS:
        raise WeightsError(f"{file}: unknown model {kind!r}")
    version = int(arrays.get("format_version", FORMAT_VERSION))
    if version > FORMAT_VERSION:
        raise WeightsError(
            f"{file}: format version {version} is newer than this mnist-cli reads "
            f"({FORMAT_VERSION}); upgrade mnist-cli"
        )
    if version < 1:
        raise WeightsError(
            f"{file}: format version {version} is not one mnist-cli writes"
        )
    for key, shape in (("W", (K, D)), ("b", (K,))):
        a = arrays[key]
        if a.shape != shape:
            raise WeightsError(f"{file}: {key} has shape {a.shape}, expected {shape}")
        if not np.isfinite(a).all():
            raise WeightsError(f"{file}: {key} contains NaN or infinite values")
    dataset = str(arrays["dataset"]) if "dataset" in arrays else "mnist"
    return Weights(kind, Params(W=arrays["W"], b=arrays["b"]), dataset, version)
