"""A run's metrics.json read back as untrusted input: the whole file, its history, its mirrors.

metrics.json may have been edited by hand, written by another version, or be anything at all.
It is read only if it is a regular file of at most MAX_METRICS_BYTES, must parse as one JSON
object, and every value used is checked for its type and range (`get` with a predicate). What
cannot be used is a MetricsError saying why in a few words, never a traceback; the callers
(runs.py for mnist-runs and --init-from, mnist-eval for its mirrors and curves) decide whether
that is an error, a broken run, or a warning.
"""

import json
import math
import os
import re
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mnist_cli.config.choices import LOSSES
from mnist_cli.data import normalize_mirror
from mnist_cli.errors import MetricsError
from mnist_cli.rundir.weights import METRICS

MAX_METRICS_BYTES = (
    4 * 2**20
)  # 10 epochs: ~6 KB; the most a run has (MAX_EPOCHS): ~1.9 MB
MAX_MIRRORS = 16
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,39}")  # model, dataset, loss, solver
SPLITS = ("test", "val")  # what a history entry may monitor
TIME = "a time (ISO 8601, years 1 to 9999 in UTC)"  # what `created` must be


def read_metrics(run_dir: Path) -> dict:
    """metrics.json of `run_dir` as a dict, or MetricsError saying in a few words why not."""
    path = run_dir / METRICS
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise MetricsError(f"no {METRICS}") from None
    except OSError as e:  # a run folder another user made unreadable (mode 000)
        raise MetricsError(f"{METRICS}: {e.strerror}") from None
    if not stat.S_ISREG(mode):  # a directory, a FIFO (reading would block), a device
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


def read_history(m: dict, monitor: str | None = None) -> tuple[dict, ...]:
    """metrics.json's history, checked entry by entry (epochs 1, 2, ..., n; a finite
    train_loss; the accuracy on the monitored split a fraction or null; seconds ≥ 0) and
    copied key by key into the fixed keys (epoch, train_loss, monitor, monitor_accuracy,
    seconds). Every entry must monitor `monitor` (None: the split the first entry monitors).
    Entries name their split in "monitor"; older runs have a "<split>_accuracy" key instead."""
    history = get(m, "history", list, "a list", [])
    entries = []
    for i, h in enumerate(history, start=1):
        where = f"history[{i - 1}]."
        if not isinstance(h, dict):
            raise MetricsError(f"{where[:-1]} is {json_type(h)}, not an object")
        if get(h, "epoch", is_count, "an integer", where=where) != i:
            raise MetricsError(f"{where}epoch is not {i}")
        split = entry_monitor(h, where)
        if split is None and monitor is None:
            raise MetricsError(f"{where[:-1]} reports no monitored accuracy")
        monitor = monitor or split
        if split != monitor:
            raise MetricsError(
                f"{where[:-1]} does not report {monitor} accuracy, which this run does "
                "(was --val-size given to one run and not the other?)"
            )
        key = "monitor_accuracy" if "monitor" in h else f"{monitor}_accuracy"
        entries.append(
            {
                "epoch": i,
                "train_loss": get(h, "train_loss", is_finite, "a number", where=where),
                "monitor": monitor,
                "monitor_accuracy": get(h, key, is_fraction, "a fraction", None, where),
                "seconds": get(h, "seconds", is_seconds, "a number", where=where),
            }
        )
    return tuple(entries)


def entry_monitor(h: dict, where: str) -> str | None:
    """The split a history entry monitors: its "monitor", or the split of its
    "<split>_accuracy" key (older runs); None when it names none."""
    if "monitor" in h:
        return get(h, "monitor", lambda v: v in SPLITS, "test or val", where=where)
    return next((s for s in SPLITS if f"{s}_accuracy" in h), None)


def read_mirrors(m: dict) -> tuple[str, ...]:
    """The mirrors the run was trained with (config.mirrors), each checked as --mirror checks
    it (an http(s) URL, a file:// URL or an existing directory); () when it names none."""
    config = get(m, "config", dict, "an object", {})
    mirrors = get(config, "mirrors", is_strings, "a list of mirrors", [], "config.")
    try:
        return tuple(normalize_mirror(mirror) for mirror in mirrors)
    except ValueError as e:
        raise MetricsError(f"config.mirrors: {e}") from None


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


def is_strings(v: Any) -> bool:
    """A list of at most MAX_MIRRORS short strings without control characters."""
    return (
        isinstance(v, list)
        and len(v) <= MAX_MIRRORS
        and all(isinstance(s, str) and len(s) <= 4096 and s.isprintable() for s in v)
    )


def is_timestamp(v: Any) -> bool:
    """An ISO 8601 time of at most 40 characters that exists in UTC too (year 1 at +05:00
    does not: it would be in year 0)."""
    try:
        return isinstance(v, str) and len(v) <= 40 and bool(timestamp(v))
    except (ValueError, OverflowError):
        return False


def timestamp(v: str | None) -> datetime | None:
    """An ISO 8601 time in UTC (taken as UTC when it names no zone). ValueError if it is not
    one, OverflowError if it falls outside years 1 to 9999 in UTC."""
    if v is None:
        return None
    t = datetime.fromisoformat(v)
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)


def run_loss(run_dir: Path | str) -> str | None:
    """The loss the run in `run_dir` was trained on (loss_of its metrics.json), or None when it
    is not a directory (a weights file) or its metrics.json cannot tell."""
    if not Path(run_dir).is_dir():
        return None
    try:
        return loss_of(read_metrics(Path(run_dir)))
    except MetricsError:
        return None


def loss_of(metrics: dict) -> str | None:
    """A run's loss from its metrics.json: config.loss, "squared" for runs from before the key,
    None if it is not a loss this mnist-cli knows."""
    try:
        config = get(metrics, "config", dict, "an object", {})
        loss = get(config, "loss", is_name, "a loss name", "squared", "config.")
    except MetricsError:
        return None
    return loss if loss in LOSSES else None
