"""`mnist-gradcheck`: the analytic gradients against float64 central differences (gradcheck.py)."""

import click
import numpy as np

from ..data import get_dataset, load_split
from ..gradcheck import (
    BlockCheck,
    H,
    Subject,
    check_gradients,
    random_layers,
    sample_batch,
)
from ..mlp import ACTIVATIONS, LOSSES, MAX_HIDDEN_LAYERS, MAX_UNITS
from ..models import MODEL_KINDS
from .common import command
from .options import data_options, dataset_option

MODELS = (*MODEL_KINDS, "mlp")


def positive_tol(ctx, param, value):
    if not (np.isfinite(value) and value > 0):
        raise click.BadParameter(f"must be a finite number > 0, not {value!r}")
    return value


def hidden_widths(ctx, param, value: str) -> tuple[int, ...]:
    """ "256" or "256,128": one width per hidden layer, each 1…MAX_UNITS."""
    parts = [part.strip() for part in value.split(",")]
    if not all(part.isdigit() for part in parts):
        raise click.BadParameter(
            f"must be a width or a comma list of widths such as 256,128, not {value!r}"
        )
    widths = tuple(int(part) for part in parts)
    if not all(1 <= w <= MAX_UNITS for w in widths) or len(widths) > MAX_HIDDEN_LAYERS:
        raise click.BadParameter(
            f"must be 1 to {MAX_HIDDEN_LAYERS} widths of 1 to {MAX_UNITS} units, "
            f"not {value!r}"
        )
    return widths


def subjects(
    model: str, loss: str | None, hidden: tuple[int, ...], activation: str
) -> list[Subject]:
    """What --model, --loss, --hidden and --activation ask for: with no --loss, both losses
    where they apply (cross-entropy needs a softmax output: not linear)."""
    if model == "linear" and loss == "cross-entropy":
        raise click.BadParameter(
            "cross-entropy needs a softmax output: use it with --model softmax, mlp "
            "or all",
            param_hint="'--loss'",
        )
    for name in ("hidden", "activation"):
        source = click.get_current_context().get_parameter_source(name)
        given = source != click.core.ParameterSource.DEFAULT
        if given and model not in ("mlp", "all"):
            raise click.BadParameter(
                f"applies to --model mlp (or all), not {model}",
                param_hint=f"'--{name}'",
            )
    chosen = []
    for kind in MODELS if model == "all" else (model,):
        for each in (loss,) if loss else LOSSES:
            if kind == "linear" and each == "cross-entropy":
                continue
            if kind == "mlp":
                chosen.append(Subject(kind, each, hidden, activation))
            else:
                chosen.append(Subject(kind, each))
    return chosen


@command(
    epilog="""\b
Example:
  mnist-gradcheck
  mnist-gradcheck --model mlp --loss cross-entropy --hidden 64,32 --activation tanh
  mnist-gradcheck --model softmax --samples 1000 --coords 500 --seed 3
  mnist-gradcheck --mirror ./data/mnist --tol 1e-8
""",
)
@click.option(
    "--model",
    type=click.Choice([*MODELS, "all"]),
    default="all",
    help="Whose gradient to check: linear, softmax, mlp, or all three. Default: all.",
)
@click.option(
    "--loss",
    type=click.Choice(LOSSES),
    default=None,
    help="The loss whose gradient to check. Default: both, where they apply "
    "(cross-entropy needs a softmax output: softmax and mlp, not linear).",
)
@click.option(
    "--hidden",
    default="32",
    callback=hidden_widths,
    help="The mlp's hidden layer widths, one number or a comma list (64,32); "
    "small, so that the check runs in a second or two. Default: 32.",
)
@click.option(
    "--activation",
    type=click.Choice(ACTIVATIONS),
    default="relu",
    help="The mlp's hidden units. Default: relu.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=100,
    help="How many MNIST training images, drawn at random, make the batch. Default: 100.",
)
@click.option(
    "--coords",
    type=click.IntRange(min=1),
    default=100,
    help="How many coordinates of each W (and of each hidden layer's b) to check, "
    "drawn at random (for the first layer among the pixels lit in the batch). Default: 100.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    help="Seed of the samples, the random weights, the coordinates and the directions. Default: 0.",
)
@click.option(
    "--tol",
    type=float,
    default=1e-6,
    callback=positive_tol,
    help="Largest relative error accepted; above it the command exits 1. Default: 1e-6.",
)
@dataset_option("Whose training images to check on. Default: mnist.")
@data_options
@click.option("-q", "--quiet", is_flag=True, help="No download progress bars.")
def gradcheck_command(
    model,
    loss,
    hidden,
    activation,
    samples,
    coords,
    seed,
    tol,
    dataset,
    data,
    quiet,
):
    """Check the analytic gradients against central finite differences, in float64.

    On --samples random MNIST training images and random weights, compares the analytic
    derivative a with n = (L(θ + hV) − L(θ − hV)) / 2h, for every layer: every coordinate
    of the output layer's b, --coords random coordinates of each W (and of each hidden
    layer's b), and one random direction over each W; prints the largest relative error
    |a − n| / max(|a|, |n|, 1 % of L) of each block.
    """
    chosen = subjects(model, loss, hidden, activation)
    dataset = get_dataset(dataset or "mnist")
    mirrors = data.chosen_mirrors() or None
    split = data.load(load_split, dataset, "train", mirrors=mirrors, quiet=quiet)
    if samples > len(split):
        raise click.BadParameter(
            f"must be at most {len(split):,}, the number of training images, "
            f"not {samples:,}",
            param_hint="'--samples'",
        )
    checks: list[tuple[Subject, BlockCheck]] = []
    for subject in chosen:
        # the same batch and draws for each model (and the same weights for linear/softmax)
        rng = np.random.default_rng(seed)
        X, Y = sample_batch(split.images, split.labels, samples, rng)  # (N, D), (N, K)
        layers = random_layers(subject, X, rng)
        found = check_gradients(subject, X, Y, layers, rng, coords=coords)
        checks += [(subject, c) for c in found]
    click.echo(
        f"{samples:,} {dataset.name} training images, random weights (seed {seed}), "
        f"float64, h = {H:.1e}"
    )
    if any(s.model == "mlp" for s in chosen):
        sizes = "-".join(map(str, chosen[-1].sizes))
        click.echo(f"mlp: {sizes}, {activation}")
    click.echo()
    click.echo(gradcheck_table(checks, tol))
    failed = [(s, c) for s, c in checks if not c.max_rel_error <= tol]
    if failed:
        s, c = failed[0]
        more = f" (and {len(failed) - 1} more blocks)" if len(failed) > 1 else ""
        raise click.ClickException(
            f"{s.model} ({s.loss}) {c.block}: the analytic gradient disagrees with "
            f"central differences at {c.worst}: analytic {c.analytic:.4e}, numerical "
            f"{c.numeric:.4e}, relative error {c.max_rel_error:.1e} > --tol {tol:g}{more}"
        )
    worst = max(c.max_rel_error for _, c in checks)
    click.echo(
        f"\nall {len(checks)} blocks agree with central differences: "
        f"max relative error {worst:.1e} <= --tol {tol:g}"
    )


def gradcheck_table(checks: list[tuple[Subject, BlockCheck]], tol: float) -> str:
    rows = [("model", "loss", "block", "compared", "max rel error", "at", "status")]
    rows += [
        (
            s.model,
            s.loss,
            c.block,
            c.what,
            f"{c.max_rel_error:.1e}",
            c.worst,
            "ok" if c.max_rel_error <= tol else "FAIL",
        )
        for s, c in checks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i == 4 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ).rstrip()
        for row in rows
    )
