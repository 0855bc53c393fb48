"""A checkpoint: what a run needs to go on exactly where it stopped, one .npz written atomically.

Its members, plain arrays (no pickles), each checked by npz.read_npz before its data is read:

    format, checkpoint_version   "mnist-cli checkpoint", CHECKPOINT_VERSION
    mnist_cli_version            the version that wrote it (a resume needs the same math)
    W, b  or  W{l}, b{l}, ...    the network, as weights.npz holds it (weights.py)
    opt/<name>                   the optimizer's state, float32 or int64: per parameter
                                 opt/<name>/<i>, the shape of parameter i (every layer's
                                 params in order: W1, b1, W2, b2, ...), or a scalar (opt/t)
    rng                          the shuffling generator's state, JSON (generator_state.py)
    epoch, step                  epochs completed, optimizer steps taken (int64)
    history                      the per-epoch history so far, JSON
    config                       the run's configuration, TOML (config.files.to_toml)

Texts are UTF-8 bytes (uint8 arrays), bounded in bytes. The file is written beside its place,
flushed, and renamed onto it (atomic.replacing): a kill at any instant leaves the previous
checkpoint or the new one, never a torn file. Reading refuses anything else in one line naming
the member: another format or version, a member too large or of the wrong type, a shape not
its parameter's, NaN, a generator state numpy would not take, a declared total too large.
"""

import errno
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_cli import __version__
from mnist_cli.atomic import replacing
from mnist_cli.errors import CheckpointError, WeightsError
from mnist_cli.nn.network import Network
from mnist_cli.rundir import generator_state, npz
from mnist_cli.rundir.checkpoint_members import (
    read_count,
    read_history,
    read_json,
    read_rng_state,
    read_text,
    utf8_bytes,
)
from mnist_cli.rundir.cnn_weights import cnn_members
from mnist_cli.rundir.weights import (
    WEIGHTS_SPEC,
    Weights,
    weight_arrays,
    weights_from_arrays,
)

FORMAT, WHAT = "mnist-cli checkpoint", "an mnist-cli checkpoint"
CHECKPOINT_VERSION = 1  # the newest this version reads and writes
MAX_TEXT = {"history": 64 << 20, "config": 64 << 10, "rng": 4 << 10}  # bytes
STATE_NAME = re.compile(r"[a-z][a-z0-9_]*(/\d{1,4})?")  # m/0, v/3, t, momentum_buffer/1
MAX_PARAMETER = max(e.max_elements for e in WEIGHTS_SPEC.values())
MAX_STATES = 64  # opt/ members
REQUIRED = ("checkpoint_version", "mnist_cli_version", "epoch", "step", *MAX_TEXT)
STATE_DTYPES = (np.dtype(np.float32), np.dtype(np.int64))
# the declared total: weights, three times their size in state, the texts
MAX_BYTES = 4 * sum(e.max_bytes for e in WEIGHTS_SPEC.values()) + sum(MAX_TEXT.values())


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint holds, checked."""

    weights: Weights  # the network and its dataset, checked as weights.npz is
    optimizer: dict[str, np.ndarray]  # without "opt/": {"m/0": ..., "t": ...}
    rng_state: dict  # numpy's bit_generator.state of the shuffling generator (PCG64)
    epoch: int  # epochs completed
    step: int  # optimizer steps taken
    history: list[dict]  # one object per epoch completed
    config_toml: str
    mnist_cli_version: str  # of the writer

    def generator(self) -> np.random.Generator:
        """A new generator in the saved state: it draws what the saved one would have."""
        return generator_state.restored(self.rng_state)


def write_checkpoint(
    path: Path,
    *,
    network: Network,
    dataset: str,
    optimizer: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    epoch: int,
    step: int,
    history: list[dict],
    config_toml: str,
) -> None:
    """Replace `path` by a checkpoint of these, atomically (see above). A write that fails
    (a full disk, a read-only folder) is one CheckpointError; `path` is then as it was."""
    members = {
        "format": np.array(FORMAT),
        "checkpoint_version": np.array(CHECKPOINT_VERSION, np.int64),
        "mnist_cli_version": np.array(__version__),
        **weight_arrays(network, dataset),
        "rng": utf8_bytes(json.dumps(generator_state.state_of(rng))),
        "epoch": np.array(epoch, np.int64),
        "step": np.array(step, np.int64),
        "history": utf8_bytes(json.dumps(history)),
        "config": utf8_bytes(config_toml),
    }
    for name, state in optimizer.items():
        if not STATE_NAME.fullmatch(name):
            raise ValueError(f"optimizer state name {name!r} is not like m/0 or t")
        members[f"opt/{name}"] = state
    try:
        with replacing(path, "wb", fsync=True) as f:
            np.savez(f, **members)
    except OSError as e:
        advice = "free some space" if e.errno == errno.ENOSPC else "check the folder"
        raise CheckpointError(
            f"cannot write the checkpoint {path}: {e.strerror or e}; the previous one "
            f"is kept: {advice}"
        ) from None


def read_checkpoint(path: Path, *, same_version: bool = True) -> Checkpoint:
    """The checkpoint at `path`, checked (see above); with `same_version`, one written by
    another mnist-cli version is refused (resuming needs the same math). CheckpointError,
    one line naming `path` and what does not match, for anything else."""
    try:  # first the model and its layers: how to check its arrays
        first = npz.read_npz(
            path, member_spec(path), WHAT, MAX_BYTES, ("model", "layers")
        )
        weights_spec = WEIGHTS_SPEC
        if str(first.get("model")) == "cnn" and "layers" in first:
            weights_spec = {**WEIGHTS_SPEC, **cnn_members(path, str(first["layers"]))}
        arrays = npz.read_npz(path, member_spec(path, weights_spec), WHAT, MAX_BYTES)
    except WeightsError as e:
        raise CheckpointError(str(e)) from None
    if "format" not in arrays or str(arrays["format"]) != FORMAT:
        raise CheckpointError(
            f"{path}: not an mnist-cli checkpoint (no format {FORMAT!r})"
        )
    missing = [name for name in REQUIRED if name not in arrays]
    missing += [] if "model" in arrays else ["weights"]
    if missing:
        raise CheckpointError(f"{path}: a checkpoint without {', '.join(missing)}")
    version = int(arrays["checkpoint_version"])
    if version != CHECKPOINT_VERSION:
        why = "upgrade mnist-cli" if version > CHECKPOINT_VERSION else "not ours"
        raise CheckpointError(
            f"{path}: checkpoint version {version}, this mnist-cli reads "
            f"{CHECKPOINT_VERSION} ({why})"
        )
    writer = str(arrays["mnist_cli_version"])
    if same_version and writer != __version__:
        raise CheckpointError(
            f"{path}: written by mnist-cli {writer}, this is {__version__}: resume it "
            f"with mnist-cli {writer}, or train again"
        )
    network_arrays = {k: a for k, a in arrays.items() if k in weights_spec}
    weights = weights_from_arrays(path, network_arrays)
    return Checkpoint(
        weights=weights,
        optimizer=_optimizer(path, arrays, weights.network),
        rng_state=read_rng_state(path, read_json(path, arrays, "rng")),
        epoch=read_count(path, arrays, "epoch"),
        step=read_count(path, arrays, "step"),
        history=read_history(path, read_json(path, arrays, "history")),
        config_toml=read_text(path, arrays, "config"),
        mnist_cli_version=writer,
    )


def member_spec(path: Path, weights_spec: dict = WEIGHTS_SPEC) -> npz.Spec:
    """What each member may hold: the network's by `weights_spec`, opt/ members by name, at
    most MAX_STATES of them."""
    scalars = {"epoch", "step", "checkpoint_version"}
    states = []

    def expect(name: str) -> npz.Expect | None:
        if name in weights_spec:
            return weights_spec[name]
        if name in scalars:
            return npz.integer_scalar()
        if name in ("format", "mnist_cli_version"):
            return npz.string()
        if name in MAX_TEXT:
            return npz.Expect(
                "UTF-8 bytes", lambda t: t == np.uint8, 1, MAX_TEXT[name], 1
            )
        if name.startswith("opt/") and STATE_NAME.fullmatch(name[4:]):
            states.append(name)
            if len(states) > MAX_STATES:
                raise CheckpointError(
                    f"{path}: more than {MAX_STATES} optimizer states"
                )
            return npz.Expect(
                "float32 or int64", STATE_DTYPES.__contains__, 8, MAX_PARAMETER
            )
        return None

    return expect


def _optimizer(path: Path, arrays: dict, network: Network) -> dict[str, np.ndarray]:
    """The opt/ members, each per-parameter state of its parameter's shape, finite."""
    shapes = [a.shape for params in network.params for a in params]
    state = {}
    for member, a in arrays.items():
        if not member.startswith("opt/"):
            continue
        name = member[4:]
        if "/" in name:
            i = int(name.rsplit("/", 1)[1])
            if i >= len(shapes):
                raise CheckpointError(
                    f"{path}: {member} is the state of parameter {i}; "
                    f"the network has {len(shapes)}"
                )
            if a.shape != shapes[i]:
                raise CheckpointError(
                    f"{path}: {member} has shape {a.shape}, its parameter {shapes[i]}"
                )
        elif a.ndim != 0:
            raise CheckpointError(
                f"{path}: {member} has shape {a.shape}, expected a scalar"
            )
        if a.dtype == np.float32 and not np.isfinite(a).all():
            raise CheckpointError(f"{path}: {member} contains NaN or infinite values")
        state[name] = a
    return state
