"""Faults seen from the command line: signals mid-download, interrupted or failed runs, hostile
option values, and bad data from a mirror, each ending in one line and nothing half-written."""

import gzip
import hashlib
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import write_idx

from mnist_cli.cli import train_command
from mnist_cli.cli.options import timeout_value
from mnist_cli.data.catalogue import DATASETS, DataFile, Dataset
from mnist_cli.rundir import claim as rundir
from mnist_cli.training import step as step_module

BIN = Path(sys.executable).parent


def leftovers(directory: Path) -> list[str]:
    """Every file under `directory` but the (empty, permanent) lock files."""
    if not directory.exists():
        return []
    return sorted(
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and not p.name.endswith(".lock")
    )


def wait_for(condition, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [(signal.SIGINT, 130, "Interrupted."), (signal.SIGTERM, 143, "Terminated.")],
    ids=["SIGINT", "SIGTERM"],
)
def test_signal_mid_download_exits_cleanly(http_server, tmp_path, signum, code, line):
    released = threading.Event()

    def stall(handler):  # 1 MB announced, 1000 bytes sent, then silence
        handler.send_response(200)
        handler.send_header("Content-Length", str(1 << 20))
        handler.end_headers()
        handler.wfile.write(bytes(1000))
        handler.wfile.flush()
        released.wait(10)

    server = http_server(routes={"/train-images-idx3-ubyte.gz": stall})
    cache, out = tmp_path / "cache", tmp_path / "run"
    process = subprocess.Popen(
        [BIN / "mnist-train", "--cache-dir", cache, "--mirror", server.url]
        + ["--out", out, "--timeout", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: server.paths and list((cache / "mnist").glob(".*.part")),
            "the download to start",
        )
        time.sleep(0.1)  # the first bytes are in flight
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=10)
    finally:
        released.set()
        process.kill()

    assert process.returncode == code, f"expected exit {code}, got {process.returncode}"
    lines = stderr.strip().splitlines()
    assert lines == [line], f"expected stderr {[line]}, got {stderr!r}"
    assert leftovers(cache) == [], f"expected an empty cache, got {leftovers(cache)}"
    assert not out.exists(), f"expected no run directory {out}"


@pytest.mark.parametrize(
    ("where", "fault", "code", "message"),
    [
        ("gradients", KeyboardInterrupt, 130, "Interrupted."),
        ("gradients", MemoryError, 1, None),
    ],
    ids=["interrupted-training", "failed-training"],
)
def test_interrupted_or_failed_run_leaves_no_run_directory(
    tmp_path, mini_mnist, monkeypatch, where, fault, code, message
):
    """Stopped or failed in its first epoch, before any checkpoint: nothing is left (once an
    epoch is checkpointed, a stop keeps it: tests/test_resume.py)."""

    def boom(*args, **kwargs):
        raise fault

    # in the middle of an epoch, while the batches thread is gathering ahead
    monkeypatch.setattr(step_module if where == "gradients" else rundir, where, boom)
    out = tmp_path / "runs" / "r"

    result = CliRunner().invoke(
        train_command, ["--epochs", "1", "--out", str(out), "-q", *mini_mnist]
    )

    assert result.exit_code == code, f"expected exit {code}, got {result.exit_code}"
    if message is not None:
        assert result.output.strip() == message, f"got {result.output!r}"
    listing = leftovers(tmp_path / "runs")
    assert listing == [], f"expected no run files (staging included), got {listing}"
    gatherers = [
        t for t in threading.enumerate() if t.name.startswith("mnist-cli batches")
    ]
    assert gatherers == [], f"the batches thread outlived the run: {gatherers}"


def test_interrupted_force_keeps_the_old_run(tmp_path, mini_mnist, monkeypatch):
    out = tmp_path / "r"
    out.mkdir()
    (out / "weights.npz").write_bytes(b"old weights")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(rundir, "replace_dir", interrupt)
    result = CliRunner().invoke(
        train_command,
        ["--epochs", "1", "--out", str(out), "--force", "-q", *mini_mnist],
    )

    assert result.exit_code == 130, f"expected exit 130, got {result.exit_code}"
    listing = sorted(p.name for p in tmp_path.iterdir())
    assert listing == ["r"], f"expected only the old run, no staging, got {listing}"
    assert (out / "weights.npz").read_bytes() == b"old weights", "old run was damaged"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--timeout", "0"], {}, "Invalid value for '--timeout'"),
        (["--timeout", "nan"], {}, "Invalid value for '--timeout'"),
        (["--mirror", "gopher://x/"], {}, "Invalid value for '--mirror'"),
        ([], {"MNIST_MIRRORS": "ftp://example.org/"}, "MNIST_MIRRORS: mirror"),
        ([], {"MNIST_MIRRORS": "no/such/dir"}, "is not an existing directory"),
    ],
)
def test_bad_download_options_are_usage_errors(tmp_path, args, env, message):
    result = CliRunner().invoke(
        train_command, [*args, "--cache-dir", str(tmp_path)], env=env
    )
    assert result.exit_code == 2, f"expected exit 2, got {result.exit_code}"
    assert message in result.output, f"expected {message!r} in {result.output!r}"


def test_existing_file_as_out_is_refused(tmp_path):
    (tmp_path / "file").write_text("mine")
    result = CliRunner().invoke(train_command, ["--out", str(tmp_path / "file")])
    expected = (
        f"Error: --out {tmp_path / 'file'} is an existing file; give a directory\n"
    )
    assert (result.exit_code, result.output) == (1, expected), (
        f"expected exit 1 and {expected!r}, got {result.exit_code} and {result.output!r}"
    )
    assert (tmp_path / "file").read_text() == "mine", "the file was touched"


def test_corrupt_gzip_from_a_mirror_is_one_line(http_server, tmp_path):
    server = http_server(
        routes={"/train-images-idx3-ubyte.gz": (200, b"\x1f\x8b\x08\x00" + bytes(500))}
    )
    result = CliRunner().invoke(
        train_command,
        ["--cache-dir", str(tmp_path / "c"), "--mirror", server.url],
        catch_exceptions=False,
    )
    assert result.exit_code == 1, f"expected exit 1, got {result.exit_code}"
    start = (
        f"Error: could not fetch train-images-idx3-ubyte from any mirror: {server.url} "
    )
    assert result.output.startswith(start), f"expected {start!r}, got {result.output!r}"
    assert "corrupt gzip data" in result.output, f"got {result.output!r}"
    assert result.output.count("\n") == 1, f"expected one line, got {result.output!r}"
    assert leftovers(tmp_path / "c") == [], f"got {leftovers(tmp_path / 'c')}"


def test_bad_labels_from_a_mirror_are_one_line(tmp_path, monkeypatch):
    """A mirror serving a labels file whose checksum the catalogue pins, but that holds a 12."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    files = []
    for name, array in (
        ("bad-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8)),
        ("bad-labels-idx1-ubyte", np.array([1, 12, 3], np.uint8)),
    ):
        write_idx(mirror / name, array)
        content = (mirror / name).read_bytes()
        (mirror / f"{name}.gz").write_bytes(gzip.compress(content))
        (mirror / name).unlink()
        files.append(DataFile(name, hashlib.sha256(content).hexdigest()))
    bad = Dataset("mnist", *files, *files, mirrors=(str(mirror),))
    monkeypatch.setitem(DATASETS, "mnist", bad)

    result = CliRunner().invoke(train_command, ["--cache-dir", str(tmp_path / "c")])

    expected = "Error: bad-labels-idx1-ubyte: label 12 at index 1 is outside 0-9\n"
    assert (result.exit_code, result.output) == (1, expected), (
        f"expected exit 1 and {expected!r}, got {result.exit_code} and {result.output!r}"
    )


def test_timeout_is_bounded(tmp_path):
    """--timeout 1e10 once ended in an OverflowError traceback: at most an hour (3600 s)."""
    mirror = tmp_path / "empty-mirror"
    mirror.mkdir()
    for value in ("1e10", "3600.5", "inf"):
        result = CliRunner().invoke(
            train_command,
            ["--timeout", value, "--cache-dir", str(tmp_path), "--mirror", str(mirror)],
        )
        assert result.exit_code == 2, f"--timeout {value}: exit {result.exit_code}"
        expected = f"Invalid value for '--timeout': must be a number of seconds > 0 and ≤ 3600, not {float(value)}"
        assert expected in result.output, f"expected {expected!r} in {result.output!r}"
    assert timeout_value(None, None, 3600.0) == 3600.0, "an hour is allowed"


@pytest.mark.parametrize("in_repository", [True, False])
def test_when_every_mirror_fails_the_bundled_copy_is_named(
    in_repository, http_server, tmp_path, monkeypatch
):
    """Run from the repository (data/mnist/ holds the bundled .gz files), the error says how to
    use them offline; elsewhere it does not pretend they are there."""
    server = http_server(routes={})  # 404 for every file
    if in_repository:
        (tmp_path / "data" / "mnist").mkdir(parents=True)
        (tmp_path / "data" / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        train_command, ["--cache-dir", "c", "--mirror", server.url, "--epochs", "1"]
    )
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, f"expected one line, got {result.output!r}"
    hint = (
        " From this repository, the bundled copy works offline: --mirror data/mnist "
        "(or --config configs/default.toml).\n"
    )
    assert result.output.endswith(hint) == in_repository, result.output
    advice = "(HTTP 404). Check --mirror / MNIST_MIRRORS or your network."
    assert advice in result.output, result.output  # the CLI names the options


def test_an_unwritable_cache_directory_names_the_options_that_choose_it(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cache = blocker / "cache"
    result = CliRunner().invoke(
        train_command, ["--cache-dir", str(cache), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"Error: cannot write to cache directory {cache / 'mnist'}: Not a directory; "
        "choose another "
        "cache directory (--cache-dir or MNIST_CACHE_DIR)\n"
    ), result.output
    assert blocker.read_text() == "not a directory"
    assert not (tmp_path / "r").exists()
