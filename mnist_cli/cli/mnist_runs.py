"""`mnist-runs`: the run directories of a folder (rundir/listing.py), one aligned line each, or JSON."""

import contextlib
import json
from pathlib import Path

import click

from mnist_cli import __version__
from mnist_cli.cli.common import CONTEXT, reports_errors
from mnist_cli.cli.runs_table import table
from mnist_cli.rundir.listing import SORTS, list_runs
from mnist_cli.rundir.stale import clean_stale


@click.command(
    context_settings=CONTEXT,
    epilog="""\b
Example:
  mnist-runs
  mnist-runs runs/ --sort accuracy
  mnist-runs --json
""",
)
@click.argument(
    "directory",
    metavar="[DIR]",
    default="runs",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "--sort",
    type=click.Choice(SORTS),
    default="date",
    help="Order of the lines: date (oldest first), accuracy (best test accuracy first) "
    "or name. Unreadable runs come last. Default: date.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON list of objects (accuracies as fractions, times in ISO 8601) "
    "instead of the table.",
)
@click.version_option(__version__, "-V", "--version", package_name="mnist-cli")
@reports_errors
def runs_command(directory, sort, as_json):
    """List the runs in DIR (default: runs/), one line per run directory.

    Each line shows the model (with its hidden sizes), dataset, loss, epochs (10+5: five more
    from a run of ten, by --init-from), the test and validation accuracy, the training time
    and when the run was written (UTC). An unfinished run is listed as "interrupted at
    epoch 3/10" with the command that resumes it; a directory whose metrics.json cannot be
    read, as broken, with the reason. What killed runs left in DIR (hidden staging
    directories no live run holds) is removed first.
    """
    with contextlib.suppress(OSError):  # a courtesy: listing does not need it
        clean_stale(directory)
    runs = list_runs(directory, sort)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in runs], indent=2, allow_nan=False))
    elif runs:
        click.echo(table(runs))
    else:
        click.echo(f"No runs in {directory}/ (mnist-train --out writes one).", err=True)
