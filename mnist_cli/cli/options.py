"""The options several commands share, checked as they are parsed (a bad value exits 2), and the
data-loading call they configure: --cache-dir, --mirror, --timeout (with MNIST_MIRRORS).
The options that set a TrainConfig key are config_options.py."""

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

# the data package's fetching names are looked up when a command fetches (mnist_cli.data
# imports them on first use): mnist-predict, which only names datasets, never imports them
from mnist_cli import data as datasets
from mnist_cli.cli.common import warn
from mnist_cli.cli.progress import download_bar, show_bars
from mnist_cli.data import DATASETS, Dataset
from mnist_cli.errors import DownloadError


def mirror_values(ctx, param, values):
    try:
        return tuple(datasets.normalize_mirror(v) for v in values)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def env_mirrors() -> tuple[str, ...]:
    """MNIST_MIRRORS (comma-separated), checked like --mirror; () when unset."""
    value = os.environ.get("MNIST_MIRRORS", "").strip()
    if not value:
        return ()
    try:
        return datasets.parse_mirrors(value)
    except ValueError as e:
        raise click.UsageError(f"MNIST_MIRRORS: {e}") from None


MAX_TIMEOUT = 3600.0  # an hour: beyond, a socket timeout overflows or means "never"


def timeout_value(ctx, param, value):
    if value is not None and not (0 < value <= MAX_TIMEOUT):  # NaN fails both
        raise click.BadParameter(
            f"must be a number of seconds > 0 and ≤ {MAX_TIMEOUT:g}, not {value}"
        )
    return value


def fetch_policy(timeout: float | None) -> "datasets.FetchPolicy":
    """The default retries and timeouts, with --timeout as the read (and at most the connect)
    timeout."""
    if timeout is None:
        return datasets.FetchPolicy()
    default = datasets.FetchPolicy()
    return datasets.FetchPolicy(
        connect_timeout=min(default.connect_timeout, timeout), read_timeout=timeout
    )


@dataclass(frozen=True)
class DataOptions:
    """--cache-dir, --mirror and --timeout as given: where and how a command fetches data."""

    cache_dir: Path | None
    mirrors: tuple[str, ...]  # normalized; () when --mirror is not given
    timeout: float | None

    def chosen_mirrors(self) -> tuple[str, ...]:
        """--mirror, else MNIST_MIRRORS (read only then), else () for none chosen."""
        return self.mirrors or env_mirrors()

    def load(self, loader: Callable, *args, mirrors: Sequence[str] | None, quiet: bool):
        """`loader(*args)` (data.load_split or data.load_dataset) from `mirrors`, with the
        cache, download bars (unless quiet), warnings and fetch policy of the command line."""
        try:
            return loader(
                *args,
                cache_root=self.cache_dir or datasets.default_cache_dir(os.environ),
                mirrors=mirrors,
                progress=download_bar if show_bars(quiet) else None,
                on_warning=warn,
                policy=fetch_policy(self.timeout),
            )
        except DownloadError as e:
            raise DownloadError(f"{e}{bundled_copy_hint(args[0], mirrors)}") from None


# the MNIST copy bundled with the repository, as a command run from its top folder sees it
BUNDLED = Path("data") / "mnist"


def bundled_copy_hint(dataset: Dataset, mirrors: Sequence[str] | None) -> str:
    """When every mirror failed for MNIST and the command runs from the repository, where the
    bundled copy is: " From this repository ...", else ""."""
    bundled = BUNDLED.resolve()
    first = dataset.files[0].name
    if dataset.name != "mnist" or not (bundled / f"{first}.gz").is_file():
        return ""
    if any(Path(m).resolve() == bundled for m in mirrors or () if "://" not in m):
        return ""  # it was tried, and failed too
    return (
        f" From this repository, the bundled copy works offline: --mirror {BUNDLED} "
        "(or --config configs/default.toml)."
    )


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
