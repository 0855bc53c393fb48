"""The contenders of the benchmark, one per subprocess, so each one's peak RSS is its own.

    python bench/workers.py NAME --cache DIR [--epochs N] [--batch-size B] [--only a,b]

prints one JSON object on stdout: epoch times in seconds, test accuracy, and what was measured.
bench/run.py starts these and reads their peak RSS from os.wait4. The contenders:

    interleaved  our trainer (softmax, linear, and softmax at other batch sizes), each in one
                 multi-epoch train() run as mnist-train runs it, with one epoch of the BLAS
                 floor between two of its epochs, so machine noise hits both alike; `--only`
                 picks them. Two more rows take the trainer apart, measured between the epochs
                 of a softmax run of their own: its step alone on pre-made batches, its gather
                 + cast alone
    mlp          the same for the mlp (784-256-10 relu, batch 100), with each loss and with
                 the momentum and Adam optimizers, against its own floor (the five products of
                 a batch), and its step alone; `--only` picks them
    outer        the per-sample `np.outer` loop, timed on a slice of the epoch
    sweep        our softmax trainer at one `--batch-size` alone (for its peak RSS)
    warm-start   load_dataset on a warm cache (the four files memory-mapped), in a fresh process
    breakdown    `mnist-train --epochs N --quiet` run in this process, its phases timed

bench/tricks.py measures the fast path's tricks, each against the code without it.
"""

import argparse
import inspect
import json
import math
import sys
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np

from mnist_cli.data import MNIST, load_dataset
from mnist_cli.fast.batches import shuffled_batches
from mnist_cli.fast.scoring import score
from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import build
from mnist_cli.nn.layers import inputs
from mnist_cli.nn.losses import Loss, one_hot, softmax
from mnist_cli.nn.network import Network
from mnist_cli.optim import OptimizerSpec
from mnist_cli.training.loop import train
from mnist_cli.training.step import DenseTrainer, trainer_for

LR = {"softmax": 0.5, "linear": 0.005}  # mnist-train's defaults
BATCH = 100
# the mlp rows: 784-256-10 relu, He init, batch 100 (issue 11's recipe and its prototype's lr)
HIDDEN, ACTIVATION = 256, "relu"
# row -> (loss, optimizer, lr): sgd at mnist-train's mlp default; momentum at lr/(1 − μ) the
# same step size as sgd's; Adam at its usual 1e-3 (0.5 would diverge)
MLP_ROWS: dict[str, tuple[Loss, str, float]] = {
    "mlp cross-entropy": ("cross-entropy", "sgd", 0.5),
    "mlp squared": ("squared", "sgd", 0.5),
    "mlp momentum": ("cross-entropy", "momentum", 0.05),
    "mlp adam": ("cross-entropy", "adam", 0.001),
}
MIRROR = Path(__file__).resolve().parents[1] / "data" / "mnist"  # the bundled copy


def load(cache: Path):
    """(train, test) splits from the cache that bench/run.py filled."""
    return load_dataset(MNIST, cache, [str(MIRROR)])


def zeros(kind: str) -> Network:
    """The linear or softmax model at zero weights, as mnist-train starts it."""
    return build(kind, "zeros", np.random.default_rng(0))


def premade(images: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, list]:
    """Contiguous Ũ = [U, 255] float32 batches (n/B, B, D + 1) of the first n images, as the
    batches thread hands them to the step, and their Yᵀ (K, B) views."""
    X1 = np.empty((n, D + 1), np.float32)  # (n, D + 1)
    X1[:, :D] = images[:n]  # the pixels, cast
    X1[:, D] = 255.0
    Yt_all = np.ascontiguousarray(one_hot(labels[:n]).T)  # (K, n)
    targets = [Yt_all[:, i : i + BATCH] for i in range(0, n, BATCH)]  # (K, B) each
    return X1.reshape(n // BATCH, BATCH, D + 1), targets


def floor_epoch(batches: np.ndarray, W: np.ndarray, Z, gW, dZ) -> float:
    """The two matrix products of every batch, nothing else: Z = X_b Wᵀ (B, K) and
    dW = dZᵀ X_b (K, D), over contiguous pre-made float32 batches (n/B, B, D)."""
    start = time.perf_counter()
    for X in batches:  # (B, D) float32, contiguous
        np.matmul(X, W.T, out=Z)  # (B, K)
        np.matmul(dZ.T, X, out=gW)  # (K, D)
    return time.perf_counter() - start


def step_only_epoch(
    trainer: DenseTrainer, batches: np.ndarray, targets: list, lr: float
) -> float:
    """Our step (training/step.py: the fast path's gradients and the update) over pre-made
    batches: the trainer without its gather and cast, checking each loss as train() does."""
    start = time.perf_counter()
    for X1, Yt in zip(batches, targets):  # (B, D + 1), (K, B)
        loss = trainer.step(((X1, Yt),), BATCH, lr)
        if not math.isfinite(loss):
            raise RuntimeError(f"loss {loss}")
    return time.perf_counter() - start


def gather_only_epoch(batches: Iterator, per_epoch: int) -> float:
    """The trainer's batches alone (the next epoch of a batches.shuffled_batches run: the
    gather of each shuffled batch's uint8 rows and their cast, in its thread)."""
    start = time.perf_counter()
    for _ in islice(batches, per_epoch):
        pass
    return time.perf_counter() - start


PARTS = ("softmax step only", "gather + cast only")  # the trainer, taken apart


def trainer(name: str) -> tuple[str, int]:
    """A row's model and batch size: softmax -> (softmax, 100); batch 32 -> (softmax, 32)."""
    if name.startswith("batch "):
        return "softmax", int(name.split()[1])
    return name, BATCH


def interleaved(cache: Path, epochs: int, only: list[str]) -> dict:
    """Each trainer of `only` (softmax, linear, "batch N" for softmax at batch size N) trained
    for `epochs` epochs in one train() run; after each of its epochs (train's on_epoch, outside
    the epoch's clock) one epoch of the floor. The parts, if asked for, are measured first,
    between the epochs of a softmax run of their own that no row reports (between a reported
    row's epochs their 376 MB of pre-made batches passing through the caches slowed it). A
    trainer row keeps the floor epochs measured between its own; the floor row has them all."""
    train_split, test_split = load(cache)
    images, labels = np.asarray(train_split.images), train_split.labels
    n = len(labels) - len(labels) % BATCH
    rng = np.random.default_rng(0)
    batches = inputs(images[:n]).reshape(n // BATCH, BATCH, D)  # 188 MB float32
    W = (0.01 * rng.standard_normal((K, D))).astype(np.float32)
    Z, gW = np.empty((BATCH, K), np.float32), np.empty((K, D), np.float32)
    dZ = (0.01 * rng.standard_normal((BATCH, K))).astype(np.float32)
    parts = {}  # name -> one epoch of it, timed
    if PARTS[0] in only:
        step_batches, targets = premade(images, labels, n)
        steps = trainer_for(zeros("softmax"), "squared", OptimizerSpec())
        Yt_all = np.ascontiguousarray(one_hot(labels).T)  # (K, N)
        gathered = shuffled_batches(images, Yt_all, BATCH, epochs, rng)
        per_epoch = math.ceil(len(labels) / BATCH)
        parts = {
            PARTS[0]: lambda: step_only_epoch(
                steps, step_batches, targets, LR["softmax"]
            ),
            PARTS[1]: lambda: gather_only_epoch(gathered, per_epoch),
        }
    out: dict = {"floor": {"epoch_seconds": []}}
    out.update({part: {"epoch_seconds": []} for part in parts})
    trainers = [name for name in only if name not in ("floor", *PARTS)]
    if not trainers:  # the floor alone (bench/run.py: for its peak RSS)
        for _ in range(epochs):
            out["floor"]["epoch_seconds"].append(floor_epoch(batches, W, Z, gW, dZ))
    for name in ([None] if parts else []) + trainers:
        kind, batch_size = trainer(name or "softmax")
        floors: list[float] = []

        def between(_, floors=floors, parts=parts) -> None:
            floors.append(floor_epoch(batches, W, Z, gW, dZ))
            for part, epoch in parts.items():
                out[part]["epoch_seconds"].append(epoch())

        network, history = train(
            zeros(kind), images, labels, epochs=epochs, batch_size=batch_size,
            lr=LR[kind], rng=np.random.default_rng(0), on_epoch=between,
        )  # fmt: skip
        out["floor"]["epoch_seconds"] += floors
        if name is None:  # the parts' run: paired with its floors; then their data goes
            for part in parts:
                out[part]["floor_epoch_seconds"] = floors
            gathered.close()
            del step_batches, targets
            parts = {}
            continue
        out[name] = {
            "epoch_seconds": [r.seconds for r in history],
            "floor_epoch_seconds": floors,
            "test_accuracy": score(
                network, test_split.images, test_split.labels
            ).accuracy,
            "epochs": epochs,
        }
    return out


def train_mlp(
    row: str,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int,
    rng: np.random.Generator,
    on_epoch=None,
) -> tuple[Network, list[float]]:
    """Our mlp trainer as mnist-train --model mlp runs it, with MLP_ROWS[row]'s loss,
    optimizer and lr: train() on a network drawn from `rng` (then the shuffles), the trained
    network and each epoch's seconds (the steps only), `on_epoch(seconds)` called after each
    epoch, outside its clock."""
    loss, optimizer, lr = MLP_ROWS[row]
    network = build("mlp", "normal", rng, (HIDDEN,), ACTIVATION)
    trained, history = train(
        network, images, labels, epochs=epochs, batch_size=BATCH, lr=lr, rng=rng,
        loss=loss, optimizer=OptimizerSpec(optimizer),
        on_epoch=on_epoch and (lambda r: on_epoch(r.seconds)),
    )  # fmt: skip
    return trained, [r.seconds for r in history]


def mlp_floor_epoch(batches: np.ndarray, W1, W2, Z1, Z2, gW2, dA1, gW1) -> float:
    """The five products of every batch and nothing else, in the natural (B, n) layout, over
    contiguous pre-made float32 batches (n/B, B, D): Z₁ = X W₁ᵀ, Z₂ = A₁ W₂ᵀ,
    dW₂ = dZ₂ᵀ A₁, dA₁ = dZ₂ W₂, dW₁ = dZ₁ᵀ X."""
    start = time.perf_counter()
    for X in batches:  # (B, D)
        np.matmul(X, W1.T, out=Z1)  # (B, H) Z₁
        np.matmul(Z1, W2.T, out=Z2)  # (B, K) Z₂ (A₁ = Z₁ stands in)
        np.matmul(Z2.T, Z1, out=gW2)  # (K, H) dW₂ (dZ₂ = Z₂ stands in)
        np.matmul(Z2, W2, out=dA1)  # (B, H) dA₁
        np.matmul(dA1.T, X, out=gW1)  # (H, D) dW₁ (dZ₁ = dA₁ stands in)
    return time.perf_counter() - start


def mlp(cache: Path, epochs: int, only: list[str]) -> dict:
    """Each mlp row of `only` (MLP_ROWS) trained for `epochs` epochs in one run, one epoch
    of the mlp floor after each of its epochs (and, between the first row's epochs, one of
    "mlp step only": cross-entropy, sgd); the "mlp floor" row has every floor epoch."""
    train_split, test_split = load(cache)
    images, labels = np.asarray(train_split.images), train_split.labels
    n = len(labels) - len(labels) % BATCH
    rng = np.random.default_rng(0)
    batches = inputs(images[:n]).reshape(n // BATCH, BATCH, D)  # 188 MB float32
    W1 = (0.05 * rng.standard_normal((HIDDEN, D))).astype(np.float32)
    W2 = (0.05 * rng.standard_normal((K, HIDDEN))).astype(np.float32)
    shapes = ((BATCH, HIDDEN), (BATCH, K), (K, HIDDEN), (BATCH, HIDDEN), (HIDDEN, D))
    bufs = [np.empty(shape, np.float32) for shape in shapes]
    out: dict = {"mlp floor": {"epoch_seconds": []}}
    parts = {}
    if "mlp step only" in only:
        step_batches, targets = premade(images, labels, n)
        network = build("mlp", "normal", rng, (HIDDEN,), ACTIVATION)
        steps = trainer_for(network, "cross-entropy", OptimizerSpec())
        out["mlp step only"] = {"epoch_seconds": []}
        parts["mlp step only"] = lambda: step_only_epoch(
            steps, step_batches, targets, 0.5
        )
    for name in (name for name in only if name in MLP_ROWS):
        floors: list[float] = []

        def between(_, floors=floors, parts=parts) -> None:
            floors.append(mlp_floor_epoch(batches, W1, W2, *bufs))
            for part, epoch in parts.items():
                out[part]["epoch_seconds"].append(epoch())

        trained, seconds = train_mlp(
            name, images, labels, epochs=epochs, rng=np.random.default_rng(0),
            on_epoch=between,
        )  # fmt: skip
        out["mlp floor"]["epoch_seconds"] += floors
        if parts:
            out["mlp step only"]["floor_epoch_seconds"] = floors
        out[name] = {
            "epoch_seconds": seconds,
            "floor_epoch_seconds": floors,
            "test_accuracy": score(
                trained, test_split.images, test_split.labels
            ).accuracy,
            "epochs": epochs,
            "optimizer": MLP_ROWS[name][1],
        }
        parts = {}  # the parts only between the first run's epochs
    return out


def outer(cache: Path, samples: int) -> dict:
    """The per-sample `np.outer` loop for softmax: per sample z = Wx + b, s = softmax(z), the
    Jacobian J = diag(s) − ssᵀ, dz = J 2(s − y), and dW += np.outer(dz, x) / B; a step per
    batch of B. Timed on the first `samples` of a shuffled epoch, extrapolated to 60,000."""
    train_split, _ = load(cache)
    images, labels = np.asarray(train_split.images), train_split.labels
    rng = np.random.default_rng(0)
    W, b = np.zeros((K, D), np.float32), np.zeros(K, np.float32)
    Y = one_hot(labels)
    order = rng.permutation(len(labels))[:samples]
    start = time.perf_counter()
    for first in range(0, samples, BATCH):
        gW, gb = np.zeros((K, D), np.float32), np.zeros(K, np.float32)
        idx = order[first : first + BATCH]
        for i in idx:
            x = images[i].astype(np.float32) / 255  # (D,)
            s = softmax((W @ x + b)[None])[0]  # (K,)
            J = np.diag(s) - np.outer(s, s)  # (K, K)
            dz = J @ (2 * (s - Y[i]))  # (K,)
            gW += np.outer(dz, x) / len(idx)  # (K, D)
            gb += dz / len(idx)
        W -= LR["softmax"] * gW
        b -= LR["softmax"] * gb
    seconds = time.perf_counter() - start
    return {
        "outer": {
            "slice_samples": samples,
            "slice_seconds": seconds,
            "epoch_seconds": [seconds * len(labels) / samples],
        }
    }


def sweep(cache: Path, epochs: int, batch_size: int) -> dict:
    """Our softmax trainer at one batch size: epoch times and test accuracy after `epochs`."""
    train_split, test_split = load(cache)
    trained, history = train(
        zeros("softmax"), train_split.images, train_split.labels, epochs=epochs,
        batch_size=batch_size, lr=LR["softmax"], rng=np.random.default_rng(0),
    )  # fmt: skip
    return {
        f"batch {batch_size}": {
            "epoch_seconds": [r.seconds for r in history],
            "test_accuracy": score(
                trained, test_split.images, test_split.labels
            ).accuracy,
            "epochs": epochs,
        }
    }


def warm_start(cache: Path) -> dict:
    """Seconds for load_dataset on a warm cache, and which lazy imports it pulled in."""
    start = time.perf_counter()
    train_split, test_split = load(cache)
    seconds = time.perf_counter() - start
    lazy = {m: m in sys.modules for m in ("requests", "tqdm", "torch")}
    return {
        "warm_start": {
            "seconds": seconds,
            "imported": lazy,
            "shapes": [train_split.images.shape, test_split.images.shape],
        }
    }


def breakdown(cache: Path, epochs: int, out: Path) -> dict:
    """`mnist-train --epochs N --quiet` (softmax, the default config) run in this process, with
    the functions that do each phase wrapped in a timer: data load (the command's
    load_dataset), SGD (the epochs' steps, as train() clocks them: the monitor of each epoch
    but the last is scored beside the next one's steps), scoring (the rest of train() and
    run.fit's final scores: the last epoch's monitor, and the training split), writing (the
    command's write_run). Imports are not in here: bench/run.py times them in a fresh
    process. `monitor` and `checkpoints` are the time spent in the monitor's scorer and in
    writing each epoch's checkpoint, in whichever thread (mostly beside the steps)."""
    from collections import defaultdict

    import mnist_cli.cli.mnist_train as command
    from mnist_cli import cli
    from mnist_cli.training import run, step

    spent: dict[str, float] = defaultdict(float)

    def timed(phase: str, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[phase] += time.perf_counter() - start

        return wrapper

    def train_clocked(*args, **kwargs):
        network, history = train(*args, **kwargs)
        spent["SGD"] += sum(r.seconds for r in history)
        return network, history

    # each function wrapped in every module of the command that calls it by name (the
    # command's own modules move: wherever they are)
    commands = [command, *(m for m in vars(cli).values() if inspect.ismodule(m))]
    for phase, name, modules in (
        ("data load", "load_dataset", commands),
        ("writing", "write_run", commands),
        ("final scores", "score", [run]),
        ("checkpoints", "write_checkpoint", commands),  # beside the steps, not a phase
    ):
        for module in modules:
            if hasattr(module, name):
                setattr(module, name, timed(phase, getattr(module, name)))
    run.train = timed("train", train_clocked)
    step.score = timed("monitor", score)
    args = ["--epochs", str(epochs), "--quiet", "--force", "--out", str(out)]
    args += ["--cache-dir", str(cache), "--mirror", str(MIRROR)]
    start = time.perf_counter()
    command.train_command.main(args, standalone_mode=False)
    total = time.perf_counter() - start
    phases = {
        "data load": spent["data load"],
        "SGD": spent["SGD"],
        "scoring": spent["train"] - spent["SGD"] + spent["final scores"],
        "writing": spent["writing"],
    }
    phases["other"] = total - sum(phases.values())  # options, config, the run directory
    beside = {"monitor": spent["monitor"], "checkpoints": spent["checkpoints"]}
    return {"breakdown": {"seconds": total, "phases": phases, **beside}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "name",
        choices=["interleaved", "mlp", "outer", "sweep", "warm-start", "breakdown"],
    )
    parser.add_argument("--out", type=Path, help="breakdown: the run directory")
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=BATCH)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--only", default="floor,softmax,linear")
    args = parser.parse_args()
    if args.name == "interleaved":
        result = interleaved(args.cache, args.epochs, args.only.split(","))
    elif args.name == "mlp":
        result = mlp(args.cache, args.epochs, args.only.split(","))
    elif args.name == "outer":
        result = outer(args.cache, args.samples)
    elif args.name == "breakdown":
        result = breakdown(args.cache, args.epochs, args.out)
    elif args.name == "sweep":
        result = sweep(args.cache, args.epochs, args.batch_size)
    else:
        result = warm_start(args.cache)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
