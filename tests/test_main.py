"""`python -m mnist_cli COMMAND ...`: every command by its short or full name, the list of
commands, and one line for an unknown one."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

import mnist_cli.cli
from mnist_cli.__main__ import COMMANDS, main
from mnist_cli.cli import runs_command

ROOT = Path(__file__).resolve().parents[1]


def write_run(root: Path) -> None:
    run = root / "r"
    run.mkdir(parents=True)
    (run / "weights.npz").write_bytes(b"")
    (run / "metrics.json").write_text(
        json.dumps({"model": "linear", "test_accuracy": 0.5, "config": {"epochs": 1}})
    )


def test_python_dash_m_lists_the_commands_and_runs_one(tmp_path):
    """The real `python -m` once: alone it lists each command on a line of its own; with a
    command it runs it."""
    listing = subprocess.run(
        [sys.executable, "-m", "mnist_cli"], capture_output=True, text=True, check=False
    )
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.startswith("Usage: python -m mnist_cli"), listing.stdout
    lines = listing.stdout.splitlines()
    for name in ("train", "eval", "predict", "gradcheck", "runs"):
        line = next((s for s in lines if s.split()[:1] == [name]), None)
        assert line is not None and len(line.split()) > 1, f"{name}: {listing.stdout}"
    write_run(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "mnist_cli", "runs", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert [r["name"] for r in json.loads(out.stdout)] == ["r"]


@pytest.mark.parametrize("name", ["runs", "mnist-runs"])
def test_a_command_by_short_or_full_name_is_that_command(tmp_path, name):
    write_run(tmp_path)
    via_main = CliRunner().invoke(main, [name, str(tmp_path)])
    direct = CliRunner().invoke(runs_command, [str(tmp_path)])
    assert via_main.exit_code == 0, via_main.output
    assert via_main.output == direct.output


@pytest.mark.parametrize("args", [[], ["-h"], ["--help"]])
def test_alone_or_with_help_it_lists_the_commands(args):
    result = CliRunner().invoke(main, args, prog_name="python -m mnist_cli")
    assert result.exit_code == 0, result.output
    commands = result.output.split("Commands:\n")[1].split("\n\n")[0].splitlines()
    assert [line.split()[0] for line in commands] == list(COMMANDS)
    assert "Example:" in result.output


@pytest.mark.parametrize("name", ["fit", "mnist-fit", "Train"])
def test_an_unknown_command_is_one_line_and_exit_2(name):
    result = CliRunner().invoke(main, [name, "--epochs", "1"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: no command {name!r}; the commands are train, eval, predict, "
        "gradcheck, runs, serve (python -m mnist_cli -h)\n"
    )


def test_each_console_script_is_a_command_here():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert {f"mnist-{name}" for name in COMMANDS} == set(scripts), scripts
    for name, command in COMMANDS.items():
        module, attr = scripts[f"mnist-{name}"].split(":")
        entry = getattr(__import__(module, fromlist=[attr]), attr)  # console.py's
        assert getattr(mnist_cli.cli, entry.command) is command, name


def test_subcommand_help_and_errors_name_the_python_dash_m_form():
    result = CliRunner().invoke(main, ["train", "-h"], prog_name="python -m mnist_cli")
    assert result.output.startswith("Usage: python -m mnist_cli train [OPTIONS]")
    bad = CliRunner().invoke(main, ["eval", "no/such/run"])
    assert bad.exit_code == 2 and "does not exist" in bad.output
    version = CliRunner().invoke(main, ["--version"])
    assert version.exit_code == 0 and "0.1.0" in version.output
