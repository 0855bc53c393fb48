"""Config files: a TOML file read into checked values, and a run's configuration written back
as one (config.toml), each string escaped as TOML needs."""

import os
import stat
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mnist_cli.config.choices import OPTIMIZER_SETTINGS
from mnist_cli.config.settings import MAX_CONFIG_BYTES, TrainConfig, check_value
from mnist_cli.data import normalize_mirror
from mnist_cli.errors import ConfigError


def read_config_file(path: Path) -> dict[str, Any]:
    """The validated values of a TOML config file: a regular file of at most
    MAX_CONFIG_BYTES of UTF-8. Mirror paths are made relative to the file."""
    return config_values(config_text(path), path.parent, str(path))


def config_values(text: str, base_dir: Path, where: str) -> dict[str, Any]:
    """The validated values of a config file's `text` (`where` names it in errors), paths
    relative to `base_dir` (a run's config.toml, a checkpoint's config)."""
    import tomllib  # here: a run without --config does not parse TOML (~2 ms of start-up)

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: invalid TOML: {e}") from None
    except RecursionError:  # arrays nested hundreds deep
        raise ConfigError(
            f"{where}: nested too deeply to read (a config is flat)"
        ) from None
    values = {}
    for key, value in raw.items():
        try:
            values[key] = check_value(key, value)
        except ValueError as e:
            raise ConfigError(f"{where}: key '{key}' {e}") from None
    if "mirrors" in values:
        try:
            values["mirrors"] = tuple(
                normalize_mirror(m, base_dir=base_dir) for m in values["mirrors"]
            )
        except ValueError as e:
            raise ConfigError(f"{where}: key 'mirrors': {e}") from None
    if "init_from" in values:
        values["init_from"] = str((base_dir / values["init_from"]).resolve())
    return values


def config_text(path: Path) -> str:
    """The text of config file `path`, or ConfigError: opened without waiting (a FIFO with no
    writer would block), then refused unless a regular file of at most MAX_CONFIG_BYTES
    (only so many bytes are read) that is valid UTF-8."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConfigError(f"{path}: not a regular file; give a TOML file")
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file: {e.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB, the most a config file "
            "may be (the shipped ones, configs/*.toml, are under 1 KiB)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8"
        ) from None


def to_toml(config: TrainConfig) -> str:
    """The configuration as a TOML file that `--config` reads back to the same TrainConfig.
    ValueError for a string TOML cannot hold (a path that is not valid UTF-8)."""

    def value(v: Any) -> str:
        if isinstance(v, str):
            return toml_string(v)
        if isinstance(v, tuple):  # mirrors (strings) or hidden (integers)
            return "[" + ", ".join(value(m) for m in v) + "]"
        return repr(v)

    lines = ["# mnist-train configuration, as resolved for this run"]
    # None (no init_from, activation, kernel) and no hidden layers or channels are left out: TOML has no
    # null, and absent means the default
    # and the settings of optimizers other than the run's (--config would refuse them)
    lines += [
        f"{key} = {value(v)}"
        for key, v in asdict(config).items()
        if v is not None
        and not (key in ("hidden", "channels") and not v)
        and config.optimizer in OPTIMIZER_SETTINGS.get(key, (config.optimizer,))
    ]
    return "\n".join(lines) + "\n"


def toml_string(s: str) -> str:
    """`s` as a TOML basic string: `"` and `\\` escaped, and the control characters TOML
    forbids in one (U+0000 to U+001F but tab, and DEL U+007F) as \\uXXXX. ValueError for a
    lone surrogate (a command-line path that is not valid UTF-8): TOML cannot hold it."""
    if any("\ud800" <= c <= "\udfff" for c in s):
        raise ValueError("not valid UTF-8")
    body = s.replace("\\", "\\\\").replace('"', '\\"')
    body = "".join(f"\\u{ord(c):04X}" if c in CONTROL else c for c in body)
    return f'"{body}"'


# what a TOML basic string cannot hold unescaped, but for `"` and `\`
CONTROL = frozenset(map(chr, [*range(0x09), *range(0x0A, 0x20), 0x7F]))
