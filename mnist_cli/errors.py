"""The typed errors of the library.

Library code raises these; the CLI turns each into one clear line and a non-zero exit.
Every message names the thing that is wrong and, where there is one, what to do about it.
"""

import os
from pathlib import Path


class MnistCliError(Exception):
    """Base class of every error the CLI reports as one line (exit 1)."""


class ConfigError(MnistCliError):
    """A configuration file or value is invalid (unknown key, wrong type, out of range)."""


class OptionsError(ConfigError):
    """Settings that cannot go together, or a value the data rules out: the CLI reports it as a
    usage error (exit 2), naming `option` (the option to blame, "--val-size") and `key` (its
    config key, "val_size", when a config file can set it) when there is one."""

    def __init__(self, message: str, option: str | None = None, key: str | None = None):
        super().__init__(message)
        self.option, self.key = option, key


class DownloadError(MnistCliError):
    """No mirror yielded a verified copy of a data file."""


class IdxFormatError(MnistCliError):
    """A file is not a valid IDX file of the expected kind (magic, dimensions, length, labels)."""


class CacheError(MnistCliError):
    """The cache directory cannot be created or written."""


class WeightsError(MnistCliError):
    """A weights file is missing, unreadable, or not one mnist-cli wrote."""


class TrainingDivergedError(MnistCliError):
    """The loss became NaN or infinite during training."""


class RunDirectoryError(MnistCliError):
    """A run directory cannot be used (exists and is not empty, is a file, ...). About the
    directory a run is written to, it carries `place` (that directory, as given: the message
    names it) and `remedy`, what the user can do (a key of cli/run_place.py's REMEDIES), which
    the CLI words with the option that named the place (--out, --resume)."""

    def __init__(self, message: str, place: Path | None = None, remedy: str = ""):
        super().__init__(message)
        self.place, self.remedy = place, remedy


class MissingExtraError(MnistCliError):
    """An optional dependency (an extra: plots, images) is needed but not installed."""


class ImageError(MnistCliError):
    """An image file cannot be read, or shows no digit to classify."""


class MetricsError(MnistCliError):
    """A run's metrics.json is missing, unreadable, or not what mnist-train writes."""


class CheckpointError(WeightsError):
    """A checkpoint cannot be written, or is not one this mnist-cli wrote and can resume."""


class ServeError(MnistCliError):
    """mnist-serve cannot listen where asked: `about` is "port" (in use, not allowed) or
    "host" (no such address)."""

    def __init__(self, message: str, about: str):
        super().__init__(message)
        self.about = about


def shown(path: Path | str) -> str:
    """`path` as text that can be printed: bytes that are not UTF-8 as \\xNN escapes."""
    try:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no byte became
        return str(path).encode("utf-8", "backslashreplace").decode()
