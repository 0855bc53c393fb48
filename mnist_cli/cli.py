"""The command-line interface: a thin click layer over the library.

Options become a TrainConfig (config.py), data comes from data.py, training from train.py, and
the run is written by artifacts.py. Library errors (MnistCliError) become one `Error: ...` line
and exit 1; bad option values exit 2; Ctrl-C exits 130 and SIGTERM 143, each with one line
and after the `finally` blocks below have cleaned up (temp files, staging directories). Progress bars go to stderr, and only
when stderr is a terminal; results go to stdout.
"""

import functools
import json
import math
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import click
import numpy as np

from . import __version__, plots
from .artifacts import check_out_dir, load_weights, read_metrics, save_run
from .config import (
    SOLVERS,
    TrainConfig,
    check_value,
    read_config_file,
    resolve,
    to_toml,
)
from .data import Split, holdout, load_dataset, load_split
from .datasets import DATASETS, Dataset, get_dataset
from .download import default_cache_dir, normalize_mirror, parse_mirrors
from .errors import MnistCliError, WeightsError
from .exact import least_squares
from .gradcheck import BlockCheck, H, check_gradients, random_params, sample_batch
from .metrics import Evaluation, evaluate, format_confusion, mean_loss
from .models import INITS, MODEL_KINDS, Params, init_params
from .predict import VALUE_NAMES, as_text, classify, prepare
from .train import EpochResult, train
from .transport import FetchPolicy

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


class TrainProgress:
    """Per-epoch progress bar (stderr, terminals only) and one fixed-format line per epoch."""

    def __init__(
        self, n_train: int, monitor: str, bars: bool, lines: bool, err: bool = False
    ):
        self.n_train, self.monitor, self.bars, self.lines = (
            n_train,
            monitor,
            bars,
            lines,
        )
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
    "instead of --init. Model and dataset default to theirs and must match.",
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
        file_values.pop(
            "init_from", None
        )  # options override keys, --init init_from too
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
    out_dir = out_dir or default_out_dir(config.model)
    check_out_dir(out_dir, force)
    if with_plots:
        plots.require_matplotlib()  # before training, not after it
    dataset = get_dataset(config.dataset)
    # --json: stdout holds only the JSON line, so the summary (like epoch lines) goes to stderr
    say = functools.partial(click.echo, err=as_json)

    started = time.perf_counter()
    train_split, test_split = load_dataset(
        dataset,
        cache_root(cache_dir),
        config.mirrors or None,
        progress=download_bar if show_bars(quiet) else None,
        on_warning=warn,
        policy=fetch_policy(timeout),
    )
    fit_split, val_split = validation_holdout(config, train_split, dataset.name)
    if config.solver == "exact":
        params = least_squares(fit_split.images, fit_split.labels, config.l2)
        history: list[EpochResult] = []
    else:
        rng = np.random.default_rng(config.seed)
        monitor_name, monitor = (
            ("val", val_split) if val_split else ("test", test_split)
        )
        progress = TrainProgress(
            len(fit_split), monitor_name, show_bars(quiet), not quiet, err=as_json
        )
        params, history = train(
            config.model,
            start.params if start else init_params(config.init, rng),
            fit_split.images,
            fit_split.labels,
            epochs=config.epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            rng=rng,
            monitor=(monitor.images, monitor.labels),
            on_batch=progress.on_batch if show_bars(quiet) else None,
            on_epoch=progress.on_epoch,
        )
    train_eval = evaluate(params, fit_split.images, fit_split.labels)
    val_eval = (
        evaluate(params, val_split.images, val_split.labels) if val_split else None
    )
    test_eval = evaluate(params, test_split.images, test_split.labels)
    seconds = time.perf_counter() - started
    metrics = {
        "model": config.model,
        "dataset": dataset.name,
        "solver": config.solver,
        "train_loss": mean_loss(
            config.model, params, fit_split.images, fit_split.labels
        ),
        "train_accuracy": train_eval.accuracy,
        "val_accuracy": val_eval.accuracy if val_eval else None,
        "test_accuracy": test_eval.accuracy,
        "per_class_accuracy": test_eval.to_json()["per_class_accuracy"],
        "confusion_matrix": test_eval.confusion_matrix.tolist(),
        "class_names": list(dataset.class_names),
        "history": [r.to_json("val" if val_split else "test") for r in history],
        "config": {**config.__dict__, "mirrors": list(config.mirrors)},
        "data": {f.name: {f.algorithm: f.checksum} for f in dataset.files},
        "seconds": seconds,
        "version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
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
    if config.solver == "exact":
        how = "exact least squares" + (f", l2 {config.l2:g}" if config.l2 else "")
    val = f", val accuracy {100 * val_eval.accuracy:.2f}%" if val_eval else ""
    say(
        f"{config.model}: test accuracy {100 * test_eval.accuracy:.2f}%{val} "
        f"({how}, {seconds:.1f} s) -> {out_dir}/"
    )
    if with_plots:
        try:
            written = plots.write_plots(
                out_dir,
                params.W,
                test_eval.confusion_matrix,
                metrics["history"],
                class_names=dataset.class_names,
                title=plot_title(config.model, dataset.name, "test", test_eval),
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


def validation_holdout(
    config: TrainConfig, train_split: Split, dataset_name: str
) -> tuple[Split, Split | None]:
    """(images to train on, validation images or None): --val-size images held out of the
    training split, chosen by np.random.default_rng(seed) (see data.holdout)."""
    if not config.val_size:
        return train_split, None
    if config.val_size >= len(train_split):
        raise click.BadParameter(
            f"must be less than the {len(train_split):,} training images of "
            f"{dataset_name}, not {config.val_size}",
            param_hint="'--val-size' (config key val_size)",
        )
    return holdout(train_split, config.val_size, np.random.default_rng(config.seed))


@click.command(
    context_settings=CONTEXT,
    epilog="""\b
Example:
  mnist-eval runs/softmax-20261126-101500
  mnist-eval runs/linear-try/weights.npz --split train --json
  mnist-eval runs/fashion-try --dataset fashion-mnist
""",
)
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--split",
    type=click.Choice(["test", "train"]),
    default="test",
    show_default=True,
    help="Which MNIST split to score.",
)
@click.option(
    "--dataset",
    type=click.Choice(tuple(DATASETS)),
    help="The dataset to score on. Default: the one the weights were trained on "
    "(any other is an error).",
)
@data_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object instead of tables."
)
@click.option("-q", "--quiet", is_flag=True, help="No download progress bars.")
@plots_option
@click.version_option(__version__, "-V", "--version", package_name="mnist-cli")
@reports_errors
def eval_command(
    path, split, dataset, cache_dir, mirrors, timeout, as_json, quiet, with_plots
):
    """Score saved weights: accuracy, per-class accuracy and the confusion matrix.

    PATH is a run directory written by mnist-train, or a weights.npz file.
    """
    kind, params, dataset_name = load_weights(path)
    if dataset_name not in DATASETS:
        raise WeightsError(
            f"{path}: trained on unknown dataset {dataset_name!r} "
            f"(this mnist-cli knows {', '.join(DATASETS)}); upgrade mnist-cli"
        )
    if dataset and dataset != dataset_name:
        raise click.ClickException(
            f"{path} was trained on {dataset_name}, not {dataset}; "
            f"drop --dataset or give --dataset {dataset_name}"
        )
    dataset = get_dataset(dataset_name)
    if with_plots:
        plots.require_matplotlib()
    data = load_split(
        dataset,
        split,
        cache_root(cache_dir),
        mirrors or env_mirrors() or run_mirrors(path),
        progress=download_bar if show_bars(quiet) else None,
        on_warning=warn,
        policy=fetch_policy(timeout),
    )
    result = evaluate(params, data.images, data.labels)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "model": kind,
                    "split": split,
                    **result.to_json(),
                    "dataset": dataset.name,
                    "class_names": list(dataset.class_names),
                }
            )
        )
    else:
        click.echo(report(kind, split, len(data), result, dataset))
    if with_plots:
        run_dir = path if path.is_dir() else path.parent
        written = plots.write_plots(
            run_dir,
            params.W,
            result.confusion_matrix,
            run_history(path, kind),
            class_names=dataset.class_names,
            title=plot_title(kind, dataset.name, split, result),
            confusion_name="confusion.png"
            if split == "test"
            else f"confusion-{split}.png",
        )
        click.echo(wrote_line(written), err=as_json)  # stdout stays one JSON object


def run_mirrors(path: Path) -> tuple[str, ...] | None:
    """The mirrors a run was trained with (from its metrics.json), so that mnist-eval on a run
    directory finds the data the same way; None (the built-in mirrors) otherwise."""
    metrics = read_metrics(path) if path.is_dir() else None
    mirrors = (metrics or {}).get("config", {}).get("mirrors")
    if not mirrors or not all(isinstance(m, str) for m in mirrors):
        return None
    return tuple(mirrors)


def report(kind: str, split: str, n: int, result: Evaluation, dataset: Dataset) -> str:
    return (
        f"{kind} on {dataset.name} {split} ({n:,} images): "
        f"accuracy {100 * result.accuracy:.2f}%\n\n"
        + format_confusion(result.confusion_matrix, dataset.class_names)
    )


def positive_tol(ctx, param, value):
    if not (np.isfinite(value) and value > 0):
        raise click.BadParameter(f"must be a finite number > 0, not {value!r}")
    return value


@click.command(
    context_settings=CONTEXT,
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
@data_options
@click.option("-q", "--quiet", is_flag=True, help="No download progress bars.")
@click.version_option(__version__, "-V", "--version", package_name="mnist-cli")
@reports_errors
def gradcheck_command(
    model, samples, coords, seed, tol, cache_dir, mirrors, timeout, quiet
):
    """Check the analytic gradients against central finite differences, in float64.

    On --samples random MNIST training images and random weights, compares the analytic
    derivative a with n = (L(θ + hV) − L(θ − hV)) / 2h for every coordinate of b, --coords
    random coordinates of W, and one random direction over all of W, and prints the largest
    relative error |a − n| / max(|a|, |n|, 1 % of L) of each block.
    """
    dataset = DATASETS["mnist"]
    split = load_split(
        dataset,
        "train",
        cache_root(cache_dir),
        mirrors or env_mirrors() or None,
        progress=download_bar if show_bars(quiet) else None,
        on_warning=warn,
        policy=fetch_policy(timeout),
    )
    if samples > len(split):
        raise click.BadParameter(
            f"must be at most {len(split):,}, the number of training images, "
            f"not {samples:,}",
            param_hint="'--samples'",
        )
    kinds = MODEL_KINDS if model == "all" else (model,)
    checks: list[tuple[str, BlockCheck]] = []
    for kind in kinds:
        rng = np.random.default_rng(
            seed
        )  # the same batch, weights and draws for each model
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


def plot_title(kind: str, dataset: str, split: str, result: Evaluation) -> str:
    return f"{kind} on {dataset} {split}: accuracy {100 * result.accuracy:.2f}%"


def wrote_line(paths: list[Path]) -> str:
    return "wrote " + ", ".join(str(p) for p in paths)


def run_history(path: Path, kind: str) -> list[dict] | None:
    """The per-epoch history of the run PATH belongs to (a run directory, or the weights.npz
    inside one), if its metrics.json has one for this model; None otherwise."""
    if path.is_file() and path.name != "weights.npz":
        return None
    metrics = read_metrics(path if path.is_dir() else path.parent) or {}
    history = metrics.get("history")
    if metrics.get("model") != kind or not isinstance(history, list):
        return None
    valid = all(
        isinstance(h, dict) and "epoch" in h and "train_loss" in h for h in history
    )
    return history if valid else None


@click.command(
    context_settings=CONTEXT,
    epilog="""\b
Example:
  mnist-predict runs/softmax-20261126-101500 my-seven.png photo-of-a-3.jpg
  mnist-predict runs/linear-try/weights.npz digits/*.png --json
  mnist-predict runs/softmax-20261126-101500 my-seven.png --show
""",
)
@click.argument(
    "weights", metavar="RUN_OR_WEIGHTS", type=click.Path(exists=True, path_type=Path)
)
@click.argument(
    "images",
    metavar="IMAGE...",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False),
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per image, a line each: image, digit, and probability "
    "(softmax) or score (linear).",
)
@click.option(
    "--show",
    is_flag=True,
    help="Also print each picture as the model sees it (28×28 after preprocessing), as text.",
)
@click.version_option(__version__, "-V", "--version", package_name="mnist-cli")
@reports_errors
def predict_command(weights, images, as_json, show):
    """Classify pictures of handwritten digits: PNG, JPEG, any size, either polarity.

    Each IMAGE is made an MNIST digit as MNIST itself was made: grey, inverted if the digit is
    dark on light paper, cropped to the digit, scaled into a 20×20 box and centred by centre of
    mass in 28×28. Prints the predicted digit and its probability (softmax model) or score
    (linear model). Every image is read before any is classified, so a bad one stops the
    command with nothing printed. Needs the images extra: pip install 'mnist-cli[images]'.
    """
    if show and as_json:
        raise click.UsageError(
            "--show prints pictures as text; it cannot go with --json"
        )
    kind, params, dataset_name = load_weights(weights)
    pixels = np.stack([prepare(image) for image in images])  # (N, D) uint8
    digits, values = classify(kind, params, pixels)  # (N,), (N,)
    value_name = VALUE_NAMES[kind]
    names = DATASETS[dataset_name].class_names if dataset_name in DATASETS else None
    for i, (image, digit, value) in enumerate(
        zip(images, digits.tolist(), values.tolist())
    ):
        if as_json:
            click.echo(json.dumps({"image": image, "digit": digit, value_name: value}))
        else:
            label = names[digit] if names else str(digit)
            click.echo(f"{image}: {label}  {value_name} {value:.4f}")
        if show:
            click.echo(as_text(pixels[i]))
