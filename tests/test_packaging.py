"""What pip installs: every console script runs a click command (through console.py, which
guards the imports). (Every package folder is found by setuptools: pyproject.toml lists none
by hand.)"""

import importlib
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_console_script_points_at_a_click_command():
    scripts = PYPROJECT["project"]["scripts"]
    assert set(scripts) == {
        "mnist-train",
        "mnist-eval",
        "mnist-predict",
        "mnist-gradcheck",
        "mnist-runs",
        "mnist-serve",
    }
    for name, target in scripts.items():
        module, attr = target.split(":")
        entry = getattr(importlib.import_module(module), attr)
        command = getattr(importlib.import_module("mnist_cli.cli"), entry.command)
        assert f"mnist-{command.name}" == name, (
            f"{name} -> {target} runs {command.name}"
        )
