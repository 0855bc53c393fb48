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

from mnist_cli.cli import runs_command, train_command
from mnist_cli.config.settings import MAX_EPOCHS
from mnist_cli.rundir.checks import MAX_MIRRORS
from mnist_cli.rundir.listing import list_runs
from mnist_cli.rundir.record import (
    MAX_METRICS_BYTES,
    read_history,
    read_metrics,
)
from mnist_cli.training.loop import EpochResult

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
from mnist_cli.cli import runs_command, train_command
from mnist_cli.config.settings import MAX_EPOCHS
from mnist_cli.rundir.checks import MAX_MIRRORS
from mnist_cli.rundir.record import (
    MAX_METRICS_BYTES,
    read_history,
    read_metrics,
)
from mnist_cli.rundir.listing import list_runs
from mnist_cli.training.loop import EpochResult
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
        # its checkpoint is looked for first (an unfinished run has no metrics.json)
        assert lines[2] == "locked  broken: checkpoint.npz: Permission denied", lines
    finally:
        (root / "locked").chmod(0o755)
        if root != tmp_path:
            shutil.rmtree(root)


# The longest a history entry's values can print: -x.xxxxxxxxxxxxxxxxe-xxx (24 characters)
LONGEST_FLOAT = -1.2345678901234567e-300


def longest_entry(epoch: int) -> dict:
    entry = EpochResult(
        epoch, MAX_EPOCHS, LONGEST_FLOAT, 0.1234567890123456, -LONGEST_FLOAT
    )
    return entry.to_json("test")


def test_the_largest_legal_run_is_read_back(trained_runs, tmp_path):
    """The writer (indent 2, as write_run) and the reader agree: a run of MAX_EPOCHS epochs,
    each entry at its longest, with the longest mirrors, is within MAX_METRICS_BYTES and
    listed; one epoch more could not be trained."""
    run = tmp_path / "largest"
    shutil.copytree(trained_runs["mini-linear"][0], run)
    m = json.loads((run / "metrics.json").read_text())
    m["history"] = [longest_entry(i) for i in range(1, MAX_EPOCHS + 1)]
    m["config"]["mirrors"] = ["/" + "m" * 4095] * MAX_MIRRORS
    text = json.dumps(m, indent=2) + "\n"
    assert len(text) <= MAX_METRICS_BYTES, f"{len(text):,} > {MAX_METRICS_BYTES:,}"
    (run / "metrics.json").write_text(text)
    [summary] = list_runs(tmp_path)
    assert summary.error is None and summary.epochs == 1, summary
    assert len(read_history(read_metrics(run))) == MAX_EPOCHS


@pytest.mark.parametrize("where", ["option", "config"])
def test_epochs_beyond_the_bound_are_refused(tmp_path, where):
    config = tmp_path / "c.toml"
    config.write_text(f"epochs = {MAX_EPOCHS + 1}\n")
    args = ["--config", str(config)] if where == "config" else ["--epochs", "10001"]
    result = CliRunner().invoke(train_command, args)
    message = "must be an integer from 1 to 10,000, not 10001"
    if where == "option":
        assert result.exit_code == 2, result.output
        last = result.output.splitlines()[-1]
        assert last == f"Error: Invalid value for '--epochs': {message}", last
    else:
        assert result.exit_code == 1, result.output
        assert result.output == f"Error: {config}: key 'epochs' {message}\n"


@pytest.mark.parametrize("earlier, more", [(9_995, 10), (MAX_EPOCHS, 1)])
def test_a_continued_run_may_not_pass_the_bound(trained_runs, tmp_path, earlier, more):
    run = tmp_path / "long"
    shutil.copytree(trained_runs["mini-linear"][0], run)
    m = json.loads((run / "metrics.json").read_text())
    m["history"] = [{**m["history"][0], "epoch": i} for i in range(1, earlier + 1)]
    (run / "metrics.json").write_text(json.dumps(m))
    args = [
        "--init-from",
        str(run),
        "--epochs",
        str(more),
        "--out",
        str(tmp_path / "o"),
    ]
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 2, result.output
    advice = "give at most 5, or" if earlier < MAX_EPOCHS else "give"
    assert result.output.splitlines()[-1] == (
        f"Error: Invalid value for '--epochs' (config key epochs): {run} has trained {earlier:,} epochs: "
        f"{more} more would pass the 10,000 a run may have; {advice} its weights.npz "
        "to start a history of its own"
    )
    assert not (tmp_path / "o").exists()


def test_every_column_of_the_table_is_bounded(tmp_path):
    """seconds 1e308 or 16 hidden layers of 10⁸ widened the table to 561 characters."""
    fake_run(tmp_path, "fine")
    fake_run(
        tmp_path,
        "w" * 255,
        seconds=1e308,
        dataset="d" * 40,
        config={"hidden": [10**8] * 16, "epochs": 10**9 - 1, "loss": "l" * 40},
        started_from={"epochs": 10**9 - 1},
    )
    lines, [_, wide] = listing(tmp_path)
    # run 40, model 24, dataset and loss 14, epochs 11, test and val 7, seconds 9,
    # created 16, and two spaces between each
    assert max(map(len, lines)) <= 158, lines
    cells = lines[2].split()
    assert cells[:3] == ["w" * 39 + "…", "softmax", "100000000,10000…"], cells
    assert cells[3:6] == ["d" * 13 + "…", "l" * 13 + "…", "999999999+…"], cells
    assert cells[6:9] == ["90.00%", "-", "1e+308"], cells
    assert wide["seconds"] == 1e308 and wide["hidden"] == [10**8] * 16, wide
