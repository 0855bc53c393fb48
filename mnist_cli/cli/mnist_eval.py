"""`mnist-eval`: saved weights (artifacts.py) scored on a split (data.py, metrics.py)."""

import json
from pathlib import Path

import click

from .. import __version__, plots
from ..artifacts import load_weights, read_metrics
from ..data import Dataset, load_split
from ..metrics import Evaluation, evaluate, format_confusion
from .common import (
    CONTEXT,
    cache_root,
    data_options,
    dataset_option,
    download_bar,
    env_mirrors,
    fetch_policy,
    plot_title,
    plots_option,
    reports_errors,
    show_bars,
    warn,
    weights_dataset,
    wrote_line,
)


@click.command(
    context_settings=CONTEXT,
    epilog="""\b
Example:
  mnist-eval runs/softmax-20261126-101500
  mnist-eval runs/linear-try/weights.npz --split train --json
  mnist-eval runs/fashion-try --dataset fashion-mnist
""",
)
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--split",
    type=click.Choice(["test", "train"]),
    default="test",
    show_default=True,
    help="Which MNIST split to score.",
)
@dataset_option(
    "The dataset to score on. Default: the one the weights were trained on "
    "(any other is an error)."
)
@data_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object instead of tables."
)
@click.option("-q", "--quiet", is_flag=True, help="No download progress bars.")
@plots_option
@click.version_option(__version__, "-V", "--version", package_name="mnist-cli")
@reports_errors
def eval_command(
    path, split, dataset, cache_dir, mirrors, timeout, as_json, quiet, with_plots
):
    """Score saved weights: accuracy, per-class accuracy and the confusion matrix.

    PATH is a run directory written by mnist-train, or a weights.npz file.
    """
    kind, params, trained_on = load_weights(path)
    dataset = weights_dataset(path, trained_on, dataset)
    if with_plots:
        plots.require_matplotlib()
    data = load_split(
        dataset,
        split,
        cache_root(cache_dir),
        mirrors or env_mirrors() or run_mirrors(path),
        progress=download_bar if show_bars(quiet) else None,
        on_warning=warn,
        policy=fetch_policy(timeout),
    )
    result = evaluate(params, data.images, data.labels)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "model": kind,
                    "split": split,
                    **result.to_json(),
                    "dataset": dataset.name,
                    "class_names": list(dataset.class_names),
                }
            )
        )
    else:
        click.echo(report(kind, split, len(data), result, dataset))
    if with_plots:
        run_dir = path if path.is_dir() else path.parent
        written = plots.write_plots(
            run_dir,
            params.W,
            result.confusion_matrix,
            run_history(path, kind),
            class_names=dataset.class_names,
            title=plot_title(kind, dataset.name, split, result),
            confusion_name="confusion.png"
            if split == "test"
            else f"confusion-{split}.png",
        )
        click.echo(wrote_line(written), err=as_json)  # stdout stays one JSON object


def run_mirrors(path: Path) -> tuple[str, ...] | None:
    """The mirrors a run was trained with (from its metrics.json), so that mnist-eval on a run
    directory finds the data the same way; None (the built-in mirrors) otherwise."""
    metrics = read_metrics(path) if path.is_dir() else None
    mirrors = (metrics or {}).get("config", {}).get("mirrors")
    if not mirrors or not all(isinstance(m, str) for m in mirrors):
        return None
    return tuple(mirrors)


def report(kind: str, split: str, n: int, result: Evaluation, dataset: Dataset) -> str:
    return (
        f"{kind} on {dataset.name} {split} ({n:,} images): "
        f"accuracy {100 * result.accuracy:.2f}%\n\n"
        + format_confusion(result.confusion_matrix, dataset.class_names)
    )


def run_history(path: Path, kind: str) -> list[dict] | None:
    """The per-epoch history of the run PATH belongs to (a run directory, or the weights.npz
    inside one), if its metrics.json has one for this model; None otherwise."""
    if path.is_file() and path.name != "weights.npz":
        return None
    metrics = read_metrics(path if path.is_dir() else path.parent) or {}
    history = metrics.get("history")
    if metrics.get("model") != kind or not isinstance(history, list):
        return None
    valid = all(
        isinstance(h, dict) and "epoch" in h and "train_loss" in h for h in history
    )
    return history if valid else None
