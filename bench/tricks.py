"""Each trick of the fast dense path measured against the same code without it, in one process.

    python bench/tricks.py --cache DIR [--pairs N]

prints one JSON object: for each trick, the epoch times with it and without it, measured in
alternation (each arm first in every other pair, its own trainer and data), and the median of
the pairs' ratios, without / with: 1.05 means the trick saves 5 % of what it is measured on.
bench/run.py runs it with one BLAS thread. The arms:

    gather thread   fast/batches.py's batches thread, against the same fill done in the
                    training thread (batches._prefetched replaced by an inline loop): whole
                    epochs of our loop's steps over shuffled_batches, softmax and mlp
    in-place        DenseWork's arrays allocated once a run, against a fresh DenseWork (every
    buffers         scratch and gradient array) each step: our step alone, softmax and mlp

Both run on today's batches, Ũ = [U, 255] (B, D + 1) float32 (workers.premade builds the same).
Two earlier arms are resolved and gone (bench/README.md): the divide by 255 in the batches
thread (measured 13-24 % slower than Ũ with 1/255 on the small (n₁, B) products, which the fast
path now does) and the (K, K) ones product (within 1-3 % of the (K,) vector it now uses).
"""

import argparse
import json
import math
import statistics
import time
from itertools import chain

import numpy as np
from workers import ACTIVATION, BATCH, HIDDEN, LR, load, premade, zeros

from mnist_cli.fast import batches, dense
from mnist_cli.nn.architecture import build
from mnist_cli.nn.losses import one_hot
from mnist_cli.optim import OptimizerSpec
from mnist_cli.training.step import DenseTrainer, trainer_for

SGD = OptimizerSpec()


def epoch(trainer: DenseTrainer, items, steps: int, lr: float) -> float:
    """`steps` steps of train()'s loop on the next batches of `items`, timed."""
    start = time.perf_counter()
    for _ in range(steps):
        loss = trainer.step((next(items),), BATCH, lr)
        if not math.isfinite(loss):
            raise RuntimeError(f"loss {loss}")
    return time.perf_counter() - start


def step_only(trainer: DenseTrainer, X1s, targets, lr: float, fresh=False) -> float:
    """Our step alone over pre-made batches; with `fresh`, a new DenseWork every step."""
    work = trainer.work
    start = time.perf_counter()
    for X1, Yt in zip(X1s, targets):
        if fresh:
            trainer.work = dense.DenseWork.for_thetas(
                trainer.thetas, work.activation, work.output, work.loss
            )
        loss = trainer.step(((X1, Yt),), BATCH, lr)
        if not math.isfinite(loss):
            raise RuntimeError(f"loss {loss}")
    trainer.work = work
    return time.perf_counter() - start


def inline(fill, starts, buffers):
    """batches._prefetched without its thread: each buffer filled when it is asked for."""
    for start in starts:
        yield buffers[0], fill(start, buffers[0])


def unthreaded(images, Yt_all, epochs: int, rng) -> chain:
    """shuffled_batches with its fill run in the caller's thread (started while patched)."""
    threaded, batches._prefetched = batches._prefetched, inline
    try:
        items = batches.shuffled_batches(images, Yt_all, BATCH, epochs, rng)
        first = next(items)  # the generator's body, and its _prefetched, start here
    finally:
        batches._prefetched = threaded
    return chain([first], items)


def paired(arms: dict, pairs: int) -> dict:
    """Each arm's epoch `pairs` times, the arms in alternating order; the two lists and the
    median of without / with."""
    (a, run_a), (b, run_b) = arms.items()
    times: dict[str, list[float]] = {a: [], b: []}
    for i in range(pairs):
        for name, run in [(a, run_a), (b, run_b)][:: 1 if i % 2 == 0 else -1]:
            times[name].append(run())
    ratio = statistics.median(y / x for x, y in zip(times[a], times[b]))
    return {"with": times[a], "without": times[b], "without_vs_with": ratio}


def tricks(cache, pairs: int) -> dict:
    train_split, _ = load(cache)
    images, labels = np.asarray(train_split.images), train_split.labels
    Yt_all = np.ascontiguousarray(one_hot(labels).T)  # (K, N)
    n = len(labels) - len(labels) % BATCH
    steps = n // BATCH
    X1s, targets = premade(images, labels, n)
    lr = LR["softmax"]
    epochs = 2 * pairs + 2
    out, checks = {}, {}

    def mlp() -> DenseTrainer:
        network = build(
            "mlp", "normal", np.random.default_rng(0), (HIDDEN,), ACTIVATION
        )
        return trainer_for(network, "cross-entropy", SGD)

    def softmax(loss="squared") -> DenseTrainer:
        return trainer_for(zeros("softmax"), loss, SGD)

    # the gather thread: whole epochs of steps, with the fill in its thread or inline
    for model, make, rate, k in (("softmax", softmax, lr, 1), ("mlp", mlp, 0.5, 2)):
        a, b = make(), make()
        on = batches.shuffled_batches(
            images, Yt_all, BATCH, epochs, np.random.default_rng(0)
        )
        off = unthreaded(images, Yt_all, epochs, np.random.default_rng(0))
        out[f"gather thread ({model} epoch)"] = paired(
            {"with": lambda a=a, on=on, r=rate: epoch(a, on, steps, r),
             "without": lambda b=b, off=off, r=rate: epoch(b, off, steps, r)},
            max(2, pairs // k),
        )  # fmt: skip
        on.close()
    # in-place buffers against a fresh DenseWork every step
    for model, make, rate, k in (("softmax", softmax, lr, 1), ("mlp", mlp, 0.5, 2)):
        a, b = make(), make()
        out[f"in-place buffers ({model} step)"] = paired(
            {"with": lambda a=a, r=rate: step_only(a, X1s, targets, r),
             "without": lambda b=b, r=rate: step_only(b, X1s, targets, r, fresh=True)},
            max(2, pairs // k),
        )  # fmt: skip
    return {"tricks": out, "checks": checks}


def gather(items, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        next(items)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True)
    parser.add_argument("--pairs", type=int, default=8)
    args = parser.parse_args()
    print(json.dumps(tricks(args.cache, args.pairs)))


if __name__ == "__main__":
    main()
