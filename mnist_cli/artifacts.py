"""What a run leaves on disk, written atomically, and read back strictly.

A run directory holds
    weights.npz   W float32 (10, 784), b float32 (10,), model (string), format_version (int),
                  dataset (string): everything mnist-eval needs; plain arrays, no pickles
    metrics.json  accuracies, per-epoch history, confusion matrix, resolved config, data checksums
    config.toml   the resolved configuration, re-runnable with `mnist-train --config`

The directory is claimed before training (rundir.py: locked, checked writable), built under a
temporary name beside its destination and renamed into place only when every file is written,
so a run that fails or is interrupted never leaves a `weights.npz` that a later command would
trust. It gets the user's umask, like any directory.
"""

import errno
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import npz
from .atomic import fsync_files
from .errors import RunDirectoryError, WeightsError
from .models import MODEL_KINDS, D, K, ModelKind, Params
from .rundir import CONFIG, METRICS, WEIGHTS, RunClaim, claim_run_dir, shown

FORMAT_VERSION = 1


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
    """Write weights.npz, metrics.json and config.toml into `out_dir`, all or nothing
    (claimed, written and installed at once: the CLI claims before training, write_run)."""
    with claim_run_dir(out_dir, force) as claim:
        write_run(
            claim,
            kind=kind,
            params=params,
            metrics=metrics,
            config_toml=config_toml,
            dataset=dataset,
        )


def write_run(
    claim: RunClaim,
    *,
    kind: ModelKind,
    params: Params,
    metrics: dict,
    config_toml: str,
    dataset: str = "mnist",
) -> None:
    """Write weights.npz, metrics.json and config.toml into the claimed directory, all or
    nothing: into its staging directory, flushed, then renamed into place. A write that fails
    (a full disk) is one RunDirectoryError naming the directory; nothing is left."""
    staging = claim.staging
    try:
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
        claim.install()
    except OSError as e:
        advice = (
            "free some space or choose another --out"
            if e.errno == errno.ENOSPC
            else "choose another --out"
        )
        raise RunDirectoryError(
            f"cannot write the run to {shown(claim.path)}: {e.strerror or e}; "
            f"nothing was saved: {advice}, and run again"
        ) from None


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
