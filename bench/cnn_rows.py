"""`make bench`'s cnn rows (issue 19): our cnn epoch against PyTorch's, paired in one process.

The network, loss, optimizer and batch of configs/cnn.toml: conv 5×5 1→16 → relu → pool 2 →
conv 5×5 16→32 → relu → pool 2 → dense 512→128 → relu → dense 128→10, cross-entropy, momentum
0.9 with weight decay 5e-4, a per-step cosine schedule from lr 0.1, batch 64.

    ours     the package's step as mnist-train runs it: training/cnn_step.py's CNNTrainer
             (its optimizer from optim.py) fed Ũ = [U, 255] batches gathered from the shuffled
             rows, as the batches thread hands them; at 1 thread one slice, at the default
             threads its 2 slices on 2 threads with one BLAS thread each (fast/shared.py)
    torch    the same in PyTorch: float32 tensors in memory, X[idx] gathers, optim.SGD +
             CosineAnnealingLR, torch.set_num_threads(1 or the default)
    loader   PyTorch's idiom: TensorDataset + DataLoader(shuffle=True), the rest as torch
    floor    the products alone of the steps on pre-made im2col matrices (bench/cnn_bench.py)
    score    fast/scoring.py's score of 10,000 test images (the monitored split), as the
             monitor runs it

Each round runs every contender back to back over the same --images images (a part of an
epoch: the ratios are per image; an epoch's seconds are scaled to 60,000 images); a ratio is
the median over rounds of the ratios within a round. Round 0 warms up and is not counted.
The last stdout line is the JSON.

    .venv/bin/python bench/cnn_rows.py --cache DIR [--rounds 5] [--images 12000]
"""

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from cnn_bench import floor_products, tensor_batches, torch_epoch, torch_model
from threadpoolctl import threadpool_limits

from mnist_cli.data import MNIST, load_dataset
from mnist_cli.fast.scoring import score
from mnist_cli.nn import D
from mnist_cli.nn.architecture import build
from mnist_cli.nn.losses import one_hot
from mnist_cli.optim import OptimizerSpec, make_optimizer
from mnist_cli.training.cnn_step import THREADS, cnn_trainer

MIRROR = Path(__file__).resolve().parent.parent / "data" / "mnist"
CHANNELS, KERNEL, HIDDEN, BATCH = (16, 32), 5, (128,), 64
LR, MOMENTUM, WD, EPOCHS, N = 0.1, 0.9, 5e-4, 10, 60000
TARGETS = {"vs_torch": 1.0, "score_vs_epoch": 0.10}


def cosine(t: int, T: int) -> float:
    return LR * (1 + math.cos(math.pi * t / T)) / 2  # γ_t, t = 0 … T − 1


def contenders(U1, Yt, X, y, test, slices: int) -> dict:
    """Each contender's pass over the images as a function of no arguments."""
    steps_total = EPOCHS * math.ceil(N / BATCH)
    rng = np.random.default_rng(0)
    network = build("cnn", "normal", rng, HIDDEN, channels=CHANNELS, kernel=KERNEL)
    spec = OptimizerSpec("momentum", momentum=MOMENTUM, weight_decay=WD)
    trainer = cnn_trainer(network, "cross-entropy", make_optimizer(spec), slices)
    clock = {"t": 0}

    def ours() -> None:
        order = rng.permutation(len(U1))
        for i in range(0, len(U1), BATCH):
            idx = order[i : i + BATCH]
            lr = cosine(clock["t"] % steps_total, steps_total)
            trainer.step(((U1[idx], Yt[:, idx]),), len(idx), lr)  # (m, D + 1), (K, m)
            clock["t"] += 1

    def ours_blas1() -> None:
        with threadpool_limits(1, user_api="blas"):  # one BLAS thread per slice
            ours()

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    Xt, yt = torch.from_numpy(X).reshape(-1, 1, 28, 28), torch.from_numpy(y)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(Xt, yt), batch_size=BATCH, shuffle=True
    )
    models, opts, scheds = [], [], []
    for _ in range(2):  # one for in-memory tensors, one for the DataLoader
        m = torch_model(CHANNELS, KERNEL, HIDDEN)
        o = torch.optim.SGD(m.parameters(), LR, momentum=MOMENTUM, weight_decay=WD)
        models.append(m)
        opts.append(o)
        scheds.append(torch.optim.lr_scheduler.CosineAnnealingLR(o, steps_total))
    floor_step = floor_products(trainer.shared.nets[0], BATCH, rng)
    steps = math.ceil(len(U1) / BATCH)
    images, labels = test

    def floor() -> None:
        for _ in range(steps):
            floor_step()

    return {
        "ours": ours_blas1,
        "torch": lambda: torch_epoch(
            models[0], opts[0], scheds[0], tensor_batches(Xt, yt, BATCH, gen)
        ),
        "loader": lambda: torch_epoch(models[1], opts[1], scheds[1], loader),
        "floor": floor,
        "score": lambda: score(
            trainer.current(), images, labels, threads=1 if slices == 1 else None
        ),
    }


def timed(f) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--images", type=int, default=12000, help="images per pass")
    p.add_argument("--threads", choices=("1", "default"), default="1")
    a = p.parse_args()
    train, test = load_dataset(MNIST, a.cache, [str(MIRROR)])
    n = a.images
    U1 = np.empty((n, D + 1), np.float32)  # Ũ = [U, 255], (n, D + 1)
    U1[:, :D] = train.images[:n]
    U1[:, D] = 255.0
    Yt = np.ascontiguousarray(one_hot(train.labels[:n]).T)  # (K, n)
    X = train.images[:n].astype(np.float32) / 255  # (n, D), PyTorch's input
    y = train.labels[:n].astype(np.int64)
    one = a.threads == "1"  # run.py sets OPENBLAS/OMP_NUM_THREADS=1 then, else neither
    fs = contenders(U1, Yt, X, y, (test.images, test.labels), 1 if one else THREADS)
    torch.set_num_threads(1 if one else torch.get_num_threads())
    times: dict[str, list[float]] = {k: [] for k in fs}
    for r in range(a.rounds + 1):
        for name, f in fs.items():
            s = timed(f)
            if r:
                times[name].append(s)
    scale = N / n  # an epoch of 60,000 images

    def paired(x: str, z: str) -> float:
        return statistics.median(p / q for p, q in zip(times[x], times[z]))

    out = {
        "images": n,
        "rounds": a.rounds,
        "torch_threads": torch.get_num_threads(),
        "slices": 1 if one else THREADS,
        "epoch_seconds": {
            k: [s * scale for s in v] for k, v in times.items() if k != "score"
        },
        "score_seconds": statistics.median(times["score"]),
        "ours_vs_torch": paired("ours", "torch"),
        "ours_vs_torch_range": [
            min(p / q for p, q in zip(times["ours"], times["torch"])),
            max(p / q for p, q in zip(times["ours"], times["torch"])),
        ],
        "ours_vs_loader": paired("ours", "loader"),
        "ours_vs_floor": paired("ours", "floor"),
        "score_vs_epoch": paired("score", "ours") / scale,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
