"""What `make` says while it sets up .venv: one line naming what it installs, then pip's own
output (no --quiet on the installs that take time)."""

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> list[str]:
    """`make -n dev` in a copy of the Makefile and pyproject.toml without .venv: the commands a
    fresh clone runs, in order."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    clone = tmp_path_factory.mktemp("clone")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, clone / name)
    # run as a user would, not as a sub-make of `make test` (which would add
    # "make[1]: Entering directory" lines)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL")}
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "dev"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return out.stdout.splitlines()


def test_a_line_names_the_dependencies_before_the_install(dry_run):
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    names = [re.split(r"[<>=!~ \[]", d)[0] for d in deps]
    say = f'echo "setting up .venv: {", ".join(names)} (first run only)"'
    install = next(i for i, line in enumerate(dry_run) if line.endswith("install -e ."))
    assert dry_run[0] == say, f"expected {say!r} first, got {dry_run[:2]}"
    assert "--quiet" not in dry_run[install], dry_run[install]


def test_the_dev_extras_are_announced_and_shown(dry_run):
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["dev"]
    names = [re.split(r"[<>=!~ \[]", d)[0] for d in extras]
    i = next(
        i for i, line in enumerate(dry_run) if line.endswith("install -e '.[dev]'")
    )
    assert dry_run[i - 1] == (
        f'echo "adding the dev extras to .venv: {", ".join(names)} (first run only)"'
    ), dry_run
    assert "--quiet" not in dry_run[i], dry_run[i]
