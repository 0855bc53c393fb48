"""mnist-train's output, seen from the command line: the run directory is claimed and checked
before training, --force replaces only a previous run, every path goes back into config.toml,
and a failure to write after training is one line. Training itself is replaced by a stub that
records its calls (`fits`): these tests are about what happens around it, and stay fast."""

import errno
import os
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import save_run

from mnist_cli.cli import fitting, mnist_train, train_command
from mnist_cli.config.files import to_toml
from mnist_cli.config.settings import TrainConfig
from mnist_cli.metrics import evaluate
from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import one_layer
from mnist_cli.nn.layers import Params
from mnist_cli.rundir.claim import RUN_FILES
from mnist_cli.training.record import FIELD_NAMES, RunRecord
from mnist_cli.training.run import RunResult


@pytest.fixture
def fits(monkeypatch):
    """fitting.fit (mnist-train's) replaced by a stub: zero weights (or the starting ones), scored on 100
    test images. The list of the configs it was called with: [] means nothing trained."""
    calls = []

    def fit(config, dataset, train_split, test_split, *, start=None, **kwargs):
        calls.append(config)
        zeros = Params(np.zeros((K, D), np.float32), np.zeros(K, np.float32))
        network = start or one_layer("softmax", zeros)
        test = evaluate(network, test_split.images[:100], test_split.labels[:100])
        written = {"seconds": 0.0, "history": [], "test_accuracy": test.accuracy}
        record = RunRecord(**dict.fromkeys(FIELD_NAMES) | written)
        return RunResult(network, record, test, None)

    monkeypatch.setattr(fitting, "fit", fit)
    return calls


@pytest.fixture
def cache_args(mnist_cache):
    """The session's warm cache: no mirror is asked (--mirror is checked, not read)."""
    return ["--cache-dir", str(mnist_cache), "-q"]


def train(*args):
    return CliRunner().invoke(train_command, [str(a) for a in args])


def one_line_error(result, code: int = 1) -> str:
    """The `Error: ...` line of a failed command, checking the exit code and no traceback."""
    assert result.exit_code == code, (
        f"expected exit {code}, got {result.exit_code}: {result.output!r} {result.exception!r}"
    )
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, f"expected one Error line, got {result.output!r}"
    return errors[0]


def previous_run(path: Path) -> None:
    params = Params(np.ones((K, D), np.float32), np.zeros(K, np.float32))
    softmax = one_layer("softmax", params)
    save_run(path, network=softmax, metrics={}, config_toml="")


# 1. Two runs with the same --out


def test_a_second_run_on_a_claimed_out_fails_before_training(
    tmp_path, cache_args, fits, monkeypatch
):
    """The second run starts while the first trains: it fails at once, with one line, and
    the first one's run is saved."""
    out = tmp_path / "r"
    stub = fitting.fit
    second = []

    def first_fit(*args, **kwargs):
        monkeypatch.setattr(fitting, "fit", stub)
        for force in ([], ["--force"]):
            second.append(train("--out", out, *force, *cache_args))
        return stub(*args, **kwargs)

    monkeypatch.setattr(fitting, "fit", first_fit)
    first = train("--out", out, *cache_args)

    assert first.exit_code == 0, f"the first run failed: {first.output!r}"
    expected = f"Error: --out {out} is in use by another mnist-train run; "
    for result in second:
        line = one_line_error(result)
        assert line.startswith(expected), f"expected {expected!r}, got {line!r}"
    assert len(fits) == 1, f"the second runs trained: {len(fits)} trainings"
    assert sorted(p.name for p in out.iterdir()) == [
        "config.toml",
        "metrics.json",
        "weights.npz",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"], "hidden leftovers"


# 2. Default run names


def test_default_run_names_are_unique_and_claimed(
    tmp_path, cache_args, fits, monkeypatch
):
    names = {mnist_train.default_out_dir("softmax") for _ in range(10)}
    assert len(names) == 10, f"10 names in the same second, only {len(names)} distinct"
    pattern = r"runs/softmax-\d{8}-\d{6}-[0-9a-f]{6}"
    assert all(re.fullmatch(pattern, str(n)) for n in names), sorted(names)[:3]

    monkeypatch.chdir(tmp_path)
    results = [train(*cache_args) for _ in range(3)]  # within a second or so
    assert [r.exit_code for r in results] == [0, 0, 0], [r.output for r in results]
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 3, f"expected three run directories, got {runs}"


# 3. --force replaces only a previous run


@pytest.mark.parametrize(
    ("files", "out", "what"),
    [
        (["weights.npz", "notes.txt"], "r", "holds notes.txt"),
        (["thesis.tex", "data/x.csv"], "r", "holds data, thesis.tex"),
        (["config.toml"], "r", "has no run"),
        (["notes.txt"], ".", "holds notes.txt"),
    ],
    ids=["run-and-a-user-file", "user-folder", "no-weights-or-metrics", "dot"],
)
def test_force_refuses_what_is_not_a_previous_run(
    tmp_path, cache_args, fits, monkeypatch, files, out, what
):
    home = tmp_path / "home"
    for name in files:
        (home / "r" / name).parent.mkdir(parents=True, exist_ok=True)
        (home / "r" / name).write_text("mine")
    monkeypatch.chdir(home / "r" if out == "." else home)
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))

    line = one_line_error(train("--out", out, "--force", *cache_args))

    assert line.startswith(f"Error: --out {out} is not a previous run ({what}); "), line
    after = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert after == before, f"files changed: {before} -> {after}"
    assert fits == [], "trained before refusing"


@pytest.mark.parametrize(
    "files",
    [
        ["config.toml"],
        ["config.toml", "metrics.json"],
        [*RUN_FILES, "weights.png", ".curves.png.0123abcd.tmp"],
    ],
    ids=["config", "two", "run-and-a-picture-being-drawn"],
)
def test_force_replaces_what_an_interrupted_install_left(
    tmp_path, cache_args, fits, files
):
    """What a kill between the moves of an install leaves (the files before weights.npz, as
    versions before this one moved them in name order), or a kill while the pictures were
    drawn (a temporary file, refused before as "holds .curves.png...tmp"): --force
    replaces it."""
    out = tmp_path / "r"
    out.mkdir()
    for name in files:
        text = to_toml(TrainConfig()) if name == "config.toml" else "{}"
        (out / name).write_text(text)

    result = train("--out", out, "--force", *cache_args)

    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(out)) == ["config.toml", "metrics.json", "weights.npz"]
    assert len(fits) == 1


# 4. The output place is checked before training


def read_only(monkeypatch, directory: Path) -> None:
    """Make creating anything in `directory` fail as a read-only folder does. (Tests run as
    root, whom chmod does not stop: os.mkdir is patched instead.)"""
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if Path(path).parent == directory:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)


@pytest.mark.parametrize(
    "case",
    ["under-a-file", "read-only-folder", "read-only-parent", "link", "link-force"],
)
def test_an_unusable_out_is_refused_before_training(
    tmp_path, cache_args, fits, monkeypatch, case
):
    target = tmp_path / "target"
    if case == "under-a-file":
        (tmp_path / "file").write_text("mine")
        out, args = tmp_path / "file" / "r", []
        expected = f"--out {out}: {tmp_path / 'file'} is a file, not a directory"
    elif case.startswith("read-only"):
        ro = tmp_path / "ro"
        ro.mkdir()
        read_only(monkeypatch, ro)
        out, args = ro / ("r" if case == "read-only-folder" else "sub/r"), []
        expected = f"--out {out}: cannot create it (Permission denied)"
    else:
        previous_run(target)
        (tmp_path / "link").symlink_to(target)
        out, args = tmp_path / "link", ["--force"] if case == "link-force" else []
        expected = f"--out {out} is a symbolic link (to {target})"
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))

    line = one_line_error(train("--out", out, *args, *cache_args))

    assert line.startswith(f"Error: {expected}"), f"expected {expected!r}, got {line!r}"
    assert fits == [], "trained before refusing"
    after = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert after == before, f"files changed: {before} -> {after}"


def test_a_full_disk_after_training_is_one_line_and_leaves_nothing(
    tmp_path, cache_args, fits, monkeypatch
):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full)
    out = tmp_path / "runs" / "r"

    line = one_line_error(train("--out", out, *cache_args))

    expected = (
        f"Error: --out {out}: cannot write the run (No space left on device); nothing "
        "was saved; free some space or choose another --out"
    )
    assert line == expected, f"expected {expected!r}, got {line!r}"
    assert len(fits) == 1
    listing = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert listing == ["runs"], f"expected no run and no staging left, got {listing}"


# 5. Paths go back into config.toml, or are refused before training


@pytest.mark.parametrize("option", ["--mirror", "--init-from", "--out"])
def test_paths_that_are_not_utf8_are_refused_before_training(
    tmp_path, cache_args, fits, option
):
    bad = (
        tmp_path / "caf\udce9"
    )  # the byte 0xE9 (latin-1 é), as a command line gives it
    if option == "--init-from":
        previous_run(tmp_path / "run")
        os.rename(tmp_path / "run", bad)
    elif option == "--mirror":
        bad.mkdir()
    code = 1 if option == "--out" else 2

    result = train(option, bad, *cache_args)

    line = one_line_error(result, code)
    assert "caf\\xe9" in line and "not valid UTF-8" in line, line
    if option != "--out":
        assert f"Invalid value for '{option}'" in line, line
    assert fits == [], "trained before refusing"


def test_paths_with_control_characters_round_trip_through_config_toml(
    tmp_path, cache_args, fits
):
    mirror = tmp_path / 'mir\x7fror\x01 "q" \\'
    mirror.mkdir()
    previous_run(tmp_path / "start\x7f")
    weights = tmp_path / "start\x7f" / "weights.npz"

    first = train(
        "--mirror", mirror, "--init-from", weights, "--out", tmp_path / "a", *cache_args
    )
    assert first.exit_code == 0, first.output
    config = tmp_path / "a" / "config.toml"
    values = tomllib.loads(config.read_text())
    assert values["mirrors"] == [str(mirror)], values
    assert values["init_from"] == str(weights), values

    again = train("--config", config, "--out", tmp_path / "b", *cache_args)
    assert again.exit_code == 0, again.output
    assert fits[1] == fits[0], f"re-run differs: {fits[1]} != {fits[0]}"
    text = (tmp_path / "b" / "config.toml").read_text()
    assert text == config.read_text(), "the re-run's config.toml differs"
