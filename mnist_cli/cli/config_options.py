"""The options of mnist-train that set a TrainConfig key (--model ... --val-size), each value
checked as the config file's would be (config.check_value; a bad value exits 2). Whether they go
together is resolve.py's to say, once the config file and the --init-from weights are known."""

from pathlib import Path

import click

from mnist_cli.cli.checked import config_option
from mnist_cli.cli.model_options import MODEL_OPTIONS
from mnist_cli.cli.options import dataset_option
from mnist_cli.config.choices import (
    INITS,
    SOLVERS,
)

# In the order --help lists them.
OPTIONS = [
    config_option(
        "--epochs", int, "Passes over the training images, at most 10,000. Default: 10."
    ),
    config_option("--batch-size", int, "Samples per SGD step. Default: 100."),
    config_option(
        "--lr",
        float,
        "Learning rate. Default: 0.5 for softmax and mlp, 0.005 for linear.",
    ),
    config_option(
        "--seed",
        int,
        "Seed of the shuffling and of --init normal; same seed, same weights. Default: 0.",
    ),
    click.option(
        "--init",
        type=click.Choice(INITS),
        help="Initial weights: zeros, or normal: N(0, 0.01²); for the mlp, normal is "
        "N(0, 2/fan_in) (relu) or N(0, 1/fan_in) (sigmoid, tanh), its only init. "
        "Default: zeros (mlp: normal).",
    ),
    click.option(
        "--init-from",
        type=click.Path(exists=True, path_type=Path),
        callback=lambda ctx, param, path: path and str(path.resolve()),
        metavar="RUN_OR_WEIGHTS",
        help="Start from saved weights (a run directory or weights.npz) instead of --init: "
        "a warm start, with a fresh optimizer state, shuffling and schedule and settings of "
        "its own (--resume RUN goes on exactly where RUN stopped, with RUN's settings). Model "
        "and dataset (and an mlp's --hidden and --activation) default to theirs and must "
        "match. From a run directory, --loss defaults to the run's, epochs are numbered after "
        "its own (a 10-epoch run continued with --epochs 5 prints epoch 11/15 to 15/15) and "
        "metrics.json's history starts with its epochs; from a weights.npz, at epoch 1.",
    ),
    dataset_option(
        "mnist (digits), fashion-mnist (clothes) or kmnist (cursive hiragana). "
        "Default: mnist."
    ),
    click.option(
        "--solver",
        type=click.Choice(SOLVERS),
        help="sgd: mini-batch SGD; exact: the closed-form least-squares optimum of the "
        "linear model (no epochs). Default: sgd.",
    ),
    config_option(
        "--l2",
        float,
        "Ridge term of --solver exact: minimise Σ‖ŷ − y‖² + l2 ‖W‖² (bias not "
        "penalised). Default: 0.",
    ),
    config_option(
        "--val-size",
        int,
        "Hold out N training images (chosen by --seed) for validation: epoch lines "
        "report val acc, and the test set is scored once, at the end. Default: 0.",
        metavar="N",
    ),
]


def config_options(command):
    """--model, --hidden, --activation, --channels, --kernel, --loss, --epochs, --batch-size, --lr, --seed, --init,
    --init-from, --dataset, --solver, --l2 and --val-size, in that order in --help; each None
    when not given, --hidden as a tuple of ints, --init-from as an absolute path (str)."""
    for option in reversed([*MODEL_OPTIONS, *OPTIONS]):
        command = option(command)
    return command
