"""Runs interrupted on purpose, in real subprocesses: SIGKILL while runs are installed, a run
killed mid-training, and what the next run or mnist-runs does with what they left."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnist_cli import atomic
from mnist_cli.cli import runs_command, train_command
from mnist_cli.rundir import claim as rundir
from mnist_cli.rundir.stale import STALE_AFTER, clean_stale
from mnist_cli.rundir.weights import load_weights

BIN = Path(sys.executable).parent

# installs runs into --out one after the other (--force over the one before), run i with
# W = i everywhere, metrics {"run": i} and a config.toml saying run = i; prints each i. With
# a second argument k, the process kills itself (SIGKILL) right after install k's first
# rename (or exchange), the instant that moving files in one by one left half a run.
INSTALLS = """
import os, signal, sys
from pathlib import Path
import numpy as np
from mnist_cli import atomic
from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import one_layer
from mnist_cli.nn.layers import Params
from mnist_cli.rundir.claim import claim_run_dir
from mnist_cli.rundir.weights import write_run

out, kill_in = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0
installing = 0

def killing(step):
    def call(*args):
        done = step(*args)
        if installing == kill_in:
            os.kill(os.getpid(), signal.SIGKILL)
        return done
    return call

os.replace, os.rename = killing(os.replace), killing(os.rename)
atomic._exchange = killing(atomic._exchange)
for i in range(1, 1_000_000):
    params = Params(W=np.full((K, D), i, np.float32), b=np.zeros(K, np.float32))
    with claim_run_dir(out, force=True) as claim:
        config = f"# mnist-train configuration\\nrun = {i}\\n"
        network = one_layer("softmax", params)
        installing = i
        write_run(claim, network=network, metrics={"run": i}, config_toml=config)
        installing = 0
    print(i, flush=True)
"""


def wait_for(condition, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def whole_run(out: Path) -> int:
    """The number of the run in `out`, checking that its three files are of that one run."""
    names = sorted(os.listdir(out))
    assert names == ["config.toml", "metrics.json", "weights.npz"], names
    i = json.loads((out / "metrics.json").read_text())["run"]
    W = load_weights(out).params.W
    assert (W == i).all(), f"metrics.json of run {i}, weights of run {W[0, 0]}"
    assert (out / "config.toml").read_text().endswith(f"run = {i}\n")
    return i


@pytest.mark.parametrize("kill", ["first-install", "second-install", "random"])
def test_a_sigkill_while_runs_are_installed_leaves_out_whole(tmp_path, kill):
    """Killed in the first install (onto the empty --out the claim created), in the second
    (over the first run), or at a random instant of run after run: --out holds one whole run
    or is empty, never a mix or a part (moving the files in one by one had left config.toml
    alone); what the killed process left is cleaned, and the next --force run works."""
    out = tmp_path / "r"
    kill_in = {"first-install": ["1"], "second-install": ["2"], "random": []}[kill]
    process = subprocess.Popen(
        [sys.executable, "-c", INSTALLS, out, *kill_in],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if kill == "random":
            printed = [process.stdout.readline(), process.stdout.readline()]
            assert all(printed), f"the installs did not start: {printed}"
            time.sleep(random.Random(0).uniform(0, 0.05))
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=20)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGKILL, process.returncode

    expected = {"first-install": 1, "second-install": 2}.get(kill)
    number = whole_run(out)
    assert expected in (None, number), f"expected run {expected} in place, got {number}"
    later = time.time() + STALE_AFTER + 1  # as a run started a minute later sees them
    clean_stale(tmp_path, now=later)
    assert sorted(os.listdir(tmp_path)) == ["r"], os.listdir(tmp_path)


def test_a_run_killed_mid_training_leaves_what_mnist_runs_cleans(tmp_path, data_args):
    """SIGKILL after the claim (an empty --out and a hidden staging directory, which nothing
    cleaned): mnist-runs removes both once they are a minute old, and lists no run."""
    runs, out = tmp_path / "runs", tmp_path / "runs" / "r"
    process = subprocess.Popen(
        [BIN / "mnist-train", "--out", out, "-q", *data_args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: list(runs.glob(".r.*")), "the claim")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        process.kill()
    left = sorted(os.listdir(runs))
    assert len(left) == 2 and "r" in left and left[0].endswith(".staging-new"), left
    assert os.listdir(out) == [], "a killed run left files in --out"

    fresh = CliRunner().invoke(runs_command, [str(runs), "--json"])
    assert sorted(os.listdir(runs)) == left, "removed a directory only just left"
    for name in left:
        then = time.time() - STALE_AFTER - 1
        os.utime(runs / name, (then, then))
    later = CliRunner().invoke(runs_command, [str(runs), "--json"])

    assert fresh.exit_code == 0 and later.exit_code == 0, later.output
    assert os.listdir(runs) == [], f"expected nothing left, got {os.listdir(runs)}"
    assert json.loads(later.stdout) == []


def numpy_loaded(pid: int) -> bool:
    """Whether process `pid` has numpy's core library mapped: it is importing (numpy comes
    first, then the command's own modules), past Python's own start-up."""
    try:
        return "_multiarray_umath" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


SIGNALS = [(signal.SIGINT, 130, "Interrupted."), (signal.SIGTERM, 143, "Terminated.")]


@pytest.mark.parametrize("when", ["importing", "claimed"])
@pytest.mark.parametrize(("signum", "code", "line"), SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_any_moment_of_mnist_train_is_one_line(
    tmp_path, data_args, when, signum, code, line
):
    """Ctrl-C or SIGTERM while Python imports (a KeyboardInterrupt traceback and exit -2
    before; SIGTERM ended it without a word) or once --out is claimed (loading, training):
    one line, exit 130 or 143, nothing left."""
    runs = tmp_path / "runs"
    process = subprocess.Popen(
        [BIN / "mnist-train", "--out", runs / "r", "-q", "--epochs", "1", *data_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if when == "importing":
            wait_for(lambda: numpy_loaded(process.pid), "numpy's import")
        else:
            wait_for(lambda: list(runs.glob(".r.*")), "the claim")
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        process.kill()

    assert process.returncode == code, f"exit {process.returncode}: {stderr!r}"
    assert stderr.strip().splitlines() == [line], f"expected {line!r}, got {stderr!r}"
    assert stdout == ""
    left = os.listdir(runs) if runs.exists() else []
    assert left == [], f"expected nothing left, got {left}"


@pytest.mark.parametrize(("signum", "code", "line"), SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_the_run_is_installed_says_the_run_is_saved(
    tmp_path, mini_mnist, monkeypatch, signum, code, line
):
    """A signal that comes while the run is installed takes effect after it (the run is whole
    in --out): the line says so, where "Terminated." alone had hidden that the run was saved."""
    real_replace_dir = rundir.replace_dir

    def signalled_replace_dir(*args, **kwargs):
        with atomic.signals_deferred():  # as the real signal is, arriving mid-install
            signal.raise_signal(signum)
            real_replace_dir(*args, **kwargs)

    monkeypatch.setattr(rundir, "replace_dir", signalled_replace_dir)
    out = tmp_path / "r"
    result = CliRunner().invoke(
        train_command, ["--epochs", "1", "--out", str(out), *mini_mnist]
    )

    assert result.exit_code == code, result.output
    expected = f"{line[:-1]} after the run was saved in {out}."
    assert result.output.splitlines()[-1].strip() == expected, result.output
    run = ["checkpoint.npz", "config.toml", "metrics.json", "weights.npz"]
    assert sorted(os.listdir(out)) == run
    assert load_weights(out).kind == "softmax"
