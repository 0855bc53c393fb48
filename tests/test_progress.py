"""mnist-train's progress on a terminal: a bar per epoch, and each epoch's line, which comes
when its monitor score is in, during the next epoch (training/loop.py)."""

import pytest

from mnist_cli.cli.progress import TrainProgress
from mnist_cli.training.loop import EpochResult


def result(epoch: int) -> EpochResult:
    return EpochResult(epoch, 3, 0.25, 0.9, 0.5)


def test_each_bar_ends_with_its_epochs_images_and_a_late_line_goes_above_the_next(
    capsys: pytest.CaptureFixture[str],
):
    progress = TrainProgress(n_train=300, monitor="test", lines=True, err=True)
    for _ in range(3):
        progress.on_batch(100, 0.5)
    assert progress.bar is None, "the bar ends with the epoch's last batch"
    progress.on_batch(100, 0.3)  # epoch 2 begins, epoch 1's score not in yet
    second = progress.bar
    assert second is not None and second.n == 100
    progress.on_epoch(result(1))  # epoch 1's score comes in
    assert progress.bar is second and second.n == 100, "epoch 2's bar goes on"
    assert progress.loss_sum == pytest.approx(30.0), "epoch 2's running loss is kept"
    progress.on_batch(100, 0.3)
    progress.on_batch(100, 0.3)
    assert progress.bar is None
    progress.on_epoch(result(2))  # between bars
    err = capsys.readouterr().err
    lines = [line.strip("\r") for line in err.splitlines() if line.startswith("epoch")]
    assert lines == [
        "epoch 1/3  loss 0.2500  test acc 90.00%  0.50 s",
        "epoch 2/3  loss 0.2500  test acc 90.00%  0.50 s",
    ]


def test_without_lines_nothing_is_printed(capsys: pytest.CaptureFixture[str]):
    progress = TrainProgress(n_train=100, monitor="val", lines=False)
    progress.on_epoch(result(1))
    assert capsys.readouterr() == ("", "")


def test_a_warning_during_a_bar_goes_above_it(capsys: pytest.CaptureFixture[str]):
    progress = TrainProgress(n_train=300, monitor="test", lines=True)
    progress.on_batch(100, 0.5)  # a bar is drawn
    bar = progress.bar
    progress.on_warning("training looks stuck")
    assert progress.bar is bar and bar.n == 100, "the bar goes on"
    err = capsys.readouterr().err
    assert "\nWarning: training looks stuck\n" in err.replace("\r", "\n")


def test_leaving_early_closes_the_bar_before_the_error_is_printed():
    with pytest.raises(RuntimeError), TrainProgress(300, "test", True) as progress:
        progress.on_batch(100, 0.5)
        raise RuntimeError("the loss became inf")
    assert progress.bar is None
