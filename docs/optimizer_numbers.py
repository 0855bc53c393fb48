"""Compute every number docs/derivations.md quotes in its optimizer sections (16 to 23) (float64; ~10 s on one core).

    python docs/optimizer_numbers.py [--images 10000]

1. The spectrum of the linear model's Hessian H = (2/N) X̃ᵀX̃ on the first N training images
   (X̃ = [X, 1], pixels / 255): its largest eigenvalue, how many are 0, the smallest positive
   one, the condition number over the positive ones, how they spread.
2. Full-batch gradient descent and heavy-ball momentum (μ = 0.9) on that quadratic, the same
   lr = 1/γ_max: how far above the minimum each loss is after 10, 100 and 1,000 steps.
3. How much larger Adam's first steps would be without the bias corrections: the factor
   (1 − β₁ᵗ)/√(1 − β₂ᵗ) between the uncorrected and the corrected step, at its largest.
4. The cosine schedule's last step, t = T − 1, for T = 6,000 (10 epochs of 600 batches).
"""

import argparse
import gzip
import math
import tempfile
from pathlib import Path

import numpy as np

from mnist_cli.data.idx import read_idx

IMAGES = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "mnist"
    / "train-images-idx3-ubyte.gz"
)


def training_images(n: int) -> np.ndarray:
    """The first n training images of the bundled MNIST copy, (n, 784) uint8."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "train-images-idx3-ubyte"
        raw.write_bytes(gzip.decompress(IMAGES.read_bytes()))
        return np.array(read_idx(raw)[:n]).reshape(n, -1)


def excess_losses(H, c, lr, mu, checkpoints):
    """L(β) − L(β*) = ½ tr(Δᵀ H Δ), Δ = β − β*, at each checkpoint of heavy-ball momentum
    v ← μv + g, β ← β − lr·v from β = 0 (μ = 0: gradient descent); g = Hβ − c (D + 1, K)."""
    beta_star = np.linalg.pinv(H) @ c  # the minimum-norm minimiser
    beta, v, out = np.zeros_like(c), np.zeros_like(c), []
    for step in range(1, max(checkpoints) + 1):
        v = mu * v + (H @ beta - c)
        beta = beta - lr * v
        if step in checkpoints:
            delta = beta - beta_star
            out.append(0.5 * float(np.sum(delta * (H @ delta))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    n = parser.parse_args().images
    labels = Path(str(IMAGES).replace("images-idx3", "labels-idx1"))
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "labels"
        raw.write_bytes(gzip.decompress(labels.read_bytes()))
        y = np.array(read_idx(raw)[:n])
    X = np.hstack([training_images(n) / 255.0, np.ones((n, 1))])  # (N, D + 1) X̃
    Y = np.eye(10)[y]  # (N, K) one-hot
    H = 2.0 / n * X.T @ X  # (D + 1, D + 1)
    c = 2.0 / n * X.T @ Y  # (D + 1, K): the gradient is Hβ − c
    lam = np.linalg.eigvalsh(H)  # ascending
    top = lam[-1]
    zero = lam <= top * 1e-12  # 0 up to rounding (always-black pixels)
    positive = lam[~zero]
    print(
        f"1. H = (2/N) X̃ᵀX̃ on the first {n:,} training images, {len(lam)} eigenvalues"
    )
    black = int(np.sum(~X[:, :-1].any(axis=0)))
    print(f"   largest {top:.2f}; {zero.sum()} are 0 (rank {len(positive)});")
    lit = X[:, :-1] > 0  # (N, D)
    once = lit[:, lit.sum(axis=0) == 1]  # the pixels lit in a single image
    alike = int(
        np.sum(np.maximum(once.sum(axis=1) - 1, 0))
    )  # alike columns, beyond one
    print(
        f"   {black} pixels are 0 in every one of the images; {once.shape[1]} are lit in one"
    )
    print(f"   image only, {alike} of them in an image that has another such pixel")
    print(f"   (proportional columns); the 0s are below {lam[zero].max():.2g}")
    print(
        f"   smallest positive {positive[0]:.3g}: κ over the positive ones {top / positive[0]:.3g}"
    )
    for ratio in (1e-1, 1e-2, 1e-3, 1e-4, 1e-6):
        below = int(np.sum(positive < top * ratio))
        print(f"   positive eigenvalues below {ratio:g} γ_max: {below}")
    print(f"   median positive eigenvalue {np.median(positive):.3g}")

    checkpoints = (10, 100, 1000)
    gd = excess_losses(H, c, 1.0 / top, 0.0, checkpoints)
    hb = excess_losses(H, c, 1.0 / top, 0.9, checkpoints)
    loss_star = float(np.mean(np.sum((X @ (np.linalg.pinv(H) @ c) - Y) ** 2, axis=1)))
    print(
        f"2. full batch, lr = 1/γ_max = {1 / top:.4f}; the minimum loss L* = {loss_star:.4f}"
    )
    for k, a, b in zip(checkpoints, gd, hb):
        print(
            f"   after {k:5d} steps: L − L* = {a:.4f} (descent), {b:.4f} (momentum 0.9)"
        )

    t = np.arange(1, 100_001)
    factor = (1 - 0.9**t) / np.sqrt(1 - 0.999**t)
    print(
        f"3. uncorrected/corrected Adam step: {factor[0]:.2f} at t = 1, largest "
        f"{factor.max():.2f} at t = {t[factor.argmax()]}, {factor[999]:.2f} at t = 1000"
    )
    T = 6000
    last = 0.5 * (1 + math.cos(math.pi * (T - 1) / T))
    print(
        f"4. cosine, T = {T}: the last step's lr is {last:.3g} lr (π²/(4T²) = {math.pi**2 / (4 * T * T):.3g})"
    )


if __name__ == "__main__":
    main()
