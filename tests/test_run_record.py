"""metrics.json has one definition: training/record.RunRecord, which `fit` builds and
mnist-train writes, and whose fields the readers (rundir/checks.FIELDS) check by the same names.
"""

import json
from dataclasses import fields

import pytest
from click.testing import CliRunner

from mnist_cli.cli import train_command
from mnist_cli.errors import MetricsError
from mnist_cli.rundir.checks import FIELDS, field
from mnist_cli.rundir.listing import summary_of
from mnist_cli.training.record import FIELD_NAMES, RunRecord

# fields a run always has (the others may be null: no --val-size, not continued)
ALWAYS = set(FIELD_NAMES) - {"val_accuracy", "started_from"}


def test_the_readers_check_exactly_the_fields_the_writer_writes():
    assert FIELD_NAMES == tuple(f.name for f in fields(RunRecord))
    assert tuple(FIELDS) == FIELD_NAMES


def test_a_reader_cannot_ask_for_a_field_no_run_writes():
    with pytest.raises(KeyError):
        field({"test_acc": 0.9}, "test_acc")


def written(run_dir) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def assert_readable(m: dict) -> None:
    """Every field of what mnist-train wrote passes the readers' check, in RunRecord's order."""
    assert tuple(m) == FIELD_NAMES
    for name in FIELD_NAMES:
        value = field(
            m, name, None
        )  # raises MetricsError if the reader would refuse it
        assert value == m[name]
        assert value is not None or name not in ALWAYS, name


def test_what_mnist_train_writes_is_what_the_readers_accept(trained_runs):
    run_dir, _ = trained_runs["mini-linear"]
    m = written(run_dir)
    assert_readable(m)
    K = len(m["class_names"])
    assert len(m["per_class_accuracy"]) == K and len(m["confusion_matrix"]) == K
    assert summary_of(run_dir).test_accuracy == m["test_accuracy"]


def test_a_continued_run_with_a_validation_split_is_readable_too(tmp_path, mini_mnist):
    first, second = tmp_path / "first", tmp_path / "second"
    args = ["--model", "mlp", "--hidden", "8", "--epochs", "1", "-q", *mini_mnist]
    for out, more in ((first, []), (second, ["--init-from", str(first)])):
        result = CliRunner().invoke(
            train_command, [*args, "--val-size", "50", "--out", str(out), *more]
        )
        assert result.exit_code == 0, result.output
    m = written(second)
    assert_readable(m)
    assert m["started_from"]["epochs"] == 1 and 0 <= m["val_accuracy"] <= 1
    assert summary_of(second).epochs == 2


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("confusion_matrix", [[1, 2], [3]], "not a square table of counts"),
        ("confusion_matrix", [[1, -2], [3, 4]], "not a square table of counts"),
        ("per_class_accuracy", [0.5, 1.5], "not a list of fractions"),
        ("class_names", ["0", "a\nb"], "not a list of class names"),
        ("test_accuracy", 1.01, "not a fraction"),
        ("created", "yesterday", "not a time"),
        ("version", 3, "not a version"),
    ],
)
def test_a_field_that_is_not_what_the_writer_writes_is_refused_by_name(
    name, value, words
):
    with pytest.raises(MetricsError, match=f"^{name} is .*{words}"):
        field({name: value}, name)
