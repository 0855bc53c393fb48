"""`mnist-gradcheck`: the analytic gradients against float64 central differences (gradcheck/)."""

import click

from mnist_cli.cli.checked import channel_counts, hidden_widths, positive_tol
from mnist_cli.cli.common import command
from mnist_cli.cli.options import data_options, dataset_option
from mnist_cli.config.choices import ACTIVATIONS, LOSSES
from mnist_cli.config.models import architecture
from mnist_cli.data import get_dataset, load_split
from mnist_cli.gradcheck.cases import (
    CNN_SAMPLES,
    MODELS,
    format_checks,
    run_checks,
    subjects,
)
from mnist_cli.gradcheck.check import H


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
    help="Whose gradient to check: linear, softmax, mlp, cnn, or all four. Default: all.",
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
    callback=hidden_widths,
    help="The mlp's hidden layer widths, one number or a comma list (64,32); "
    "small, so that the check runs in a second or two. Default: 32.",
)
@click.option(
    "--activation",
    type=click.Choice(ACTIVATIONS),
    help="The mlp's hidden units. Default: relu.",
)
@click.option(
    "--channels", callback=channel_counts, help="The cnn's blocks. Default: 4,6."
)
@click.option("--kernel", type=click.IntRange(1, 27), help="The cnn's k. Default: 5.")
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
    channels,
    kernel,
    samples,
    coords,
    seed,
    tol,
    dataset,
    source,
    quiet,
):
    """Check the analytic gradients against central finite differences, in float64.

    On --samples random MNIST training images and random weights, compares the analytic
    derivative a with n = (L(θ + hV) − L(θ − hV)) / 2h, for every layer: every coordinate
    of the output layer's b, --coords random coordinates of each W (and of each hidden
    layer's b), and one random direction over each W; prints the largest relative error
    |a − n| / max(|a|, |n|, 1 % of L) of each block.
    """
    chosen = subjects(model, loss, hidden, activation, channels, kernel)
    dataset = get_dataset(dataset or "mnist")
    mirrors = source.chosen_mirrors() or None
    split = source.load(load_split, dataset, "train", mirrors=mirrors, quiet=quiet)
    if samples > len(split):
        raise click.BadParameter(
            f"must be at most {len(split):,}, the number of training images, "
            f"not {samples:,}",
            param_hint="'--samples'",
        )
    checks = run_checks(
        chosen, split.images, split.labels, samples=samples, coords=coords, seed=seed
    )
    click.echo(
        f"{samples:,} {dataset.name} training images, random weights (seed {seed}), "
        f"float64, h = {H:.1e}"
    )
    for s in {s.sizes: s for s in chosen if s.model == "mlp"}.values():
        click.echo(f"mlp: {'-'.join(map(str, s.sizes))}, {s.activation}")
    for s in {s.channels: s for s in chosen if s.model == "cnn"}.values():
        click.echo(
            f"cnn: {architecture(s)}, on the first {min(samples, CNN_SAMPLES)} images"
        )
    click.echo()
    click.echo(format_checks(checks, tol))
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
