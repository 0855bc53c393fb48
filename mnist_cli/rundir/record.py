"""A run's metrics.json read back as untrusted input: the whole file, its history, its mirrors.

metrics.json may have been edited by hand, written by another version, or be anything at all.
It is read only if it is a regular file of at most MAX_METRICS_BYTES, must parse as one JSON
object, and every value used is checked for its type and range (checks.py: a field of
training/record.RunRecord by `field`, anything deeper by `get` with a predicate). What cannot
be used is a MetricsError saying why in a few words, never a traceback; the callers
(listing.py for mnist-runs and --init-from, mnist-eval for its mirrors and curves) decide
whether that is an error, a broken run, or a warning.
"""

import json
import os
import stat
from pathlib import Path

from mnist_cli.config.choices import LOSSES
from mnist_cli.data import normalize_mirror
from mnist_cli.errors import MetricsError
from mnist_cli.rundir.checks import (
    field,
    get,
    is_count,
    is_finite,
    is_fraction,
    is_name,
    is_seconds,
    is_strings,
    json_type,
)
from mnist_cli.rundir.weights import METRICS

MAX_METRICS_BYTES = (
    4 * 2**20
)  # 10 epochs: ~6 KB; the most a run has (MAX_EPOCHS): ~1.9 MB
SPLITS = ("test", "val")  # what a history entry may monitor


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
    history = field(m, "history", [])
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
                "(was one run given a validation split and not the other?)"
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
    config = field(m, "config", {})
    mirrors = get(config, "mirrors", is_strings, "a list of mirrors", [], "config.")
    try:
        return tuple(normalize_mirror(mirror) for mirror in mirrors)
    except ValueError as e:
        raise MetricsError(f"config.mirrors: {e}") from None


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
        config = field(metrics, "config", {})
        loss = get(config, "loss", is_name, "a loss name", "squared", "config.")
    except MetricsError:
        return None
    return loss if loss in LOSSES else None
