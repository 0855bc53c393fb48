"""Past runs read back: a summary of each run directory (mnist-runs), and the training a run
started with --init-from continues (its epochs and history).

metrics.json is untrusted input, read and checked by record.py (checks.py). A run whose metrics
cannot be used becomes a RunSummary with `error` set (a short reason), never an exception;
nothing here prints.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mnist_cli.config.settings import MAX_EPOCHS, TrainConfig
from mnist_cli.errors import (
    CheckpointError,
    MetricsError,
    OptionsError,
    RunDirectoryError,
    shown,
)
from mnist_cli.rundir.checks import field, get, is_count, is_name, is_sizes, timestamp
from mnist_cli.rundir.record import loss_of, read_history, read_metrics
from mnist_cli.rundir.resumable import Progress, progress_of, resume_command
from mnist_cli.rundir.weights import WEIGHTS
from mnist_cli.training.continuing import Earlier

SORTS = ("date", "accuracy", "name")


@dataclass(frozen=True)
class RunSummary:
    """One line of mnist-runs. With `error` set, only `name` and `path` are known."""

    name: str  # the run directory's name
    path: Path
    model: str | None = None
    hidden: tuple[int, ...] = ()  # hidden layer sizes (config key `hidden`), if any
    channels: tuple[
        int, ...
    ] = ()  # a cnn's convolutions (config keys `channels`, `kernel`)
    kernel: int | None = None
    dataset: str | None = None
    loss: str | None = None  # config key `loss`; "squared" when absent
    solver: str | None = None
    epochs: int | None = None  # of the whole training, None for the exact solver
    earlier_epochs: int = 0  # of those, the run's it continued (--init-from)
    test_accuracy: float | None = None
    val_accuracy: float | None = None
    seconds: float | None = None
    created: datetime | None = None
    error: str | None = None  # why the run cannot be read
    interrupted: Progress | None = (
        None  # an unfinished run's: only `name`, `path` known
    )

    def to_json(self) -> dict:
        return {
            "name": shown(self.name),  # not UTF-8: \xNN escapes, as in every output
            "path": shown(self.path),
            "model": self.model,
            "hidden": list(self.hidden),
            "channels": list(self.channels),
            "kernel": self.kernel,
            "dataset": self.dataset,
            "loss": self.loss,
            "solver": self.solver,
            "epochs": self.epochs,
            "earlier_epochs": self.earlier_epochs,
            "test_accuracy": self.test_accuracy,
            "val_accuracy": self.val_accuracy,
            "seconds": self.seconds,
            "created": self.created.isoformat() if self.created else None,
            "error": self.error,
            "interrupted": self.interrupted
            and {
                "epoch": self.interrupted.epoch,
                "epochs": self.interrupted.epochs,
                "resume": resume_command(self.path),
            },
        }


def list_runs(directory: Path, sort: str = "date") -> list[RunSummary]:
    """A summary of every run directory in `directory` (its subdirectories; hidden ones, such
    as the staging directories of a run being written, are skipped), sorted by `sort`:
    "date" (oldest first), "accuracy" (best test accuracy first) or "name". Unreadable runs
    come last, by name."""
    try:
        entries = [p for p in directory.iterdir() if not p.name.startswith(".")]
        run_dirs = [p for p in entries if p.is_dir()]
    except OSError as e:
        raise RunDirectoryError(f"{directory}: cannot list: {e.strerror}") from None
    return sort_runs([summary_of(p) for p in run_dirs], sort)


def sort_runs(runs: list[RunSummary], sort: str = "date") -> list[RunSummary]:
    def key(r: RunSummary) -> tuple:
        if r.error or r.interrupted:  # unfinished runs, then broken ones
            return (2 if r.error else 1, r.name)
        if sort == "accuracy":
            return (0, -(r.test_accuracy or 0.0), r.name)
        if sort == "date":
            return (0, r.created or datetime.min.replace(tzinfo=UTC), r.name)
        return (0, r.name)

    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    return sorted(runs, key=key)


def summary_of(run_dir: Path) -> RunSummary:
    """The summary of one run directory; `interrupted` says how far an unfinished run got,
    `error` why a run's checkpoint or metrics cannot be used."""
    try:
        progress = progress_of(run_dir)
        if progress and not progress.finished:
            return RunSummary(name=run_dir.name, path=run_dir, interrupted=progress)
        m = read_metrics(run_dir)
        if not (run_dir / WEIGHTS).is_file():
            raise MetricsError(f"no {WEIGHTS}")
        config = field(m, "config", {})
        solver = field(m, "solver", "sgd")
        started = field(m, "started_from", {})
        earlier = get(started, "epochs", is_count, "an integer ≥ 0", 0, "started_from.")
        epochs = get(config, "epochs", is_count, "an integer ≥ 0", None, "config.")
        hidden = get(config, "hidden", is_sizes, "a list of layer sizes", [], "config.")
        channels = get(
            config, "channels", is_sizes, "a list of channels", [], "config."
        )
        kernel = get(config, "kernel", is_count, "an integer ≥ 0", None, "config.")
        return RunSummary(
            name=run_dir.name,
            path=run_dir,
            model=field(m, "model"),
            hidden=tuple(hidden),
            channels=tuple(channels),
            kernel=kernel,
            dataset=field(m, "dataset", "mnist"),
            loss=get(config, "loss", is_name, "a loss name", "squared", "config."),
            solver=solver,
            epochs=None if solver == "exact" or epochs is None else earlier + epochs,
            earlier_epochs=earlier,
            test_accuracy=field(m, "test_accuracy"),
            val_accuracy=field(m, "val_accuracy", None),
            seconds=field(m, "seconds", None),
            created=timestamp(field(m, "created", None)),
        )
    except (MetricsError, CheckpointError) as e:
        return RunSummary(name=run_dir.name, path=run_dir, error=str(e))
    except OSError as e:  # a folder that cannot be entered: broken, the others listed
        what = f"{Path(e.filename).name}: " if e.filename else ""
        return RunSummary(
            name=run_dir.name, path=run_dir, error=what + (e.strerror or str(e))
        )


def earlier_training(
    run_dir: Path, model: str, monitor: str, loss: str = "squared"
) -> Earlier | None:
    """The epochs a run started from `run_dir` continues: its metrics.json's history, checked
    entry by entry (epochs 1, 2, ..., n; a finite train_loss; its monitored accuracy a fraction
    or null; seconds ≥ 0) and copied key by key. None when it has no epochs (an exact solve).
    Raises MetricsError when they cannot be continued: no readable metrics, another model, a
    malformed entry, another monitored split, or another loss (the history's train_loss would
    not join up)."""
    m = read_metrics(run_dir)
    if field(m, "model") != model:
        raise MetricsError(f"metrics.json is of a {m['model']} model, not {model}")
    if (earlier_loss := loss_of(m)) != loss:
        raise MetricsError(
            f"its history is of the {earlier_loss or 'unknown'} loss, this run's is {loss}"
        )
    entries = read_history(m, monitor)
    return Earlier(str(run_dir), entries) if entries else None


def continued_training(
    config: TrainConfig, monitor: str, on_warning: Callable[[str], None]
) -> Earlier | None:
    """The epochs and history that --init-from RUN_DIR continues; None from a weights file, or
    (after `on_warning`, which names RUN_DIR and why) when its metrics.json cannot be
    continued."""
    if config.solver != "sgd" or not config.init_from:
        return None
    run_dir = Path(config.init_from)
    if not run_dir.is_dir():
        return None
    try:
        earlier = earlier_training(run_dir, config.model, monitor, config.loss)
    except MetricsError as e:
        on_warning(
            f"{run_dir}: {e}; training starts from its weights "
            "at epoch 1, without its history"
        )
        return None
    if earlier and earlier.epochs + config.epochs > MAX_EPOCHS:
        room = MAX_EPOCHS - earlier.epochs
        raise OptionsError(
            f"{run_dir} has trained {earlier.epochs:,} epochs: {config.epochs:,} more "
            f"would pass the {MAX_EPOCHS:,} a run may have; "
            + (f"give at most {room:,}, or " if room > 0 else "give ")
            + f"its {WEIGHTS} to start a history of its own",
            option="--epochs",
            key="epochs",
        )
    return earlier
