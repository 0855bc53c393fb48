"""Run directories: all-or-nothing writes, strict weight loading."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import init_layers, save_run

from mnist_cli import atomic
from mnist_cli.atomic import replace_dir
from mnist_cli.config.choices import MAX_HIDDEN_LAYERS, MAX_UNITS
from mnist_cli.errors import RunDirectoryError, WeightsError
from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import (
    activation_of,
    dense_params,
    describe,
    from_dense,
    one_layer,
)
from mnist_cli.nn.layers import Params
from mnist_cli.nn.network import Network
from mnist_cli.rundir.weights import (
    MLP_VERSION,
    ONE_LAYER_VERSION,
    load_weights,
)


def params(seed=0):
    rng = np.random.default_rng(seed)
    return Params(
        W=rng.standard_normal((K, D)).astype(np.float32),
        b=rng.standard_normal(K).astype(np.float32),
    )


def save(out, p=None, force=False):
    save_run(
        out,
        network=one_layer("softmax", p or params()),
        metrics={"test_accuracy": 0.9},
        config_toml='model = "softmax"\n',
        force=force,
    )


def test_round_trip(tmp_path):
    p = params()
    save(tmp_path / "run", p)
    weights = load_weights(tmp_path / "run")
    assert (weights.kind, weights.dataset) == ("softmax", "mnist")
    assert weights.format_version == ONE_LAYER_VERSION, "softmax files stay version 1"
    loaded = weights.params
    np.testing.assert_array_equal(loaded.W, p.W)
    np.testing.assert_array_equal(loaded.b, p.b)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == {
        "test_accuracy": 0.9
    }
    with np.load(tmp_path / "run" / "weights.npz", allow_pickle=False) as npz:
        assert npz["W"].dtype == np.float32 and str(npz["model"]) == "softmax"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"], (
        "staging dir left behind"
    )


def test_existing_run_is_refused_then_replaced_with_force(tmp_path):
    save(tmp_path / "run", params(0))
    with pytest.raises(RunDirectoryError, match="exists and is not empty$") as info:
        save(tmp_path / "run", params(1))
    # the library names the place and the remedy; the CLI, the option (cli/run_place.py)
    assert (info.value.place, info.value.remedy) == (tmp_path / "run", "force")
    np.testing.assert_array_equal(load_weights(tmp_path / "run").params.W, params(0).W)
    save(tmp_path / "run", params(1), force=True)
    np.testing.assert_array_equal(load_weights(tmp_path / "run").params.W, params(1).W)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_empty_dir_is_fine_and_a_file_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    save(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirectoryError, match="is an existing file"):
        save(tmp_path / "file", force=True)
    assert (tmp_path / "file").read_text() == "x", "the file was touched"


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("mnist_cli.atomic.os.fsync", broken)
    with pytest.raises(
        RunDirectoryError,
        match="cannot write the run \\(disk full\\); nothing was saved$",
    ):
        save(tmp_path / "run")
    assert list(tmp_path.iterdir()) == [], "a failed save left files behind"


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


GOOD = {
    "W": np.zeros((K, D), np.float32),
    "b": np.zeros(K, np.float32),
    "model": np.array("linear"),
}


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({k: v for k, v in GOOD.items() if k != "W"}, "missing W"),
        ({**GOOD, "model": np.array("resnet")}, "unknown model"),
        (
            {**GOOD, "W": np.zeros((D, K), np.float32)},
            "W has shape (784, 10), expected (10, 784)",
        ),
        ({**GOOD, "b": np.zeros(K, np.int64)}, "b has dtype int64"),
        ({**GOOD, "W": np.full((K, D), np.nan, np.float32)}, "W contains NaN"),
        ({**GOOD, "b": np.full(K, np.inf, np.float32)}, "b contains NaN or infinite"),
        ({**GOOD, "format_version": np.array(99)}, "format version 99 is newer"),
        (
            {**GOOD, "extra": np.array([{"a": 1}], dtype=object)},
            "not an mnist-cli weights file",
        ),
    ],
)
def test_bad_weights_are_clear_errors(tmp_path, arrays, message):
    path = write_npz(tmp_path / "w.npz", **arrays)
    with pytest.raises(WeightsError) as e:
        load_weights(path)
    assert str(e.value).startswith(str(path)), str(e.value)
    assert message in str(e.value), f"expected {message!r} in {str(e.value)!r}"


def mlp(sizes=(D, 16, 8, K), activation="sigmoid", seed=0) -> Network:
    layers = init_layers(sizes, activation, np.random.default_rng(seed))
    layers = tuple(Params(p.W, p.b + 0.5 * (i + 1)) for i, p in enumerate(layers))
    return from_dense("mlp", layers, activation)


def test_an_mlp_is_saved_as_version_2_and_read_back(tmp_path):
    net = mlp()
    save_run(
        tmp_path / "run", network=net, metrics={}, config_toml="", dataset="kmnist"
    )
    weights = load_weights(tmp_path / "run")
    assert (weights.kind, weights.dataset, weights.format_version) == (
        "mlp",
        "kmnist",
        MLP_VERSION,
    )
    assert activation_of(weights.network) == "sigmoid"
    assert describe(weights.network) == "mlp 784-16-8-10 sigmoid"
    for l, (saved, loaded) in enumerate(
        zip(dense_params(net), dense_params(weights.network)), 1
    ):
        np.testing.assert_array_equal(loaded.W, saved.W, f"W{l}")
        np.testing.assert_array_equal(loaded.b, saved.b, f"b{l}")
    with np.load(tmp_path / "run" / "weights.npz", allow_pickle=False) as npz:
        keys = set(npz.files)
        assert int(npz["format_version"]) == 2 and str(npz["model"]) == "mlp"
    expected = {"W1", "b1", "W2", "b2", "W3", "b3", "model", "dataset"}
    assert keys == expected | {"activation", "format_version"}, keys


def mlp_arrays(net: Network) -> dict:
    arrays = {"model": np.array("mlp"), "activation": np.array(activation_of(net))}
    arrays["format_version"] = np.array(2)
    for l, p in enumerate(dense_params(net), start=1):
        arrays[f"W{l}"], arrays[f"b{l}"] = p.W, p.b
    return arrays


GOOD_MLP = mlp_arrays(mlp())
TOO_DEEP = (D, *[4] * (MAX_HIDDEN_LAYERS + 1), K)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({**GOOD_MLP, "W2": np.zeros((8, 15), np.float32)}, "W2 has shape (8, 15)"),
        ({**GOOD_MLP, "W1": np.zeros((16, 783), np.float32)}, "expected (16, 784)"),
        ({**GOOD_MLP, "W3": np.zeros((9, 8), np.float32)}, "expected (10, 8)"),
        ({**GOOD_MLP, "b2": np.zeros(9, np.float32)}, "b2 has shape (9,)"),
        ({k: v for k, v in GOOD_MLP.items() if k != "b3"}, "missing b3"),
        ({k: v for k, v in GOOD_MLP.items() if k != "W2"}, "W2 is missing"),
        ({**GOOD_MLP, "activation": np.array("gelu")}, "unknown activation"),
        ({**GOOD_MLP, "format_version": np.array(1)}, "needs format version 2"),
        ({**GOOD_MLP, "W2": np.full((8, 16), np.nan, np.float32)}, "W2 contains NaN"),
        (
            mlp_arrays(mlp(TOO_DEEP)),
            f"unexpected member 'W{MAX_HIDDEN_LAYERS + 2}.npy'",
        ),
        (
            {**GOOD_MLP, "W1": np.zeros((MAX_UNITS + 1, D), np.float32)},
            f"W1 has shape ({MAX_UNITS + 1}, 784), more than the",
        ),
        (
            {**GOOD_MLP, "W2": np.zeros((MAX_UNITS + 1, 16), np.float32)},
            f"W2 has {MAX_UNITS + 1} units; a layer has 1 to {MAX_UNITS}",
        ),
    ],
)
def test_bad_mlp_weights_are_clear_errors(tmp_path, arrays, message):
    path = write_npz(tmp_path / "w.npz", **arrays)
    with pytest.raises(WeightsError) as e:
        load_weights(path)
    assert str(e.value).startswith(str(path)), str(e.value)
    assert message in str(e.value), f"expected {message!r} in {str(e.value)!r}"


@pytest.mark.parametrize("content", [b"not a zip", b"", b"PK\x03\x04garbage"])
def test_non_npz_files_are_clear_errors(tmp_path, content):
    path = tmp_path / "weights.npz"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match="weights.npz: not a"):
        load_weights(path)


def test_npy_file_is_refused(tmp_path):
    path = tmp_path / "w.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(WeightsError, match="single .npy array"):
        load_weights(path)


def test_missing_weights(tmp_path):
    with pytest.raises(WeightsError, match="no such file"):
        load_weights(tmp_path)


def test_replace_that_fails_puts_the_old_run_back(tmp_path, monkeypatch):
    """In two renames (a filesystem that cannot exchange directories)."""
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target, new = tmp_path / "run", tmp_path / "new"
    for directory, text in ((target, "old"), (new, "new")):
        directory.mkdir()
        (directory / "weights.npz").write_text(text)
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(src) == new:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(KeyboardInterrupt):
        replace_dir(new, target)

    text = (target / "weights.npz").read_text()
    assert text == "old", f"expected the old run back in place, got {text!r}"
    listing = sorted(p.name for p in tmp_path.iterdir())
    assert listing == ["new", "run"], f"expected no leftovers, got {listing}"
