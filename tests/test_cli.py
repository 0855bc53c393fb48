"""The commands end to end on the real MNIST (the bundled copy, served on 127.0.0.1)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_cli.cli import eval_command, train_command

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run_train(args, data_args):
    result = CliRunner().invoke(train_command, [*args, *data_args])
    return result


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


@pytest.mark.parametrize("model, target", [("softmax", 0.92), ("linear", 0.85)])
def test_default_run_reaches_target(trained_runs, model, target):
    run, _ = trained_runs[model]
    m = metrics(run)
    assert m["test_accuracy"] >= target, f"{model}: {m['test_accuracy']:.4f} < {target}"
    assert m["train_accuracy"] >= target, f"{model}: train {m['train_accuracy']:.4f}"
    assert m["model"] == model and len(m["history"]) == 10
    assert np.sum(m["confusion_matrix"]) == 10_000
    assert np.trace(m["confusion_matrix"]) / 10_000 == pytest.approx(m["test_accuracy"])
    assert m["history"][-1]["monitor"] == "test"
    assert m["history"][-1]["monitor_accuracy"] == pytest.approx(m["test_accuracy"])
    assert m["data"]["train-labels-idx1-ubyte"]["sha256"].startswith("65a50cbb")
    assert m["config"]["model"] == model
    assert set(m) >= {"seconds", "version", "history", "config", "data"}


def test_output_lines_have_the_fixed_format(trained_runs):
    run, output = trained_runs["softmax"]
    lines = output.strip().splitlines()
    epoch_line = re.compile(
        r"^epoch (\d+)/10  loss \d\.\d{4}  test acc \d+\.\d{2}%  \d+\.\d{2} s$"
    )
    assert [int(epoch_line.match(line)[1]) for line in lines[:-1]] == list(
        range(1, 11)
    ), output
    acc = 100 * metrics(run)["test_accuracy"]
    summary = rf"^softmax: test accuracy {acc:.2f}% \(10 epochs, \d+\.\d s\) -> {re.escape(str(run))}/$"
    assert re.match(summary, lines[-1]), lines[-1]


def test_weights_file_is_self_describing(trained_runs):
    with np.load(trained_runs["linear"][0] / "weights.npz", allow_pickle=False) as npz:
        assert npz["W"].shape == (10, 784) and npz["W"].dtype == np.float32
        assert npz["b"].shape == (10,) and npz["b"].dtype == np.float32
        assert str(npz["model"]) == "linear"


@pytest.mark.parametrize("model", ["softmax", "linear"])
def test_eval_reproduces_the_written_accuracy(trained_runs, data_args, model):
    run, _ = trained_runs[model]
    result = CliRunner().invoke(
        eval_command, [str(run / "weights.npz"), "--json", *data_args]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    m = metrics(run)
    assert out["accuracy"] == m["test_accuracy"]
    assert out["confusion_matrix"] == m["confusion_matrix"]
    assert len(out["per_class_accuracy"]) == 10


def test_eval_prints_a_readable_table(trained_runs, mnist_cache):
    run, _ = trained_runs["softmax"]
    # no --mirror: the cache is warm, and the run's own mirrors would be used on a miss
    result = CliRunner().invoke(
        eval_command, [str(run), "--cache-dir", str(mnist_cache)]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    acc = 100 * metrics(run)["test_accuracy"]
    assert lines[0] == f"softmax on mnist test (10,000 images): accuracy {acc:.2f}%"
    assert lines[2].split()[0] == "true\\pred" and lines[2].split()[-1] == "accuracy"
    row_sevens = lines[3 + 7].split()
    C = metrics(run)["confusion_matrix"]
    assert [int(v) for v in row_sevens[1:11]] == C[7]


def test_eval_train_split(trained_runs, data_args):
    run, _ = trained_runs["linear"]
    result = CliRunner().invoke(
        eval_command, [str(run), "--split", "train", "--json", *data_args]
    )
    assert json.loads(result.output)["accuracy"] == metrics(run)["train_accuracy"]


def test_same_seed_same_weights_and_config_toml_reruns(tmp_path, mini_mnist):
    data_args = mini_mnist
    args = [
        "--epochs",
        "2",
        "--init",
        "normal",
        "--seed",
        "3",
        "--batch-size",
        "250",
        "-q",
    ]
    assert run_train([*args, "--out", str(tmp_path / "a")], data_args).exit_code == 0
    assert run_train([*args, "--out", str(tmp_path / "b")], data_args).exit_code == 0
    rerun = [
        "--config",
        str(tmp_path / "a" / "config.toml"),
        "--out",
        str(tmp_path / "c"),
    ]
    assert run_train(rerun, data_args).exit_code == 0
    other = run_train([*args, "--seed", "4", "--out", str(tmp_path / "d")], data_args)
    assert other.exit_code == 0
    W = {name: np.load(tmp_path / name / "weights.npz")["W"] for name in "abcd"}
    np.testing.assert_array_equal(W["a"], W["b"])
    np.testing.assert_array_equal(W["a"], W["c"])
    assert not np.array_equal(W["a"], W["d"]), "another seed gave the same weights"
    assert metrics(tmp_path / "c")["config"]["batch_size"] == 250


def test_divergence_is_an_error_and_saves_nothing(tmp_path, data_args):
    result = run_train(
        ["--model", "linear", "--lr", "5", "--out", str(tmp_path / "r")], data_args
    )
    assert result.exit_code == 1
    assert "training diverged; try a smaller --lr" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--lr", "nan"],
            "Invalid value for '--lr': must be a finite number > 0, not nan",
        ),
        (
            ["--lr", "inf"],
            "Invalid value for '--lr': must be a finite number > 0, not inf",
        ),
        (["--lr", "-1"], "Invalid value for '--lr'"),
        (
            ["--epochs", "0"],
            "Invalid value for '--epochs': must be an integer from 1 to 10,000, not 0",
        ),
        (["--batch-size", "0"], "Invalid value for '--batch-size'"),
        (["--model", "resnet"], "Invalid value for '--model'"),
        (["--mirror", "ftp://example.org/"], "Invalid value for '--mirror'"),
    ],
)
def test_bad_options_are_usage_errors(args, message):
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output


def test_existing_out_dir_is_refused_before_training(tmp_path, data_args):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    result = run_train(["--out", str(tmp_path / "run")], data_args)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: --out {tmp_path / 'run'} exists and is not empty; "
        "use --force to replace it or choose another --out"
    )
    assert (tmp_path / "run" / "keep.txt").read_text() == "mine"


def test_force_replaces_a_run(tmp_path, mini_mnist):
    (tmp_path / "run").mkdir()
    for name in ("weights.npz", "metrics.json", "curves.png"):  # an earlier run's files
        (tmp_path / "run" / name).write_text("old")
    result = run_train(
        ["--epochs", "1", "--out", str(tmp_path / "run"), "--force", "-q"], mini_mnist
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "checkpoint.npz",  # of its last epoch
        "config.toml",
        "metrics.json",
        "weights.npz",
    ]
    assert result.output.count("\n") == 1, "--quiet prints only the summary line"


def test_bad_config_key_is_one_line_error(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("learning_rate = 0.1\n")
    result = CliRunner().invoke(train_command, ["--config", str(config)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {config}: key 'learning_rate' unknown key")
    assert result.output.count("\n") == 1


def test_eval_rejects_foreign_weights(tmp_path):
    np.savez(
        tmp_path / "w.npz",
        W=np.zeros((784, 10), np.float32),
        b=np.zeros(10, np.float32),
        model=np.array("softmax"),
    )
    result = CliRunner().invoke(eval_command, [str(tmp_path / "w.npz")])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {tmp_path / 'w.npz'}: W has shape (784, 10), expected (10, 784)\n"
    )


def test_unreachable_mirror_is_one_line_error(tmp_path, http_server):
    server = http_server()  # serves nothing: every file is a 404
    result = CliRunner().invoke(
        train_command,
        [
            "--cache-dir",
            str(tmp_path / "cache"),
            "--mirror",
            server.url,
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: could not fetch")
    assert server.url in result.output and "404" in result.output
    assert not (tmp_path / "r").exists()


def test_help_has_examples_and_version():
    for command in (train_command, eval_command):
        result = CliRunner().invoke(command, ["-h"])
        assert result.exit_code == 0 and "Example:" in result.output
        version = CliRunner().invoke(command, ["--version"])
        assert "0.1.0" in version.output


def test_console_scripts_as_subprocesses(trained_runs, mnist_cache, tmp_path):
    env = {**os.environ, "MNIST_CACHE_DIR": str(mnist_cache)}
    run, _ = trained_runs["softmax"]
    out = subprocess.run(
        [BIN / "mnist-eval", str(run), "--json"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["accuracy"] == metrics(run)["test_accuracy"]
    bad = tmp_path / "bad.npz"
    bad.write_text("not weights")
    out = subprocess.run(
        [BIN / "mnist-eval", str(bad)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 1
    assert out.stderr.startswith(f"Error: {bad}: not a") and out.stderr.count("\n") == 1
    assert "Traceback" not in out.stderr


def test_make_train_config_trains_from_the_bundled_copy_offline(tmp_path):
    """configs/default.toml as `make train` uses it, from another working directory: the network
    mirrors fail (no internet here, or refused below), the bundled data/mnist/ copy is used."""
    env = {**os.environ, "MNIST_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("MNIST_MIRRORS", None)
    # nothing listens on port 9
    env["HTTPS_PROXY"] = env["https_proxy"] = "http://127.0.0.1:9"
    out = subprocess.run(
        [
            BIN / "mnist-train",
            "--config",
            ROOT / "configs" / "default.toml",
            "--epochs",
            "1",
            "--out",
            tmp_path / "run",
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert metrics(tmp_path / "run")["test_accuracy"] > 0.88
    assert sorted(
        p.name
        for p in (tmp_path / "cache" / "mnist").iterdir()
        if not p.name.endswith((".json", ".lock"))
    ) == sorted(
        [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ]
    )


def test_exact_solver_reaches_the_least_squares_optimum(
    trained_runs, tmp_path, data_args
):
    """--solver exact: the closed-form linear model scores 86.0 % on MNIST, at least as well
    as 10 epochs of SGD less a point; configs/linear.toml's SGD keys do not get in the way."""
    run = tmp_path / "exact"
    result = run_train(
        [
            "--config",
            str(ROOT / "configs" / "linear.toml"),
            "--solver",
            "exact",
            "--out",
            str(run),
        ],
        data_args,
    )
    assert result.exit_code == 0, result.output
    m = metrics(run)
    sgd = metrics(trained_runs["linear"][0])["test_accuracy"]
    assert m["test_accuracy"] >= 0.855, f"exact: {m['test_accuracy']:.4f} < 0.855"
    assert m["test_accuracy"] >= sgd - 0.01, (
        f"exact {m['test_accuracy']:.4f}, SGD {sgd:.4f}"
    )
    assert (m["model"], m["solver"], m["history"]) == ("linear", "exact", [])
    sgd_loss = metrics(trained_runs["linear"][0])["train_loss"]
    assert m["train_loss"] <= sgd_loss, f"optimum {m['train_loss']} > SGD {sgd_loss}"
    assert (m["config"]["solver"], m["config"]["l2"]) == ("exact", 0.0)
    acc = 100 * m["test_accuracy"]
    assert re.match(
        rf"^linear: test accuracy {acc:.2f}% \(exact least squares, \d+\.\d s\) -> ",
        result.output,
    ), result.output
    assert result.output.count("\n") == 1, "no epoch lines for the exact solver"
