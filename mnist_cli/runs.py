"""Past runs read back: a summary of each run directory (mnist-runs), and the training a run
started with --init-from continues (its epochs and history).

metrics.json is untrusted input here: a file edited by hand, written by another version, or
anything at all. It is read only if it is a regular file of at most MAX_METRICS_BYTES, must
parse as one JSON object, and every value used is checked for its type and range. A run whose
metrics cannot be used becomes a RunSummary with `error` set (a short reason), never an
exception; nothing here prints.
"""

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .artifacts import METRICS, WEIGHTS
from .config import TrainConfig
from .errors import MetricsError, RunDirectoryError

MAX_METRICS_BYTES = 4 * 2**20  # a 10-epoch run writes ~6 KB; 4 MiB is ~25,000 epochs
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,39}")  # model, dataset, loss, solver
SORTS = ("date", "accuracy", "name")


@dataclass(frozen=True)
class RunSummary:
    """One line of mnist-runs. With `error` set, only `name` and `path` are known."""

    name: str  # the run directory's name
    path: Path
    model: str | None = None
    hidden: tuple[int, ...] = ()  # hidden layer sizes (config key `hidden`), if any
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

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "path": str(self.path),
            "model": self.model,
            "hidden": list(self.hidden),
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
    return sort_runs([summarize(p) for p in run_dirs], sort)


def sort_runs(runs: list[RunSummary], sort: str = "date") -> list[RunSummary]:
    def key(r: RunSummary) -> tuple:
        if r.error:
            return (1, r.name)
        if sort == "accuracy":
            return (0, -(r.test_accuracy or 0.0), r.name)
        if sort == "date":
            return (0, r.created or datetime.min.replace(tzinfo=UTC), r.name)
        return (0, r.name)

    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    return sorted(runs, key=key)


def summarize(run_dir: Path) -> RunSummary:
    """The summary of one run directory; `error` says why when its metrics cannot be used."""
    try:
        m = read_metrics(run_dir)
        if not (run_dir / WEIGHTS).is_file():
            raise MetricsError(f"no {WEIGHTS}")
        config = get(m, "config", dict, "an object", {})
        solver = get(m, "solver", is_name, "a name", "sgd")
        started = get(m, "started_from", dict, "an object", {})
        earlier = get(started, "epochs", is_count, "an integer ≥ 0", 0, "started_from.")
        epochs = get(config, "epochs", is_count, "an integer ≥ 0", None, "config.")
        hidden = get(config, "hidden", is_sizes, "a list of layer sizes", [], "config.")
        return RunSummary(
            name=run_dir.name,
            path=run_dir,
            model=get(m, "model", is_name, "a model name"),
            hidden=tuple(hidden),
            dataset=get(m, "dataset", is_name, "a dataset name", "mnist"),
            loss=get(config, "loss", is_name, "a loss name", "squared", "config."),
            solver=solver,
            epochs=None if solver == "exact" or epochs is None else earlier + epochs,
            earlier_epochs=earlier,
            test_accuracy=get(m, "test_accuracy", is_fraction, "a fraction"),
            val_accuracy=get(m, "val_accuracy", is_fraction, "a fraction", None),
            seconds=get(m, "seconds", is_seconds, "a number of seconds", None),
            created=timestamp(get(m, "created", is_timestamp, "a time", None)),
        )
    except MetricsError as e:
        return RunSummary(name=run_dir.name, path=run_dir, error=str(e))


@dataclass(frozen=True)
class Earlier:
    """The training a continued run extends: the run directory and its per-epoch history."""

    run: str
    history: tuple[dict, ...]  # metrics.json's history entries, epochs 1..n

    @property
    def epochs(self) -> int:
        return len(self.history)

    def to_json(self) -> dict:
        return {"run": self.run, "epochs": self.epochs}


def earlier_training(run_dir: Path, model: str, monitor: str) -> Earlier | None:
    """The epochs a run started from `run_dir` continues: its metrics.json's history, checked
    entry by entry (epochs 1, 2, ..., n; a finite train_loss; its monitored accuracy a fraction
    or null; seconds ≥ 0) and copied key by key. None when it has no epochs (an exact solve).
    Raises MetricsError when they cannot be continued: no readable metrics, another model, a
    malformed entry, or another monitored split."""
    m = read_metrics(run_dir)
    if get(m, "model", is_name, "a model name") != model:
        raise MetricsError(f"metrics.json is of a {m['model']} model, not {model}")
    history = get(m, "history", list, "a list", [])
    entries = []
    for i, h in enumerate(history, start=1):
        where = f"history[{i - 1}]."
        if not isinstance(h, dict):
            raise MetricsError(f"{where[:-1]} is {json_type(h)}, not an object")
        if get(h, "epoch", is_count, "an integer", where=where) != i:
            raise MetricsError(f"{where}epoch is not {i}")
        # entries name their split in "monitor" (older runs: a "<split>_accuracy" key)
        key = "monitor_accuracy" if "monitor" in h else f"{monitor}_accuracy"
        if h.get("monitor", monitor) != monitor or key not in h:
            raise MetricsError(
                f"{where[:-1]} does not report {monitor} accuracy, which this run does "
                "(was --val-size given to one run and not the other?)"
            )
        entries.append(
            {
                "epoch": i,
                "train_loss": get(h, "train_loss", is_finite, "a number", where=where),
                "monitor": monitor,
                "monitor_accuracy": get(h, key, is_fraction, "a fraction", None, where),
                "seconds": get(h, "seconds", is_seconds, "a number", where=where),
            }
        )
    return Earlier(str(run_dir), tuple(entries)) if entries else None


def continued_training(
    config: TrainConfig, monitor: str, on_warning: Callable[[str], None]
) -> Earlier | None:
    """The epochs and history that --init-from RUN_DIR continues; None from a weights file, or
    (after `on_warning`) when the run's metrics.json cannot be continued."""
    if config.solver != "sgd" or not config.init_from:
        return None
    run_dir = Path(config.init_from)
    if not run_dir.is_dir():
        return None
    try:
        return earlier_training(run_dir, config.model, monitor)
    except MetricsError as e:
        on_warning(
            f"--init-from {run_dir}: {e}; training starts from its weights "
            "at epoch 1, without its history"
        )
        return None


def read_metrics(run_dir: Path) -> dict:
    """metrics.json of `run_dir` as a dict, or MetricsError saying in a few words why not."""
    path = run_dir / METRICS
    if not path.exists():
        raise MetricsError(f"no {METRICS}")
    if not path.is_file():  # a directory, a FIFO (reading would block), a device
        raise MetricsError(f"{METRICS} is not a regular file")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_METRICS_BYTES + 1)
    except OSError as e:
        raise MetricsError(f"{METRICS}: {e.strerror}") from None
    if len(data) > MAX_METRICS_BYTES:
        raise MetricsError(f"{METRICS} is larger than {MAX_METRICS_BYTES // 2**20} MiB")
    try:
        m = json.loads(data)
    except UnicodeDecodeError:
        raise MetricsError(f"{METRICS} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise MetricsError(f"{METRICS} is not JSON ({e.msg})") from None
    except ValueError:  # an integer of more than 4,300 digits
        raise MetricsError(f"{METRICS} holds a number too long to read") from None
    except RecursionError:
        raise MetricsError(f"{METRICS} is nested too deeply to read") from None
    if not isinstance(m, dict):
        raise MetricsError(f"{METRICS} holds {json_type(m)}, not an object")
    return m


REQUIRED = object()


def get(
    obj: dict,
    key: str,
    check: type | Callable[[Any], bool],
    what: str,
    default: Any = REQUIRED,
    where: str = "",
) -> Any:
    """obj[key] if it passes `check` (a type or a predicate); `default` when absent or null;
    MetricsError otherwise (also when absent and there is no default)."""
    value = obj.get(key)
    if value is None:
        if default is REQUIRED:
            raise MetricsError(f"{where}{key} is missing")
        return default
    ok = isinstance(value, check) if isinstance(check, type) else check(value)
    if not ok:
        raise MetricsError(f"{where}{key} is {json_type(value)}, not {what}")
    return value


def json_type(value: Any) -> str:
    """What a JSON value is, in words (never the value itself: it may be anything)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "a number" if math.isfinite(value) else "not finite"
    kinds = {dict: "an object", list: "a list", str: "a string", type(None): "null"}
    return kinds.get(type(value), "unknown")


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def is_finite(v: Any) -> bool:
    return is_number(v) and math.isfinite(v)


def is_fraction(v: Any) -> bool:
    return is_finite(v) and 0 <= v <= 1


def is_seconds(v: Any) -> bool:
    return is_finite(v) and v >= 0


def is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**9


def is_name(v: Any) -> bool:
    return isinstance(v, str) and NAME.fullmatch(v) is not None


def is_sizes(v: Any) -> bool:
    return isinstance(v, list) and len(v) <= 16 and all(is_count(n) and n for n in v)


def is_timestamp(v: Any) -> bool:
    try:
        return isinstance(v, str) and len(v) <= 40 and bool(datetime.fromisoformat(v))
    except ValueError:
        return False


def timestamp(v: str | None) -> datetime | None:
    """An ISO 8601 time as an aware datetime (UTC when it names no zone)."""
    if v is None:
        return None
    t = datetime.fromisoformat(v)
    return t if t.tzinfo else t.replace(tzinfo=UTC)
