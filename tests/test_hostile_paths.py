"""Paths at the filesystem's limits (issue 22): every run directory name the filesystem accepts
is accepted, and a name or path it refuses is one line, not a traceback."""

import os

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import save_run

from mnist_cli.cli import eval_command, train_command
from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import one_layer
from mnist_cli.nn.layers import Params
from mnist_cli.nn.network import Network
from mnist_cli.rundir.weights import load_weights

NAME_MAX = 255  # bytes of one file name on the filesystems the tests run on


def network(value: float) -> Network:
    W = np.full((K, D), value, np.float32)
    return one_layer("softmax", Params(W=W, b=np.zeros(K, np.float32)))


@pytest.mark.parametrize(
    "name",
    ["r" * 246, "r" * NAME_MAX, "é" * 127],  # the last: 254 bytes of UTF-8
    ids=["246 bytes", "255 bytes", "254 bytes of é"],
)
def test_every_name_the_filesystem_accepts_is_a_run_directory(tmp_path, name):
    assert len(os.fsencode(name)) <= NAME_MAX
    out = tmp_path / name
    save_run(out, network=network(1.0), metrics={}, config_toml="")
    save_run(out, network=network(2.0), metrics={}, config_toml="", force=True)
    assert load_weights(out).params.W[0, 0] == 2.0
    assert os.listdir(tmp_path) == [name], "a staging or old directory was left"


@pytest.mark.parametrize(
    "out, reason",
    [
        ("r" * (NAME_MAX + 1), "File name too long"),
        ("/".join(["d" * 99] * 50), "File name too long"),  # 5,000 characters
    ],
    ids=["256-byte name", "5,000-character path"],
)
def test_an_out_the_filesystem_refuses_is_one_line(tmp_path, monkeypatch, out, reason):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(train_command, ["--out", out])
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit, (
        result.output
    )
    assert result.output == (
        f"Error: --out {out}: cannot use it ({reason}); choose a shorter --out\n"
    )
    assert os.listdir(tmp_path) == []


def test_a_mirror_path_too_long_is_a_usage_error(tmp_path):
    mirror = "/".join(["m" * 99] * 50)
    result = CliRunner().invoke(train_command, ["--mirror", mirror])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[-1].endswith(": File name too long"), (
        result.output
    )
    assert "Traceback" not in result.output


def test_an_error_naming_a_path_that_is_not_utf8_shows_it_as_xnn(tmp_path):
    """Error lines showed `\\udcff` where --json and mnist-runs show `\\xff`: one escape."""
    run = tmp_path / os.fsdecode(b"run\xff")
    run.mkdir()
    result = CliRunner().invoke(eval_command, [str(run)])
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"Error: {tmp_path}/run\\xff/weights.npz: no such file; give a run directory "
        "or a weights.npz\n"
    )
