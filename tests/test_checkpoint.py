"""Checkpoints: what goes in comes back, a restored generator draws what the saved one would
have, anything else is refused in one line, and a kill while writing never leaves a torn file."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mnist_cli import __version__
from mnist_cli.config.files import to_toml
from mnist_cli.config.settings import TrainConfig
from mnist_cli.errors import CheckpointError, WeightsError
from mnist_cli.nn.architecture import activation_of, build, dense_params, kind_of
from mnist_cli.nn.network import Network
from mnist_cli.rundir import npz
from mnist_cli.rundir.checkpoint import Checkpoint, read_checkpoint, write_checkpoint
from mnist_cli.rundir.weights import WEIGHTS_SPEC


def mlp(seed: int = 0) -> Network:
    return build("mlp", "normal", np.random.default_rng(seed), (16, 8), "relu")


def adam_state(network: Network, t: int) -> dict[str, np.ndarray]:
    """What an Adam optimizer holds: m and v per parameter (W1, b1, W2, ...), and t."""
    parameters = [a for params in network.params for a in params]
    state: dict[str, np.ndarray] = {"t": np.array(t, np.int64)}
    for i, p in enumerate(parameters):
        state[f"m/{i}"] = np.full(p.shape, 0.1 * (i + 1), np.float32)
        state[f"v/{i}"] = np.full(p.shape, 0.01 * (i + 1), np.float32)
    return state


HISTORY = [{"epoch": 1, "loss": 0.31, "test_accuracy": 0.91}, {"epoch": 2, "loss": 0.2}]


def save(path: Path, network: Network | None = None, rng=None, epoch: int = 2) -> None:
    network = network or mlp()
    write_checkpoint(
        path,
        network=network,
        dataset="mnist",
        optimizer=adam_state(network, t=1200),
        rng=rng or np.random.default_rng(5),
        epoch=epoch,
        step=1200,
        history=HISTORY,
        config_toml=to_toml(TrainConfig(model="mlp")),
    )


def test_what_is_written_is_read_back(tmp_path):
    path, network = tmp_path / "checkpoint.npz", mlp(3)
    save(path, network)

    c = read_checkpoint(path)

    assert isinstance(c, Checkpoint)
    assert kind_of(c.weights.network) == "mlp" and c.weights.dataset == "mnist"
    assert activation_of(c.weights.network) == "relu"
    pairs = zip(dense_params(c.weights.network), dense_params(network), strict=True)
    for got, want in pairs:
        assert np.array_equal(got.W, want.W) and np.array_equal(got.b, want.b)
    expected = adam_state(network, t=1200)
    assert sorted(c.optimizer) == sorted(expected), sorted(c.optimizer)
    for name, a in expected.items():
        assert c.optimizer[name].dtype == a.dtype, name
        assert np.array_equal(c.optimizer[name], a), name
    assert (c.epoch, c.step, c.history) == (2, 1200, HISTORY)
    assert c.config_toml == to_toml(TrainConfig(model="mlp"))
    assert c.mnist_cli_version == __version__


def test_a_restored_generator_draws_what_the_saved_one_would_have(tmp_path):
    rng = np.random.default_rng(11)
    rng.permutation(1000)
    rng.random(dtype=np.float32)  # a 32-bit draw: has_uint32 = 1, half a word kept
    assert rng.bit_generator.state["has_uint32"] == 1
    path = tmp_path / "checkpoint.npz"
    save(path, rng=rng)

    restored = read_checkpoint(path).generator()

    assert restored.bit_generator.state == rng.bit_generator.state
    for draw in (
        lambda g: g.permutation(60_000),
        lambda g: g.random(7, dtype=np.float32),
        lambda g: g.normal(size=5),
    ):
        a, b = draw(rng), draw(restored)
        assert np.array_equal(a, b), f"{a[:5]} != {b[:5]}"


def members(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {name: f[name] for name in f.files}


def rewrite(path: Path, change) -> None:
    """The checkpoint at `path` with its members changed by `change(members)`."""
    arrays = members(path)
    change(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def other_rng(a):
    state = json.loads(a["rng"].tobytes())
    state["state"]["inc"] += 1  # even: not a PCG64 stream numpy should be given
    a["rng"] = np.frombuffer(json.dumps(state).encode(), np.uint8)


def text(s: str) -> np.ndarray:
    return np.frombuffer(s.encode(), np.uint8)


TAMPERED = {
    "newer-version": (
        lambda a: a.update(checkpoint_version=np.array(2)),
        "checkpoint version 2, this mnist-cli reads 1 (upgrade mnist-cli)",
    ),
    "other-product-version": (
        lambda a: a.update(mnist_cli_version=np.array("0.0.9")),
        f"written by mnist-cli 0.0.9, this is {__version__}",
    ),
    "not-a-checkpoint": (lambda a: a.pop("format"), "not an mnist-cli checkpoint"),
    "missing-epoch": (lambda a: a.pop("epoch"), "a checkpoint without epoch"),
    "no-weights": (
        lambda a: [a.pop(k) for k in list(a) if k in WEIGHTS_SPEC],
        "a checkpoint without weights",
    ),
    "state-of-the-wrong-shape": (
        lambda a: a.update({"opt/m/1": np.zeros(3, np.float32)}),
        "opt/m/1 has shape (3,), its parameter (16,)",
    ),
    "state-of-no-parameter": (
        lambda a: a.update({"opt/m/6": np.zeros(3, np.float32)}),
        "opt/m/6 is the state of parameter 6; the network has 6",
    ),
    "nan-in-the-state": (
        lambda a: a.update({"opt/v/0": a["opt/v/0"] * np.nan}),
        "opt/v/0 contains NaN or infinite values",
    ),
    "float64-state": (
        lambda a: a.update({"opt/m/0": a["opt/m/0"].astype(np.float64)}),
        "opt/m/0 has dtype float64, expected float32 or int64",
    ),
    "weights-of-the-wrong-shape": (
        lambda a: a.update(W2=np.zeros((8, 15), np.float32)),
        "W2 has shape (8, 15), expected (8, 16)",
    ),
    "tampered-rng": (other_rng, "rng is not the state of a PCG64 generator"),
    "history-not-a-list": (
        lambda a: a.update(history=text('{"epoch": 1}')),
        "history is not a list of objects",
    ),
    "negative-epoch": (
        lambda a: a.update(epoch=np.array(-1)),
        "epoch is -1, expected an integer ≥ 0",
    ),
    "unknown-member": (
        lambda a: a.update(evil=np.zeros(1)),
        "unexpected member 'evil.npy'",
    ),
}


@pytest.mark.parametrize(("change", "message"), TAMPERED.values(), ids=TAMPERED)
def test_a_checkpoint_that_does_not_match_is_refused_in_one_line(
    tmp_path, change, message
):
    path = tmp_path / "checkpoint.npz"
    save(path)
    rewrite(path, change)

    with pytest.raises(WeightsError) as refused:
        read_checkpoint(path)

    line = str(refused.value)
    assert line.startswith(f"{path}: ") and message in line, line
    assert "\n" not in line


def test_another_product_version_is_read_for_its_weights_only_if_asked(tmp_path):
    path = tmp_path / "checkpoint.npz"
    save(path)
    rewrite(path, lambda a: a.update(mnist_cli_version=np.array("0.0.9")))
    assert read_checkpoint(path, same_version=False).mnist_cli_version == "0.0.9"


@pytest.mark.parametrize("damage", ["cut-in-half", "bit-flipped", "empty"])
def test_a_torn_or_damaged_file_is_one_line(tmp_path, damage):
    path = tmp_path / "checkpoint.npz"
    save(path)
    data = bytearray(path.read_bytes())
    if damage == "cut-in-half":
        data = data[: len(data) // 2]
    elif damage == "bit-flipped":
        with zipfile.ZipFile(path) as z:
            info = z.getinfo("opt/m/0.npy")
        data[info.header_offset + 200] ^= 0xFF  # inside its data
    else:
        data = bytearray()
    path.write_bytes(bytes(data))

    with pytest.raises(CheckpointError) as refused:
        read_checkpoint(path)
    assert str(refused.value).startswith(f"{path}: ") and "\n" not in str(refused.value)


def test_the_declared_total_is_bounded_before_anything_is_read(tmp_path):
    path = tmp_path / "checkpoint.npz"
    save(path)
    total = sum(i.file_size for i in zipfile.ZipFile(path).infolist())
    spec = {"format": npz.string()}.get
    with pytest.raises(WeightsError, match=f"declares {total:,} bytes in all, more"):
        npz.read_npz(
            path,
            lambda name: spec(name) or npz.Expect("", bool, 8, 10**9),
            "x",
            total - 1,
        )


def test_a_write_that_fails_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    save(path, epoch=1)

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(CheckpointError) as refused:
        save(path, epoch=2)

    assert str(refused.value) == (
        f"cannot write the checkpoint {path}: No space left on device; the previous "
        "one is kept: free some space"
    )
    monkeypatch.undo()
    assert read_checkpoint(path).epoch == 1
    assert os.listdir(tmp_path) == ["checkpoint.npz"], "a temporary file was left"


# writes checkpoint after checkpoint to one path, epoch i with every weight i; prints each i
WRITER = """
import sys
from pathlib import Path
import numpy as np
from mnist_cli.nn.architecture import from_dense
from mnist_cli.nn.layers import Params
from mnist_cli.rundir.checkpoint import write_checkpoint

path = Path(sys.argv[1])
sizes = [(256, 784), (10, 256)]
for i in range(1, 1_000_000):
    layers = tuple(Params(np.full(s, i, np.float32), np.full(s[0], i, np.float32)) for s in sizes)
    write_checkpoint(path, network=from_dense("mlp", layers, "relu"), dataset="mnist",
                     optimizer={"t": np.array(i)}, rng=np.random.default_rng(i), epoch=i,
                     step=i, history=[], config_toml="")
    print(i, flush=True)
"""


def test_a_kill_while_writing_leaves_the_previous_or_the_new_checkpoint(tmp_path):
    """SIGKILL at random instants of a process writing 0.8 MB checkpoints one after the
    other: the checkpoint read back is always whole, and of one epoch throughout."""
    path, rng = tmp_path / "checkpoint.npz", np.random.default_rng(0)
    for _ in range(2):
        process = subprocess.Popen(
            [sys.executable, "-c", WRITER, path], stdout=subprocess.PIPE, text=True
        )
        try:
            assert process.stdout.readline(), "no checkpoint written"
            time.sleep(rng.uniform(0, 0.03))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            process.kill()

        c = read_checkpoint(path)
        i = c.epoch
        assert c.step == i and int(c.optimizer["t"]) == i
        layers = dense_params(c.weights.network)
        assert all((p.W == i).all() and (p.b == i).all() for p in layers)
