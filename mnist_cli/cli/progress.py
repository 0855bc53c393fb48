"""Progress on stderr, and only when stderr is a terminal: download bars and a bar per training
epoch; and the lines mnist-train prints: one per epoch, and the run's summary."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Self

import click

if TYPE_CHECKING:
    # for the type hints alone: mnist-eval and mnist-runs import this module (for the
    # download bars) without the training loop
    from mnist_cli.config.settings import TrainConfig
    from mnist_cli.training.continuing import Earlier
    from mnist_cli.training.loop import EpochResult
    from mnist_cli.training.run import RunResult


def show_bars(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def download_bar(desc: str, total: int | None):
    from tqdm import tqdm

    return tqdm(
        desc=desc, total=total, unit="B", unit_scale=True, leave=False, file=sys.stderr
    )


class TrainProgress:
    """A progress bar per training epoch (on_batch), one fixed-format line per epoch
    (on_epoch) and Warning lines (on_warning). An epoch's line comes when its monitor score is
    in, during the next epoch (training/loop.py): the bar ends with its epoch's images, and a line that
    comes while the next bar is drawn is printed above it. Used as a context manager, it
    closes a bar left open when training stops early, before the error is printed."""

    def __init__(self, n_train: int, monitor: str, lines: bool, err: bool = False):
        self.n_train, self.monitor, self.lines = n_train, monitor, lines
        self.bar = None
        self.loss_sum, self.seen = 0.0, 0
        self.err = err  # epoch lines to stderr (--json keeps stdout for the JSON line)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close_bar()

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar, self.loss_sum, self.seen = None, 0.0, 0

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
        if self.seen >= self.n_train:  # the epoch's last batch
            self.close_bar()

    def on_epoch(self, r: "EpochResult") -> None:
        if self.lines:
            self.echo(
                f"epoch {r.epoch}/{r.epochs}  loss {r.train_loss:.4f}  "
                f"{self.monitor} acc {100 * r.monitor_accuracy:.2f}%  {r.seconds:.2f} s",
                err=self.err,
            )

    def on_warning(self, message: str) -> None:
        self.echo(f"Warning: {message}", err=True)

    def echo(self, line: str, err: bool) -> None:
        """`line` on its own line, above the bar if one is drawn (which is drawn again)."""
        if self.bar is not None:
            self.bar.clear()
        click.echo(line, err=err)
        if self.bar is not None:
            self.bar.refresh()


def summary_line(
    config: "TrainConfig", result: "RunResult", out_dir: Path, earlier: "Earlier | None"
) -> str:
    """What was trained, how, its accuracies, how long it took, and where it went."""
    how = f"{config.epochs} epoch{'s' if config.epochs != 1 else ''}"
    if earlier:
        how += f" after {earlier.epochs}"
    if config.solver == "exact":
        how = "exact least squares" + (f", l2 {config.l2:g}" if config.l2 else "")
    val = f", val accuracy {100 * result.val.accuracy:.2f}%" if result.val else ""
    from mnist_cli.nn.architecture import describe

    model = describe(result.network)
    if config.loss != "squared":
        model += f", {config.loss}"
    return (
        f"{model}: test accuracy {100 * result.test.accuracy:.2f}%{val} "
        f"({how}, {result.record.seconds:.1f} s) -> {out_dir}/"
    )
