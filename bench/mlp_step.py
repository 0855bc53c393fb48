"""The fused mlp step against its BLAS floor, epoch for epoch, in one process.

    OPENBLAS_NUM_THREADS=1 python bench/mlp_step.py [--epochs N] [--hidden 256] [--activation relu]
                                                    [--loss cross-entropy]

One epoch = 600 batches of 100 from pre-made contiguous float32 batches (no gather). The floor
is the five matrix products of each batch and nothing else, in the natural (B, n) layout:
Z₁ = X W₁ᵀ, Z₂ = A₁ W₂ᵀ, ∂L/∂W₂ = dZ₂ᵀ A₁, dA₁ = dZ₂ W₂, ∂L/∂W₁ = dZ₁ᵀ X. The two alternate
(floor, step, floor, step, ...) so machine noise hits both alike; the ratio reported is the
median of the pairs' ratios. Prints one JSON object. Set the BLAS thread count in the
environment (threadpoolctl is not a dependency).
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from mnist_cli.data import MNIST, load_split
from mnist_cli.fused_mlp import MlpWork, fused_mlp_step, to_thetas
from mnist_cli.mlp import ACTIVATIONS, LOSSES, init_layers, layer_sizes
from mnist_cli.models import D, K, one_hot

MIRROR = Path(__file__).resolve().parents[1] / "data" / "mnist"  # the bundled copy
BATCH = 100


def floor_epoch(batches: np.ndarray, W1, W2, Z1, Z2, gW2, dA1, gW1) -> float:
    """The five products of every batch over contiguous (B, D) float32 batches."""
    start = time.perf_counter()
    for X in batches:  # (B, D)
        np.matmul(X, W1.T, out=Z1)  # (B, H) Z₁
        np.matmul(Z1, W2.T, out=Z2)  # (B, K) Z₂ (A₁ = Z₁ stands in)
        np.matmul(Z2.T, Z1, out=gW2)  # (K, H) ∂L/∂W₂ (dZ₂ = Z₂ stands in)
        np.matmul(Z2, W2, out=dA1)  # (B, H) dA₁
        np.matmul(dA1.T, X, out=gW1)  # (H, D) ∂L/∂W₁ (dZ₁ = dA₁ stands in)
    return time.perf_counter() - start


def step_epoch(batches, targets, thetas, work, activation, loss, lr) -> float:
    start = time.perf_counter()
    for X, Yt in zip(batches, targets):  # (B, D + 1), (K, B)
        fused_mlp_step(activation, loss, thetas, X, Yt, lr, work)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--activation", choices=ACTIVATIONS, default="relu")
    parser.add_argument("--loss", choices=LOSSES, default="cross-entropy")
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        split = load_split(MNIST, "train", Path(cache), [str(MIRROR)])
        images, labels = np.asarray(split.images), split.labels
    n = len(labels) - len(labels) % BATCH
    floor_batches = (images[:n].astype(np.float32) / 255).reshape(-1, BATCH, D)
    augmented = np.empty((n, D + 1), np.float32)
    augmented[:, :D] = images[:n]
    augmented[:, D] = 255
    batches = augmented.reshape(-1, BATCH, D + 1)  # (n/B, B, D + 1) contiguous
    Yt_all = np.ascontiguousarray(one_hot(labels[:n]).T)  # (K, n)
    targets = [Yt_all[:, i : i + BATCH] for i in range(0, n, BATCH)]
    rng = np.random.default_rng(0)
    sizes = layer_sizes([args.hidden])
    thetas = to_thetas(init_layers(sizes, args.activation, rng))
    work = MlpWork.for_batch(BATCH, thetas)
    H = args.hidden
    W1 = (0.05 * rng.standard_normal((H, D))).astype(np.float32)
    W2 = (0.05 * rng.standard_normal((K, H))).astype(np.float32)
    bufs = [np.empty(s, np.float32) for s in ((BATCH, H), (BATCH, K), (K, H))]
    bufs += [np.empty((BATCH, H), np.float32), np.empty((H, D), np.float32)]
    floors, steps = [], []
    for _ in range(args.epochs):
        floors.append(floor_epoch(floor_batches, W1, W2, *bufs))
        steps.append(
            step_epoch(
                batches, targets, thetas, work, args.activation, args.loss, args.lr
            )
        )
    ratios = [s / f for s, f in zip(steps, floors)]
    print(
        json.dumps(
            {
                "sizes": sizes,
                "activation": args.activation,
                "loss": args.loss,
                "floor_seconds": floors,
                "step_seconds": steps,
                "ratios": ratios,
                "median_ratio": statistics.median(ratios),
                "floor_median": statistics.median(floors),
                "step_median": statistics.median(steps),
            }
        )
    )


if __name__ == "__main__":
    main()
