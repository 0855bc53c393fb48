"""What pip installs: every package folder, every console script."""

import importlib
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_in_the_wheel():
    folders = sorted(
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "mnist_cli").rglob("__init__.py")
    )
    listed = sorted(PYPROJECT["tool"]["setuptools"]["packages"])
    assert listed == folders, f"pyproject packages {listed}, package folders {folders}"


def test_every_console_script_points_at_a_click_command():
    scripts = PYPROJECT["project"]["scripts"]
    assert set(scripts) == {
        "mnist-train",
        "mnist-eval",
        "mnist-predict",
        "mnist-gradcheck",
        "mnist-runs",
    }
    for name, target in scripts.items():
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        assert command.name and callable(command), f"{name} -> {target}"
