"""The cnn's epoch: fast/conv.py against PyTorch, paired in one run, at 1 thread and the default.

Every contender trains the same network (conv 5×5 1→C₁ → ReLU → pool 2 → conv 5×5 C₁→C₂ →
ReLU → pool 2 → dense → ReLU → dense 10), cross-entropy, momentum SGD 0.9 with a per-step
cosine schedule, batch 64, on MNIST's 60,000 training images held in memory as float32:

    ours      fast/conv.py's loss_and_grads + MomentumSGD (bench/cnn_recipe.py), X[idx] gathers
    shared    ours with each batch shared among the threads (fast/shared.py), 1 BLAS thread
              each: default threads only
    torch     the same in PyTorch: tensors in memory, X[idx] gathers, optim.SGD + CosineAnnealingLR
    loader    PyTorch's idiom: TensorDataset + DataLoader(shuffle=True), the rest as torch
    floor     the products alone of an epoch's steps on pre-made im2col matrices: per conv
              block Z = W col, dW = dZ colᵀ, dcol = Wᵀ dZ (not for the first), per dense layer
              Z = W A, dW = dZ Aᵀ, dA = Wᵀ dZ
    score     ours: the logits of 10,000 images (a monitored split), by chunks of 256

The machine is shared: each round runs every contender's epoch back to back, and a ratio is
the median over rounds of the two epochs' ratio within a round, of wall time and of the
process's CPU time (at one thread the CPU time is the less disturbed by other processes; at
more, it adds up the threads', spinning included). numpy's BLAS threads are set with
threadpoolctl, torch's with torch.set_num_threads.

Example:
    .venv/bin/python bench/cnn_bench.py --channels 8,16 --rounds 3
"""

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from cnn_recipe import DATA, MomentumSGD, he_init
from threadpoolctl import threadpool_info, threadpool_limits
from torch import nn

from mnist_cli.data import MNIST, load_dataset
from mnist_cli.fast.conv import FastCNN
from mnist_cli.fast.shared import SharedCNN

LR, MOMENTUM, EPOCHS = 0.05, 0.9, 10  # the schedule spans 10 epochs, as the recipe's


def ours_epoch(net: FastCNN, params, sgd, X, y, batch, rng) -> float:
    order = rng.permutation(len(X))
    total = 0.0
    for i in range(0, len(X), batch):
        idx = order[i : i + batch]
        loss, grads = net.loss_and_grads(params, X[idx], y[idx])
        sgd.step(grads)
        total += loss * len(idx)
    return total / len(X)


def torch_model(channels, kernel, hidden) -> nn.Sequential:
    layers, c, h = [], 1, 28
    for c_out in channels:
        layers += [nn.Conv2d(c, c_out, kernel), nn.ReLU(), nn.MaxPool2d(2)]
        c, h = c_out, (h - kernel + 1) // 2
    layers.append(nn.Flatten())
    n = c * h * h
    for m in hidden:
        layers += [nn.Linear(n, m), nn.ReLU()]
        n = m
    return nn.Sequential(*layers, nn.Linear(n, 10))


def torch_epoch(model, opt, sched, batches) -> float:
    total, count = 0.0, 0
    for xb, yb in batches:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() * len(yb)
        count += len(yb)
    return total / count


def tensor_batches(X, y, batch, gen):
    order = torch.randperm(len(X), generator=gen)
    for i in range(0, len(X), batch):
        idx = order[i : i + batch]
        yield X[idx], y[idx]


def floor_products(net: FastCNN, B: int, rng):
    """The products of one training step, on pre-made float32 matrices: call it per step."""
    f = np.float32
    mats = []
    for s in net.blocks:
        rows, cols = s.c_in * s.k * s.k, s.conv[0] * s.conv[1] * B
        W, col = rng.random((s.c_out, rows), f), rng.random((rows, cols), f)
        mats.append((W, col, s.c_in > 1))  # the first block needs no input gradient
    for n_in, n_out in zip(net.dense[:-1], net.dense[1:]):
        mats.append((rng.random((n_out, n_in), f), rng.random((n_in, B), f), True))
    outs = [
        (np.empty((W.shape[0], C.shape[1]), f), np.empty(W.shape, f))
        for W, C, _ in mats
    ]
    backs = [np.empty(C.shape, f) for _, C, _ in mats]

    def step() -> None:
        for (W, C, needs_dA), (Z, dW), dC in zip(mats, outs, backs):
            np.matmul(W, C, out=Z)  # forward
            np.matmul(Z, C.T, out=dW)  # weight gradient (Z stands in for dZ)
            if needs_dA:
                np.matmul(W.T, Z, out=dC)  # input gradient (dcol or dA)

    return step


def contenders(channels, kernel, hidden, batch, X, y, threads) -> dict:
    """Each contender's epoch as a function of no arguments, returning its mean loss."""
    rng = np.random.default_rng(0)
    net = FastCNN(channels, kernel, hidden)
    steps = math.ceil(len(X) / batch)
    params = he_init(net.param_shapes(), rng)
    sgd = MomentumSGD(params, LR, MOMENTUM, EPOCHS * steps)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    Xt, yt = torch.from_numpy(X).reshape(-1, 1, 28, 28), torch.from_numpy(y)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(Xt, yt), batch_size=batch, shuffle=True
    )
    models, opts, scheds = [], [], []
    for _ in range(2):  # one for in-memory tensors, one for the DataLoader
        m = torch_model(channels, kernel, hidden)
        o = torch.optim.SGD(m.parameters(), lr=LR, momentum=MOMENTUM)
        models.append(m)
        opts.append(o)
        scheds.append(torch.optim.lr_scheduler.CosineAnnealingLR(o, EPOCHS * steps))
    floor_step = floor_products(net, batch, rng)
    shared = SharedCNN(FastCNN(channels, kernel, hidden), threads)  # closed at exit
    params2 = he_init(net.param_shapes(), np.random.default_rng(0))
    sgd2 = MomentumSGD(params2, LR, MOMENTUM, EPOCHS * steps)
    return {
        "ours": lambda: ours_epoch(net, params, sgd, X, y, batch, rng),
        "shared": lambda: with_blas(
            1, ours_epoch, shared, params2, sgd2, X, y, batch, rng
        ),
        "torch": lambda: torch_epoch(
            models[0], opts[0], scheds[0], tensor_batches(Xt, yt, batch, gen)
        ),
        "loader": lambda: torch_epoch(models[1], opts[1], scheds[1], loader),
        "floor": lambda: floor_epoch(floor_step, steps),
        "score": lambda: score(net, params, X[:10000]),
    }


def with_blas(threads: int, f, *args):
    with threadpool_limits(threads):
        return f(*args)


def timed(f, *args) -> tuple[tuple[float, float], float | None]:
    """((wall seconds, CPU seconds of the process), f's value) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = f(*args)
    return (time.perf_counter() - wall, time.process_time() - cpu), value


def score(net: FastCNN, params, X) -> None:
    net.logits(params, X)


def floor_epoch(step, steps: int) -> None:
    for _ in range(steps):
        step()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--channels", default="8,16")
    p.add_argument("--kernel", type=int, default=5)
    p.add_argument("--hidden", default="128")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--images", type=int, default=60000, help="images per epoch")
    a = p.parse_args()
    channels = tuple(int(c) for c in a.channels.split(","))
    hidden = tuple(int(h) for h in a.hidden.split(",") if h)

    with tempfile.TemporaryDirectory() as cache:
        train, _ = load_dataset(MNIST, Path(cache), [str(DATA)])
    X = train.images[: a.images].astype(np.float32) / 255  # (N, 784)
    y = train.labels[: a.images].astype(np.intp)
    default_threads = torch.get_num_threads()
    blas = ", ".join(
        f"{i['internal_api']} {i['num_threads']}" for i in threadpool_info()
    )
    print(
        f"# cnn {a.channels} k{a.kernel} / {a.hidden}, batch {a.batch}, {len(X)} images"
    )
    print(f"# numpy {np.__version__} ({blas}), torch {torch.__version__}")

    for threads in (1, default_threads):
        epochs = contenders(channels, a.kernel, hidden, a.batch, X, y, threads)
        if threads == 1:
            del epochs["shared"]  # the same as ours
        torch.set_num_threads(threads)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in epochs}
        losses = {}
        with threadpool_limits(threads):
            for r in range(a.rounds + 1):  # round 0 warms up: not counted
                for name, epoch in epochs.items():
                    seconds, losses[name] = timed(epoch)
                    if r:
                        times[name].append(seconds)
        print(
            f"threads {threads}:   epoch: median wall s (each round's) / median CPU s"
        )
        for name, ts in times.items():
            tail = "" if losses[name] is None else f"  loss {losses[name]:.4f}"
            runs = " ".join(f"{w:.2f}" for w, _ in ts)
            wall, cpu = (statistics.median(t[i] for t in ts) for i in (0, 1))
            print(f"  {name:<7} {wall:6.2f} s ({runs})  cpu {cpu:6.2f} s{tail}")
        print("  ratios, the median of the rounds' (wall; cpu):")
        for ours in [n for n in ("ours", "shared") if n in times]:
            for other in ("torch", "loader", "floor"):
                print(f"  {ours} / {other} {ratios(times[ours], times[other])}")
        print(
            f"  score / ours {ratios(times['score'], times['ours'])} (target <= 0.10)"
        )


def ratios(ours, theirs) -> str:
    wall = statistics.median(o[0] / t[0] for o, t in zip(ours, theirs))
    cpu = statistics.median(o[1] / t[1] for o, t in zip(ours, theirs))
    return f"{wall:.2f}x; {cpu:.2f}x"


if __name__ == "__main__":
    main()
