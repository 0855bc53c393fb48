"""The options of mnist-train that choose the optimizer and its learning-rate schedule, each
value checked as the config file's would be (a bad value exits 2); which go with which
optimizer, and that --solver exact takes none, is resolve.py's to say."""

import click

from mnist_cli.cli.checked import config_option
from mnist_cli.config.choices import OPTIMIZERS, SCHEDULES

OPTIMIZER_OPTIONS = [
    click.option(
        "--optimizer",
        type=click.Choice(OPTIMIZERS),
        help="How the gradient g moves the weights θ (PyTorch's rules, docs/derivations.md): "
        "sgd θ ← θ − lr·g; momentum v ← μv + g, θ ← θ − lr·v; nesterov θ ← θ − lr·(g + μv); "
        "adam θ ← θ − lr·m̂/(√v̂ + ε). Default: sgd.",
    ),
    config_option(
        "--momentum", float, "μ of momentum and nesterov, in [0, 1). Default: 0.9."
    ),
    config_option(
        "--beta1", float, "adam's β₁ (its average of g), in [0, 1). Default: 0.9."
    ),
    config_option(
        "--beta2", float, "adam's β₂ (its average of g²), in [0, 1). Default: 0.999."
    ),
    config_option("--eps", float, "adam's ε, added to √v̂. Default: 1e-8."),
    config_option(
        "--weight-decay",
        float,
        "λ: add λθ to the gradient of every weight and bias (L2 regularisation, as "
        "PyTorch's SGD and Adam do). Default: 0.",
        metavar="LAMBDA",
    ),
    click.option(
        "--schedule",
        type=click.Choice(SCHEDULES),
        help="The learning rate over the run's T steps: constant, or cosine "
        "lr·½(1 + cos(π t/T)), from lr at the first step down towards 0. Default: constant.",
    ),
]


def optimizer_options(command):
    """--optimizer, --momentum, --beta1, --beta2, --eps, --weight-decay and --schedule."""
    for option in reversed(OPTIMIZER_OPTIONS):
        command = option(command)
    return command
