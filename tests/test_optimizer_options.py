"""mnist-train's optimizer options: each optimizer trains through the command, the settings an
optimizer does not have are usage errors, config.toml holds only the run's own."""

import json

import pytest
from click.testing import CliRunner

from mnist_cli.cli import train_command
from mnist_cli.config.files import read_config_file

TINY = ["--model", "mlp", "--hidden", "16", "--epochs", "2", "--val-size", "1000"]
TINY += ["--batch-size", "20", "--json"]  # 1,000 images: 50 steps an epoch


@pytest.mark.parametrize(
    "optimizer, lr",
    [("sgd", "0.5"), ("momentum", "0.05"), ("nesterov", "0.05"), ("adam", "0.003")],
)
def test_each_optimizer_trains_through_the_command(optimizer, lr, mini_mnist, tmp_path):
    out = tmp_path / optimizer
    args = [*TINY, "--optimizer", optimizer, "--lr", lr, "--schedule", "cosine"]
    result = CliRunner().invoke(train_command, [*args, "--out", str(out), *mini_mnist])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.splitlines()[-1])
    assert metrics["config"]["optimizer"] == optimizer
    assert metrics["val_accuracy"] > 0.6, (optimizer, metrics["val_accuracy"])
    losses = [h["train_loss"] for h in metrics["history"]]
    assert losses[1] < losses[0], (optimizer, losses)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--optimizer", "adam", "--momentum", "0.5"], "--momentum is for --optimizer momentum or nesterov, not adam"),
        (["--optimizer", "momentum", "--beta1", "0.8"], "--beta1 is for --optimizer adam, not momentum"),
        (["--eps", "1e-6"], "--eps is for --optimizer adam, not sgd"),
        (["--model", "linear", "--solver", "exact", "--optimizer", "adam"], "--optimizer cannot be used with --solver exact"),
        (["--model", "linear", "--solver", "exact", "--schedule", "cosine"], "--schedule cannot be used with --solver exact"),
        (["--momentum", "1"], "must be a number in [0, 1)"),
        (["--eps", "0"], "must be a finite number > 0"),
        (["--weight-decay", "-1"], "must be a finite number ≥ 0"),
        (["--optimizer", "rmsprop"], "Invalid value for '--optimizer'"),
    ],
)  # fmt: skip
def test_settings_an_optimizer_does_not_have_are_usage_errors(
    args, message, mini_mnist, tmp_path
):
    result = CliRunner().invoke(
        train_command, [*args, "--out", str(tmp_path / "r"), *mini_mnist]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_config_toml_holds_only_the_runs_optimizer_settings(mini_mnist, tmp_path):
    out = tmp_path / "r"
    args = [
        *TINY,
        "--optimizer",
        "adam",
        "--lr",
        "0.003",
        "--beta2",
        "0.99",
        "--weight-decay",
        "1e-4",
    ]
    result = CliRunner().invoke(train_command, [*args, "--out", str(out), *mini_mnist])
    assert result.exit_code == 0, result.output
    values = read_config_file(out / "config.toml")
    assert (values["optimizer"], values["beta2"], values["weight_decay"]) == (
        "adam",
        0.99,
        1e-4,
    )
    assert "momentum" not in values, "momentum is not adam's"
    rerun = CliRunner().invoke(
        train_command,
        [
            "--config",
            str(out / "config.toml"),
            "--out",
            str(tmp_path / "again"),
            "--json",
            *mini_mnist,
        ],
    )
    assert rerun.exit_code == 0, rerun.output
    again = json.loads(rerun.stdout.splitlines()[-1])
    first = json.loads(result.stdout.splitlines()[-1])
    assert again["test_accuracy"] == first["test_accuracy"], "the same run again"
