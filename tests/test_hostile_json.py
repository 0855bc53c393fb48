"""Numbers that are not numbers, and names that are not UTF-8 (issue 22): every --json output of
every command parses with a strict parser (no NaN or Infinity, no lone surrogates), and weights
that some picture would make overflow are refused in one line that names them."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_cli.__main__ import COMMANDS
from mnist_cli.cli import eval_command, predict_command, runs_command, train_command
from mnist_cli.rundir.weights import MAX_SCORE

ROOT = Path(__file__).resolve().parents[1]
SEVEN = ROOT / "docs" / "img" / "digits" / "seven.png"
JSON_COMMANDS = {"train", "eval", "predict", "runs"}  # each has a test below


def strict_json(text: str) -> list:
    """The JSON values of `text` (one document, or one per line), parsed as a strict parser
    would: NaN, Infinity and lone surrogates (escaped \\udcff) are errors."""

    def no_constant(name: str):
        raise AssertionError(f"{name} is not JSON")

    def check_strings(value) -> None:
        if isinstance(value, str):
            value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError
        elif isinstance(value, dict):
            for k, v in value.items():
                check_strings(k)
                check_strings(v)
        elif isinstance(value, list):
            for v in value:
                check_strings(v)

    try:
        docs = [json.loads(text, parse_constant=no_constant)]
    except json.JSONDecodeError:
        docs = [
            json.loads(line, parse_constant=no_constant) for line in text.splitlines()
        ]
    for doc in docs:
        check_strings(doc)
    return docs


def test_the_strict_parser_refuses_what_json_dumps_lets_through():
    with pytest.raises(AssertionError, match="NaN is not JSON"):
        strict_json(json.dumps({"probability": float("nan")}))
    with pytest.raises(UnicodeEncodeError):
        strict_json(json.dumps({"image": os.fsdecode(b"\xff.png")}))


def test_every_command_with_json_is_tested_here():
    with_json = {
        name
        for name, command in COMMANDS.items()
        if any("--json" in p.opts for p in command.params)
    }
    assert with_json == JSON_COMMANDS


def weights(path: Path, scale: float, kind: str = "softmax") -> Path:
    """A weights file whose row k is scale · (k + 1) / 10 everywhere: the largest score any
    picture can give is 784 · scale."""
    W = np.repeat(np.arange(1, 11, dtype=np.float64)[:, None] / 10, 784, axis=1) * scale
    np.savez(
        path,
        W=W.astype(np.float32),
        b=np.zeros(10, np.float32),
        model=np.array(kind),
        dataset=np.array("mnist"),
        format_version=np.array(1),
    )
    return path


def test_train_eval_predict_and_runs_print_strict_json(tmp_path, mini_mnist):
    runs = tmp_path / "runs"
    run = runs / os.fsdecode(
        b"r\xff"
    )  # not UTF-8: refused as --out, listed by mnist-runs
    out = runs / "r"
    args = ["--model", "linear", "--epochs", "1", "--json", "--out", str(out)]
    train = CliRunner().invoke(train_command, [*args, *mini_mnist])
    assert train.exit_code == 0, train.output
    [metrics] = strict_json(train.stdout.splitlines()[-1])
    assert metrics["config"]["epochs"] == 1
    shutil.copytree(out, run)
    ev = CliRunner().invoke(eval_command, [str(out), "--json", *mini_mnist])
    assert ev.exit_code == 0, ev.output
    assert strict_json(ev.stdout)[0]["accuracy"] == metrics["test_accuracy"]
    image = tmp_path / os.fsdecode(b"seven-\xff.png")
    shutil.copy(SEVEN, image)
    pr = CliRunner().invoke(
        predict_command, [str(out), str(SEVEN), str(image), "--json"]
    )
    assert pr.exit_code == 0, pr.output
    lines = strict_json(pr.stdout)
    assert [line["image"] for line in lines] == [
        str(SEVEN),
        f"{tmp_path}/seven-\\xff.png",
    ]
    listed = CliRunner().invoke(runs_command, [str(runs), "--json"])
    assert listed.exit_code == 0, listed.output
    [summaries] = strict_json(listed.stdout)
    assert [s["name"] for s in summaries] == ["r", "r\\xff"], summaries
    table = CliRunner().invoke(runs_command, [str(runs)])
    assert table.stdout.splitlines()[2].startswith("r\\xff "), table.stdout


def test_weights_some_picture_would_overflow_are_refused_by_name(tmp_path):
    """W = 3e38 (finite in float32) printed `probability nan`, and NaN with --json."""
    path = weights(tmp_path / "huge.npz", 3e38)
    expected = (
        f"Error: {path}: W is too large: some picture would give layer 1 scores up to "
        f"2.35e+41, beyond float32 ({MAX_SCORE:.3g}); give weights mnist-train wrote\n"
    )
    for command, args in [
        (predict_command, [str(path), str(SEVEN), "--json"]),
        (eval_command, [str(path), "--json"]),
        (train_command, ["--init-from", str(path), "--json"]),
    ]:
        result = CliRunner().invoke(command, args)
        assert (result.exit_code, result.stdout) == (1, ""), result.output
        assert result.stderr == expected, (command.name, result.stderr)


def test_weights_just_within_the_bound_score_finite(tmp_path, mini_mnist):
    """The largest score 784 · scale = 0.99 MAX_SCORE: probabilities finite, no warnings."""
    path = weights(tmp_path / "w.npz", 0.99 * MAX_SCORE / 784)
    pr = CliRunner().invoke(predict_command, [str(path), str(SEVEN), "--json"])
    assert pr.exit_code == 0 and pr.stderr == "", pr.output
    [line] = strict_json(pr.stdout)
    assert line["digit"] == 9 and line["probability"] == 1.0, line
    ev = CliRunner().invoke(eval_command, [str(path), "--json", *mini_mnist])
    assert ev.exit_code == 0 and "Warning" not in ev.stderr, ev.output
    assert strict_json(ev.stdout)[0]["accuracy"] > 0
