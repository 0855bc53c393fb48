"""A run's metrics.json read back by mnist-eval as untrusted input (issue 13, item 15): what is
optional (its mirrors, its history) is ignored with one warning when it cannot be used, never
a traceback; mirrors are checked as --mirror checks them."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_cli.cli import eval_command
from mnist_cli.errors import MetricsError
from mnist_cli.nn import D, K
from mnist_cli.rundir.record import read_history, read_mirrors


@pytest.fixture
def run(tmp_path):
    """A run directory of zero linear weights; its metrics.json is each test's."""
    run = tmp_path / "run"
    run.mkdir()
    np.savez(
        run / "weights.npz",
        W=np.zeros((K, D), np.float32),
        b=np.zeros(K, np.float32),
        model=np.array("linear"),
        format_version=np.array(1),
    )
    return run


def evaluate(run, metrics, *args, cache):
    """mnist-eval on `run` with `metrics` as its metrics.json; the data is in the cache, so
    no mirror is needed (and none is given: the run's own are read back)."""
    text = metrics if isinstance(metrics, str) else json.dumps(metrics)
    (run / "metrics.json").write_text(text)
    return CliRunner().invoke(
        eval_command, [str(run), "--cache-dir", str(cache), *args]
    )


@pytest.mark.parametrize(
    "metrics, reason",
    [
        ([1], "metrics.json holds a list, not an object"),
        ('"hello"', "metrics.json holds a string, not an object"),
        ({"config": []}, "config is a list, not an object"),
        ({"config": {"mirrors": "abc"}}, "config.mirrors is a string, not a list of"),
        ({"config": {"mirrors": [1, 2]}}, "config.mirrors is a list, not a list of"),
        (
            {"config": {"mirrors": ["gopher://x"]}},
            "config.mirrors: mirror 'gopher://x': unsupported scheme",
        ),
    ],
)
def test_unusable_mirrors_are_ignored_with_a_warning(run, mnist_cache, metrics, reason):
    """mnist-eval without --plots: `[1]` was an AttributeError traceback, and "abc" became the
    three mirrors a, b and c."""
    result = evaluate(run, metrics, cache=mnist_cache)
    assert result.exit_code == 0, result.output
    warning = result.stderr.splitlines()[0]
    assert warning.startswith(f"Warning: {run}: {reason}"), warning
    assert warning.endswith("; using the built-in mirrors"), warning
    assert "accuracy 9.80%" in result.stdout, (
        result.stdout
    )  # zero weights: always class 0


def test_the_runs_own_mirrors_are_read_back_checked(tmp_path, mnist_server_url):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    metrics = {"config": {"mirrors": [str(mirror), mnist_server_url]}}
    assert read_mirrors(metrics) == (str(mirror.resolve()), mnist_server_url)
    assert read_mirrors({"config": {}}) == read_mirrors({}) == ()
    mirror.rmdir()
    bad = [
        (
            [str(mirror)],
            f"config.mirrors: mirror '{mirror}': {mirror} is not an existing",
        ),
        (["gopher://x"], "config.mirrors: mirror 'gopher://x': unsupported scheme"),
        ([1, 2], "config.mirrors is a list, not a list of mirrors"),
        (["http://x/\x1b[2J"], "config.mirrors is a list, not a list of mirrors"),
        (["http://x/"] * 17, "config.mirrors is a list, not a list of mirrors"),
    ]
    for mirrors, reason in bad:
        with pytest.raises(MetricsError) as e:
            read_mirrors({"config": {"mirrors": mirrors}})
        assert str(e.value).startswith(reason), (mirrors, str(e.value))


ENTRY = {"epoch": 1, "train_loss": 0.5, "monitor": "test", "seconds": 1.0}


@pytest.mark.parametrize(
    "history, reason",
    [
        ("abc", "history is a string, not a list"),
        ([1], "history[0] is a number, not an object"),
        ([{**ENTRY, "train_loss": None}], "history[0].train_loss is missing"),
        ([{**ENTRY, "train_loss": "0.5"}], "history[0].train_loss is a string, not a"),
        ([{**ENTRY, "epoch": "1"}], "history[0].epoch is a string, not an integer"),
        ([ENTRY, {**ENTRY, "epoch": 5}], "history[1].epoch is not 2"),
        ([{**ENTRY, "monitor": "train"}], "history[0].monitor is a string, not test"),
        (
            [{**ENTRY, "monitor_accuracy": 1.5}],
            "history[0].monitor_accuracy is a number, not a fraction",
        ),
        (
            [ENTRY, {**ENTRY, "epoch": 2, "monitor": "val"}],
            "history[1] does not report test accuracy",
        ),
    ],
)
def test_a_malformed_history_is_refused_with_its_reason(history, reason):
    with pytest.raises(MetricsError) as e:
        read_history({"history": history})
    assert str(e.value).startswith(reason), str(e.value)


def test_an_unusable_history_skips_the_curves_with_a_warning(run, mnist_cache):
    """--plots: the other pictures are drawn, curves.png is not, one warning says why (an
    epoch that is an object was a TypeError traceback, after weights.png was written)."""
    metrics = {"model": "linear", "history": [{**ENTRY, "epoch": {}}]}
    result = evaluate(run, metrics, "--plots", cache=mnist_cache)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (
        f"Warning: {run}: history[0].epoch is an object, not an integer; "
        "curves.png is not drawn"
    )
    assert sorted(p.name for p in run.glob("*.png")) == ["confusion.png", "weights.png"]


def test_a_null_accuracy_in_the_history_still_draws_the_curves(run, mnist_cache):
    """An epoch without an accuracy is a gap in the curve (plots.monitored_accuracy)."""
    history = [
        {**ENTRY, "epoch": 1, "monitor_accuracy": 0.5},
        {**ENTRY, "epoch": 2, "monitor_accuracy": None},
        {**ENTRY, "epoch": 3, "monitor_accuracy": 0.7},
    ]
    metrics = {"model": "linear", "history": history}
    result = evaluate(run, metrics, "--plots", cache=mnist_cache)
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.stderr, result.stderr
    assert (run / "curves.png").is_file()


def test_an_old_history_is_read_into_the_fixed_keys():
    old = [{"epoch": 1, "train_loss": 0.5, "val_accuracy": 0.8, "seconds": 2.0}]
    assert read_history({"history": old}) == (
        {
            "epoch": 1,
            "train_loss": 0.5,
            "monitor": "val",
            "monitor_accuracy": 0.8,
            "seconds": 2.0,
        },
    )
    with pytest.raises(MetricsError, match=r"history\[0\] reports no monitored"):
        read_history({"history": [{"epoch": 1, "train_loss": 0.5, "seconds": 1}]})
