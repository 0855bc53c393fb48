"""`mnist-gradcheck`: the analytic gradients against float64 central differences (gradcheck.py)."""

import click
import numpy as np

from ..data import get_dataset, load_split
from ..gradcheck import BlockCheck, H, check_gradients, random_params, sample_batch
from ..models import MODEL_KINDS
from .common import command
from .options import data_options, dataset_option


def positive_tol(ctx, param, value):
    if not (np.isfinite(value) and value > 0):
        raise click.BadParameter(f"must be a finite number > 0, not {value!r}")
    return value


@command(
    epilog="""\b
Example:
  mnist-gradcheck
  mnist-gradcheck --model softmax --samples 1000 --coords 500 --seed 3
  mnist-gradcheck --mirror ./data/mnist --tol 1e-8
""",
)
@click.option(
    "--model",
    type=click.Choice([*MODEL_KINDS, "all"]),
    default="all",
    show_default=True,
    help="Whose gradient to check: linear, softmax, or both.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="How many MNIST training images, drawn at random, make the batch.",
)
@click.option(
    "--coords",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="How many coordinates of W to check, drawn at random among the pixels "
    "lit in the batch.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the samples, the random weights, the coordinates and the direction.",
)
@click.option(
    "--tol",
    type=float,
    default=1e-6,
    show_default=True,
    callback=positive_tol,
    help="Largest relative error accepted; above it the command exits 1.",
)
@dataset_option("Whose training images to check on. Default: mnist.")
@data_options
@click.option("-q", "--quiet", is_flag=True, help="No download progress bars.")
def gradcheck_command(model, samples, coords, seed, tol, dataset, data, quiet):
    """Check the analytic gradients against central finite differences, in float64.

    On --samples random MNIST training images and random weights, compares the analytic
    derivative a with n = (L(θ + hV) − L(θ − hV)) / 2h for every coordinate of b, --coords
    random coordinates of W, and one random direction over all of W, and prints the largest
    relative error |a − n| / max(|a|, |n|, 1 % of L) of each block.
    """
    dataset = get_dataset(dataset or "mnist")
    mirrors = data.chosen_mirrors() or None
    split = data.load(load_split, dataset, "train", mirrors=mirrors, quiet=quiet)
    if samples > len(split):
        raise click.BadParameter(
            f"must be at most {len(split):,}, the number of training images, "
            f"not {samples:,}",
            param_hint="'--samples'",
        )
    kinds = MODEL_KINDS if model == "all" else (model,)
    checks: list[tuple[str, BlockCheck]] = []
    for kind in kinds:
        # the same batch, weights and draws for each model
        rng = np.random.default_rng(seed)
        X, Y = sample_batch(split.images, split.labels, samples, rng)  # (N, D), (N, K)
        params = random_params(rng)
        checks += [
            (kind, c) for c in check_gradients(kind, X, Y, params, rng, coords=coords)
        ]
    click.echo(
        f"{samples:,} {dataset.name} training images, random weights (seed {seed}), "
        f"float64, h = {H:.1e}\n"
    )
    click.echo(gradcheck_table(checks, tol))
    failed = [(kind, c) for kind, c in checks if not c.max_rel_error <= tol]
    if failed:
        kind, c = failed[0]
        more = f" (and {len(failed) - 1} more blocks)" if len(failed) > 1 else ""
        raise click.ClickException(
            f"{kind} {c.block}: the analytic gradient disagrees with central differences "
            f"at {c.worst}: analytic {c.analytic:.4e}, numerical {c.numeric:.4e}, "
            f"relative error {c.max_rel_error:.1e} > --tol {tol:g}{more}"
        )
    worst = max(c.max_rel_error for _, c in checks)
    click.echo(
        f"\nall {len(checks)} blocks agree with central differences: "
        f"max relative error {worst:.1e} <= --tol {tol:g}"
    )


def gradcheck_table(checks: list[tuple[str, BlockCheck]], tol: float) -> str:
    rows = [("model", "block", "compared", "max rel error", "at", "status")]
    rows += [
        (
            kind,
            c.block,
            c.what,
            f"{c.max_rel_error:.1e}",
            c.worst,
            "ok" if c.max_rel_error <= tol else "FAIL",
        )
        for kind, c in checks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i == 3 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ).rstrip()
        for row in rows
    )
