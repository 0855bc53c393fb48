"""`mnist-train`: options → TrainConfig (config/) → data (mnist_cli/data/) → a run
(training/run.py: SGD or the exact solver) → the run directory (rundir/), and the pictures with
--plots (plots.py)."""

import functools
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import click

from mnist_cli.cli.common import command, require_plots, warn
from mnist_cli.cli.config_options import config_options
from mnist_cli.cli.fitting import plots, train_run
from mnist_cli.cli.optimizer_options import optimizer_options
from mnist_cli.cli.options import data_options, plots_option
from mnist_cli.cli.progress import summary_line
from mnist_cli.cli.resume import (
    Checkpoints,
    check_resumable,
    refuse_options,
    resumed,
    says_what_is_kept,
)
from mnist_cli.cli.run_place import named_by
from mnist_cli.cli.signals import says_when_saved
from mnist_cli.cli.train_options import output_options
from mnist_cli.config.files import read_config_file, to_toml
from mnist_cli.config.resolve import resolve_run, start_path
from mnist_cli.data import get_dataset
from mnist_cli.rundir.claim import claim_run_dir
from mnist_cli.rundir.listing import continued_training
from mnist_cli.rundir.record import run_loss
from mnist_cli.rundir.weights import load_weights, write_run
from mnist_cli.training.run import monitor_name


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
  mnist-train --config configs/cnn.toml
  mnist-train --model cnn --channels 8,16 --kernel 3 --optimizer adam --lr 0.001
  mnist-train --model mlp --hidden 256,128 --activation tanh --loss cross-entropy
  mnist-train --model mlp --optimizer momentum --lr 0.05 --schedule cosine
  mnist-train --model linear --epochs 5 --out runs/linear-try
  mnist-train --mirror ./data/mnist --lr 0.2 --seed 1 --quiet
  mnist-train --dataset fashion-mnist --val-size 10000
  mnist-train --solver exact --l2 10 --json
  mnist-train --init-from runs/softmax-try --epochs 5 --lr 0.1
  mnist-train --resume runs/mlp-try
  mnist-train --resume runs/mlp-try --epochs 20

\b
BLAS threads are chosen per phase: one for the SGD steps and the scoring (their products
are small, and the batches thread needs a core; a cnn's batch is split between two threads
of its own), one per core for --solver exact. Set OPENBLAS_NUM_THREADS (or
OMP_NUM_THREADS, MKL_NUM_THREADS) to choose them yourself.
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
@output_options
@plots_option
def train_command(
    config_file, source, out_dir, force, resume, quiet, as_json, with_plots, **options
):
    """Train a model on MNIST (784→10, or an mlp with hidden layers) with mini-batch SGD and
    gradients derived by hand.

    Fetches and verifies the dataset's four files (cached after the first run), trains (or,
    with --solver exact, solves the linear model in closed form), and writes weights.npz,
    metrics.json and config.toml into the run directory, with the checkpoint of the last
    epoch (checkpoint.npz), from which --resume goes on.
    """
    if resume:
        refuse_options(options, config_file=config_file, out_dir=out_dir, force=force)
        check_resumable(resume)  # before the claim, which would name --out
    else:
        config, start, earlier = configured(config_file, source, options)
    if with_plots:
        require_plots()  # before training, not after it
    # claimed before training: a place that cannot be written, or another run's, fails now
    out = resume or out_dir or default_out_dir(config.model)
    with (
        named_by("--resume", elsewhere=False) if resume else named_by("--out"),
        claim_run_dir(out, force or bool(resume)) as claim,
        says_when_saved(claim),
    ):
        state = None
        if resume:
            config, state = resumed(claim, options["epochs"])
            start, earlier = None, state.earlier(config.init_from)
        dataset = get_dataset(config.dataset)
        checkpoints = Checkpoints(claim, to_toml(config), dataset.name, config, earlier)
        checkpoints.epoch = state.epoch if state else 0
        with says_what_is_kept(checkpoints):
            how = {"start": start, "earlier": earlier, "resume": state}
            result = train_run(
                config, dataset, source, quiet, as_json, checkpoints, how
            )
            write_run(
                claim,
                network=result.network,
                metrics=result.record.to_json(),
                config_toml=checkpoints.config_toml,
                dataset=dataset.name,
            )
        say = functools.partial(click.echo, err=as_json)  # --json: stdout is JSON only
        say(summary_line(config, result, claim.path, earlier))
        if with_plots:
            plots(claim.path, result, dataset, config, say if not quiet else None)
        if as_json:
            click.echo(json.dumps(result.record.to_json()))


def configured(config_file, source, options):
    """The run's configuration from the options, the config file and the --init-from
    weights; the start network and the earlier training (--init-from RUN) it continues."""
    file_values = read_config_file(config_file) if config_file else {}
    init_from = start_path(options, file_values)
    start = load_weights(Path(init_from)) if init_from else None
    options["mirrors"] = source.chosen_mirrors() or None
    config = resolve_run(
        file_values, options, start and start.fixes(run_loss(init_from))
    )
    to_toml(config)  # before training: resolve_run checked its paths
    # the library names the run and why; the CLI, the option
    named = lambda message: warn(f"--init-from {message}")
    earlier = continued_training(config, monitor_name(config), on_warning=named)
    return config, start and start.network, earlier
