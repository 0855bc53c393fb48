"""The cnn everywhere a model goes: one small cnn trained by mnist-train (on 2,000 real MNIST
images), then read back by every command and format; its options' usage errors; its weights
file (format 3) refused when tampered with; exact resumption; its pictures."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mnist_cli.cli import eval_command, predict_command, runs_command, train_command
from mnist_cli.data import DATASETS
from mnist_cli.fast.scoring import score
from mnist_cli.metrics import evaluate
from mnist_cli.nn.architecture import build, describe, kind_of
from mnist_cli.rundir.weights import load_weights, weight_arrays

TINY = ["--model", "cnn", "--channels", "4,8", "--hidden", "16", "--kernel", "5"]


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory, mini_mnist_data):
    """A cnn 4,8 k5 / 16 trained 2 epochs on mini MNIST's 2,000 images, with --plots."""
    out = tmp_path_factory.mktemp("cnn") / "run"
    args = [*TINY, "--epochs", "2", "--val-size", "500", "--out", str(out), "--plots"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(DATASETS, "mnist", mini_mnist_data.dataset)
        result = CliRunner().invoke(
            train_command, [*args, "--json", *mini_mnist_data.args]
        )
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout.splitlines()[-1])


def test_mnist_train_writes_a_cnn_run_that_every_command_reads(cnn_run, mini_mnist):
    out, metrics = cnn_run
    weights = load_weights(out)
    assert (weights.kind, weights.format_version) == ("cnn", 3)
    assert describe(weights.network) == "cnn 4,8 k5 / 16"
    assert metrics["config"]["optimizer"] == "momentum", "the cnn's recipe: momentum"
    assert metrics["val_accuracy"] > 0.5, metrics["val_accuracy"]  # well above chance
    # mnist-eval reproduces the accuracy the run wrote
    result = CliRunner().invoke(eval_command, [str(out), "--json", *mini_mnist])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accuracy"] == metrics["test_accuracy"]
    # mnist-runs names its architecture
    result = CliRunner().invoke(runs_command, [str(out.parent)])
    assert "cnn 4,8 k5 / 16" in result.output, result.output
    for picture in ("weights.png", "features.png", "curves.png", "confusion.png"):
        assert (out / picture).stat().st_size > 1000, picture


def test_mnist_predict_gives_the_networks_own_probabilities(
    cnn_run, mnist_splits, tmp_path
):
    out, _ = cnn_run
    test = mnist_splits[1]
    network = load_weights(out).network
    picture = tmp_path / "digit.png"
    Image.fromarray(test.images[3].reshape(28, 28)).save(picture)
    result = CliRunner().invoke(predict_command, [str(out), str(picture), "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    got = got[0] if isinstance(got, list) else got
    S = network.predict(test.images[3:4].astype(np.float32) / 255)[0]
    assert got["digit"] == int(S.argmax()), (got, S)


def test_fast_scoring_is_the_reference_forward_pass(cnn_run, mnist_splits):
    """fast/conv.py's logits in chunks give the reference layers' predictions and loss."""
    out, _ = cnn_run
    network = load_weights(out).network
    test = mnist_splits[1]
    fast = score(
        network, test.images[:700], test.labels[:700], "cross-entropy", threads=2
    )
    slow = evaluate(network, test.images[:700], test.labels[:700], "cross-entropy")
    np.testing.assert_array_equal(fast.confusion_matrix, slow.confusion_matrix)
    assert fast.loss == pytest.approx(slow.loss, rel=1e-4)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--kernel", "9", "--channels", "8,8,8"], "block 3 would convolve a 1×1 map"),
        (["--channels", "8,8,8,8,8"], "1 to 4 channel counts"),
        (["--channels", "300"], "each from 1 to 256"),
        (["--activation", "tanh"], "--activation is for --model mlp"),
        (["--init", "zeros"], "zeros cannot train an cnn"),
    ],
)
def test_shapes_that_do_not_fit_are_usage_errors(args, message, data_args, tmp_path):
    result = CliRunner().invoke(
        train_command,
        ["--model", "cnn", *args, "--out", str(tmp_path / "r"), *data_args],
    )
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert not (tmp_path / "r").exists()


def test_channels_and_kernel_are_the_cnns_alone(data_args, tmp_path):
    result = CliRunner().invoke(
        train_command,
        ["--model", "mlp", "--kernel", "3", "--out", str(tmp_path), *data_args],
    )
    assert result.exit_code == 2 and "--kernel is for --model cnn" in result.output


def save(tmp_path, arrays):
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(layers=np.array("conv 1 4 5; relu; pool; flatten")), "layers"),
        (lambda a: a.update(layers=np.array(str(a["layers"]).replace("pool", "relu", 1))),
         "not the layers of a cnn"),
        (lambda a: a.update(W1=a["W1"][:, :, :4, :4]), "W1 has shape (4, 1, 4, 4)"),
        (lambda a: a.update(W2=a["W2"][:, :3]), "W2 has shape (8, 3, 5, 5)"),
        (lambda a: a.update(W9=a["W1"]), "unexpected member 'W9.npy'"),
        (lambda a: a.update(layers=np.array("conv 1 999 5; relu; pool; flatten; dense 1 10")),
         "1 to 256 channels"),
        (lambda a: a.update(format_version=np.array(2)), "format version 3"),
    ],
)  # fmt: skip
def test_a_tampered_cnn_weights_file_is_one_line(change, message, tmp_path):
    network = build("cnn", "normal", np.random.default_rng(0), (16,), channels=(4, 8))
    arrays = weight_arrays(network, "mnist")
    change(arrays)
    from mnist_cli.errors import WeightsError

    with pytest.raises(WeightsError, match=None) as e:
        load_weights(save(tmp_path, arrays))
    assert message in str(e.value), str(e.value)


def test_the_weights_file_round_trips_exactly(tmp_path):
    network = build("cnn", "normal", np.random.default_rng(1), (12, 8), channels=(3, 5, 6),
                    kernel=3)  # fmt: skip
    loaded = load_weights(save(tmp_path, weight_arrays(network, "kmnist")))
    assert (kind_of(loaded.network), loaded.dataset) == ("cnn", "kmnist")
    for a, b in zip(network.params, loaded.network.params, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_init_from_names_both_architectures(cnn_run, data_args, tmp_path):
    out, _ = cnn_run
    result = CliRunner().invoke(
        train_command,
        [
            "--init-from",
            str(out),
            "--channels",
            "4,6",
            "--out",
            str(tmp_path),
            *data_args,
        ],
    )
    assert result.exit_code == 1, result.output
    assert (
        "the weights are an cnn 4,8 k5 / 16, but this run trains an cnn 4,6 k5 / 16"
        in (result.output)
    )


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_resumed_cnn_ends_with_the_weights_of_the_run_never_stopped(
    optimizer, mini_mnist, tmp_path
):
    args = [
        *TINY,
        "--optimizer",
        optimizer,
        "--val-size",
        "1500",
        "--batch-size",
        "100",
    ]
    args += ["--lr", "0.001" if optimizer == "adam" else "0.05", *mini_mnist]
    args += [
        "--schedule",
        "constant",
    ]  # cosine over 1 epoch is another curve than over 3
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert (
        CliRunner()
        .invoke(train_command, [*args, "--epochs", "3", "--out", str(whole)])
        .exit_code
        == 0
    )
    assert (
        CliRunner()
        .invoke(train_command, [*args, "--epochs", "1", "--out", str(part)])
        .exit_code
        == 0
    )
    result = CliRunner().invoke(
        train_command, ["--resume", str(part), "--epochs", "3", *mini_mnist]
    )
    assert result.exit_code == 0, result.output
    for a, b in zip(
        load_weights(whole).network.params, load_weights(part).network.params
    ):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    "args", [["--model", "cnn", "--kernel", "13"], ["--channels", "4,4,4,4"]]
)
def test_gradcheck_refuses_a_cnn_that_does_not_fit(args, data_args):
    from mnist_cli.cli import gradcheck_command

    result = CliRunner().invoke(gradcheck_command, [*args, *data_args])
    assert result.exit_code == 2, result.output
    assert "leaving less than 2×2 to pool" in result.output, result.output
    assert "Traceback" not in result.output
