"""Each optimizer's step on the 784-256-10 mlp's parameters, against SGD's.

Two measurements, in this thread's CPU time (time.thread_time: one BLAS thread computes in
it, and time the machine's other processes take is not counted), each optimizer's right next
to SGD's (pairs in rotated order, the median of their ratios), because the machine is shared:

- alone: 600 steps on W₁ (256, 784), b₁ (256,), W₂ (10, 256), b₂ (10,) (203,530 float32
  numbers), the gradients refilled before each step (the refill's own time subtracted);
- in an epoch: 600 batches of 100 random pixel rows, each the mlp's five products (the epoch's
  floor, as make bench's "mlp floor" row) writing the gradients, then the optimizer's step; the
  extra over SGD is the share of such an epoch that the optimizer adds.

Run: .venv/bin/python bench/optim_bench.py [--rounds 15]  (~3 min)
"""

import argparse
import math
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from mnist_cli.optim import Optimizer, OptimizerSpec, make_optimizer


class TextbookAdam(Optimizer):
    """Adam keeping the averages m and v themselves (torch's exp_avg, exp_avg_sq), 12 passes
    over each array to mnist_cli.optim.Adam's 10: what its decayed sums save."""

    buffers = ("m", "v")

    def update(self, params, grads, lr: float) -> None:
        b1, b2, t = self.spec.beta1, self.spec.beta2, self.t
        root2 = math.sqrt(
            1.0 - b2**t
        )  # √(1 − β₂ᵗ): √v̂ + ε = (√v + ε√(1 − β₂ᵗ))/√(1 − β₂ᵗ)
        step, eps = lr * root2 / (1.0 - b1**t), self.spec.eps * root2
        for p, g, m, v in zip(params, grads, self.slots["m"], self.slots["v"]):
            np.multiply(m, b1, out=m)
            np.multiply(g, 1.0 - b1, out=g)
            np.add(m, g, out=m)  # m ← β₁m + (1−β₁)g
            np.multiply(g, g, out=g)
            np.multiply(g, (1.0 - b2) / (1.0 - b1) ** 2, out=g)  # (1−β₂)g²
            np.multiply(v, b2, out=v)
            np.add(v, g, out=v)  # v ← β₂v + (1−β₂)g²
            np.sqrt(v, out=g)
            np.add(g, eps, out=g)
            np.divide(m, g, out=g)
            np.multiply(g, step, out=g)
            np.subtract(p, g, out=p)


def build(name: str) -> Optimizer:
    spec = ROWS[name]
    return TextbookAdam(spec) if name == TEXTBOOK else make_optimizer(spec)


D, H, K, B, STEPS = 784, 256, 10, 100, 600
SHAPES = [(H, D), (H,), (K, H), (K,)]
ROWS = {
    "sgd": OptimizerSpec("sgd"),
    "momentum": OptimizerSpec("momentum"),
    "nesterov": OptimizerSpec("nesterov"),
    "adam": OptimizerSpec("adam"),
    "adam, weight decay": OptimizerSpec("adam", weight_decay=1e-4),
    "adam, textbook m, v": OptimizerSpec("adam"),
}
TEXTBOOK = "adam, textbook m, v"
LR = {"sgd": 1e-4, "momentum": 1e-5, "nesterov": 1e-5}  # adam: 1e-3


def fresh(rng: np.random.Generator) -> list[np.ndarray]:
    return [(0.05 * rng.standard_normal(s)).astype(np.float32) for s in SHAPES]


def alone(name: str, template: list[np.ndarray], rng: np.random.Generator) -> float:
    """Seconds a step: STEPS steps, each after refilling the gradients from the template."""
    optimizer, params = build(name), fresh(rng)
    grads = [g.copy() for g in template]
    lr = LR.get(name, 1e-3)
    start = time.thread_time()
    for _ in range(STEPS):
        for g, g0 in zip(grads, template):
            np.copyto(g, g0)
        optimizer.step(params, grads, lr)
    return (time.thread_time() - start) / STEPS


def refill_only(template: list[np.ndarray]) -> float:
    grads = [g.copy() for g in template]
    start = time.thread_time()
    for _ in range(STEPS):
        for g, g0 in zip(grads, template):
            np.copyto(g, g0)
    return (time.thread_time() - start) / STEPS


def epoch(
    name: str, batches: np.ndarray, weights: list, rng: np.random.Generator
) -> float:
    """Seconds for STEPS batches: the five products of each (with fixed stand-in weights, so
    that the gradients keep their size), the bias gradients, then the optimizer's step."""
    optimizer, params = build(name), fresh(rng)
    W1, W2 = weights
    Z1, Z2, dA1 = (
        np.empty((B, H), np.float32),
        np.empty((B, K), np.float32),
        np.empty((B, H), np.float32),
    )
    grads = [np.empty(s, np.float32) for s in SHAPES]  # ∂L/∂W₁, ∂L/∂b₁, ∂L/∂W₂, ∂L/∂b₂
    lr = LR.get(name, 1e-3)
    start = time.thread_time()
    for i in range(STEPS):
        X = batches[i % len(batches)]  # (B, D)
        np.matmul(X, W1.T, out=Z1)  # (B, H) Z₁
        np.matmul(Z1, W2.T, out=Z2)  # (B, K) Z₂ (A₁ = Z₁ stands in)
        np.matmul(Z2.T, Z1, out=grads[2])  # (K, H) ∂L/∂W₂ (dZ₂ = Z₂ stands in)
        np.sum(Z2, axis=0, out=grads[3])  # (K,) ∂L/∂b₂
        np.matmul(Z2, W2, out=dA1)  # (B, H) dA₁
        np.matmul(dA1.T, X, out=grads[0])  # (H, D) ∂L/∂W₁ (dZ₁ = dA₁ stands in)
        np.sum(dA1, axis=0, out=grads[1])  # (H,) ∂L/∂b₁
        optimizer.step(params, grads, lr)
    return time.thread_time() - start


def paired(measure, names: list[str], rounds: int) -> dict[str, list[float]]:
    """Each round, every optimizer's measure right next to one of sgd's (sgd first in even
    rounds, second in odd ones); the ratio of each pair, per optimizer, and sgd's times."""
    ratios = {name: [] for name in ["sgd", *names]}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            pair = ["sgd", name] if r % 2 == 0 else [name, "sgd"]
            times = dict(zip(pair, map(measure, pair)))
            ratios[name].append(times[name] / times["sgd"])
            ratios["sgd"].append(times["sgd"])
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="pairs per optimizer")
    rounds = parser.parse_args().rounds
    rng = np.random.default_rng(0)
    template = [(rng.standard_normal(s)).astype(np.float32) for s in SHAPES]
    batches = rng.random((120, B, D), dtype=np.float32)  # 38 MB: more than the L3 cache
    weights = [
        (0.05 * rng.standard_normal(s)).astype(np.float32) for s in ((H, D), (K, H))
    ]
    names = [name for name in ROWS if name != "sgd"]
    with threadpool_limits(1):
        refill = statistics.median(refill_only(template) for _ in range(rounds))
        step = paired(lambda name: alone(name, template, rng) - refill, names, rounds)
        whole = paired(lambda name: epoch(name, batches, weights, rng), names, rounds)
    size = sum(int(np.prod(s)) for s in SHAPES)
    print(f"optimizer step, 784-256-10 mlp ({size:,} float32 numbers), 1 BLAS thread;")
    print(
        f"medians of {rounds} pairs with sgd: step alone, and {STEPS} batches' products + step"
    )
    sgd_step, sgd_epoch = (
        statistics.median(step["sgd"]),
        statistics.median(whole["sgd"]),
    )
    print(f"{'sgd':20s} step {sgd_step * 1e6:6.1f} µs          epoch {sgd_epoch:.3f} s")
    for name in names:
        ratio, share = statistics.median(step[name]), statistics.median(whole[name])
        print(
            f"{name:20s} step {ratio * sgd_step * 1e6:6.1f} µs = {ratio:4.2f} × sgd's,"
            f" epoch {100 * (share - 1):+5.1f} % over sgd's"
        )


if __name__ == "__main__":
    main()
