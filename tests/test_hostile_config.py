"""Hostile --config files (issue 22): each is one `Error:` line naming the file, exit 1, before
anything is fetched or trained; nothing waits for a writer or reads more than the bound."""

import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnist_cli.cli import train_command
from mnist_cli.config.files import read_config_file
from mnist_cli.config.settings import MAX_CONFIG_BYTES
from mnist_cli.errors import ConfigError


def deep(path: Path) -> None:
    path.write_text("hidden = " + "[" * 500 + "]" * 500 + "\n")


def latin1(path: Path) -> None:
    path.write_bytes('model = "lin\xe9ar"\n'.encode("latin-1"))


def long_comment(path: Path) -> None:
    path.write_text("# " + "x" * MAX_CONFIG_BYTES + '\nmodel = "linear"\n')


@pytest.mark.parametrize(
    "make, message",
    [
        (deep, "nested too deeply to read (a config is flat)"),
        (latin1, "not UTF-8 text (byte 12); save it as UTF-8"),
        (
            long_comment,
            (
                "larger than 64 KiB, the most a config file may be (the shipped ones, "
                "configs/*.toml, are under 1 KiB)"
            ),
        ),
    ],
    ids=["arrays nested 500 deep", "latin-1", "a comment past the bound"],
)
def test_a_hostile_config_file_is_one_line(tmp_path, make, message):
    path = tmp_path / "c.toml"
    make(path)
    result = CliRunner().invoke(train_command, ["--config", str(path)])
    assert result.exit_code == 1, result.output
    assert result.output == f"Error: {path}: {message}\n", result.output


def test_a_config_file_at_the_bound_is_read(tmp_path):
    path = tmp_path / "c.toml"
    text = 'model = "linear"\n'
    path.write_text("#" * (MAX_CONFIG_BYTES - len(text) - 1) + "\n" + text)
    assert path.stat().st_size == MAX_CONFIG_BYTES
    assert read_config_file(path) == {"model": "linear"}


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_a_device_is_refused_without_waiting(tmp_path, kind):
    """A FIFO with no writer hung mnist-train (killed at 60 s); /dev/zero never ends."""
    path = tmp_path / "c.toml"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    outcome: list[str] = []

    def read() -> None:
        try:
            read_config_file(path)
        except ConfigError as e:
            outcome.append(str(e))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=2)
    if reader.is_alive() and kind == "fifo":  # the old code: let the reader go
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    assert outcome == [f"{path}: not a regular file; give a TOML file"], outcome


def test_the_help_says_the_bound():
    help_text = CliRunner().invoke(train_command, ["--help"]).output
    assert f"≤ {MAX_CONFIG_BYTES // 1024} KiB" in " ".join(help_text.split())
