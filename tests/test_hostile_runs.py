"""mnist-runs against hostile run folders (issue 22): one broken run is listed as broken, with
its reason, and never hides the others; every column of the table is bounded."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnist_cli.cli import runs_command

GOOD = {
    "model": "softmax",
    "test_accuracy": 0.9,
    "seconds": 1.5,
    "created": "2026-11-26T10:15:00+00:00",
}


def fake_run(root: Path, name: str, **fields) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "weights.npz").write_bytes(b"")
    (run / "metrics.json").write_text(json.dumps({**GOOD, **fields}))
    return run


def listing(root: Path) -> tuple[list[str], list[dict]]:
    """(the table's lines, the --json objects) of mnist-runs on `root`; each exits 0."""
    table = CliRunner().invoke(runs_command, [str(root)])
    assert table.exit_code == 0 and table.exception is None, table.output
    as_json = CliRunner().invoke(runs_command, [str(root), "--json"])
    assert as_json.exit_code == 0, as_json.output
    return table.stdout.splitlines(), json.loads(as_json.stdout)


@pytest.mark.parametrize(
    "created", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"]
)
def test_a_time_outside_the_utc_years_is_one_broken_run(tmp_path, created):
    fake_run(tmp_path, "fine")
    fake_run(tmp_path, "odd", created=created)
    lines, runs = listing(tmp_path)
    assert len(lines) == 3 and lines[1].startswith("fine "), lines
    assert lines[2].startswith("odd   broken: created is a string, not a time"), lines
    assert [r["name"] for r in runs] == ["fine", "odd"], runs
    assert runs[1]["error"].startswith("created is a string, not a time"), runs[1]


def test_created_is_shown_in_utc_in_both_outputs(tmp_path):
    fake_run(tmp_path, "east", created="2026-01-01T03:00:00+05:00")
    lines, [run] = listing(tmp_path)
    assert lines[1].endswith("2025-12-31 22:00"), lines
    assert run["created"] == "2025-12-31T22:00:00+00:00", run


# root enters any folder: the listing drops to the user nobody once everything is imported
# (the interpreter may live under /root, which nobody cannot enter)
LIST_AS_NOBODY = """
import os, sys
from mnist_cli.cli import runs_command
os.setgroups([]); os.setgid(65534); os.setuid(65534)
runs_command(sys.argv[1:])
"""


def test_a_run_folder_that_cannot_be_entered_is_one_broken_run(tmp_path):
    """A folder of mode 000 (another user's) costs that run, not the listing. As root, which
    enters any folder, the listing runs as the user nobody, in a folder nobody can read."""
    root = Path(tempfile.mkdtemp()) if os.geteuid() == 0 else tmp_path
    try:
        root.chmod(0o755)
        fake_run(root, "fine")
        locked = fake_run(root, "locked")
        locked.chmod(0o000)
        if os.geteuid() == 0:
            result = subprocess.run(
                [sys.executable, "-c", LIST_AS_NOBODY, str(root)],
                capture_output=True,
                text=True,
                cwd=root,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            lines = result.stdout.splitlines()
        else:
            lines, _ = listing(root)
        assert len(lines) == 3 and lines[1].startswith("fine "), lines
        assert lines[2] == "locked  broken: metrics.json: Permission denied", lines
    finally:
        (root / "locked").chmod(0o755)
        if root != tmp_path:
            shutil.rmtree(root)
