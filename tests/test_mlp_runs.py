"""The mlp everywhere a model goes: train() on the fused mlp step against the float64
reference of nn/, the stuck warning, and one small mlp run (16 relu units, cross-entropy,
1,000 training images: --val-size 59000) through mnist-train, mnist-eval, mnist-predict,
--init-from, --plots and mnist-runs."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mnist_cli import plots
from mnist_cli.cli import eval_command, predict_command, runs_command, train_command
from mnist_cli.data import load_split
from mnist_cli.data.catalogue import MNIST
from mnist_cli.metrics import evaluate
from mnist_cli.nn.architecture import (
    activation_of,
    build,
    dense_params,
    describe,
    hidden_of,
)
from mnist_cli.nn.layers import inputs
from mnist_cli.nn.losses import one_hot, softmax
from mnist_cli.nn.network import sgd_update
from mnist_cli.predict.images import classify
from mnist_cli.rundir.weights import load_weights
from mnist_cli.training.loop import EpochResult, stuck_warning, train


@pytest.fixture(scope="module")
def few_images(mnist_cache, mnist_server_url):
    """The first 1,050 training images: 10 batches of 100 and a last one of 50."""
    split = load_split(MNIST, "train", mnist_cache, mirrors=[mnist_server_url])
    return split.images[:1050], split.labels[:1050]


@pytest.mark.parametrize(
    "hidden, activation, loss",
    [((16,), "relu", "cross-entropy"), ((16, 8), "tanh", "squared")],
)
def test_train_runs_the_mlp_as_the_float64_reference(
    few_images, hidden, activation, loss
):
    """One epoch of train() (the fused step, the batches thread) against plain SGD on
    mlp.loss_and_layer_grads in float64, same permutation: weights and batch losses."""
    images, labels = few_images
    start = build("mlp", "normal", np.random.default_rng(1), hidden, activation)
    losses = []
    rng = np.random.default_rng(7)
    trained, history = train(
        start, images, labels, epochs=1, batch_size=100, lr=0.5, rng=rng, loss=loss,
        on_batch=lambda n, batch_loss: losses.append(batch_loss),
    )  # fmt: skip
    reference = start.with_params(
        tuple(tuple(a.astype(float) for a in p) for p in start.params)
    )
    order, ref_losses = np.random.default_rng(7).permutation(len(labels)), []
    for first in range(0, len(labels), 100):
        idx = order[first : first + 100]
        X, Y = inputs(images[idx], np.float64), one_hot(labels[idx], np.float64)
        batch_loss, grads = reference.loss_and_grads(loss, X, Y)
        reference = reference.with_params(sgd_update(reference.params, grads, 0.5))
        ref_losses.append(batch_loss)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-4, err_msg=f"{loss} losses")
    mean = np.average(ref_losses, weights=[100] * 10 + [50])
    assert history[0].train_loss == pytest.approx(mean, rel=1e-4), "the epoch's loss"
    pairs = zip(dense_params(trained), dense_params(reference))
    for l, (fast, ref) in enumerate(pairs, start=1):
        for name, a, b in (("W", fast.W, ref.W), ("b", fast.b, ref.b)):
            error = np.max(np.abs(a - b)) / np.max(np.abs(b))
            assert error < 1e-3, f"{name}{l} off by {error:.1e} of its largest entry"
    assert activation_of(trained) == activation and hidden_of(trained) == hidden
    np.testing.assert_array_equal(
        start.params[0][0],
        build("mlp", "normal", np.random.default_rng(1), hidden, activation).params[0][
            0
        ],
        "train() changed the network it was given",
    )


def epochs(*points):
    return [
        EpochResult(e, 9, loss, acc, 1.0) for e, (loss, acc) in enumerate(points, 1)
    ]


def test_stuck_means_at_chance_with_the_loss_no_longer_moving():
    sigmoid = build("mlp", "normal", np.random.default_rng(0), (4,), "sigmoid")
    assert stuck_warning(sigmoid, "squared", epochs((1.8, 0.10))) is None, "epoch 1"
    assert stuck_warning(sigmoid, "squared", epochs((1.5, 0.1), (1.76, 0.11))) is None
    assert stuck_warning(sigmoid, "squared", epochs((1.8, 0.5), (1.8, 0.5))) is None
    warning = stuck_warning(sigmoid, "squared", epochs((1.8, 0.1), (1.801, 0.112)))
    assert warning.startswith("training looks stuck at chance level: accuracy 11.20%")
    assert warning.endswith(
        "try a smaller learning rate, relu units, the cross-entropy loss"
    )
    relu = stuck_warning(
        build("mlp", "normal", np.random.default_rng(0), (4,), "relu"),
        "cross-entropy",
        epochs(*[(2.3, 0.1)] * 2),
    )
    assert relu.endswith("try a smaller learning rate"), relu


def test_a_stuck_training_is_told_once_through_on_warning(few_images):
    """Sigmoid units, the squared loss and lr 100 saturate the output within an epoch."""
    images, labels = few_images
    rng = np.random.default_rng(0)
    start = build("mlp", "normal", rng, (64,), "sigmoid")
    warnings, lines = [], []
    train(
        start, images, labels, epochs=4, batch_size=100, lr=100.0, rng=rng,
        monitored=(images, labels), on_epoch=lambda r: lines.append(r),
        on_warning=lambda text: warnings.append((len(lines), text)),
    )  # fmt: skip
    assert len(warnings) == 1, warnings
    after_epoch, text = warnings[0]
    assert after_epoch >= 2 and "stuck at chance level" in text, warnings


@pytest.fixture(scope="module")
def data_args(mnist_cache, mnist_server_url):
    return ["--cache-dir", str(mnist_cache), "--mirror", mnist_server_url]


MLP_ARGS = ["--model", "mlp", "--hidden", "16", "--loss", "cross-entropy"]
SMALL = ["--val-size", "59000", "--epochs", "2"]  # train on 1,000 images


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory, data_args):
    """A small mlp run with --plots, and what mnist-train printed."""
    out = tmp_path_factory.mktemp("mlp") / "mlp-16"
    args = [*MLP_ARGS, *SMALL, "--plots", "--out", str(out)]
    result = CliRunner().invoke(train_command, [*args, *data_args])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_mnist_train_writes_an_mlp_run(mlp_run):
    run, output = mlp_run
    m = json.loads((run / "metrics.json").read_text())
    assert (m["model"], m["loss"], m["config"]["hidden"]) == (
        "mlp",
        "cross-entropy",
        [16],
    )
    assert m["config"]["activation"] == "relu" and m["config"]["init"] == "normal"
    assert m["val_accuracy"] > 0.7 and m["test_accuracy"] > 0.7, m["test_accuracy"]
    lines = output.splitlines()
    for h, line in zip(m["history"], lines):
        assert line.startswith(
            f"epoch {h['epoch']}/2  loss {h['train_loss']:.4f}  val acc"
        )
    assert lines[2].startswith("mlp 784-16-10 relu, cross-entropy: test accuracy"), (
        lines
    )
    toml = (run / "config.toml").read_text()
    assert "hidden = [16]\n" in toml and 'loss = "cross-entropy"\n' in toml, toml
    weights = load_weights(run)
    assert (weights.format_version, describe(weights.network)) == (
        2,
        "mlp 784-16-10 relu",
    )


def test_train_loss_in_metrics_is_the_cross_entropy(
    mlp_run, mnist_cache, mnist_server_url
):
    run, _ = mlp_run
    m = json.loads((run / "metrics.json").read_text())
    test = load_split(MNIST, "test", mnist_cache, mirrors=[mnist_server_url])
    network = load_weights(run).network
    ce = evaluate(network, test.images, test.labels, "cross-entropy")
    assert ce.accuracy == m["test_accuracy"]
    S = softmax(network.logits(inputs(test.images[:500], np.float64)))
    expected = -np.mean(np.log(S[np.arange(500), test.labels[:500]]))
    assert evaluate(
        network, test.images[:500], test.labels[:500], "cross-entropy"
    ).loss == (pytest.approx(expected, rel=1e-4))


def test_mnist_eval_reproduces_the_mlp_run(mlp_run, data_args):
    run, _ = mlp_run
    m = json.loads((run / "metrics.json").read_text())
    result = CliRunner().invoke(eval_command, [str(run), "--json", *data_args])
    assert result.exit_code == 0, result.output
    scored = json.loads(result.output)
    assert (scored["model"], scored["hidden"], scored["activation"]) == (
        "mlp",
        [16],
        "relu",
    )
    assert scored["accuracy"] == m["test_accuracy"]
    table = CliRunner().invoke(eval_command, [str(run), *data_args])
    assert table.output.startswith("mlp 784-16-10 relu on mnist test (10,000 images)")


def test_plots_show_the_first_layers_units(mlp_run):
    run, output = mlp_run
    assert "wrote " in output and (run / "curves.png").exists()
    with Image.open(run / "weights.png") as image:
        assert image.size == plots.UNITS_SIZE, image.size
    W1 = dense_params(load_weights(run).network)[0].W  # (16, 784): a 4 × 4 grid
    mosaic = plots.unit_mosaic(W1)
    assert mosaic.shape == (4 * 30 - 2, 4 * 30 - 2), mosaic.shape
    tile = mosaic[30:58, 60:88]  # row 1, column 2: unit 6
    np.testing.assert_allclose(tile, W1[6].reshape(28, 28) / np.abs(W1[6]).max())
    assert np.isnan(mosaic[28:30]).all(), "a blank gap between rows of tiles"
    three = plots.unit_mosaic(W1[:3])  # 2 × 2 grid, the last tile blank
    assert np.isnan(three[30:, 30:]).all() and not np.isnan(three[:28, :28]).any()


def test_mnist_predict_gives_the_mlps_probabilities(
    mlp_run, mnist_cache, mnist_server_url, tmp_path
):
    run, _ = mlp_run
    test = load_split(MNIST, "test", mnist_cache, mirrors=[mnist_server_url])
    network = load_weights(run).network
    digits, values = classify(network, test.images[:50])
    S = softmax(network.logits(inputs(test.images[:50], np.float64)))
    np.testing.assert_array_equal(digits, S.argmax(axis=1))
    np.testing.assert_allclose(values, S.max(axis=1), rtol=1e-4)
    picture = tmp_path / "digit.png"
    Image.fromarray(test.images[0].reshape(28, 28)).save(picture)
    result = CliRunner().invoke(predict_command, [str(run), str(picture), "--json"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output)
    assert (
        set(line) == {"image", "digit", "probability"} and 0 < line["probability"] <= 1
    )


def test_init_from_an_mlp_run_continues_it_and_refuses_another_shape(
    mlp_run, data_args, tmp_path
):
    run, _ = mlp_run
    more = tmp_path / "more"
    args = ["--init-from", str(run), *SMALL, "-q"]  # the run's loss is implied
    result = CliRunner().invoke(
        train_command, [*args, "--epochs", "1", "--out", str(more), *data_args]
    )
    assert result.exit_code == 0, result.output
    m = json.loads((more / "metrics.json").read_text())
    assert m["loss"] == m["config"]["loss"] == "cross-entropy", "the run's own loss"
    assert m["config"]["hidden"] == [16] and [h["epoch"] for h in m["history"]] == [
        1,
        2,
        3,
    ]
    other = [*args, "--hidden", "32", "--out", str(tmp_path / "other"), *data_args]
    refused = CliRunner().invoke(train_command, other)
    assert refused.exit_code == 1, refused.output
    assert (
        "the weights are an mlp 784-16-10 relu, but this run trains an mlp 784-32-10 relu"
        in (refused.output)
    ), refused.output


def test_another_loss_does_not_continue_the_history(mlp_run, data_args, tmp_path):
    """A history of cross-entropy losses and one of squared losses do not join up: the run
    starts from the weights at epoch 1, and says so."""
    run, _ = mlp_run
    out = tmp_path / "squared"
    args = ["--init-from", str(run), "--loss", "squared", *SMALL, "--epochs", "1"]
    result = CliRunner().invoke(train_command, [*args, "--out", str(out), *data_args])
    assert result.exit_code == 0, result.output
    assert (
        "its history is of the cross-entropy loss, this run's is squared; training "
        "starts from its weights at epoch 1" in result.output
    ), result.output
    m = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in m["history"]] == [1] and m["started_from"] is None


def test_mnist_runs_shows_the_hidden_width(mlp_run):
    run, _ = mlp_run
    result = CliRunner().invoke(runs_command, [str(run.parent), "--json"])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.output)
    assert (summary["model"], summary["hidden"], summary["loss"]) == (
        "mlp",
        [16],
        "cross-entropy",
    )
