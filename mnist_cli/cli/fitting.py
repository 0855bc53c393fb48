"""mnist-train's middle: the data loaded and the model trained, with progress bars and epoch
lines (progress.py), and the pictures of the saved run (--plots)."""

from mnist_cli.cli.common import draw_plots, wrote_line
from mnist_cli.cli.progress import TrainProgress, show_bars
from mnist_cli.config.resolve import check_val_size
from mnist_cli.data import load_dataset
from mnist_cli.errors import MnistCliError
from mnist_cli.training.run import fit, monitor_name


def train_run(config, dataset, source, quiet, as_json, saver, how: dict):
    """Load the data and train (fit, `how`: its start, earlier and resume), epoch lines and
    bars on the terminal, `saver` writing each epoch's checkpoint."""
    mirrors = source.chosen_mirrors() or config.mirrors or None
    train_split, test_split = source.load(
        load_dataset, dataset, mirrors=mirrors, quiet=quiet
    )
    check_val_size(config, len(train_split))
    n_train, monitor = len(train_split) - config.val_size, monitor_name(config)
    with TrainProgress(n_train, monitor, not quiet, err=as_json) as progress:
        return fit(
            config,
            dataset,
            train_split,
            test_split,
            **how,
            on_batch=progress.on_batch if show_bars(quiet) else None,
            on_epoch=progress.on_epoch,
            on_warning=progress.on_warning,
            on_checkpoint=saver if config.solver == "sgd" else None,
        )


def plots(out_dir, result, dataset, config, say) -> None:
    """The run's pictures, after it is saved."""
    try:
        history = result.record.history
        written = draw_plots(
            out_dir,
            result.network,
            result.test,
            history,
            dataset,
            loss=config.loss,
            digit=result.example,
        )
    except MnistCliError as e:
        raise MnistCliError(
            f"{e}; the run itself is saved: `mnist-eval --plots {out_dir}` draws "
            "the pictures again"
        ) from None
    if say:
        say(wrote_line(written))
