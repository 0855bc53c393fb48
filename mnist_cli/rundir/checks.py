"""What a value read from metrics.json must be, and `get`, which checks it.

metrics.json is untrusted (record.py); every value a reader uses passes through `get` with a
predicate. FIELDS gives each field of training/record.RunRecord its predicate, so that the
readers check the fields the writer writes, by the same names (`field(m, "model")`).
"""

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mnist_cli.errors import MetricsError

MAX_MIRRORS = 16
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,39}")  # model, dataset, loss, solver
TIME = "a time (ISO 8601, years 1 to 9999 in UTC)"  # what `created` must be


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


def is_texts(v: Any, most: int, longest: int) -> bool:
    """A list of at most `most` printable strings (no control characters) of at most
    `longest` characters each."""
    return (
        isinstance(v, list)
        and len(v) <= most
        and all(isinstance(s, str) and len(s) <= longest and s.isprintable() for s in v)
    )


def is_strings(v: Any) -> bool:
    """A list of mirrors: at most MAX_MIRRORS, each at most 4,096 characters."""
    return is_texts(v, MAX_MIRRORS, 4096)


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


def is_fractions(v: Any) -> bool:
    """A list of at most 1,000 fractions (per_class_accuracy: one a class)."""
    return isinstance(v, list) and len(v) <= 1000 and all(map(is_fraction, v))


def is_counts(v: Any) -> bool:
    """A square list of lists of counts, at most 1,000 a side (the confusion matrix)."""
    return (
        isinstance(v, list)
        and len(v) <= 1000
        and all(isinstance(r, list) and len(r) == len(v) for r in v)
        and all(is_count(n) for r in v for n in r)
    )


def is_labels(v: Any) -> bool:
    """A list of class names: at most 1,000, each at most 100 characters."""
    return is_texts(v, 1000, 100)


def is_version(v: Any) -> bool:
    return isinstance(v, str) and len(v) <= 40 and v.isprintable()


# what each field of metrics.json (training/record.RunRecord, the same names in the same
# order: tests/test_run_record.py) must be for a reader to use it
FIELDS: dict[str, tuple[type | Callable[[Any], bool], str]] = {
    "model": (is_name, "a model name"),
    "loss": (is_name, "a loss name"),
    "dataset": (is_name, "a dataset name"),
    "solver": (is_name, "a solver name"),
    "train_loss": (is_finite, "a number"),
    "train_accuracy": (is_fraction, "a fraction"),
    "val_accuracy": (is_fraction, "a fraction"),
    "test_accuracy": (is_fraction, "a fraction"),
    "per_class_accuracy": (is_fractions, "a list of fractions"),
    "confusion_matrix": (is_counts, "a square table of counts"),
    "class_names": (is_labels, "a list of class names"),
    "history": (list, "a list"),
    "started_from": (dict, "an object"),
    "config": (dict, "an object"),
    "data": (dict, "an object"),
    "seconds": (is_seconds, "a number of seconds"),
    "version": (is_version, "a version"),
    "created": (is_timestamp, TIME),
}


def field(m: dict, name: str, default: Any = REQUIRED) -> Any:
    """metrics.json's field `name` (a RunRecord field: KeyError for any other) if it is what
    FIELDS says; `default` when absent or null; MetricsError otherwise."""
    check, what = FIELDS[name]
    return get(m, name, check, what, default)
