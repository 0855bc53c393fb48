"""The options several commands share, checked as they are parsed (a bad value exits 2), and the
data-loading call they configure: --cache-dir, --mirror, --timeout (with MNIST_MIRRORS).
The options that set a TrainConfig key are config_options.py."""

import functools
from pathlib import Path

import click

# the data package's fetching names are looked up when a command fetches (mnist_cli.data
# imports them on first use): mnist-predict, which only names datasets, never imports them
from mnist_cli import data as datasets
from mnist_cli.cli.source import DataOptions
from mnist_cli.data import DATASETS


def mirror_values(ctx, param, values):
    try:
        return tuple(datasets.normalize_mirror(v) for v in values)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


MAX_TIMEOUT = 3600.0  # an hour: beyond, a socket timeout overflows or means "never"


def timeout_value(ctx, param, value):
    if value is not None and not (0 < value <= MAX_TIMEOUT):  # NaN fails both
        raise click.BadParameter(
            f"must be a number of seconds > 0 and ≤ {MAX_TIMEOUT:g}, not {value}"
        )
    return value


def data_options(command):
    """--cache-dir, --mirror and --timeout, shared by every command that reads MNIST; the
    command receives them as one DataOptions, `source`."""

    @functools.wraps(command)
    def wrapper(*args, cache_dir, mirrors, timeout, **kwargs):
        return command(*args, source=DataOptions(cache_dir, mirrors, timeout), **kwargs)

    wrapper = click.option(
        "--timeout",
        type=float,
        callback=timeout_value,
        metavar="SECONDS",
        help="Abandon a download attempt when a mirror sends nothing for this long, or "
        "less than 1 KB/s averaged over this long; a stalled mirror is resumed once, then "
        "skipped for the rest of the run. Also the longest wait for another process's "
        "download lock. At most 3600. Default: 30.",
    )(wrapper)
    wrapper = click.option(
        "--mirror",
        "mirrors",
        multiple=True,
        callback=mirror_values,
        metavar="URL",
        help="Where to fetch MNIST: an http(s) URL, a file:// URL or a local directory. "
        "Repeatable, tried in order; replaces the built-in mirrors (and MNIST_MIRRORS).",
    )(wrapper)
    return click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Where verified data files are kept. Default: $MNIST_CACHE_DIR, "
        "else $XDG_CACHE_HOME/mnist-cli, else ~/.cache/mnist-cli.",
    )(wrapper)


def plots_option(command):
    """--plots, shared by mnist-train and mnist-eval."""
    return click.option(
        "--plots",
        "with_plots",
        is_flag=True,
        help="Also draw weights.png, curves.png and confusion.png into the run directory "
        "(needs matplotlib: `make dev` installs it).",
    )(command)


def dataset_option(help: str):
    """--dataset NAME, one of the catalogue's."""
    return click.option("--dataset", type=click.Choice(tuple(DATASETS)), help=help)
