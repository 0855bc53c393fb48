"""Pictures of a run: weights.png, curves.png and confusion.png (the `plots` extra: matplotlib).

weights.png shows the first layer: one 28 × 28 template per class for linear and softmax, one
tile per hidden unit (a square-ish grid, 16 × 16 for 256 units) for the mlp.

Drawn with matplotlib's object-oriented API on an Agg canvas chosen inside each function: no
pyplot, no global figure or backend state, no display needed. matplotlib is imported there too,
so importing this module (and the CLI) costs nothing without it. Every picture has a fixed size
in pixels (figure inches × DPI, no tight bounding box), and is saved under a temporary name in
its directory and then renamed into place, so a half-written PNG never carries the real name.
"""

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mnist_cli import atomic
from mnist_cli.errors import MissingExtraError, RunDirectoryError

DPI = 100
WEIGHTS_SIZE = (1200, 200)  # pixels (width, height) of weights.png
UNITS_SIZE = (900, 900)  # weights.png of an mlp
CURVES_SIZE = (1000, 400)  # curves.png
CONFUSION_SIZE = (700, 620)  # confusion.png
DIGITS = tuple(str(d) for d in range(10))


def require_matplotlib() -> None:
    """Raise MissingExtraError, naming the extra to install, if matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            "pictures need matplotlib, which is not installed: run `make dev` in the "
            "repository, or `.venv/bin/pip install -e '.[plots]'`"
        ) from None


def new_figure(size: tuple[int, int]):
    """A matplotlib Figure of `size` pixels on its own Agg canvas."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig, path: Path) -> Path:
    """Write `fig` as a PNG to `path` atomically: a temporary file beside it, then a rename."""
    try:
        with atomic.replacing(path) as f:
            fig.savefig(f, format="png", dpi=DPI)
    except OSError as e:
        raise RunDirectoryError(f"{path}: cannot write the picture ({e})") from None
    return path


def plot_weights(
    W: np.ndarray, path: Path, class_names: Sequence[str] = DIGITS
) -> Path:
    """weights.png: each row of W (K, D) as a 28 × 28 image, side by side, on one diverging
    colour scale centred on 0 (red: ink there raises the class's score, blue: lowers it).

    The K templates are one mosaic (28, K·(28 + GAP)) drawn in one axes, blank (NaN) columns
    between them: a tenth of the drawing time of K separate axes.
    """
    K, gap = len(W), 4
    templates = W.reshape(K, 28, 28)  # (K, 28, 28)
    padded = np.pad(templates, ((0, 0), (0, 0), (0, gap)), constant_values=np.nan)
    mosaic = padded.transpose(1, 0, 2).reshape(28, K * (28 + gap))[:, :-gap]
    # one symmetric scale for every class; the top 0.5 % of |W| saturate, not wash out the rest
    limit = float(np.percentile(np.abs(W), 99.5)) or 1.0
    fig = new_figure(WEIGHTS_SIZE)
    ax = fig.subplots()
    image = ax.imshow(mosaic, cmap="RdBu_r", vmin=-limit, vmax=limit)
    centres = np.arange(K) * (28 + gap) + 13.5
    ax.set_xticks(centres, class_names[:K])
    ax.tick_params(length=0, labeltop=True, labelbottom=False)
    ax.set_yticks([])
    ax.set_frame_on(False)
    fig.colorbar(image, ax=ax, shrink=0.8, pad=0.01, label="weight", extend="both")
    fig.suptitle(
        "W: one 28×28 template per class (red raises the score, blue lowers it)"
    )
    return save(fig, path)


def unit_mosaic(W: np.ndarray, gap: int = 2, tile: int = 28) -> np.ndarray:
    """The rows of W (n, tile²) (W₁ of an mlp, a cnn's first filters, a block's feature maps)
    as tile × tile tiles in a grid of ⌈√n⌉ columns, row by row, `gap` blank (NaN) pixels
    between tiles, each tile divided by its largest |w| (units differ in scale, and a shared
    one would leave most tiles blank): (rows·(tile + gap) − gap, cols·(tile + gap) − gap),
    values in [−1, 1], NaN where no unit is."""
    W = W.reshape(len(W), -1)
    n = len(W)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    scale = np.abs(W).max(axis=1, keepdims=True)  # (n, 1)
    tiles = np.full((rows * cols, tile, tile), np.nan)
    tiles[:n] = (W / np.where(scale > 0, scale, 1)).reshape(n, tile, tile)
    padded = np.pad(tiles, ((0, 0), (0, gap), (0, gap)), constant_values=np.nan)
    side = tile + gap
    mosaic = padded.reshape(rows, cols, side, side).transpose(0, 2, 1, 3)
    return mosaic.reshape(rows * side, cols * side)[:-gap, :-gap]


def plot_units(W: np.ndarray, path: Path) -> Path:
    """weights.png of an mlp: each row of W₁ (n₁, D), a hidden unit's weights on the pixels, as
    a 28 × 28 tile (unit_mosaic: 16 × 16 tiles for 256 units), each on its own scale."""
    mosaic = unit_mosaic(W)
    cols = int(np.ceil(np.sqrt(len(W))))
    rows = int(np.ceil(len(W) / cols))
    fig = new_figure(UNITS_SIZE)
    ax = fig.subplots()
    ax.imshow(mosaic, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_axis_off()
    fig.suptitle(
        f"W₁: the {len(W)} hidden units' input weights, {rows} × {cols} "
        "(each on its own scale; red +, blue −)"
    )
    return save(fig, path)


def plot_filters(W: np.ndarray, path: Path) -> Path:
    """weights.png of a cnn: its first convolution's filters W₁ (C, 1, k, k), one k × k tile
    each, each on its own scale."""
    fig = new_figure(UNITS_SIZE)
    ax = fig.subplots()
    ax.imshow(unit_mosaic(W, 1, W.shape[-1]), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_axis_off()
    fig.suptitle(
        f"W₁: the first convolution's {len(W)} filters, {W.shape[-1]} × {W.shape[-1]} "
        "(each on its own scale; red +, blue −)"
    )
    return save(fig, path)


def plot_features(image: np.ndarray, maps: Sequence[np.ndarray], path: Path) -> Path:
    """features.png: one test digit (28, 28) and, beside it, the feature maps (C, H, W) after
    each block (convolution, relu, max-pool), each map on its own scale (dark: 0)."""
    fig = new_figure((300 + 380 * len(maps), 400))
    axes = fig.subplots(1, 1 + len(maps), squeeze=False)[0]
    axes[0].imshow(image, cmap="gray_r")
    axes[0].set_title("the test digit")
    for l, (ax, A) in enumerate(zip(axes[1:], maps), start=1):
        ax.imshow(unit_mosaic(A, 1, A.shape[-1]), cmap="magma", vmin=0, vmax=1)
        ax.set_title(f"after block {l}: {A.shape[0]} maps, {A.shape[1]} × {A.shape[2]}")
    for ax in axes:
        ax.set_axis_off()
    return save(fig, path)


def monitored_accuracy(history: Sequence[dict]) -> tuple[str, list[float]] | None:
    """(split, accuracy per epoch, NaN where it is null) from a history in the fixed keys
    (`monitor` names the split, `monitor_accuracy` holds its accuracy; rundir/record.read_history
    reads older forms into these), or None if no epoch has an accuracy."""
    accuracy = [h.get("monitor_accuracy") for h in history]
    if all(a is None for a in accuracy):
        return None
    return str(history[0]["monitor"]), [math.nan if a is None else a for a in accuracy]


def plot_curves(history: Sequence[dict], path: Path, loss: str = "squared") -> Path:
    """curves.png: the training loss (left) and the monitored accuracy (right) per epoch, from
    metrics.json's `history` (entries with `epoch`, `train_loss`, `monitor` and
    `monitor_accuracy`, checked: mnist-train's own, or rundir/record.read_history's); `loss`
    names the training loss."""
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    monitored = monitored_accuracy(history)
    fig = new_figure(CURVES_SIZE)
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [h["train_loss"] for h in history], "o-", color="tab:blue")
    loss_ax.set(xlabel="epoch", ylabel=f"{loss} loss", title="training loss")
    if monitored is not None:
        split, fractions = monitored
        accuracy = [100 * a for a in fractions]
        acc_ax.plot(epochs, accuracy, "o-", color="tab:green")
        acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title=f"{split} accuracy")
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    return save(fig, path)


def plot_confusion(
    C: np.ndarray, path: Path, class_names: Sequence[str] = DIGITS, title: str = ""
) -> Path:
    """confusion.png: C (K, K), rows = true class, columns = predicted, the count in each cell.
    Colours follow √count, so that the off-diagonal mistakes show beside the large diagonal."""
    from matplotlib.colors import PowerNorm

    fig = new_figure(CONFUSION_SIZE)
    ax = fig.subplots()
    norm = PowerNorm(gamma=0.5, vmin=0, vmax=max(int(C.max()), 1))
    ax.imshow(C, cmap="Blues", norm=norm)
    for (i, j), count in np.ndenumerate(C):
        dark = norm(count) > 0.6
        color = "white" if dark else "black"
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color=color)
    ticks = np.arange(len(C))
    long_names = max(len(name) for name in class_names) > 3  # e.g. Fashion-MNIST's
    rotation = {"rotation": 45, "ha": "right", "rotation_mode": "anchor"}
    ax.set_xticks(ticks, class_names[: len(C)], **(rotation if long_names else {}))
    ax.set_yticks(ticks, class_names[: len(C)])
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    return save(fig, path)


def write_plots(
    out_dir: Path,
    W: np.ndarray,
    confusion: np.ndarray,
    history: Sequence[dict] | None = None,
    *,
    class_names: Sequence[str] = DIGITS,
    title: str = "",
    confusion_name: str = "confusion.png",
    hidden_units: bool = False,
    loss: str = "squared",
    features: tuple[np.ndarray, Sequence[np.ndarray]] | None = None,
) -> list[Path]:
    """Write weights.png (W: the class templates, with `hidden_units` the first layer of an
    mlp, a cnn's first filters for a W of 4 dimensions), curves.png (only with a non-empty `history`; `loss` names its loss) and
    `confusion_name`, and with `features` (a test digit, its feature maps after each block)
    features.png into `out_dir`; return the paths written, in that order."""
    if W.ndim == 4:
        written = [plot_filters(W, out_dir / "weights.png")]
    elif hidden_units:
        written = [plot_units(W, out_dir / "weights.png")]
    else:
        written = [plot_weights(W, out_dir / "weights.png", class_names)]
    if history:
        written.append(plot_curves(history, out_dir / "curves.png", loss))
    written.append(
        plot_confusion(confusion, out_dir / confusion_name, class_names, title)
    )
    if features:
        written.append(plot_features(*features, out_dir / "features.png"))
    return written
