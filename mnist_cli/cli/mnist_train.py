"""`mnist-train`: options → TrainConfig (config.py) → data (data.py) → SGD (train.py) or the exact
solver (exact.py) → the run directory (artifacts.py), and the pictures with --plots (plots.py)."""

import functools
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import click

from .. import __version__, plots
from ..artifacts import check_out_dir, load_weights, save_run
from ..config import (
    SOLVERS,
    TrainConfig,
    read_config_file,
    resolve,
    to_toml,
)
from ..data import Split, load_dataset
from ..datasets import DATASETS, get_dataset
from ..errors import MetricsError, MnistCliError
from ..models import INITS, MODEL_KINDS, Params
from ..run import fit, monitor_name
from ..runs import Earlier, earlier_training
from ..train import EpochResult
from .common import (
    CONTEXT,
    cache_root,
    data_options,
    download_bar,
    env_mirrors,
    fetch_policy,
    option_value,
    plot_title,
    plots_option,
    reports_errors,
    show_bars,
    warn,
    wrote_line,
)


class TrainProgress:
    """Per-epoch progress bar (stderr, terminals only) and one fixed-format line per epoch."""

    def __init__(
        self, n_train: int, monitor: str, bars: bool, lines: bool, err: bool = False
    ):
        self.n_train, self.monitor = n_train, monitor
        self.bars, self.lines = bars, lines
        self.bar = None
        self.loss_sum, self.seen = 0.0, 0
        self.err = err  # epoch lines to stderr (--json keeps stdout for the JSON line)

    def on_batch(self, batch_size: int, loss: float) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.n_train, unit="img", leave=False, file=sys.stderr
            )
        self.loss_sum += loss * batch_size
        self.seen += batch_size
        self.bar.update(batch_size)
        self.bar.set_postfix_str(f"loss {self.loss_sum / self.seen:.4f}", refresh=False)

    def on_epoch(self, r: EpochResult) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar, self.loss_sum, self.seen = None, 0.0, 0
        if self.lines:
            click.echo(
                f"epoch {r.epoch}/{r.epochs}  loss {r.train_loss:.4f}  "
                f"{self.monitor} acc {100 * r.monitor_accuracy:.2f}%  {r.seconds:.2f} s",
                err=self.err,
            )


def default_out_dir(model: str) -> Path:
    return Path("runs") / f"{model}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


@click.command(
    context_settings=CONTEXT,
    epilog="""\b
Example:
  mnist-train --config configs/default.toml
  mnist-train --model linear --epochs 5 --out runs/linear-try
  mnist-train --mirror ./data/mnist --lr 0.2 --seed 1 --quiet
  mnist-train --dataset fashion-mnist --val-size 10000
  mnist-train --solver exact --l2 10 --json
  mnist-train --init-from runs/softmax-try --epochs 5 --lr 0.1
""",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML run configuration (see configs/). Options given here override it.",
)
@click.option(
    "--model",
    type=click.Choice(MODEL_KINDS),
    help="linear: ŷ = Wx + b;  softmax: ŷ = softmax(Wx + b). Default: softmax.",
)
@click.option(
    "--epochs",
    type=int,
    callback=option_value("epochs"),
    help="Passes over the 60,000 training images. Default: 10.",
)
@click.option(
    "--batch-size",
    type=int,
    callback=option_value("batch_size"),
    help="Samples per SGD step. Default: 100.",
)
@click.option(
    "--lr",
    type=float,
    callback=option_value("lr"),
    help="Learning rate. Default: 0.5 for softmax, 0.005 for linear.",
)
@click.option(
    "--seed",
    type=int,
    callback=option_value("seed"),
    help="Seed of the shuffling and of --init normal; same seed, same weights. Default: 0.",
)
@click.option(
    "--init", type=click.Choice(INITS), help="Initial weights. Default: zeros."
)
@click.option(
    "--init-from",
    type=click.Path(exists=True, path_type=Path),
    metavar="RUN_OR_WEIGHTS",
    help="Continue training from saved weights (a run directory or weights.npz) "
    "instead of --init. Model and dataset default to theirs and must match. From a run "
    "directory, epochs are numbered after its own (a 10-epoch run continued with --epochs 5 "
    "prints epoch 11/15 to 15/15) and metrics.json's history starts with its epochs; from a "
    "weights.npz, at epoch 1.",
)
@click.option(
    "--dataset",
    type=click.Choice(tuple(DATASETS)),
    help="mnist (digits), fashion-mnist (clothes) or kmnist (cursive hiragana). "
    "Default: mnist.",
)
@click.option(
    "--solver",
    type=click.Choice(SOLVERS),
    help="sgd: mini-batch SGD; exact: the closed-form least-squares optimum of the "
    "linear model (no epochs). Default: sgd.",
)
@click.option(
    "--l2",
    type=float,
    callback=option_value("l2"),
    help="Ridge term of --solver exact: minimise Σ‖ŷ − y‖² + l2 ‖W‖² (bias not "
    "penalised). Default: 0.",
)
@click.option(
    "--val-size",
    type=int,
    callback=option_value("val_size"),
    metavar="N",
    help="Hold out N training images (chosen by --seed) for validation: epoch lines "
    "report val acc, and the test set is scored once, at the end. Default: 0.",
)
@data_options
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Run directory to write. Default: runs/<model>-<UTC timestamp>/.",
)
@click.option(
    "--force", is_flag=True, help="Replace --out if it exists and is not empty."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or epoch lines.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the metrics object as one JSON line on stdout, its last line; "
    "epoch and summary lines go to stderr.",
)
@plots_option
@click.version_option(__version__, "-V", "--version", package_name="mnist-cli")
@reports_errors
def train_command(
    config_file,
    cache_dir,
    mirrors,
    timeout,
    out_dir,
    force,
    quiet,
    as_json,
    with_plots,
    **options,
):
    """Train a 784→10 model on MNIST with mini-batch SGD and analytic gradients.

    Fetches and verifies the dataset's four files (cached after the first run), trains (or,
    with --solver exact, solves the linear model in closed form), and writes weights.npz,
    metrics.json and config.toml into the run directory.
    """
    if options["init"] and options["init_from"]:
        raise click.UsageError("--init and --init-from exclude each other; give one")
    file_values = read_config_file(config_file) if config_file else {}
    if options["init_from"] is not None:
        options["init_from"] = str(options["init_from"].resolve())
    if options["init"]:
        file_values.pop("init_from", None)  # --init overrides the file's init_from
    start = starting_weights(options["init_from"] or file_values.get("init_from"))
    implied = implied_defaults(options, file_values, start)
    dataset_name = options["dataset"] or implied.get("dataset")
    if dataset_name and dataset_name != file_values.get("dataset", "mnist"):
        # a config file's mirrors hold the file's dataset, not this one
        file_values.pop("mirrors", None)
    config = resolve(
        file_values,
        {**options, **implied, "mirrors": mirrors or env_mirrors() or None},
    )
    check_combination(config, options, start)
    earlier = continued_training(config)
    out_dir = out_dir or default_out_dir(config.model)
    check_out_dir(out_dir, force)
    if with_plots:
        plots.require_matplotlib()  # before training, not after it
    dataset = get_dataset(config.dataset)
    # --json: stdout holds only the JSON line, so the summary (like epoch lines) goes to stderr
    say = functools.partial(click.echo, err=as_json)

    train_split, test_split = load_dataset(
        dataset,
        cache_root(cache_dir),
        config.mirrors or None,
        progress=download_bar if show_bars(quiet) else None,
        on_warning=warn,
        policy=fetch_policy(timeout),
    )
    check_val_size(config, train_split, dataset.name)
    progress = TrainProgress(
        len(train_split) - config.val_size,
        monitor_name(config),
        show_bars(quiet),
        not quiet,
        err=as_json,
    )
    result = fit(
        config,
        dataset,
        train_split,
        test_split,
        start=start.params if start else None,
        earlier=earlier,
        on_batch=progress.on_batch if show_bars(quiet) else None,
        on_epoch=progress.on_epoch,
    )
    params, metrics = result.params, result.metrics
    save_run(
        out_dir,
        kind=config.model,
        params=params,
        metrics=metrics,
        config_toml=to_toml(config),
        dataset=dataset.name,
        force=force,
    )
    how = f"{config.epochs} epoch{'s' if config.epochs != 1 else ''}"
    if earlier:
        how += f" after {earlier.epochs}"
    if config.solver == "exact":
        how = "exact least squares" + (f", l2 {config.l2:g}" if config.l2 else "")
    val = f", val accuracy {100 * result.val.accuracy:.2f}%" if result.val else ""
    say(
        f"{config.model}: test accuracy {100 * result.test.accuracy:.2f}%{val} "
        f"({how}, {metrics['seconds']:.1f} s) -> {out_dir}/"
    )
    if with_plots:
        try:
            written = plots.write_plots(
                out_dir,
                params.W,
                result.test.confusion_matrix,
                metrics["history"],
                class_names=dataset.class_names,
                title=plot_title(config.model, dataset.name, "test", result.test),
            )
        except MnistCliError as e:
            raise MnistCliError(
                f"{e}; the run itself is saved: `mnist-eval --plots {out_dir}` draws "
                "the pictures again"
            ) from None
        if not quiet:
            say(wrote_line(written))
    if as_json:
        click.echo(json.dumps(metrics))


class Start(NamedTuple):
    """The weights a run starts from (--init-from): what load_weights returns, by name."""

    model: str
    params: Params
    dataset: str


def starting_weights(init_from: str | None) -> Start | None:
    """The weights of --init-from / init_from, or None when not given."""
    return Start(*load_weights(Path(init_from))) if init_from else None


def continued_training(config: TrainConfig) -> Earlier | None:
    """The epochs and history that --init-from RUN_DIR continues; None from a weights file, or
    (with a warning) when the run's metrics.json cannot be continued."""
    if config.solver != "sgd" or not config.init_from:
        return None
    run_dir = Path(config.init_from)
    if not run_dir.is_dir():
        return None
    try:
        return earlier_training(run_dir, config.model, monitor_name(config))
    except MetricsError as e:
        warn(
            f"--init-from {run_dir}: {e}; training starts from its weights "
            "at epoch 1, without its history"
        )
        return None


def implied_defaults(options: dict, file_values: dict, start: Start | None) -> dict:
    """Defaults implied by other choices, when neither the command line nor the config file
    sets them: the model and dataset of the --init-from weights, and linear for --solver exact
    (the only model with a closed-form optimum)."""
    implied = {}
    for key in ("model", "dataset"):
        if start and options[key] is None and key not in file_values:
            implied[key] = getattr(start, key)
    solver = options["solver"] or file_values.get("solver")
    if solver == "exact" and "model" not in implied and "model" not in file_values:
        implied["model"] = options["model"] or "linear"
    return implied


def check_combination(config: TrainConfig, options: dict, start: Start | None) -> None:
    """Refuse settings that contradict each other: --init-from weights of another model or
    dataset (exit 1), and options the chosen solver cannot use (exit 2)."""
    if start and start.model != config.model:
        raise click.ClickException(
            f"--init-from {config.init_from}: the weights are a {start.model} model, "
            f"but this run trains {config.model}; use --model {start.model} or other weights"
        )
    if start and start.dataset != config.dataset:
        raise click.ClickException(
            f"--init-from {config.init_from}: the weights were trained on {start.dataset}, "
            f"but this run trains on {config.dataset}; use --dataset {start.dataset} "
            "or other weights"
        )
    if config.solver == "sgd" and config.l2:
        raise click.UsageError("--l2 is for --solver exact; SGD has no ridge term")
    if config.solver == "exact":
        unused = [
            f"--{key.replace('_', '-')}"
            for key in ("epochs", "batch_size", "lr", "init", "init_from")
            if options[key] is not None
        ]
        if unused or config.init_from:
            raise click.UsageError(
                f"{', '.join(unused) or 'init_from'} cannot be used with --solver exact, "
                "which solves for the optimum directly (no epochs, no starting point)"
            )
        if config.model != "linear":
            raise click.UsageError(
                f"--solver exact needs --model linear: the {config.model} model has "
                "no closed-form optimum"
            )


def check_val_size(config: TrainConfig, train_split: Split, dataset_name: str) -> None:
    """--val-size must leave images to train on (exit 2 otherwise)."""
    if config.val_size >= len(train_split):
        raise click.BadParameter(
            f"must be less than the {len(train_split):,} training images of "
            f"{dataset_name}, not {config.val_size}",
            param_hint="'--val-size' (config key val_size)",
        )
