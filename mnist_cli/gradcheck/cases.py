"""What mnist-gradcheck checks, and where: the (model, loss) pairs asked for, a random batch of
real images, random weights at which every derivative is measurable, and the table of results.

check.py compares; this module chooses the point of parameter space it compares at (see
random_params, random_layers and random_cnn for why those weights), the same for every pair.
"""

from dataclasses import replace

import numpy as np

from mnist_cli.config.choices import KINDS, LOSSES
from mnist_cli.config.models import cnn_misfit
from mnist_cli.errors import OptionsError
from mnist_cli.gradcheck.check import BlockCheck, Layers, Subject, check_gradients
from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import cnn_layers, dense_layers
from mnist_cli.nn.layers import Activation, Params, activate, inputs
from mnist_cli.nn.losses import Loss, one_hot
from mnist_cli.nn.network import init_network

MODELS = KINDS
DEFAULT_HIDDEN = (32,)  # small, so that a check takes a second or two
CNN_CHANNELS, CNN_KERNEL, CNN_HIDDEN = (
    (4, 6),
    5,
    (16,),
)  # a small cnn, checked in seconds
# the cnn is checked on at most this many samples: past ~10 (144 max-pool windows a channel each)
# no draw of a channel's weights leaves every window free of a near-tie (within CNN_MARGIN)
CNN_SAMPLES = 10
CNN_MARGIN = 1e-4  # ≫ h times a window's largest input (6e-6 × ~10)
W_SCALE, B_SCALE = 0.1, 0.5  # random weights: logits of std ≈ 1 on MNIST (‖x‖ ≈ 9)
OUT_GAIN = 3.0  # the mlp's output layer, × its init scale: logits of spread ≈ 1-3
MARGIN = 1e-3  # relu pre-activations kept this far from the kink (≫ h‖x‖ ≈ 6e-5)
REDRAWS = 100  # bias draws per relu unit, at most


def subjects(
    model: str,
    loss: Loss | None = None,
    hidden: tuple[int, ...] | None = None,
    activation: Activation | None = None,
    channels: tuple[int, ...] | None = None,
    kernel: int | None = None,
) -> list[Subject]:
    """The (model, loss) pairs `model` ("linear", "softmax", "mlp" or "all") and `loss` ask for:
    with no loss, every loss that applies (cross-entropy needs a softmax output: not linear).
    An mlp has `hidden` widths (DEFAULT_HIDDEN) and `activation` ("relu"); either given for
    another model is an OptionsError."""
    if model == "linear" and loss == "cross-entropy":
        raise OptionsError(
            "cross-entropy needs a softmax output: use it with the softmax or mlp "
            "model (or all)",
            option="--loss",
        )
    for name, given, models in (
        ("hidden", hidden, ("mlp", "cnn")),
        ("activation", activation, ("mlp",)),
        ("channels", channels, ("cnn",)),
        ("kernel", kernel, ("cnn",)),
    ):
        if given is not None and model not in (*models, "all"):
            raise OptionsError(
                f"applies to the {' or '.join(models)} model (or all), not {model}",
                option=f"--{name}",
            )
    cnn = Subject(
        "cnn", "squared", hidden or CNN_HIDDEN, "relu", channels or CNN_CHANNELS
    )
    cnn = replace(cnn, kernel=kernel or CNN_KERNEL)
    if model in ("cnn", "all") and (why := cnn_misfit(cnn.channels, cnn.kernel)):
        channels_given = ",".join(map(str, cnn.channels))
        raise OptionsError(f"with channels {channels_given}: {why}", option="--kernel")
    hidden = hidden or DEFAULT_HIDDEN
    activation = activation or "relu"
    chosen = []
    for kind in MODELS if model == "all" else (model,):
        for each in (loss,) if loss else LOSSES:
            if kind == "linear" and each == "cross-entropy":
                continue
            if kind == "mlp":
                chosen.append(Subject(kind, each, hidden, activation))
            elif kind == "cnn":
                chosen.append(replace(cnn, loss=each))
            else:
                chosen.append(Subject(kind, each))
    return chosen


def random_params(rng: np.random.Generator) -> Params:
    """W ~ N(0, 0.1²) (K, D) and b ~ N(0, 0.5²) (K,), float64.

    Sized so that softmax is neither saturated (S near one-hot: every derivative vanishes) nor
    uniform (S ≈ 1/K: then ⟨g, S⟩ ≈ 0 for every sample, and a dropped −⟨g, S⟩ term would go
    unnoticed). MNIST inputs have ‖x‖ ≈ 9, so the logits Z = XWᵀ + b have a spread of about 1.
    """
    W = W_SCALE * rng.standard_normal((K, D))  # (K, D)
    b = B_SCALE * rng.standard_normal(K)  # (K,)
    return Params(W=W, b=b)


def random_layers(subject: Subject, X: np.ndarray, rng: np.random.Generator) -> Layers:
    """Random float64 weights: random_params for one layer; for the mlp, the initial W_l of
    the initial Dense layers (each layer's pre-activations of variance ≈ 1), b_l ~ N(0, 0.5²) (units on
    both sides of relu's kink, in sigmoid's and tanh's curved part), and the output layer's W
    scaled by 3, for the same reason as random_params.

    relu has no derivative at 0: a central difference across the kink measures a jump, not a
    derivative (seen: errors of 1e-3 in W1 and b1 with two of 3,200 pre-activations within h of
    0). So for relu each hidden unit's bias is redrawn until the batch X (N, D) keeps its
    pre-activations at least MARGIN from 0 (REDRAWS tries at most: with many thousands of
    samples some unit always sits near its kink).
    """
    if subject.model == "cnn":
        return random_cnn(subject, X, rng)
    if not subject.hidden:
        return (random_params(rng),)
    network = init_network(
        dense_layers(subject.hidden, subject.activation),
        "softmax",
        (D,),
        rng,
        np.float64,
    )
    layers = [Params(*p) for p in network.params if p]
    A, out = X, []  # A_{l−1}, the current layer's input (N, n_{l−1})
    for l, p in enumerate(layers, start=1):
        b = B_SCALE * rng.standard_normal(p.b.shape)  # (n_l,)
        if l == len(layers):
            out.append(Params(W=OUT_GAIN * p.W, b=b))
            break
        XW = A @ p.W.T  # (N, n_l), Z_l without its bias
        for k in range(len(b) if subject.activation == "relu" else 0):
            for _ in range(REDRAWS):
                if np.abs(XW[:, k] + b[k]).min() >= MARGIN:
                    break
                b[k] = B_SCALE * rng.standard_normal()
        out.append(Params(W=p.W, b=b))
        A = activate(subject.activation, XW + b)  # (N, n_l)
    return tuple(out)


def random_cnn(subject: Subject, X: np.ndarray, rng: np.random.Generator) -> Layers:
    """Random float64 weights of the cnn: He's initial W, b ~ N(0, 0.5²), the output W × 3,
    each convolution's channel redrawn (W and b, REDRAWS tries at most) until, on the batch
    X (N, D), its pre-activations keep CNN_MARGIN from relu's kink and no 2 × 2 window of
    positive values holds two within CNN_MARGIN of each other (a near-tie of the max-pool,
    where a central difference would measure the jump of the other position winning); the
    dense layers' units as random_layers' mlp."""
    shape = cnn_layers(subject.channels, subject.kernel, subject.hidden)
    network = init_network(shape, "softmax", (D,), rng, np.float64)
    A, out, params = X, [], [p for p in network.params if p]
    for layer, p in zip(shape, network.params):
        if not p:
            A = layer.forward((), A)[0]
            continue
        W, b = np.array(p[0]), B_SCALE * rng.standard_normal(len(p[1]))
        last = len(out) == len(params) - 1  # the output layer: no relu, no pool
        if last:
            W *= OUT_GAIN
        for k in range(0 if last else len(b)):
            for _ in range(REDRAWS):
                Z = layer.forward((W[k : k + 1], b[k : k + 1]), A)[
                    0
                ]  # unit or channel k
                if smooth(Z, CNN_MARGIN if Z.ndim == 4 else MARGIN):
                    break
                b[k] = B_SCALE * rng.standard_normal()
                if Z.ndim == 4:  # a channel: its weights too (a near-tie is the W's)
                    W[k] = rng.standard_normal(W[k].shape) * np.sqrt(2 / W[k].size)
        out.append(Params(W=W, b=b))
        A = layer.forward((W, b), A)[0]
    return tuple(out)


def smooth(Z: np.ndarray, margin: float) -> bool:
    """No pre-activation within `margin` of relu's kink and, for a map (N, 1, H, W), no
    2 × 2 window whose largest positive value has another within `margin` of it."""
    if np.abs(Z).min() < margin:
        return False
    if Z.ndim < 4:
        return True
    N, _, H, W = Z.shape
    win = np.maximum(Z, 0)[:, :, : H // 2 * 2, : W // 2 * 2]
    win = win.reshape(N, H // 2, 2, W // 2, 2).transpose(0, 1, 3, 2, 4).reshape(-1, 4)
    top = np.sort(win, axis=1)  # (windows, 4)
    gap = top[:, 3] - top[:, 2]
    return not ((top[:, 3] > 0) & (gap < margin)).any()


def sample_batch(
    images: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """X (n, D) and one-hot Y (n, K), both float64, of n distinct samples drawn from `rng`.
    float64 throughout: in float32 the rounding error of each loss (≈ 1e-7·|L|) divided by 2h
    would swamp the derivative."""
    idx = np.sort(rng.choice(len(labels), size=n, replace=False))  # (n,)
    return inputs(images[idx], np.float64), one_hot(labels[idx], np.float64)


def run_checks(
    chosen: list[Subject],
    images: np.ndarray,
    labels: np.ndarray,
    *,
    samples: int,
    coords: int,
    seed: int,
) -> list[tuple[Subject, BlockCheck]]:
    """check_gradients for each subject at the same batch of `samples` images and the same draws
    of `seed` (so linear and softmax are checked at the same weights): (subject, block) pairs."""
    checks: list[tuple[Subject, BlockCheck]] = []
    for subject in chosen:
        rng = np.random.default_rng(seed)
        X, Y = sample_batch(images, labels, samples, rng)  # (N, D), (N, K) float64
        if subject.model == "cnn":
            X, Y = X[:CNN_SAMPLES], Y[:CNN_SAMPLES]
        layers = random_layers(subject, X, rng)
        found = check_gradients(subject, X, Y, layers, rng, coords=coords)
        checks += [(subject, c) for c in found]
    return checks


def format_checks(checks: list[tuple[Subject, BlockCheck]], tol: float) -> str:
    """One row per block: model, loss, block, what was compared, the largest relative error,
    where, and ok or FAIL against `tol`."""
    rows = [("model", "loss", "block", "compared", "max rel error", "at", "status")]
    rows += [
        (
            s.model,
            s.loss,
            c.block,
            c.what,
            f"{c.max_rel_error:.1e}",
            c.worst,
            "ok" if c.max_rel_error <= tol else "FAIL",
        )
        for s, c in checks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i == 4 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ).rstrip()
        for row in rows
    )
