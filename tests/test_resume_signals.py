"""Stop a real mnist-train process anywhere (#21): SIGINT and SIGTERM while the data loads,
mid-epoch, while a checkpoint is written and while the finished run is written, SIGKILL while
a checkpoint is written; each time the run directory holds the previous checkpoint or the
new one, and `--resume` ends with the weights of the run that never stopped.

The moments are aimed at by a driver (test code only) that runs the console script's entry
point with one step slowed down and announced in a marker file: the test waits for the
announcement, then signals."""

import json
import random
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import MiniMnist

from mnist_cli.cli import runs_command, train_command
from mnist_cli.data import DATASETS
from mnist_cli.rundir.checkpoint import read_checkpoint

ARGS = ["--optimizer", "momentum", "--lr", "0.1", "--epochs", "6", "-q"]
STEPS = 20  # an epoch's, of mini_mnist's 2,000 images
CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
WORDS = {signal.SIGINT: "Interrupted", signal.SIGTERM: "Terminated"}

DRIVER = """
import contextlib, json, sys, time
from pathlib import Path

marker, moment, dataset = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
sys.argv = ["mnist-train", *sys.argv[4:]]

from dataclasses import replace  # the test's small copy of MNIST, as mini_mnist gives it
from mnist_cli.data import DATASETS
from mnist_cli.data.catalogue import DataFile

files = {key: DataFile(**value) for key, value in json.loads(dataset.read_text()).items()}
DATASETS["mnist"] = replace(DATASETS["mnist"], **files)


def announce(what):
    with open(marker, "a") as f:
        f.write(what + "\\n")


if moment.startswith("step:"):  # mid-epoch: before the optimizer step number n
    from mnist_cli.training.step import DenseTrainer

    real_step, n, steps = DenseTrainer.step, int(moment[5:]), []

    def step(self, *args):
        steps.append(1)
        if len(steps) == n:
            announce("step")
            time.sleep(0.5)
        return real_step(self, *args)

    DenseTrainer.step = step
elif moment == "load":
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
def reference(tmp_path_factory, mini_mnist_data):
    """The run that is never stopped."""
    out = tmp_path_factory.mktemp("reference") / "r"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(DATASETS, "mnist", mini_mnist_data.dataset)
        args = [*ARGS, "--out", str(out), *mini_mnist_data.args]
        result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 0, result.output
    return out


def weights(run: Path) -> dict:
    with np.load(run / "weights.npz") as f:
        return {k: f[k] for k in f.files if k[0] in "Wb"}


def epoch(run: Path) -> int:
    return read_checkpoint(run / "checkpoint.npz").epoch


class Driver:
    """mnist-train in a subprocess, with a moment slowed down and announced."""

    def __init__(self, folder: Path, mini: MiniMnist):
        self.script, self.marker = folder / "driver.py", folder / "marker"
        self.script.write_text(DRIVER)
        self.dataset = folder / "dataset.json"
        keys = ("train_images", "train_labels", "test_images", "test_labels")
        files = {key: asdict(getattr(mini.dataset, key)) for key in keys}
        self.dataset.write_text(json.dumps(files))
        self.data_args = mini.args

    def start(self, moment: str, *args) -> subprocess.Popen:
        self.marker.write_text("")
        command = [
            sys.executable,
            self.script,
            self.marker,
            moment,
            self.dataset,
            *args,
        ]
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
    tmp_path, mini_mnist, mini_mnist_data, reference
):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    folder = tmp_path / "driver"
    folder.mkdir()
    driver, out = Driver(folder, mini_mnist_data), tmp_path / "r"

    def signum() -> signal.Signals:
        return rng.choice([signal.SIGINT, signal.SIGTERM])

    # 1. mid-epoch: at a random step of epochs 2 and 3
    n = rng.randrange(STEPS + 1, 3 * STEPS)
    p = driver.start(f"step:{n}", *ARGS, "--out", out)
    driver.wait_for(p, driver.announced("step"), f"step {n}")
    s = signum()
    lines, k = stopped(p, s), epoch(out)
    line = (
        f"{WORDS[s]} after epoch {k}/6 (checkpointed in {out}): "
        f"mnist-train --resume {out} continues it."
    )
    assert lines == [line], seed
    assert k == (n - 1) // STEPS, (seed, n, k)  # the epochs done before step n

    # 2. while the data loads (a resumed run): the checkpoint is kept as it is
    before = (out / "checkpoint.npz").read_bytes()
    p = driver.start("load", "--resume", out, "-q")
    driver.wait_for(p, driver.announced("load"), "the data to load")
    s = signum()
    assert stopped(p, s)[0].startswith(f"{WORDS[s]} after epoch {k}/6"), seed
    assert (out / "checkpoint.npz").read_bytes() == before, seed

    # 3. while a checkpoint is written: the previous one, or the new one, whole
    p = driver.start("checkpoint", "--resume", out, "-q")
    driver.wait_for(p, driver.announced("checkpoint"), "a checkpoint write")
    s = signum()
    lines, kept = stopped(p, s), epoch(out)
    assert lines[0].startswith(f"{WORDS[s]} after epoch {kept}/6 "), (seed, lines)
    # the write under way ends (the scoring thread's), or is dropped (the last epoch's,
    # written by the training thread); the epochs trained meanwhile are saved
    assert kept >= k, (seed, k, kept)

    # 4. while the finished run is written: its last checkpoint finishes it
    p = driver.start("final", "--resume", out, "-q")
    driver.wait_for(p, driver.announced("final"), "the final write")
    s = signum()
    assert stopped(p, s)[0].startswith(f"{WORDS[s]} after epoch 6/6"), seed
    assert not (out / "weights.npz").exists(), seed

    # 5. resumed to the end
    done = CliRunner().invoke(train_command, ["--resume", str(out), *mini_mnist])
    assert done.exit_code == 0, done.output
    ours, theirs = weights(out), weights(reference)
    assert all(np.array_equal(ours[k], theirs[k]) for k in theirs), seed
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert left == [], f"left beside the run: {left}"


def test_sigkill_while_a_checkpoint_is_written_leaves_the_previous_one(
    tmp_path, mini_mnist, mini_mnist_data, reference
):
    folder = tmp_path / "driver"
    folder.mkdir()
    driver, out = Driver(folder, mini_mnist_data), tmp_path / "r"
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
        f"r       interrupted at epoch 1/6: mnist-train --resume {out}"
        in listing.output
    )

    result = CliRunner().invoke(train_command, ["--resume", str(out), *mini_mnist])
    assert result.exit_code == 0, result.output
    ours, theirs = weights(out), weights(reference)
    assert all(np.array_equal(ours[k], theirs[k]) for k in theirs)
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.npz",
        "config.toml",
        "metrics.json",
        "weights.npz",
    ]
