"""A prototype trainer for the cnn recipe (issue 19): fast/conv.py's gradients, momentum SGD and
a cosine schedule written per PyTorch's conventions, per-epoch validation and test accuracy.

Not the package's training loop (that comes with issue 18's optimizers); a way to choose the
recipe's settings on a validation split held out of the training set, as `--val-size` does.

    momentum SGD (torch.optim.SGD, dampening 0):  g ← g + λ θ;  v ← μ v + g;  θ ← θ − γ_t v
    cosine schedule over all T steps:            γ_t = γ (1 + cos(π t / T)) / 2,  t = 0 … T−1

(v starts at 0, so v₁ = g₁ as torch's first step sets it.)

Example:
    .venv/bin/python bench/cnn_recipe.py --channels 8,16 --epochs 10 --val-size 10000
"""

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from mnist_cli.data import MNIST, holdout, load_dataset
from mnist_cli.fast.conv import FastCNN

DATA = Path(__file__).resolve().parent.parent / "data" / "mnist"


def he_init(shapes, rng: np.random.Generator) -> list[np.ndarray]:
    """W ~ N(0, 2 / fan_in) with fan_in = C_in·k·k or n_in; b = 0 (He et al., 2015)."""
    params = []
    for shape in shapes:
        if len(shape) == 1:
            params.append(np.zeros(shape, np.float32))
        else:
            fan_in = math.prod(shape[1:])
            W = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
            params.append(W.astype(np.float32))
    return params


class MomentumSGD:
    """torch.optim.SGD(momentum=μ, weight_decay=λ) with the cosine schedule over T steps:
    g ← g + λ θ;  v ← μ v + g;  θ ← θ − γ_t v;  γ_t = γ (1 + cos(π t / T)) / 2."""

    def __init__(
        self, params, lr: float, momentum: float, steps: int, weight_decay=0.0
    ):
        self.params, self.lr, self.mu, self.wd = params, lr, momentum, weight_decay
        self.T = steps
        self.velocity = [np.zeros_like(w) for w in params]
        self.t = 0

    def step(self, grads) -> None:
        lr = np.float32(self.lr * (1 + math.cos(math.pi * self.t / self.T)) / 2)
        for w, v, g in zip(self.params, self.velocity, grads):
            if self.wd:
                g += np.float32(self.wd) * w  # g ← g + λ θ
            v *= self.mu  # v ← μ v + g
            v += g
            w -= lr * v  # θ ← θ − γ_t v, in place
        self.t += 1


def accuracy(net: FastCNN, params, X: np.ndarray, y: np.ndarray) -> float:
    return float((net.logits(params, X).argmax(axis=1) == y).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--channels", default="8,16")
    p.add_argument("--kernel", type=int, default=5)
    p.add_argument("--hidden", default="128")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-size", type=int, default=10000)
    p.add_argument("--loss", default="cross-entropy")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()

    with tempfile.TemporaryDirectory() as cache:
        train, test = load_dataset(MNIST, Path(cache), [str(DATA)])
        fit, val = train, None
        if a.val_size:
            fit, val = holdout(train, a.val_size, np.random.default_rng(a.seed))
        X = fit.images.astype(np.float32) / 255  # cast first: exact pixels / 255
        y = fit.labels.astype(np.intp)
        Xt, yt = test.images.astype(np.float32) / 255, test.labels.astype(np.intp)
        if val is not None:
            Xv, yv = val.images.astype(np.float32) / 255, val.labels.astype(np.intp)

    channels = tuple(int(c) for c in a.channels.split(","))
    hidden = tuple(int(h) for h in a.hidden.split(",") if h)
    net = FastCNN(channels, a.kernel, hidden, loss=a.loss)
    rng = np.random.default_rng(a.seed)
    params = he_init(net.param_shapes(), rng)
    N = len(X)
    T = a.epochs * math.ceil(N / a.batch)
    sgd = MomentumSGD(params, a.lr, a.momentum, T, a.weight_decay)
    print(f"# {vars(a)}  train {N}  steps {T}", flush=True)
    with threadpool_limits(a.threads):
        for epoch in range(1, a.epochs + 1):
            start, total = time.perf_counter(), 0.0
            order = rng.permutation(N)
            for i in range(0, N, a.batch):
                idx = order[i : i + a.batch]
                loss, grads = net.loss_and_grads(params, X[idx], y[idx])
                total += loss * len(idx)
                sgd.step(grads)
            seconds = time.perf_counter() - start
            val_acc = accuracy(net, params, Xv, yv) if val is not None else float("nan")
            test_acc = accuracy(net, params, Xt, yt)
            print(
                f"epoch {epoch}/{a.epochs}  loss {total / N:.4f}  val acc "
                f"{100 * val_acc:.2f}%  test acc {100 * test_acc:.2f}%  {seconds:.2f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
