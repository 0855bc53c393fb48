"""Training conveniences on the real MNIST: --init-from, --val-size, --json, and the option
combinations that make no sense, refused in one line."""

import json
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_cli.cli import runs_command, train_command
from mnist_cli.data import holdout
from mnist_cli.metrics import evaluate
from mnist_cli.nn.architecture import one_layer
from mnist_cli.nn.layers import inputs
from mnist_cli.nn.losses import one_hot
from mnist_cli.rundir.weights import load_weights


@pytest.fixture
def one_epoch_linear(trained_runs, mini_mnist):
    """A 1-epoch linear run on mini_mnist (conftest.py), which the test then reads as
    "mnist": continuing it trains on 2,000 images, not 60,000."""
    return trained_runs["mini-linear"][0]


def train(args, data_args):
    return CliRunner().invoke(train_command, [*args, *data_args])


def metrics(run) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_init_from_continues_training(
    one_epoch_linear, tmp_path, mini_mnist, mini_mnist_data
):
    """One more epoch from a 1-epoch run (no --model: it is the weights' model) is a
    different model with a loss no worse than 1 epoch from zeros, the same shuffling aside."""
    run = tmp_path / "continued"
    result = train(
        [
            "--init-from",
            str(one_epoch_linear),
            "--epochs",
            "1",
            "-q",
            "--out",
            str(run),
        ],
        mini_mnist,
    )
    assert result.exit_code == 0, result.output
    m, first = metrics(run), metrics(one_epoch_linear)
    assert m["model"] == "linear", f"expected the weights' model, got {m['model']}"
    assert m["config"]["init_from"] == str(one_epoch_linear.resolve())
    before = load_weights(one_epoch_linear).params
    after = load_weights(run).params
    assert not np.array_equal(before.W, after.W), "continuing changed nothing"
    test = mini_mnist_data.splits[1]
    X, Y = inputs(test.images), one_hot(test.labels)
    losses = [
        one_layer("linear", p).loss("squared", one_layer("linear", p).logits(X), Y)
        for p in (before, after)
    ]
    assert losses[1] <= losses[0], (
        f"test loss went up: {losses[0]:.4f} -> {losses[1]:.4f}"
    )
    epoch_losses = [first["history"][0]["train_loss"], m["history"][-1]["train_loss"]]
    assert epoch_losses[1] < epoch_losses[0], f"epoch losses {epoch_losses}"
    toml = (run / "config.toml").read_text()
    assert f'init_from = "{one_epoch_linear.resolve()}"' in toml, toml


def epoch_numbers(output: str) -> list[str]:
    return [
        line.split()[1] for line in output.splitlines() if line.startswith("epoch ")
    ]


def test_init_from_a_run_continues_its_epochs_and_history(
    one_epoch_linear, tmp_path, mini_mnist
):
    """From a 1-epoch run, --epochs 2 trains epochs 2/3 and 3/3: the history holds the earlier
    epoch, then the two new ones, and started_from says where; continuing that run again
    counts on (4/4), and mnist-runs shows 1+2 and 3+1."""
    run = tmp_path / "continued"
    result = train(
        ["--init-from", str(one_epoch_linear), "--epochs", "2", "--out", str(run)],
        mini_mnist,
    )
    assert result.exit_code == 0, result.output
    assert epoch_numbers(result.stdout) == ["2/3", "3/3"], result.stdout
    assert "(2 epochs after 1, " in result.stdout, result.stdout
    m, first = metrics(run), metrics(one_epoch_linear)
    assert [h["epoch"] for h in m["history"]] == [1, 2, 3], m["history"]
    assert m["history"][0] == first["history"][0], "the earlier epoch is not kept"
    assert m["started_from"] == {"run": str(one_epoch_linear.resolve()), "epochs": 1}
    assert first["started_from"] is None
    assert m["config"]["epochs"] == 2, "config keeps this run's own epochs"

    again = tmp_path / "again"
    result = train(
        ["--init-from", str(run), "--epochs", "1", "--out", str(again)], mini_mnist
    )
    assert result.exit_code == 0, result.output
    m2 = metrics(again)
    assert epoch_numbers(result.stdout) == ["4/4"], result.stdout
    assert [h["epoch"] for h in m2["history"]] == [1, 2, 3, 4], m2["history"]
    assert m2["history"][:3] == m["history"] and m2["started_from"]["epochs"] == 3
    listing = CliRunner().invoke(runs_command, [str(tmp_path), "--sort", "name"])
    epochs = [line.split()[4] for line in listing.output.splitlines()[1:]]
    assert epochs == ["3+1", "1+2"], listing.output


def test_init_from_a_weights_file_starts_at_epoch_one(
    one_epoch_linear, tmp_path, mini_mnist
):
    run = tmp_path / "w"
    weights = one_epoch_linear / "weights.npz"
    result = train(
        ["--init-from", str(weights), "--epochs", "1", "--out", str(run)], mini_mnist
    )
    assert result.exit_code == 0, result.output
    assert epoch_numbers(result.stdout) == ["1/1"], result.stdout
    m = metrics(run)
    assert [h["epoch"] for h in m["history"]] == [1] and m["started_from"] is None


def break_history(run):
    m = metrics(run)
    m["history"][0]["train_loss"] = "low"
    (run / "metrics.json").write_text(json.dumps(m))


@pytest.mark.parametrize(
    "edit, args, reason",
    [
        (break_history, [], "history[0].train_loss is a string, not a number"),
        (
            lambda run: (run / "metrics.json").write_text("[1]"),
            [],
            "metrics.json holds a list, not an object",
        ),
        (lambda run: (run / "metrics.json").unlink(), [], "no metrics.json"),
        (
            lambda run: None,
            ["--val-size", "1000"],
            "history[0] does not report val accuracy",
        ),
    ],
)
def test_a_run_whose_history_cannot_be_continued_starts_at_epoch_one(
    one_epoch_linear, tmp_path, mini_mnist, edit, args, reason
):
    earlier = tmp_path / "earlier"
    shutil.copytree(one_epoch_linear, earlier)
    edit(earlier)
    run = tmp_path / "r"
    result = train(
        ["--init-from", str(earlier), "--epochs", "1", "--out", str(run), *args],
        mini_mnist,
    )
    assert result.exit_code == 0, result.output
    warning = result.stderr.splitlines()
    assert len(warning) == 1 and warning[0].startswith(
        f"Warning: --init-from {earlier.resolve()}: {reason}"
    ), result.stderr
    assert warning[0].endswith(
        "training starts from its weights at epoch 1, without its history"
    )
    assert epoch_numbers(result.stdout) == ["1/1"], result.stdout
    m = metrics(run)
    assert [h["epoch"] for h in m["history"]] == [1] and m["started_from"] is None


def test_init_from_weights_of_another_model_is_one_line_error(
    one_epoch_linear, tmp_path
):
    result = CliRunner().invoke(
        train_command,
        ["--init-from", str(one_epoch_linear / "weights.npz"), "--model", "softmax"],
    )
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"Error: --init-from {one_epoch_linear.resolve() / 'weights.npz'}: the weights are "
        "a linear model, but this run trains softmax; use --model linear or other weights\n"
    )


def test_val_size_holds_out_seeded_training_images(
    tmp_path, mini_mnist, mini_mnist_data
):
    run = tmp_path / "val"
    result = train(
        ["--val-size", "500", "--epochs", "2", "--seed", "7", "--out", str(run)],
        mini_mnist,
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for line in lines[:2]:
        assert re.match(r"^epoch \d/2  loss \d\.\d{4}  val acc \d+\.\d{2}%  ", line), (
            line
        )
    m = metrics(run)
    assert [sorted(h) for h in m["history"]] == 2 * [
        ["epoch", "monitor", "monitor_accuracy", "seconds", "train_loss"]
    ], m["history"]
    assert [h["monitor"] for h in m["history"]] == ["val", "val"], m["history"]
    assert m["val_accuracy"] == m["history"][-1]["monitor_accuracy"]
    assert m["config"]["val_size"] == 500
    assert f"val accuracy {100 * m['val_accuracy']:.2f}%" in lines[-1], lines[-1]
    # the documented choice: positions default_rng(seed).permutation(N)[:500]
    train_split, test_split = mini_mnist_data.splits
    rest, val = holdout(train_split, 500, np.random.default_rng(7))
    params = load_weights(run).params
    assert evaluate(params, val.images, val.labels).accuracy == m["val_accuracy"]
    assert evaluate(params, rest.images, rest.labels).accuracy == m["train_accuracy"]
    assert np.sum(m["confusion_matrix"]) == len(test_split), "the test set is scored"


def test_holdout_is_a_seeded_partition(mnist_splits):
    train_split = mnist_splits[0]
    rest, val = holdout(train_split, 1000, np.random.default_rng(3))
    _, val_again = holdout(train_split, 1000, np.random.default_rng(3))
    _, other = holdout(train_split, 1000, np.random.default_rng(4))
    assert (len(rest), len(val)) == (59_000, 1000), (len(rest), len(val))
    held = np.sort(np.random.default_rng(3).permutation(60_000)[:1000])  # as documented
    np.testing.assert_array_equal(val.labels, train_split.labels[held])
    np.testing.assert_array_equal(val.images, train_split.images[held])
    np.testing.assert_array_equal(val.images, val_again.images)
    assert not np.array_equal(val.labels, other.labels), (
        "another seed, same held-out set"
    )
    counts = np.bincount(rest.labels, minlength=10) + np.bincount(
        val.labels, minlength=10
    )
    np.testing.assert_array_equal(counts, np.bincount(train_split.labels, minlength=10))


def test_json_prints_the_metrics_as_the_last_stdout_line(tmp_path, mini_mnist):
    run = tmp_path / "j"
    result = train(["--epochs", "2", "--json", "--out", str(run)], mini_mnist)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.splitlines()[-1])
    assert out == metrics(run), "stdout's JSON differs from metrics.json"
    assert len(result.stdout.splitlines()) == 1, f"stdout: {result.stdout!r}"
    err = result.stderr.splitlines()
    assert [line.split()[1] for line in err[:2]] == ["1/2", "2/2"], result.stderr
    assert err[-1].startswith("softmax: test accuracy"), result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--solver", "exact", "--model", "softmax"],
            "--solver exact needs --model linear",
        ),
        (["--l2", "1"], "--l2 is for --solver exact; SGD has no ridge term"),
        (
            ["--solver", "exact", "--epochs", "3"],
            "--epochs cannot be used with --solver exact",
        ),
        (
            ["--l2", "-1"],
            "Invalid value for '--l2': must be a finite number ≥ 0, not -1.0",
        ),
        (
            ["--val-size", "-5"],
            "Invalid value for '--val-size': must be an integer ≥ 0",
        ),
        (["--dataset", "cifar"], "Invalid value for '--dataset'"),
        (["--init-from", "no/such/run"], "Invalid value for '--init-from'"),
        (
            ["--init", "normal", "--init-from", "."],
            "--init and --init-from exclude each",
        ),
    ],
)
def test_contradictory_or_bad_options_are_usage_errors(args, message):
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output


def test_val_size_must_leave_training_images(tmp_path, data_args):
    result = train(["--val-size", "60000", "--out", str(tmp_path / "r")], data_args)
    assert result.exit_code == 2, result.output
    assert "must be less than the 60,000 training images of mnist, not 60000" in (
        result.output
    )
    assert not (tmp_path / "r").exists()


def test_init_on_the_command_line_overrides_a_config_files_init_from(
    one_epoch_linear, tmp_path, mini_mnist
):
    config = tmp_path / "continue.toml"
    config.write_text(
        f'model = "linear"\nepochs = 1\ninit_from = "{one_epoch_linear}"\n'
    )
    run = tmp_path / "fresh"
    result = train(
        ["--config", str(config), "--init", "zeros", "-q", "--out", str(run)],
        mini_mnist,
    )
    assert result.exit_code == 0, result.output
    m = metrics(run)
    assert m["config"]["init_from"] is None, m["config"]
    fresh = load_weights(run).params
    first = load_weights(one_epoch_linear).params
    np.testing.assert_array_equal(
        fresh.W, first.W
    )  # zeros, 1 epoch, seed 0: the same run
