"""What the commands share: error reporting, signal handling, the data options, progress bars.

Library errors (MnistCliError) become one `Error: ...` line and exit 1; bad option values exit 2;
Ctrl-C exits 130 and SIGTERM 143, each with one line and after every `finally` block has cleaned
up (temp files, staging directories). Progress bars go to stderr, and only when stderr is a
terminal; results go to stdout.
"""

import functools
import math
import os
import signal
import sys
import threading
from pathlib import Path

import click

from ..config import (
    check_value,
)
from ..data import (
    DATASETS,
    Dataset,
    FetchPolicy,
    default_cache_dir,
    get_dataset,
    normalize_mirror,
    parse_mirrors,
)
from ..errors import MnistCliError, WeightsError
from ..metrics import Evaluation

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Terminated(BaseException):
    """Raised by the SIGTERM handler: unwinds like KeyboardInterrupt, through every `finally`."""


def raise_terminated(signum, frame):
    raise Terminated


def reports_errors(command):
    """Turn library errors into one line and exit 1, Ctrl-C into exit 130, SIGTERM into 143."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, raise_terminated) if main else None
        try:
            return command(*args, **kwargs)
        except MnistCliError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("\nInterrupted.", err=True)
            sys.exit(130)
        except Terminated:
            click.echo("Terminated.", err=True)
            sys.exit(143)
        finally:
            if main:  # signal handlers can only be set from the main thread
                signal.signal(signal.SIGTERM, previous)

    return wrapper


def option_value(key: str):
    """A click callback that checks an option against the config rules (exit 2 if invalid)."""

    def callback(ctx, param, value):
        if value is None:
            return None
        try:
            return check_value(key, value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None

    return callback


def mirror_values(ctx, param, values):
    try:
        return tuple(normalize_mirror(v) for v in values)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def env_mirrors() -> tuple[str, ...]:
    """MNIST_MIRRORS (comma-separated), checked like --mirror; () when unset."""
    value = os.environ.get("MNIST_MIRRORS", "").strip()
    if not value:
        return ()
    try:
        return tuple(normalize_mirror(m) for m in parse_mirrors(value))
    except ValueError as e:
        raise click.UsageError(f"MNIST_MIRRORS: {e}") from None


def timeout_value(ctx, param, value):
    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"must be a finite number of seconds > 0, not {value}")
    return value


def fetch_policy(timeout: float | None) -> FetchPolicy:
    """The default retries and timeouts, with --timeout as the read (and at most the connect)
    timeout."""
    if timeout is None:
        return FetchPolicy()
    default = FetchPolicy()
    return FetchPolicy(
        connect_timeout=min(default.connect_timeout, timeout), read_timeout=timeout
    )


def cache_root(cache_dir: Path | None) -> Path:
    return cache_dir if cache_dir else default_cache_dir(os.environ)


def show_bars(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def download_bar(desc: str, total: int | None):
    from tqdm import tqdm

    return tqdm(
        desc=desc, total=total, unit="B", unit_scale=True, leave=False, file=sys.stderr
    )


def warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


def data_options(command):
    """--cache-dir, --mirror and --timeout, shared by every command that reads MNIST."""
    command = click.option(
        "--timeout",
        type=float,
        callback=timeout_value,
        metavar="SECONDS",
        help="Abandon a download attempt when a mirror sends nothing for this long "
        "(it is retried, then the next mirror is tried). Default: 30.",
    )(command)
    command = click.option(
        "--mirror",
        "mirrors",
        multiple=True,
        callback=mirror_values,
        metavar="URL",
        help="Where to fetch MNIST: an http(s) URL, a file:// URL or a local directory. "
        "Repeatable, tried in order; replaces the built-in mirrors (and MNIST_MIRRORS).",
    )(command)
    return click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Where verified data files are kept. Default: $MNIST_CACHE_DIR, "
        "else $XDG_CACHE_HOME/mnist-cli, else ~/.cache/mnist-cli.",
    )(command)


def plots_option(command):
    """--plots, shared by mnist-train and mnist-eval."""
    return click.option(
        "--plots",
        "with_plots",
        is_flag=True,
        help="Also draw weights.png, curves.png and confusion.png into the run directory "
        "(needs the plots extra: pip install 'mnist-cli[plots]').",
    )(command)


def plot_title(kind: str, dataset: str, split: str, result: Evaluation) -> str:
    return f"{kind} on {dataset} {split}: accuracy {100 * result.accuracy:.2f}%"


def wrote_line(paths: list[Path]) -> str:
    return "wrote " + ", ".join(str(p) for p in paths)


def weights_dataset(path: Path, trained_on: str, requested: str | None) -> Dataset:
    """The dataset of weights at `path` (trained on `trained_on`); --dataset may only confirm it."""
    if trained_on not in DATASETS:
        raise WeightsError(
            f"{path}: trained on unknown dataset {trained_on!r} "
            f"(this mnist-cli knows {', '.join(DATASETS)}); upgrade mnist-cli"
        )
    if requested and requested != trained_on:
        raise click.ClickException(
            f"{path} was trained on {trained_on}, not {requested}; "
            f"drop --dataset or give --dataset {trained_on}"
        )
    return get_dataset(trained_on)


def dataset_option(help: str):
    """--dataset NAME, one of the catalogue's."""
    return click.option("--dataset", type=click.Choice(tuple(DATASETS)), help=help)
