"""`mnist-eval`: saved weights (artifacts.py) scored on a split (data.py, metrics.py)."""

import json
from pathlib import Path

import click

from .. import plots
from ..artifacts import load_weights, read_metrics
from ..data import Dataset, load_split
from ..metrics import Evaluation, evaluate, format_confusion
from ..mlp import LOSSES
from ..network import Network
from .common import command, draw_plots, weights_dataset, wrote_line
from .options import data_options, dataset_option, plots_option


@command(
    epilog="""\b
Example:
  mnist-eval runs/softmax-20261126-101500
  mnist-eval runs/mlp-try --plots
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
def eval_command(path, split, dataset, data, as_json, quiet, with_plots):
    """Score saved weights: accuracy, per-class accuracy and the confusion matrix.

    PATH is a run directory written by mnist-train, or a weights.npz file.
    """
    weights = load_weights(path)
    kind, network = weights.kind, weights.network
    dataset = weights_dataset(path, weights, dataset)
    if with_plots:
        plots.require_matplotlib()
    mirrors = data.chosen_mirrors() or run_mirrors(path)
    scored = data.load(load_split, dataset, split, mirrors=mirrors, quiet=quiet)
    result = evaluate(network, scored.images, scored.labels)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "model": kind,
                    "hidden": list(network.hidden),
                    "activation": network.activation,
                    "split": split,
                    **result.to_json(),
                    "dataset": dataset.name,
                    "class_names": list(dataset.class_names),
                }
            )
        )
    else:
        click.echo(report(network, split, len(scored), result, dataset))
    if with_plots:
        run_dir = path if path.is_dir() else path.parent
        history = run_history(path, kind)
        loss = run_loss(path)
        written = draw_plots(run_dir, network, result, history, dataset, split, loss)
        click.echo(wrote_line(written), err=as_json)  # stdout stays one JSON object


def run_mirrors(path: Path) -> tuple[str, ...] | None:
    """The mirrors a run was trained with (from its metrics.json), so that mnist-eval on a run
    directory finds the data the same way; None (the built-in mirrors) otherwise."""
    metrics = read_metrics(path) if path.is_dir() else None
    mirrors = (metrics or {}).get("config", {}).get("mirrors")
    if not mirrors or not all(isinstance(m, str) for m in mirrors):
        return None
    return tuple(mirrors)


def run_loss(path: Path) -> str:
    """The loss the run PATH belongs to was trained on (its metrics.json), for curves.png."""
    metrics = read_metrics(path if path.is_dir() else path.parent) or {}
    config = metrics.get("config")
    loss = config.get("loss") if isinstance(config, dict) else None
    return loss if loss in LOSSES else "squared"


def report(
    network: Network, split: str, n: int, result: Evaluation, dataset: Dataset
) -> str:
    return (
        f"{network.describe()} on {dataset.name} {split} ({n:,} images): "
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
