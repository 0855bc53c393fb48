"""Stop a real mnist-train process anywhere (#21): SIGINT and SIGTERM while the data loads,
mid-epoch, while a checkpoint is written and while the finished run is written, SIGKILL while
a checkpoint is written; each time the run directory holds the previous checkpoint or the
new one, and `--resume` ends with the weights of the run that never stopped.

The moments are aimed at by a driver (test code only) that runs the console script's entry
point with one step slowed down and announced in a marker file: the test waits for the
announcement, then signals."""

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_cli.cli import runs_command, train_command
from mnist_cli.rundir.checkpoint import read_checkpoint

ARGS = ["--optimizer", "momentum", "--batch-size", "500", "--epochs", "6", "-q"]
CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
WORDS = {signal.SIGINT: "Interrupted", signal.SIGTERM: "Terminated"}

DRIVER = """
import contextlib, sys, time
from pathlib import Path

marker, moment = Path(sys.argv[1]), sys.argv[2]
sys.argv = ["mnist-train", *sys.argv[3:]]


def announce(what):
    with open(marker, "a") as f:
        f.write(what + "\\n")


if moment == "load":
    from mnist_cli.cli import fitting

    real_load = fitting.load_dataset

    def load(*args, **kwargs):
        announce("load")
        time.sleep(0.5)
        return real_load(*args, **kwargs)

    fitting.load_dataset = load
elif moment == "checkpoint":  # the file written, flushed, not yet renamed into place
    from mnist_cli.rundir import checkpoint

    real_replacing = checkpoint.replacing

    @contextlib.contextmanager
    def replacing(path, *args, **kwargs):
        with real_replacing(path, *args, **kwargs) as f:
            yield f
            f.flush()
            announce("checkpoint")
            time.sleep(0.3)

    checkpoint.replacing = replacing
elif moment == "final":  # the finished run written into its staging directory
    from mnist_cli.rundir import weights

    real_fsync = weights.fsync_files

    def fsync_files(directory):
        announce("final")
        time.sleep(0.5)
        real_fsync(directory)

    weights.fsync_files = fsync_files

from mnist_cli import console

sys.exit(console.train())
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_args):
    """The run that is never stopped."""
    out = tmp_path_factory.mktemp("reference") / "r"
    result = CliRunner().invoke(train_command, [*ARGS, "--out", str(out), *data_args])
    assert result.exit_code == 0, result.output
    return out


def weights(run: Path) -> dict:
    with np.load(run / "weights.npz") as f:
        return {k: f[k] for k in f.files if k[0] in "Wb"}


def epoch(run: Path) -> int:
    return read_checkpoint(run / "checkpoint.npz").epoch


class Driver:
    """mnist-train in a subprocess, with a moment slowed down and announced."""

    def __init__(self, tmp_path: Path, data_args: list[str]):
        self.script = tmp_path / "driver.py"
        self.script.write_text(DRIVER)
        self.marker = tmp_path / "marker"
        self.data_args = data_args

    def start(self, moment: str, *args) -> subprocess.Popen:
        self.marker.write_text("")
        command = [sys.executable, self.script, self.marker, moment, *args]
        return subprocess.Popen(
            [*map(str, command), *self.data_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_for(self, process, condition, what: str) -> None:
        deadline = time.monotonic() + 30
        while not condition():
            if process.poll() is not None:
                raise AssertionError(f"ended before {what}: {process.communicate()}")
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"no {what} within 30 s")
            time.sleep(0.005)

    def announced(self, what: str, times: int = 1):
        return lambda: self.marker.read_text().split().count(what) >= times


def stopped(process, signum) -> list[str]:
    """Send `signum`; the lines the process printed on stderr, once it exited as it should."""
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == CODES.get(signum, -signum), (
        process.returncode,
        stderr,
    )
    return stderr.strip().splitlines()


def test_signals_at_any_moment_then_resume_ends_as_the_run_never_stopped(
    tmp_path, data_args, reference
):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    driver, out = Driver(tmp_path, data_args), tmp_path / "r"

    def signum() -> signal.Signals:
        return rng.choice([signal.SIGINT, signal.SIGTERM])

    # 1. mid-epoch: once epoch 1 is checkpointed, at a random instant after
    p = driver.start("none", *ARGS, "--out", out)
    driver.wait_for(p, (out / "checkpoint.npz").exists, "the first checkpoint")
    time.sleep(rng.uniform(0, 0.1))
    s = signum()
    k = epoch(out)
    lines, kept = stopped(p, s), epoch(out)
    line = (
        f"{WORDS[s]} after epoch {kept}/6 (checkpointed in {out}): "
        f"mnist-train --resume {out} continues it."
    )
    assert lines == [line], seed
    assert kept >= k, seed  # or the one being written when the signal came

    # 2. while the data loads (a resumed run): the checkpoint is kept as it is
    before = (out / "checkpoint.npz").read_bytes()
    p = driver.start("load", "--resume", out, "-q")
    driver.wait_for(p, driver.announced("load"), "the data to load")
    s = signum()
    assert stopped(p, s)[0].startswith(f"{WORDS[s]} after epoch {epoch(out)}/6"), seed
    assert (out / "checkpoint.npz").read_bytes() == before, seed

    # 3. while a checkpoint is written: the previous one, or the new one, whole
    k = epoch(out)
    p = driver.start("checkpoint", "--resume", out, "-q")
    driver.wait_for(p, driver.announced("checkpoint"), "a checkpoint write")
    s = signum()
    assert stopped(p, s)[0].startswith(f"{WORDS[s]} after epoch "), seed
    assert epoch(out) in (k, k + 1), (seed, k, epoch(out))

    # 4. while the finished run is written: its last checkpoint finishes it
    p = driver.start("final", "--resume", out, "-q")
    driver.wait_for(p, driver.announced("final"), "the final write")
    s = signum()
    assert stopped(p, s)[0].startswith(f"{WORDS[s]} after epoch 6/6"), seed
    assert not (out / "weights.npz").exists(), seed

    # 5. resumed to the end
    done = subprocess.run(
        [Path(sys.executable).parent / "mnist-train", "--resume", out, *data_args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    ours, theirs = weights(out), weights(reference)
    assert all(np.array_equal(ours[k], theirs[k]) for k in theirs), seed
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert left == [], f"left beside the run: {left}"


def test_sigkill_while_a_checkpoint_is_written_leaves_the_previous_one(
    tmp_path, data_args, reference
):
    driver, out = Driver(tmp_path, data_args), tmp_path / "r"
    p = driver.start("checkpoint", *ARGS, "--out", out)
    driver.wait_for(p, driver.announced("checkpoint", 2), "epoch 2's checkpoint write")
    stopped(p, signal.SIGKILL)

    assert epoch(out) == 1, "the checkpoint of epoch 1 is not intact"
    temporary = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert len(temporary) == 1, (
        temporary
    )  # epoch 2's, flushed, never renamed into place
    listing = CliRunner().invoke(runs_command, [str(tmp_path)])
    assert (
        f"r    interrupted at epoch 1/6: mnist-train --resume {out}" in listing.output
    )

    result = CliRunner().invoke(train_command, ["--resume", str(out), "-q", *data_args])
    assert result.exit_code == 0, result.output
    ours, theirs = weights(out), weights(reference)
    assert all(np.array_equal(ours[k], theirs[k]) for k in theirs)
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.npz",
        "config.toml",
        "metrics.json",
        "weights.npz",
    ]
