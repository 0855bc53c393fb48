"""mnist-runs and rundir/listing.py: one line per run directory, read from untrusted metrics.json files;
and the checks on the history that --init-from continues."""

import json
import os
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import save_run

from mnist_cli.cli import runs_command
from mnist_cli.config.files import to_toml
from mnist_cli.config.settings import TrainConfig
from mnist_cli.data import MNIST, Split
from mnist_cli.errors import MetricsError
from mnist_cli.rundir.listing import earlier_training, list_runs
from mnist_cli.rundir.record import MAX_METRICS_BYTES
from mnist_cli.training.run import fit


def tiny_split(rng: np.random.Generator, n: int) -> Split:
    images = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
    return Split(images=images, labels=rng.integers(0, 10, size=n, dtype=np.uint8))


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory) -> Path:
    """Two runs as mnist-train writes them (fit + save_run), on 300 random images: linear for 2
    epochs with 100 held out, and the exact solver (ridge: one direct solve, where l2 = 0
    would spend a second in lstsq's SVD)."""
    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    train_split, test_split = tiny_split(rng, 300), tiny_split(rng, 100)
    configs = {
        "linear-2": TrainConfig(model="linear", epochs=2, lr=0.005, val_size=100),
        "exact": TrainConfig(model="linear", solver="exact", l2=1.0),
    }
    for name, config in configs.items():
        result = fit(config, MNIST, train_split, test_split)
        save_run(
            root / name,
            network=result.network,
            metrics=result.record.to_json(),
            config_toml=to_toml(config),
        )
    return root


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def fake_run(root: Path, name: str, **fields) -> Path:
    """A run directory with a weights.npz placeholder and a metrics.json of `fields`."""
    run = root / name
    run.mkdir(parents=True)
    (run / "weights.npz").write_bytes(b"")
    (run / "metrics.json").write_text(json.dumps(fields))
    return run


MLP = {
    "model": "mlp",
    "dataset": "fashion-mnist",
    "solver": "sgd",
    "test_accuracy": 0.9731,
    "val_accuracy": None,
    "seconds": 12.34,
    "created": "2026-11-26T10:15:00+00:00",
    "config": {"hidden": [256, 128], "loss": "cross-entropy", "epochs": 5},
}


def test_real_runs_are_summarised_with_their_own_numbers(real_runs):
    runs = {r.name: r for r in list_runs(real_runs)}
    assert set(runs) == {"linear-2", "exact"}, runs
    for name, r in runs.items():
        m = metrics(real_runs / name)
        assert r.error is None, r.error
        assert (r.model, r.dataset, r.solver) == (m["model"], m["dataset"], m["solver"])
        assert r.test_accuracy == m["test_accuracy"]
        assert r.val_accuracy == m["val_accuracy"]
        assert r.seconds == m["seconds"]
        assert r.created == datetime.fromisoformat(m["created"])
        assert r.loss == "squared" and r.hidden == ()
    assert runs["linear-2"].epochs == 2 and runs["linear-2"].val_accuracy is not None
    assert runs["exact"].epochs is None, "the exact solver has no epochs"


def test_table_lines_are_aligned_columns(real_runs, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(real_runs, root)
    fake_run(root, "mlp-1", **MLP)
    result = CliRunner().invoke(runs_command, [str(root), "--sort", "name"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "run",
        "model",
        "dataset",
        "loss",
        "epochs",
        "test",
        "val",
        "seconds",
        "created",
    ]
    assert [line.split()[0] for line in lines[1:]] == ["exact", "linear-2", "mlp-1"]
    assert lines[3].split() == [
        "mlp-1",
        "mlp",
        "256,128",
        "fashion-mnist",
        "cross-entropy",
        "5",
        "97.31%",
        "-",
        "12.3",
        "2026-11-26",
        "10:15",
    ]
    m = metrics(root / "linear-2")
    cells = lines[2].split()
    assert cells[4:7] == [
        "2",
        f"{100 * m['test_accuracy']:.2f}%",
        f"{100 * m['val_accuracy']:.2f}%",
    ]
    assert lines[1].split()[4] == "exact"
    for word in ("model", "dataset", "loss", "created"):  # text: aligned on the left
        start = lines[0].index(word)
        for line in lines:
            assert line[start - 2 : start] == "  " and line[start] != " ", (word, line)
    for word in ("epochs", "test", "val", "seconds"):  # numbers: aligned on the right
        end = lines[0].index(word) + len(word)
        for line in lines:
            assert line[end - 1] != " " and line[end : end + 1] in ("", " "), (
                word,
                line,
            )


def test_json_is_one_list_of_objects(real_runs):
    result = CliRunner().invoke(runs_command, [str(real_runs), "--json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)
    assert isinstance(runs, list) and len(runs) == 2
    by_name = {r["name"]: r for r in runs}
    m = metrics(real_runs / "linear-2")
    assert by_name["linear-2"]["test_accuracy"] == m["test_accuracy"]
    assert by_name["linear-2"]["epochs"] == 2 and by_name["linear-2"]["error"] is None
    assert by_name["exact"]["solver"] == "exact" and by_name["exact"]["epochs"] is None


def test_sorted_by_date_or_accuracy_broken_runs_last(tmp_path):
    times = ["2026-11-26T10:00:00+00:00", "2026-11-24T09:00:00", "2026-11-25T08:00:00Z"]
    for name, created, accuracy in zip("abc", times, (0.90, 0.85, 0.95), strict=True):
        fake_run(
            tmp_path, name, **{**MLP, "created": created, "test_accuracy": accuracy}
        )
    (tmp_path / "0-broken").mkdir()
    by_date = [r.name for r in list_runs(tmp_path)]
    by_accuracy = [r.name for r in list_runs(tmp_path, "accuracy")]
    assert by_date == ["b", "c", "a", "0-broken"], by_date
    assert by_accuracy == ["c", "a", "b", "0-broken"], by_accuracy
    result = CliRunner().invoke(runs_command, [str(tmp_path), "--sort", "accuracy"])
    assert [line.split()[0] for line in result.output.splitlines()[1:]] == by_accuracy


def write_metrics(content: bytes | str):
    def make(run: Path) -> None:
        data = content.encode() if isinstance(content, str) else content
        (run / "metrics.json").write_bytes(data)

    return make


def good(**changes):
    return write_metrics(json.dumps({**MLP, **changes}))


def fifo(run: Path) -> None:
    os.mkfifo(run / "metrics.json")


def huge(run: Path) -> None:
    with open(run / "metrics.json", "wb") as f:
        f.truncate(MAX_METRICS_BYTES + 1)  # sparse: costs no disk


@pytest.mark.parametrize(
    "make, reason",
    [
        (write_metrics("[1]"), "metrics.json holds a list, not an object"),
        (write_metrics('"hello"'), "metrics.json holds a string, not an object"),
        (write_metrics("null"), "metrics.json holds null, not an object"),
        (write_metrics("{"), "metrics.json is not JSON (Expecting property name"),
        (write_metrics(b"\xff\xfe\x00garbage"), "metrics.json is not"),
        (write_metrics("[" * 100_000), "metrics.json is nested too deeply to read"),
        (write_metrics("9" * 5000), "metrics.json holds a number too long to read"),
        (huge, "metrics.json is larger than 4 MiB"),
        (fifo, "metrics.json is not a regular file"),
        (lambda run: (run / "metrics.json").mkdir(), "is not a regular file"),
        (lambda run: None, "no metrics.json"),
        (good(config=[]), "config is a list, not an object"),
        (good(model=None), "model is missing"),
        (good(model="\x1b[31mred"), "model is a string, not a model name"),
        (good(test_accuracy=None), "test_accuracy is missing"),
        (good(test_accuracy=1.5), "test_accuracy is a number, not a fraction"),
        (good(test_accuracy=True), "test_accuracy is true, not a fraction"),
        (write_metrics('{"model": "x", "test_accuracy": NaN}'), "is not finite, not"),
        (good(seconds="fast"), "seconds is a string, not a number of seconds"),
        (good(created="yesterday"), "created is a string, not a time"),
        (good(config={"hidden": [0]}), "config.hidden is a list, not a list of layer"),
        (good(config={"hidden": "256"}), "config.hidden is a string, not a list"),
        (good(started_from={"epochs": -1}), "started_from.epochs is a number, not"),
    ],
)
def test_a_broken_run_is_listed_with_its_reason(tmp_path, make, reason):
    fake_run(tmp_path, "fine", **MLP)
    run = tmp_path / "bad"
    run.mkdir()
    (run / "weights.npz").write_bytes(b"")
    make(run)
    result = CliRunner().invoke(runs_command, [str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.exception is None, result.exception
    lines = result.output.splitlines()
    assert len(lines) == 3 and lines[1].split()[0] == "fine", lines
    assert lines[2].startswith("bad   broken: "), lines
    assert reason in lines[2], f"expected {reason!r} in {lines[2]!r}"
    out = CliRunner().invoke(runs_command, [str(tmp_path), "--json"])
    broken = json.loads(out.stdout)[-1]
    assert broken["name"] == "bad" and reason in broken["error"], broken


def test_a_run_without_weights_is_broken(tmp_path):
    run = fake_run(tmp_path, "r", **MLP)
    (run / "weights.npz").unlink()
    [summary] = list_runs(tmp_path)
    assert summary.error == "no weights.npz", summary


def test_hidden_staging_directories_and_files_are_skipped(tmp_path):
    fake_run(tmp_path, "r", **MLP)
    fake_run(tmp_path, ".r.abc123", **MLP)  # a run being written (helpers.save_run)
    (tmp_path / "notes.txt").write_text("not a run")
    assert [r.name for r in list_runs(tmp_path)] == ["r"]


def test_control_characters_in_a_name_are_shown_as_question_marks(tmp_path):
    fake_run(tmp_path, "a\nb\x1b[2J", **MLP)
    result = CliRunner().invoke(runs_command, [str(tmp_path)])
    assert result.output.splitlines()[1].startswith("a?b?[2J "), result.output
    out = CliRunner().invoke(runs_command, [str(tmp_path), "--json"])
    assert json.loads(out.stdout)[0]["name"] == "a\nb\x1b[2J"


def test_empty_directory(tmp_path):
    result = CliRunner().invoke(runs_command, [str(tmp_path)])
    assert result.exit_code == 0 and result.stdout == "", result.output
    assert result.stderr == f"No runs in {tmp_path}/ (mnist-train --out writes one).\n"
    out = CliRunner().invoke(runs_command, [str(tmp_path), "--json"])
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_dir_that_is_not_a_directory_is_a_usage_error(tmp_path, kind):
    path = tmp_path / "runs"
    if kind == "file":
        path.write_text("")
    result = CliRunner().invoke(runs_command, [str(path)])
    assert result.exit_code == 2, result.output
    last = result.output.splitlines()[-1]
    assert last.startswith("Error: Invalid value for '[DIR]': Directory"), last
    assert "Traceback" not in result.output


def test_default_dir_is_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_run(tmp_path / "runs", "r", **MLP)
    result = CliRunner().invoke(runs_command, [])
    assert result.exit_code == 0 and result.output.splitlines()[1].startswith("r ")


def test_help_has_an_example_and_version():
    result = CliRunner().invoke(runs_command, ["-h"])
    assert result.exit_code == 0 and "Example:" in result.output
    assert "--sort" in result.output and "--json" in result.output
    assert "0.1.0" in CliRunner().invoke(runs_command, ["--version"]).output


# the history that --init-from continues (the training itself: test_training_options.py)


def history_run(tmp_path: Path, history, model: str = "linear") -> Path:
    return fake_run(tmp_path, "earlier", model=model, history=history)


def entry(epoch: int, **changes) -> dict:
    return {
        "epoch": epoch,
        "train_loss": 0.5 / epoch,
        "monitor": "test",
        "monitor_accuracy": 0.8,
        "seconds": 0.1,
        **changes,
    }


def old_entry(epoch: int) -> dict:
    """A history entry as runs before the fixed keys wrote it."""
    e = entry(epoch)
    del e["monitor"]
    return {**e, "test_accuracy": e.pop("monitor_accuracy")}


def test_earlier_history_is_copied_key_by_key(tmp_path):
    history = [entry(1), entry(2, extra={"a": [1] * 100})]
    run = history_run(tmp_path, history)
    earlier = earlier_training(run, "linear", "test")
    assert earlier.epochs == 2 and earlier.run == str(run)
    assert earlier.history == (entry(1), entry(2)), "the extra key is not copied"
    assert earlier.to_json() == {"run": str(run), "epochs": 2}
    assert earlier_training(history_run(tmp_path / "x", []), "linear", "test") is None


def test_an_older_runs_history_is_continued_in_the_fixed_keys(tmp_path):
    run = history_run(tmp_path, [old_entry(1), old_entry(2)])
    assert earlier_training(run, "linear", "test").history == (entry(1), entry(2))
    with pytest.raises(MetricsError, match="does not report val accuracy"):
        earlier_training(run, "linear", "val")


@pytest.mark.parametrize(
    "history, model, monitor, reason",
    [
        ({"1": entry(1)}, "linear", "test", "history is an object, not a list"),
        ([entry(1), [2]], "linear", "test", "history[1] is a list, not an object"),
        ([entry(2)], "linear", "test", "history[0].epoch is not 1"),
        ([entry(1), entry(1)], "linear", "test", "history[1].epoch is not 2"),
        (
            [{**entry(1), "epoch": "1"}],
            "linear",
            "test",
            "history[0].epoch is a string",
        ),
        ([entry(1, train_loss=None)], "linear", "test", "train_loss is missing"),
        (
            [entry(1, monitor_accuracy=2)],
            "linear",
            "test",
            "monitor_accuracy is a number",
        ),
        ([entry(1, seconds=-1)], "linear", "test", "seconds is a number, not"),
        ([entry(1)], "linear", "val", "history[0] does not report val accuracy"),
        ([entry(1)], "softmax", "test", "of a linear model, not softmax"),
    ],
)
def test_a_malformed_earlier_history_is_refused(
    tmp_path, history, model, monitor, reason
):
    run = history_run(tmp_path, history)
    with pytest.raises(MetricsError) as e:
        earlier_training(run, model, monitor)
    assert reason in str(e.value), f"expected {reason!r} in {str(e.value)!r}"


def test_summary_counts_the_earlier_epochs(tmp_path):
    fake_run(tmp_path, "c", **{**MLP, "started_from": {"run": "x", "epochs": 10}})
    [summary] = list_runs(tmp_path)
    assert (summary.epochs, summary.earlier_epochs) == (15, 10), summary
    result = CliRunner().invoke(runs_command, [str(tmp_path)])
    assert result.output.splitlines()[1].split()[5] == "10+5", result.output
    assert replace(summary, created=None).to_json()["epochs"] == 15
    assert summary.created == datetime(2026, 11, 26, 10, 15, tzinfo=UTC)
