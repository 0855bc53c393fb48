"""A run directory's checkpoint as a state to resume from, and how far its run got.

A run directory holding checkpoint.npz is unfinished when the checkpoint's epoch is below the
epochs of its configuration (interrupted: Ctrl-C, SIGTERM, SIGKILL, a full disk), or when no
weights.npz is beside it (stopped while the finished run was written); a finished run keeps
its last epoch's checkpoint, from which `mnist-train --resume RUN --epochs N` goes on.
"""

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from mnist_cli.config.files import config_values
from mnist_cli.config.settings import TrainConfig, resolve
from mnist_cli.errors import CheckpointError, ConfigError, WeightsError
from mnist_cli.rundir import npz
from mnist_cli.rundir.checkpoint import (
    MAX_BYTES,
    WHAT,
    Checkpoint,
    member_spec,
    read_checkpoint,
)
from mnist_cli.rundir.claim import CHECKPOINT, WEIGHTS
from mnist_cli.rundir.weights import Weights
from mnist_cli.training.continuing import RunState


@dataclass(frozen=True)
class Progress:
    """How far the run of a run directory got, by its checkpoint."""

    epoch: int  # epochs completed, checkpointed
    epochs: int  # of its configuration
    finished: bool  # its weights.npz written after its last epoch

    def line(self, run_dir: Path) -> str:
        """ "interrupted at epoch 3/10: mnist-train --resume RUN continues it"."""
        return (
            f"interrupted at epoch {self.epoch}/{self.epochs}: "
            f"{resume_command(run_dir)} continues it"
        )


def resume_command(run_dir: Path | str) -> str:
    """The command that resumes the run in `run_dir`, quoted for a shell."""
    return f"mnist-train --resume {shlex.quote(str(run_dir))}"


def progress_of(run_dir: Path) -> Progress | None:
    """The progress of the run in `run_dir` by its checkpoint (only its epoch, configuration
    and history are read, the listing of the rest checked), numbered after the epochs of the
    run it continued (--init-from) as its epoch lines are; None without one. CheckpointError
    if it cannot be read."""
    path = run_dir / CHECKPOINT
    if not path.exists():
        return None
    only = ("epoch", "config", "history")
    try:
        arrays = npz.read_npz(path, member_spec(path), WHAT, MAX_BYTES, only=only)
        epoch, config, history = (arrays[k] for k in only)
        epoch, config = int(epoch), config.tobytes().decode()
        before = len(json.loads(history.tobytes())) - epoch  # --init-from's epochs
    except WeightsError as e:
        raise CheckpointError(str(e)) from None
    except (
        KeyError,
        ValueError,
        TypeError,
    ) as e:  # a member missing, not UTF-8, not JSON
        raise CheckpointError(
            f"{path}: not a checkpoint mnist-cli can read ({e})"
        ) from None
    epochs = configured(path, config).epochs
    finished = epoch >= epochs and (run_dir / WEIGHTS).is_file()
    return Progress(before + epoch, before + epochs, finished)


def configured(path: Path, config_toml: str) -> TrainConfig:
    """The TrainConfig a checkpoint's config text holds; CheckpointError if it is not one."""
    try:
        return resolve(config_values(config_toml, path.parent, f"{path}: config"), {})
    except (ConfigError, TypeError, KeyError) as e:
        raise CheckpointError(str(e)) from None


def unfinished(run_dir: Path) -> tuple[Progress, Weights] | None:
    """An unfinished run's progress and its last checkpoint's weights; None for a finished
    run or another path (CheckpointError if its checkpoint cannot be read)."""
    progress = progress_of(run_dir) if run_dir.is_dir() else None
    if progress is None or progress.finished:
        return None
    return progress, read_checkpoint(run_dir / CHECKPOINT, same_version=False).weights


def run_state(checkpoint: Checkpoint) -> RunState:
    """What training goes on from: the checkpoint's weights, optimizer, generator, history."""
    c = checkpoint
    network, history = c.weights.network, tuple(c.history)
    return RunState(network, c.optimizer, c.rng_state, c.epoch, c.step, history)
