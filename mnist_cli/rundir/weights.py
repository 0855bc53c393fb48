"""What a run leaves on disk, written atomically, and read back strictly.

A run directory holds
    weights.npz   everything mnist-eval needs, as plain arrays (no pickles): model (string),
                  dataset (string), format_version (int), and the weights:
                  version 1 (linear, softmax)  W float32 (10, 784), b float32 (10,)
                  version 2 (mlp)              activation (string), and for l = 1…L
                                               W{l} float32 (n_l, n_{l−1}), b{l} float32 (n_l,)
    metrics.json  accuracies, per-epoch history, confusion matrix, resolved config, data checksums
    config.toml   the resolved configuration, re-runnable with `mnist-train --config`
    checkpoint.npz  the last epoch's checkpoint (checkpoint.py), which --resume --epochs extends

The directory is claimed before training (claim.py: locked, checked writable), built under a
temporary name beside its destination and renamed into place only when every file is written,
so a run that fails or is interrupted never leaves a `weights.npz` that a later command would
trust. It gets the user's umask, like any directory.
"""

import errno
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_cli.atomic import fsync_files
from mnist_cli.config.choices import KINDS, MAX_HIDDEN_LAYERS, MAX_UNITS
from mnist_cli.config.models import Start
from mnist_cli.errors import RunDirectoryError, WeightsError, shown
from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import (
    activation_of,
    convolutions,
    dense_params,
    describe,
    hidden_of,
    kind_of,
    score_bounds,
)
from mnist_cli.nn.layers import Params
from mnist_cli.nn.network import Network
from mnist_cli.rundir import npz
from mnist_cli.rundir.claim import CHECKPOINT, CONFIG, METRICS, WEIGHTS, RunClaim
from mnist_cli.rundir.cnn_weights import (
    CNN_VERSION,
    MAX_LAYERS_CHARS,
    cnn_arrays,
    cnn_members,
    cnn_network,
)
from mnist_cli.rundir.dense_weights import checked_array, mlp_network, one_layer_network

FORMAT_VERSION = 3  # the newest this version reads and writes (cnn files; mlp files: 2)
MLP_VERSION = 2  # mlp files: activation, W{l}, b{l}
ONE_LAYER_VERSION = 1  # linear and softmax files: W, b
MAX_SCORE = (
    float(np.finfo(np.float32).max) / 2
)  # a layer's, so that Z − max Z is finite too


def write_run(
    claim: RunClaim,
    *,
    network: Network,
    metrics: dict,
    config_toml: str,
    dataset: str = "mnist",
) -> None:
    """Write weights.npz, metrics.json and config.toml into the claimed directory, all or
    nothing: into its staging directory, flushed, then renamed into place. A write that fails
    (a full disk) is one RunDirectoryError naming the directory; nothing is left."""
    staging = claim.staging
    try:
        checkpoint = claim.target / CHECKPOINT  # the last epoch's: kept with the run
        if claim.checkpointed and not claim.keep_target:  # (keep_target: it stays)
            try:
                os.link(checkpoint, staging / CHECKPOINT)  # the same file, no copy
            except OSError:  # a filesystem without hard links
                shutil.copyfile(checkpoint, staging / CHECKPOINT)
        np.savez(staging / WEIGHTS, **weight_arrays(network, dataset))
        (staging / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
        (staging / CONFIG).write_text(config_toml)
        # the data is on disk before the rename makes it visible
        fsync_files(staging)
        claim.install()
    except OSError as e:
        remedy = "space-or-another" if e.errno == errno.ENOSPC else "another"
        raise RunDirectoryError(
            f"{shown(claim.path)}: cannot write the run ({e.strerror or e}); "
            "nothing was saved",
            claim.path,
            remedy,
        ) from None


def weight_arrays(network: Network, dataset: str) -> dict[str, np.ndarray]:
    """What weights.npz holds: version 1 (W, b) for linear and softmax, 2 for the mlp."""
    kind = kind_of(network)
    meta = {"model": np.array(kind), "dataset": np.array(dataset)}
    if kind == "cnn":
        return {**cnn_arrays(network), **meta, "format_version": np.array(CNN_VERSION)}
    if kind != "mlp":
        (p,) = dense_params(network)
        return {
            "W": p.W.astype(np.float32),
            "b": p.b.astype(np.float32),
            **meta,
            "format_version": np.array(ONE_LAYER_VERSION),
        }
    layers = {}
    for l, p in enumerate(dense_params(network), start=1):
        layers[f"W{l}"] = p.W.astype(np.float32)
        layers[f"b{l}"] = p.b.astype(np.float32)
    return {
        **layers,
        **meta,
        "activation": np.array(activation_of(network)),
        "format_version": np.array(MLP_VERSION),
    }


def weights_path(path: Path) -> Path:
    """A run directory's weights.npz, or `path` itself if it is a file."""
    return path / WEIGHTS if path.is_dir() else path


@dataclass(frozen=True)
class Weights:
    """What a weights.npz holds, checked: everything mnist-eval and --init-from need."""

    network: Network  # the kind, the layers (float32) and the mlp's activation
    dataset: str  # the dataset trained on ("mnist" in files older than that key)
    format_version: int  # of the file, at most FORMAT_VERSION

    @property
    def kind(self) -> str:
        return kind_of(self.network)

    def fixes(self, loss: str | None) -> Start:
        """What these weights fix for a run that starts from them, `loss` that of their run."""
        net, convs = self.network, convolutions(self.network)
        channels, kernel = tuple(c.c_out for c in convs), convs[0].k if convs else None
        return Start(
            self.kind,
            self.dataset,
            hidden_of(net),
            activation_of(net),
            loss,
            channels,
            kernel,
        )

    @property
    def params(self) -> Params:
        """W (K, D), b (K,) of a linear or softmax model (its one dense layer)."""
        return dense_params(self.network)[0]


# What a weights.npz may hold (npz.py checks each array's dtype and size before reading it;
# any other array is refused unread): version 1's W and b, version 2's activation and the
# W{l}, b{l} of at most MAX_HIDDEN_LAYERS + 1 layers, each at most MAX_UNITS wide
WEIGHTS_SPEC = {
    "W": npz.float32(K * D, ndim=2),
    "b": npz.float32(K, ndim=1),
    "model": npz.string(),
    "dataset": npz.string(),
    "format_version": npz.integer_scalar(),
    "activation": npz.string(),
    "layers": npz.string(MAX_LAYERS_CHARS),
}
META = (
    "model",
    "dataset",
    "format_version",
    "layers",
)  # read first: how to read the rest
for _l in range(1, MAX_HIDDEN_LAYERS + 2):
    WEIGHTS_SPEC[f"W{_l}"] = npz.float32(MAX_UNITS * (D if _l == 1 else MAX_UNITS), 2)
    WEIGHTS_SPEC[f"b{_l}"] = npz.float32(MAX_UNITS, ndim=1)


def load_weights(path: Path) -> Weights:
    """The Weights of a run directory or a weights.npz file, checked strictly."""
    file = weights_path(path)
    if not file.exists():
        raise WeightsError(
            f"{file}: no such file; give a run directory or a weights.npz"
        )
    meta = npz.read_npz(file, WEIGHTS_SPEC.get, only=META)
    if str(meta.get("model")) == "cnn" and "layers" in meta:
        spec = {**WEIGHTS_SPEC, **cnn_members(file, str(meta["layers"]))}
        return weights_from_arrays(file, npz.read_npz(file, spec.get))
    return weights_from_arrays(file, npz.read_npz(file, WEIGHTS_SPEC.get))


def weights_from_arrays(file: Path, arrays: dict) -> Weights:
    """The Weights that `arrays` hold (read from `file` against WEIGHTS_SPEC), checked."""
    if "model" not in arrays:
        raise WeightsError(f"{file}: not an mnist-cli weights file (missing model)")
    kind = str(arrays["model"])
    if kind not in KINDS:
        raise WeightsError(f"{file}: unknown model {kind!r}")
    version = int(arrays.get("format_version", ONE_LAYER_VERSION))
    if version > FORMAT_VERSION:
        raise WeightsError(
            f"{file}: format version {version} is newer than this mnist-cli reads "
            f"({FORMAT_VERSION}); upgrade mnist-cli"
        )
    if version < 1:
        raise WeightsError(
            f"{file}: format version {version} is not one mnist-cli writes"
        )
    dataset = str(arrays["dataset"]) if "dataset" in arrays else "mnist"
    if kind == "cnn":
        if version < CNN_VERSION or "layers" not in arrays:
            raise WeightsError(f"{file}: a cnn needs format version 3 and its layers")
        network = cnn_network(file, arrays, checked_array)
    elif kind == "mlp":
        network = mlp_network(file, arrays, version)
    else:
        network = one_layer_network(file, arrays, kind)
    check_members(file, arrays, network)
    check_scores_finite(file, network)
    return Weights(network, dataset, version)


def check_members(file: Path, arrays: dict, network: Network) -> None:
    """Refuse members the writer does not write for this model (a b3 without W3, a stray W)."""
    if stray := sorted(set(arrays) - set(weight_arrays(network, "mnist"))):
        raise WeightsError(
            f"{file}: unexpected member {', '.join(stray)} for a {describe(network)} "
            "model; give a weights.npz mnist-train wrote"
        )


def check_scores_finite(file: Path, network: Network) -> None:
    """Refuse weights some picture would make overflow (W = 3e38 gave NaN): see score_bounds."""
    for l, m in enumerate(bounds := score_bounds(network), start=1):
        if not m <= MAX_SCORE:
            raise WeightsError(
                f"{file}: {'W' if len(bounds) == 1 else f'W{l}'} is too large: some picture "
                f"would give layer {l} scores up to {m:.3g}, beyond float32 "
                f"({MAX_SCORE:.3g}); give weights mnist-train wrote"
            )
