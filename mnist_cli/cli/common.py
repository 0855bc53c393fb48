"""What every command shares: one decorator for -h, -V and error reporting, and output helpers.

Library errors (MnistCliError) become one `Error: ...` line and exit 1, OptionsError exit 2;
Ctrl-C exits 130 and SIGTERM 143, each with one line once every `finally` block has cleaned up
(signals.py). Results go to stdout; warnings and progress bars (progress.py) to stderr.
"""

import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mnist_cli import __version__
from mnist_cli.cli.signals import Terminated, handled, stop_code, stop_line
from mnist_cli.data import DATASETS, Dataset, get_dataset
from mnist_cli.errors import (
    MissingExtraError,
    MnistCliError,
    OptionsError,
    TrainingDivergedError,
    WeightsError,
    shown,
)
from mnist_cli.nn.architecture import (
    dense_params,
    describe,
    feature_maps,
    hidden_of,
    kind_of,
)
from mnist_cli.rundir.weights import Weights

if TYPE_CHECKING:  # for the hints: mnist-predict starts without the scoring modules
    import numpy as np

    from mnist_cli.metrics import Evaluation
    from mnist_cli.nn.network import Network

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def command(epilog: str):
    """A click command with -h/--help, the help width, `epilog` (its Example: block),
    -V/--version (listed last) and the error handling of reports_errors."""

    def decorate(function):
        cli = click.command(context_settings=CONTEXT, epilog=epilog)
        version = click.version_option(
            __version__, "-V", "--version", package_name="mnist-cli"
        )
        return version(cli(reports_errors(function)))

    return decorate


def reports_errors(command):
    """Library errors into one line and exit 1 (OptionsError: usage, 2); signals.py's stops."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            with handled():
                return command(*args, **kwargs)
        except OptionsError as e:
            if e.option:  # names that are not UTF-8: \xNN, as everywhere (shown)
                hint = f"'{e.option}'" + (f" (config key {e.key})" if e.key else "")
                raise click.BadParameter(shown(str(e)), param_hint=hint) from None
            raise click.UsageError(shown(str(e))) from None
        # the library says what; the CLI, which option
        except TrainingDivergedError as e:
            raise click.ClickException(shown(f"{e}; try a smaller --lr")) from None
        except MnistCliError as e:
            raise click.ClickException(shown(str(e))) from None
        except (KeyboardInterrupt, Terminated) as stop:
            click.echo(stop_line(stop), err=True)
            sys.exit(stop_code(stop))

    return wrapper


def warn(message: str) -> None:
    click.echo(f"Warning: {shown(message)}", err=True)


def require_plots() -> None:
    """MissingExtraError naming --plots unless matplotlib can be imported. plots.py (and
    matplotlib inside it) only when --plots asks: a command without it starts without them."""
    from mnist_cli import plots

    try:  # the library says what is missing; the CLI, which option
        plots.require_matplotlib()
    except MissingExtraError as e:
        raise MissingExtraError(f"--plots: {e}") from None


def draw_plots(
    run_dir: Path,
    network: "Network",
    result: "Evaluation",
    history: list[dict] | None,
    dataset: Dataset,
    split: str = "test",
    loss: str = "squared",
    digit: "np.ndarray | None" = None,
) -> list[Path]:
    """weights.png (the first layer), curves.png (with a history of `loss`), the confusion
    matrix of `result`, the evaluation on `split`, and for a cnn features.png (a test `digit`
    (D,) uint8 and its feature maps), into `run_dir` (plots.py); the paths written."""
    from mnist_cli import plots  # only with --plots: see require_plots

    hidden, kind = hidden_of(network), kind_of(network)
    name = describe(network) if kind == "cnn" else "mlp " + ",".join(map(str, hidden))
    name = name if hidden else kind
    features = (
        feature_maps(network, digit) if kind == "cnn" and digit is not None else None
    )
    return plots.write_plots(
        run_dir,
        network.params[1][0] if kind == "cnn" else dense_params(network)[0].W,
        result.confusion_matrix,
        history,
        class_names=dataset.class_names,
        title=f"{name} on {dataset.name} {split}: accuracy {100 * result.accuracy:.2f}%",
        confusion_name="confusion.png" if split == "test" else f"confusion-{split}.png",
        hidden_units=kind == "mlp",
        loss=loss,
        features=features,
    )


def wrote_line(paths: list[Path]) -> str:
    return "wrote " + ", ".join(str(p) for p in paths)


def weights_dataset(path: Path, weights: Weights, requested: str | None) -> Dataset:
    """The dataset `weights` (read from `path`) were trained on; --dataset may only confirm it."""
    trained_on = weights.dataset
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
