"""mnist-train's checkpoints: each epoch's written into the claimed run directory, the line a
stop prints while one is kept, and `--resume RUN`, which goes on from the last one with the
run's own configuration (rundir/checkpoint.py, rundir/resumable.py)."""

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from mnist_cli.cli.signals import Terminated
from mnist_cli.config.models import architecture
from mnist_cli.config.settings import TrainConfig
from mnist_cli.errors import CheckpointError, OptionsError, RunDirectoryError, shown
from mnist_cli.rundir import generator_state
from mnist_cli.rundir.checkpoint import read_checkpoint, write_checkpoint
from mnist_cli.rundir.claim import CHECKPOINT, WEIGHTS, RunClaim
from mnist_cli.rundir.resumable import configured, resume_command, run_state
from mnist_cli.training.continuing import RunState

FREE = (
    "epochs",
)  # the one setting --resume takes: more epochs (or fewer than planned)


class Checkpoints:
    """Writes the checkpoint of each epoch into the claimed run directory (called by the
    scoring thread, one at a time), and remembers the last one written."""

    def __init__(
        self, claim: RunClaim, config_toml: str, dataset: str, config, earlier
    ):
        self.claim, self.config_toml, self.dataset = claim, config_toml, dataset
        self.before = earlier.epochs if earlier else 0  # the --init-from run's epochs
        self.epochs = config.epochs  # of the run
        self.epoch = 0  # the last epoch checkpointed (a resumed run's to begin with)

    def __call__(self, state: RunState) -> None:
        try:
            write_checkpoint(
                self.claim.path / CHECKPOINT,
                network=state.network,
                dataset=self.dataset,
                optimizer=state.optimizer,
                rng=generator_state.restored(state.rng_state),
                epoch=state.epoch,
                step=state.step,
                history=list(state.history),
                config_toml=self.config_toml,
            )
        except CheckpointError as e:
            then = f"; then {resume_command(self.claim.path)}" if self.epoch else ""
            raise CheckpointError(f"{e}{then}") from None
        self.epoch = state.epoch
        self.claim.checkpointed = True

    def kept(self) -> str | None:
        """What a stop now leaves, for its line; None without a checkpoint."""
        if not self.epoch:
            return None
        epoch, epochs = self.before + self.epoch, self.before + self.epochs
        return (
            f"after epoch {epoch}/{epochs} (checkpointed in "
            f"{shown(self.claim.path)}): {resume_command(shown(self.claim.path))} "
            "continues it"
        )


@contextlib.contextmanager
def says_what_is_kept(checkpoints: Checkpoints) -> Iterator[None]:
    """A Ctrl-C or SIGTERM in the block, before the run is installed, names the checkpoint
    kept and the command that resumes it: "Interrupted after epoch 3/10 (...): ...".'"""
    try:
        yield
    except (KeyboardInterrupt, Terminated) as stop:
        note = None if checkpoints.claim.installed else checkpoints.kept()
        if note is None:
            raise
        raise type(stop)(note) from None


def refuse_options(options: dict, **others) -> None:
    """--resume takes the run's own configuration: refuse, in one line naming them, the
    options that would change it (every setting but --epochs, and --config, --out,
    --force); `others` are those three as given."""
    given = [k for k, v in options.items() if v is not None and k not in FREE]
    given += [
        k.removesuffix("_file").removesuffix("_dir") for k, v in others.items() if v
    ]
    if given:
        names = ", ".join(f"--{key.replace('_', '-')}" for key in given)
        raise OptionsError(
            f"--resume goes on with the run's own configuration and finishes it in "
            f"place; {names} would change it (only --epochs may be given, to extend it)"
        )


def check_resumable(run: Path) -> None:
    """RunDirectoryError unless `run` holds a checkpoint to go on from."""
    if not (run / CHECKPOINT).is_file():
        raise RunDirectoryError(
            f"--resume {shown(run)}: no {CHECKPOINT} to go on from (not a run directory, "
            "or a run of --solver exact or of an older mnist-cli); train it again, or "
            "--init-from it"
        )


def resumed(claim: RunClaim, epochs: int | None) -> tuple[TrainConfig, RunState]:
    """The configuration and state the run in the claimed directory goes on from, its last
    checkpoint's; --epochs `epochs` (if given) replaces its epochs, at least those done."""
    run, path = shown(claim.path), claim.path / CHECKPOINT
    check_resumable(claim.path)
    checkpoint = read_checkpoint(path)
    config = configured(path, checkpoint.config_toml)
    check_matches(path, config, checkpoint.weights)
    done = checkpoint.epoch
    if epochs is not None and epochs < done:
        raise OptionsError(
            f"the run has trained {done} epochs already; give more to extend it",
            option="--epochs",
            key="epochs",
        )
    finished = done >= config.epochs and (claim.path / WEIGHTS).is_file()
    if finished and (epochs or done) <= done:
        raise RunDirectoryError(
            f"--resume {run}: the run is finished ({done} epochs); give --epochs N above "
            f"{done} to extend it"
        )
    claim.checkpointed = True
    return replace(config, epochs=epochs or config.epochs), run_state(checkpoint)


def check_matches(path: Path, config: TrainConfig, weights) -> None:
    """The checkpoint's network must be its configuration's (a tampered file may differ)."""
    kind = weights.kind
    mismatch = kind != config.model or weights.dataset != config.dataset
    if kind == "mlp" and not mismatch:
        mismatch = architecture(weights.fixes(None)) != architecture(config)
    if mismatch:
        raise CheckpointError(
            f"{path}: its weights ({kind}, {weights.dataset}) are not those of its "
            f"configuration ({config.model}, {config.dataset}); train the run again"
        )
