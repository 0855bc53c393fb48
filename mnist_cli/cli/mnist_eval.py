"""`mnist-eval`: saved weights (rundir/weights.py) scored on a split (mnist_cli/data/, fast/scoring.py)."""

import json
from pathlib import Path

import click

from mnist_cli.cli.common import (
    command,
    draw_plots,
    require_plots,
    warn,
    weights_dataset,
    wrote_line,
)
from mnist_cli.cli.options import data_options, dataset_option, plots_option
from mnist_cli.data import Dataset, load_split
from mnist_cli.errors import MetricsError
from mnist_cli.fast.threads import blas_threads
from mnist_cli.metrics import Evaluation, evaluate, format_confusion
from mnist_cli.nn.architecture import activation_of, describe, hidden_of
from mnist_cli.nn.network import Network
from mnist_cli.rundir.checks import field
from mnist_cli.rundir.record import read_history, read_metrics, read_mirrors, run_loss
from mnist_cli.rundir.resumable import unfinished
from mnist_cli.rundir.weights import METRICS, WEIGHTS, load_weights


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
    help="Which MNIST split to score. Default: test.",
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
def eval_command(path, split, dataset, source, as_json, quiet, with_plots):
    """Score saved weights: accuracy, per-class accuracy and the confusion matrix.

    PATH is a run directory written by mnist-train, or a weights.npz file. An unfinished
    run (interrupted, see mnist-train --resume) is scored by its last checkpoint, and said so.
    """
    stopped = unfinished(path)  # an interrupted run: its last checkpoint is scored
    weights = stopped[1] if stopped else load_weights(path)
    kind, network = weights.kind, weights.network
    if stopped and not as_json:
        click.echo(
            f"unfinished: {stopped[0].line(path)}; its last checkpoint is scored"
        )
    dataset = weights_dataset(path, weights, dataset)
    if with_plots:
        require_plots()
    mirrors = source.chosen_mirrors() or run_mirrors(path)
    scored = source.load(load_split, dataset, split, mirrors=mirrors, quiet=quiet)
    with blas_threads("score"):
        result = evaluate(network, scored.images, scored.labels)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "model": kind,
                    "hidden": list(hidden_of(network)),
                    "activation": activation_of(network),
                    "split": split,
                    **result.to_json(),
                    "dataset": dataset.name,
                    "class_names": list(dataset.class_names),
                    "unfinished": stopped and [stopped[0].epoch, stopped[0].epochs],
                },
                allow_nan=False,
            )
        )
    else:
        click.echo(report(network, split, len(scored), result, dataset))
    if with_plots:
        run_dir = path if path.is_dir() else path.parent
        history = run_history(path, kind)
        loss = run_loss(path if path.is_dir() else path.parent) or "squared"
        digit = scored.images[0]  # features.png's, for a cnn
        written = draw_plots(
            run_dir, network, result, history, dataset, split, loss, digit
        )
        click.echo(wrote_line(written), err=as_json)  # stdout stays one JSON object


def run_mirrors(path: Path) -> tuple[str, ...] | None:
    """The mirrors a run was trained with (from its metrics.json), so that mnist-eval on a run
    directory finds the data the same way; None (the built-in mirrors) otherwise, with a
    warning when its metrics.json cannot be used."""
    if not path.is_dir() or not (path / METRICS).exists():
        return None
    try:
        return read_mirrors(read_metrics(path)) or None
    except MetricsError as e:
        warn(f"{path}: {e}; using the built-in mirrors")
        return None


def report(
    network: Network, split: str, n: int, result: Evaluation, dataset: Dataset
) -> str:
    return (
        f"{describe(network)} on {dataset.name} {split} ({n:,} images): "
        f"accuracy {100 * result.accuracy:.2f}%\n\n"
        + format_confusion(result.confusion_matrix, dataset.class_names)
    )


def run_history(path: Path, kind: str) -> list[dict] | None:
    """The per-epoch history of the run PATH belongs to (a run directory, or the weights.npz
    inside one), if its metrics.json has one for this model; None otherwise, with a warning
    when its metrics.json cannot be used."""
    if path.is_file() and path.name != WEIGHTS:
        return None
    run_dir = path if path.is_dir() else path.parent
    if not (run_dir / METRICS).exists():
        return None
    try:
        metrics = read_metrics(run_dir)
        if field(metrics, "model", None) != kind:
            return None
        return list(read_history(metrics)) or None
    except MetricsError as e:
        warn(f"{run_dir}: {e}; curves.png is not drawn")
        return None
