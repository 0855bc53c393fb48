"""The pictures: weights.png, curves.png, confusion.png, written by plots.py and by --plots."""

import json
import shutil
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mnist_cli import plots
from mnist_cli.cli import eval_command, train_command
from mnist_cli.data import DATASETS
from mnist_cli.errors import RunDirectoryError
from mnist_cli.rundir.record import read_history

SIZES = {
    "weights.png": plots.WEIGHTS_SIZE,
    "curves.png": plots.CURVES_SIZE,
    "confusion.png": plots.CONFUSION_SIZE,
}


def rgb(path) -> np.ndarray:
    """The decoded picture as (H, W, 3) uint8; fails if it is not a PNG of the expected size."""
    with Image.open(path) as image:
        assert image.format == "PNG", (
            f"{path.name}: format {image.format}, expected PNG"
        )
        expected = SIZES[path.name.replace("-train", "")]
        assert image.size == expected, (
            f"{path.name}: {image.size} px, expected {expected}"
        )
        return np.asarray(image.convert("RGB"))


def count_colour(pixels: np.ndarray, colour, tolerance=30) -> int:
    """How many pixels are within `tolerance` of `colour` in every channel."""
    return int((np.abs(pixels.astype(int) - colour) <= tolerance).all(axis=-1).sum())


RED, BLUE = (103, 0, 31), (5, 48, 97)  # the two ends of RdBu_r


@pytest.fixture(scope="module")
def plotted_run(tmp_path_factory, mini_mnist_data):
    """A 1-epoch softmax run on mini_mnist (conftest.py) trained with --plots, and what
    mnist-train printed. Tests that read its data again use the `mini_mnist` fixture."""
    out = tmp_path_factory.mktemp("plots") / "run"
    args = ["--epochs", "1", "--out", str(out), "--plots", *mini_mnist_data.args]
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(DATASETS, "mnist", mini_mnist_data.dataset)
        result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 0, result.output
    return out, result.stdout


def test_weights_png_shows_each_template_on_a_diverging_scale(tmp_path):
    W = np.zeros((10, 784), np.float32)
    W[3, :392], W[3, 392:] = (
        1.0,
        -1.0,
    )  # class 3: top half positive, bottom half negative
    pixels = rgb(plots.plot_weights(W, tmp_path / "weights.png"))
    red, blue = count_colour(pixels, RED), count_colour(pixels, BLUE)
    assert red > 2000 and blue > 2000, (
        f"{red} red and {blue} blue pixels, expected both"
    )
    # panels are about 112 px apart: class 3 spans x ≈ 340-440, class 0 x ≈ 5-105
    class_3, class_0 = pixels[:, 350:430], pixels[:, 15:95]
    assert count_colour(class_3, RED) > 1000 and count_colour(class_3, BLUE) > 1000
    assert count_colour(class_0, RED) == count_colour(class_0, BLUE) == 0


def history(split: str, form: str, epochs: int = 5) -> list[dict]:
    """A metrics.json history monitoring `split`: the current `form` ("monitor" and
    "monitor_accuracy"), or the "old" one of earlier runs ("<split>_accuracy")."""
    keys = (
        {"monitor": split, "monitor_accuracy": None}
        if form == "current"
        else {f"{split}_accuracy": None}
    )
    entries = []
    for e in range(1, epochs + 1):
        accuracy = {k: (0.9 + e / 100 if v is None else v) for k, v in keys.items()}
        entries.append({"epoch": e, "train_loss": 0.2 / e, **accuracy, "seconds": 1.0})
    return entries


@pytest.mark.parametrize("form", ["current", "old"])
@pytest.mark.parametrize("split", ["test", "val"])
def test_monitored_accuracy_reads_both_forms_of_the_history(split, form):
    """The old form reaches plots through rundir/record.read_history, in the fixed keys."""
    read = read_history({"history": history(split, form)})
    got = plots.monitored_accuracy(read)
    expected = (split, [0.9 + e / 100 for e in range(1, 6)])
    assert got == expected, f"{form} {split}: {got}, expected {expected}"


def test_a_history_without_accuracies_has_no_accuracy_curve():
    bare = [{"epoch": e, "train_loss": 0.1, "seconds": 1.0} for e in (1, 2)]
    unmonitored = [{**h, "monitor": "test", "monitor_accuracy": None} for h in bare]
    assert plots.monitored_accuracy(bare) is None
    assert plots.monitored_accuracy(unmonitored) is None


def test_a_null_accuracy_is_a_gap_in_the_curve():
    entries = [
        {"epoch": e, "train_loss": 0.1, "monitor": "val", "monitor_accuracy": a}
        for e, a in ((1, 0.5), (2, None), (3, 0.7))
    ]
    split, accuracy = plots.monitored_accuracy(entries)
    assert split == "val" and accuracy[::2] == [0.5, 0.7], (split, accuracy)
    assert np.isnan(accuracy[1]), accuracy


LOSS_BLUE, ACC_GREEN = (31, 119, 180), (44, 160, 44)  # tab:blue, tab:green


@pytest.mark.parametrize("form", ["current", "old"])
def test_curves_png_draws_loss_and_accuracy(tmp_path, form):
    read = list(read_history({"history": history("val", form)}))
    pixels = rgb(plots.plot_curves(read, tmp_path / "curves.png"))
    left, right = pixels[:, :500], pixels[:, 500:]
    assert count_colour(left, LOSS_BLUE, 20) > 200, "no loss curve on the left"
    assert count_colour(right, ACC_GREEN, 20) > 200, "no accuracy curve on the right"


FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot")  # fmt: skip


@pytest.mark.parametrize("names", [plots.DIGITS, FASHION], ids=["digits", "fashion"])
def test_confusion_png_colours_the_diagonal(tmp_path, names):
    C = np.diag(np.full(10, 900)) + 3  # (10, 10): a strong diagonal, a few mistakes
    path = tmp_path / "confusion.png"
    pixels = rgb(
        plots.plot_confusion(C, path, names, title="t")
    )  # long names: same size
    dark_blue = count_colour(pixels, (8, 48, 107), 25)  # the dark end of "Blues"
    assert dark_blue > 10 * 1000, f"{dark_blue} dark-blue pixels: no diagonal drawn"


def test_a_failed_save_leaves_nothing(tmp_path, monkeypatch):
    """A picture is written under a temporary name and renamed: a failure mid-write leaves
    neither a partial weights.png nor a temporary file."""
    from matplotlib.figure import Figure

    def broken_savefig(self, f, **kwargs):
        f.write(b"\x89PNG half a picture")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RunDirectoryError, match="No space left on device"):
        plots.plot_weights(np.zeros((10, 784)), tmp_path / "weights.png")
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())


def test_train_plots_writes_three_pictures_into_the_run(plotted_run):
    run, stdout = plotted_run
    written = [run / name for name in ("weights.png", "curves.png", "confusion.png")]
    assert stdout.splitlines()[-1] == "wrote " + ", ".join(map(str, written))
    for path in written:
        pixels = rgb(path)
        colours = np.unique(pixels.reshape(-1, 3).astype(int) @ [1 << 16, 1 << 8, 1])
        assert len(colours) > 50, f"{path.name} has {len(colours)} colours: flat"
    names = sorted(p.name for p in run.iterdir())
    assert names == sorted(
        ["checkpoint.npz", "config.toml", "metrics.json", "weights.npz", *SIZES]
    ), names


def test_eval_plots_redraws_a_run(plotted_run, mini_mnist):
    run, _ = plotted_run
    for name in SIZES:
        (run / name).unlink()
    result = CliRunner().invoke(
        eval_command, [str(run), "--plots", "--json", *mini_mnist]
    )
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # stdout is still exactly one JSON object
    assert result.stderr.startswith(f"wrote {run / 'weights.png'}, "), result.stderr
    for name in SIZES:
        rgb(run / name)


def test_eval_plots_on_a_bare_weights_file_has_no_curves(
    plotted_run, mini_mnist, tmp_path
):
    run, _ = plotted_run
    shutil.copy(run / "weights.npz", tmp_path / "w.npz")
    args = [str(tmp_path / "w.npz"), "--plots", "--split", "train", *mini_mnist]
    result = CliRunner().invoke(eval_command, args)
    assert result.exit_code == 0, result.output
    expected = [tmp_path / "weights.png", tmp_path / "confusion-train.png"]
    assert result.stdout.splitlines()[-1] == "wrote " + ", ".join(map(str, expected))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["w.npz", "weights.png", "confusion-train.png"]
    )
    rgb(tmp_path / "confusion-train.png")


@pytest.mark.parametrize("command", ["train", "eval"])
def test_missing_matplotlib_is_a_one_line_error(
    command, plotted_run, mini_mnist, tmp_path, monkeypatch
):
    monkeypatch.setitem(
        sys.modules, "matplotlib", None
    )  # `import matplotlib` now fails
    if command == "train":
        out = tmp_path / "run"
        args = ["--out", str(out), "--plots", *mini_mnist]
        result = CliRunner().invoke(train_command, args)
        assert not out.exists(), "nothing may be trained or saved"
    else:
        result = CliRunner().invoke(eval_command, [str(plotted_run[0]), "--plots"])
    assert result.exit_code == 1, result.output
    assert result.output == (
        "Error: --plots: pictures need matplotlib, which is not installed: "
        "run `make dev` in the repository, or `.venv/bin/pip install -e '.[plots]'`\n"
    )


def test_a_picture_that_fails_after_training_keeps_the_run(
    tmp_path, mini_mnist, monkeypatch
):
    def full_disk(W, path, class_names):
        raise RunDirectoryError(f"{path}: cannot write the picture (disk full)")

    monkeypatch.setattr(plots, "plot_weights", full_disk)
    out = tmp_path / "run"
    args = ["--epochs", "1", "--out", str(out), "--plots", "-q", *mini_mnist]
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"Error: {out / 'weights.png'}: cannot write the picture (disk full); the run itself "
        f"is saved: `mnist-eval --plots {out}` draws the pictures again\n"
    )
    assert (out / "weights.npz").exists() and (out / "metrics.json").exists()


def test_eval_plots_draws_the_curves_of_a_run_saved_with_the_old_history(
    plotted_run, mini_mnist, tmp_path
):
    """metrics.json written before the history had fixed keys (`test_accuracy` per entry)
    still gives curves.png with its accuracy curve."""
    run, _ = plotted_run
    old = tmp_path / "old-run"
    shutil.copytree(run, old)
    metrics = json.loads((old / "metrics.json").read_text())
    metrics["history"] = history("test", "old")
    (old / "metrics.json").write_text(json.dumps(metrics))
    (old / "curves.png").unlink()
    result = CliRunner().invoke(eval_command, [str(old), "--plots", *mini_mnist])
    assert result.exit_code == 0, result.output
    right = rgb(old / "curves.png")[:, 500:]
    assert count_colour(right, ACC_GREEN, 20) > 200, "no accuracy curve on the right"
