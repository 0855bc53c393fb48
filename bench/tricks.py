"""Each trick of the fast dense path measured against the same code without it, in one process.

    python bench/tricks.py --cache DIR [--pairs N]

prints one JSON object: for each trick, the epoch times with it and without it, measured in
alternation (each arm first in every other pair, its own trainer and data), and the median of
the pairs' ratios, without / with: 1.05 means the trick saves 5 % of what it is measured on.
bench/run.py runs it with one BLAS thread. The arms:

    gather thread   fast/batches.py's batches thread, against the same fill done in the
                    training thread (batches._prefetched replaced by an inline loop): whole
                    epochs of our loop's steps over shuffled_batches, softmax and mlp
    /255 in the     X = U/255 divided in the batches thread (today), against the old layout:
    batches thread  Ũ = [U, 255] undivided and Θ₁/255 held by the trainer, stepped at
                    lr/255² (exact for one layer: Θ₁/255 − (lr/255²) dZᵀŨ = (Θ₁ − lr dZᵀX̃)/255),
                    batches made by a copy of batches.py's fill without the divide; softmax
                    epochs, and the gather alone
    (K, K) ones     the sums over a sample's classes as ones(K, K) @ Zᵀ, leaving each sum in all K
                    rows, against ones(K) @ Zᵀ (m,) broadcast (output_grad replaced by
                    ones_vector_output_grad): our step alone on pre-made batches, softmax with
                    each loss
    in-place        DenseWork's arrays allocated once a run, against a fresh DenseWork (every
    buffers         scratch and gradient array) each step: our step alone, softmax and mlp
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
from mnist_cli.nn import D, K
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


def undivided(images, Yt_all, epochs: int, rng):
    """shuffled_batches' batches in the old layout, Ũ = [U, 255] (B, D + 1): its fill, line
    for line, without the divide by 255 (batch sizes up to CHUNK_ROWS)."""
    N = len(images)
    per_chunk = max(1, batches.CHUNK_ROWS // BATCH) * BATCH
    spans = [(start, min(start + per_chunk, N)) for start in range(0, N, per_chunk)]
    rows = min(per_chunk, N)
    buffers = [batches._buffers(rows, K) for _ in range(2)]
    for X, _ in buffers:
        X[:, D] = 255.0  # Ũ's constant column
    gathered = np.empty((rows, D), np.uint8)
    order = np.empty(0, np.intp)

    def fill(span, buffer) -> int:
        nonlocal order
        start, stop = span
        if start == 0:
            order = rng.permutation(N)
        X, Yt = buffer
        idx = order[start:stop]
        n = len(idx)
        np.take(images, idx, axis=0, out=gathered[:n], mode="clip")  # (n, D) uint8
        X[:n, :D] = gathered[:n]  # (n, D) cast to float32, not divided
        np.take(Yt_all, idx, axis=1, out=Yt[:, :n], mode="clip")  # (K, n)
        return n

    all_spans = (span for _ in range(epochs) for span in spans)
    for (X, Yt), n in batches._prefetched(fill, all_spans, buffers):
        for j in range(0, n, BATCH):
            yield X[j : min(j + BATCH, n)], Yt[:, j : min(j + BATCH, n)]


def ones_vector_output_grad(work, Yt, s) -> float:
    """dense.output_grad with each sum over a sample's classes as ones(K) @ Zᵀ (m,), broadcast
    down the K rows (the old fused_mlp.py's way), instead of ones(K, K) @ Zᵀ (K, m)."""
    Zt, Gt, Tk, ones, row = s.Zt, s.Gt, s.Tk, s.ones[0], s.row
    sums = s.Rt[0]  # (m,) a row of Rt as the second (m,) buffer
    softmax = work.output == "softmax"
    if softmax:
        np.maximum.reduce(Zt, axis=0, out=row)  # (m,)
        np.subtract(Zt, row, out=Zt)  # (K, m)
        if work.loss == "cross-entropy":
            picked = float(np.vdot(Yt, Zt))
        np.exp(Zt, out=Zt)
        np.dot(ones, Zt, out=sums)  # (m,) Σₖ exp
        if work.loss == "cross-entropy":
            np.log(sums, out=row)
            summed = float(row.sum()) - picked
        np.divide(Zt, sums, out=Zt)  # (K, m) / (m,) broadcast
    np.subtract(Zt, Yt, out=Gt)
    if work.loss == "squared":
        summed = float(np.vdot(Gt, Gt))
        if softmax:
            np.multiply(Gt, Zt, out=Tk)
            np.dot(ones, Tk, out=sums)  # (m,) ⟨ŷᵢ − yᵢ, sᵢ⟩
            np.subtract(Gt, sums, out=Gt)  # (K, m) − (m,) broadcast
            np.multiply(Gt, Zt, out=Gt)
    np.multiply(Gt, work.c, out=Gt)
    return summed


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


def same_step(trainer_a, trainer_b, batch_a, batch_b, lr_a, lr_b, scale_b=1.0) -> float:
    """The largest difference between two trainers' updates of one batch, the second's times
    `scale_b` (a check that an arm computes what the other does), relative to the largest."""
    before_a = [t.copy() for t in trainer_a.thetas]
    before_b = [t.copy() for t in trainer_b.thetas]
    trainer_a.step((batch_a,), BATCH, lr_a)
    trainer_b.step((batch_b,), BATCH, lr_b)
    da = np.concatenate([(t - b).ravel() for t, b in zip(trainer_a.thetas, before_a)])
    db = np.concatenate([(t - b).ravel() for t, b in zip(trainer_b.thetas, before_b)])
    return float(np.abs(da - scale_b * db).max() / np.abs(da).max())


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
    # /255 in the batches thread against Θ₁/255 and Ũ = [U, 255]
    a, b = softmax(), softmax()
    b.thetas[0][...] /= 255  # Θ₁/255 (zeros here: the layout is what counts)
    old_lr = lr / 255**2  # Θ₁/255 ← Θ₁/255 − (lr/255²) dZᵀŨ
    X1, Yt = X1s[0], targets[0]
    U1 = X1.copy()
    U1[:, :D] = images[:BATCH]
    U1[:, D] = 255.0
    checks["/255 in Θ₁"] = same_step(a, b, (X1, Yt), (U1, Yt), lr, old_lr, 255.0)
    on = batches.shuffled_batches(
        images, Yt_all, BATCH, epochs, np.random.default_rng(0)
    )
    old = undivided(images, Yt_all, epochs, np.random.default_rng(0))
    out["/255 in the batches thread (softmax epoch)"] = paired(
        {"with": lambda: epoch(a, on, steps, lr),
         "without": lambda: epoch(b, old, steps, old_lr)},
        pairs,
    )  # fmt: skip
    out["/255 in the batches thread (gather alone)"] = paired(
        {"with": lambda: gather(on, steps), "without": lambda: gather(old, steps)},
        pairs,
    )  # fmt: skip
    on.close()
    old.close()
    # the (K, K) ones product against a (K,) ones vector
    for loss in ("squared", "cross-entropy"):
        a, b = softmax(loss), softmax(loss)
        kept, dense.output_grad = dense.output_grad, ones_vector_output_grad
        try:  # the first update, with each: the same up to rounding
            b.step(((X1s[0], targets[0]),), BATCH, lr)
        finally:
            dense.output_grad = kept
        a.step(((X1s[0], targets[0]),), BATCH, lr)
        gap = max(float(np.abs(x - y).max()) for x, y in zip(a.thetas, b.thetas))
        checks[f"(K,) ones vector, softmax {loss}"] = gap / float(
            np.abs(a.thetas[0]).max()
        )
        out[f"(K, K) ones product (softmax {loss} step)"] = paired(
            {"with": lambda a=a: step_only(a, X1s, targets, lr),
             "without": lambda b=b: vector_step(b, X1s, targets, lr)},
            pairs,
        )  # fmt: skip
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


def vector_step(trainer: DenseTrainer, X1s, targets, lr: float) -> float:
    """step_only with dense.output_grad replaced by ones_vector_output_grad."""
    kept, dense.output_grad = dense.output_grad, ones_vector_output_grad
    try:
        return step_only(trainer, X1s, targets, lr)
    finally:
        dense.output_grad = kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True)
    parser.add_argument("--pairs", type=int, default=8)
    args = parser.parse_args()
    print(json.dumps(tricks(args.cache, args.pairs)))


if __name__ == "__main__":
    main()
