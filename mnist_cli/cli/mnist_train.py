"""`mnist-train`: options → TrainConfig (config.py, resolve.py) → data (mnist_cli/data/) → a run
(run.py: SGD or the exact solver) → the run directory (artifacts.py), and the pictures with
--plots (plots.py)."""

import functools
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import click

from mnist_cli.cli.common import command, draw_plots, require_plots, warn, wrote_line
from mnist_cli.cli.config_options import config_options
from mnist_cli.cli.optimizer_options import optimizer_options
from mnist_cli.cli.options import data_options, plots_option
from mnist_cli.cli.progress import TrainProgress, show_bars, summary_line
from mnist_cli.cli.signals import says_when_saved
from mnist_cli.config.files import read_config_file, to_toml
from mnist_cli.config.resolve import check_val_size, resolve_run, start_path
from mnist_cli.data import get_dataset, load_dataset
from mnist_cli.errors import MnistCliError
from mnist_cli.rundir.claim import claim_run_dir
from mnist_cli.rundir.listing import continued_training
from mnist_cli.rundir.record import run_loss
from mnist_cli.rundir.weights import load_weights, write_run
from mnist_cli.training.run import fit, monitor_name


def default_out_dir(model: str) -> Path:
    """runs/<model>-<UTC timestamp>-<6 random hex digits>: two runs started in the same
    second get different names (and each claims its own before training)."""
    # os.urandom(3).hex() is secrets.token_hex(3), without importing secrets (and hmac) at start
    suffix = os.urandom(3).hex()
    return Path("runs") / f"{model}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{suffix}"


@command(
    epilog="""\b
Example:
  mnist-train --config configs/default.toml
  mnist-train --config configs/mlp.toml
  mnist-train --model mlp --hidden 256,128 --activation tanh --loss cross-entropy
  mnist-train --model linear --epochs 5 --out runs/linear-try
  mnist-train --mirror ./data/mnist --lr 0.2 --seed 1 --quiet
  mnist-train --dataset fashion-mnist --val-size 10000
  mnist-train --solver exact --l2 10 --json
  mnist-train --init-from runs/softmax-try --epochs 5 --lr 0.1

\b
BLAS threads are chosen per phase: one for the SGD steps and the scoring (their products
are small, and the batches thread needs a core), one per core for --solver exact. Set
OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS, MKL_NUM_THREADS) to choose them yourself.
""",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML run configuration, ≤ 64 KiB (see configs/). Options given override it.",
)
@config_options
@optimizer_options
@data_options
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Run directory to write, claimed before training (another run cannot use it "
    "meanwhile); not a symbolic link. Default: runs/<model>-<UTC timestamp>-<random>/.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace --out if it holds a previous run (and only a run's files).",
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
def train_command(
    config_file, source, out_dir, force, quiet, as_json, with_plots, **options
):
    """Train a model on MNIST (784→10, or an mlp with hidden layers) with mini-batch SGD and
    gradients derived by hand.

    Fetches and verifies the dataset's four files (cached after the first run), trains (or,
    with --solver exact, solves the linear model in closed form), and writes weights.npz,
    metrics.json and config.toml into the run directory.
    """
    file_values = read_config_file(config_file) if config_file else {}
    init_from = start_path(options, file_values)
    start = load_weights(Path(init_from)) if init_from else None
    options["mirrors"] = source.chosen_mirrors() or None
    config = resolve_run(
        file_values, options, start and start.fixes(run_loss(init_from))
    )
    config_toml = to_toml(config)  # before training: resolve_run checked its paths
    earlier = continued_training(config, monitor_name(config), on_warning=warn)
    if with_plots:
        require_plots()  # before training, not after it
    # claimed before training: a place that cannot be written, or another run's, fails now
    out = out_dir or default_out_dir(config.model)
    with claim_run_dir(out, force) as claim, says_when_saved(claim):
        out_dir = claim.path
        dataset = get_dataset(config.dataset)
        # --json: stdout holds only the JSON line; the summary, like epoch lines, goes to stderr
        say = functools.partial(click.echo, err=as_json)
        mirrors = config.mirrors or None
        train_split, test_split = source.load(
            load_dataset, dataset, mirrors=mirrors, quiet=quiet
        )
        check_val_size(config, len(train_split))
        n_train, monitor = len(train_split) - config.val_size, monitor_name(config)
        with TrainProgress(n_train, monitor, not quiet, err=as_json) as progress:
            result = fit(
                config,
                dataset,
                train_split,
                test_split,
                start=start.network if start else None,
                earlier=earlier,
                on_batch=progress.on_batch if show_bars(quiet) else None,
                on_epoch=progress.on_epoch,
                on_warning=progress.on_warning,
            )
        metrics = result.metrics
        write_run(
            claim,
            network=result.network,
            metrics=metrics,
            config_toml=config_toml,
            dataset=dataset.name,
        )
        say(summary_line(config, result, out_dir, earlier))
        if with_plots:
            try:
                history = metrics["history"]
                written = draw_plots(
                    out_dir,
                    result.network,
                    result.test,
                    history,
                    dataset,
                    loss=config.loss,
                    digit=test_split.images[0],
                )
            except MnistCliError as e:
                raise MnistCliError(
                    f"{e}; the run itself is saved: `mnist-eval --plots {out_dir}` draws "
                    "the pictures again"
                ) from None
            if not quiet:
                say(wrote_line(written))
        if as_json:
            click.echo(json.dumps(metrics, allow_nan=False))
