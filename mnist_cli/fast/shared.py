"""One batch's loss and gradients computed by several threads, each on a slice of the batch.

The loss is a batch mean, so it and its gradient are the slices' own, weighted by their sizes:

    L = Σₚ (Bₚ / B) Lₚ        ∂L/∂θ = Σₚ (Bₚ / B) ∂Lₚ/∂θ      for slices p of Bₚ images, Σₚ Bₚ = B

numpy lets go of the GIL inside its products and element-wise loops, so the slices run on
separate cores at once: every part of the step is shared out, not only the products that a
multi-threaded BLAS would split (the copies, the pooling and col2im would stay on one core).
Each thread has a FastCNN of its own (its own buffers); the BLAS should then run one thread per
call (threadpoolctl), or the threads would oversubscribe the cores.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from itertools import pairwise
from typing import Self

import numpy as np

from mnist_cli.fast.conv import FastCNN


class SharedCNN:
    """`loss_and_grads` of `net` with the batch split among `threads` threads (the caller's
    thread takes the first slice). Use as a context manager, or call close()."""

    def __init__(self, net: FastCNN, threads: int):
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        self.nets = [net] + [replace(net) for _ in range(threads - 1)]  # own buffers
        self.pool = ThreadPoolExecutor(threads - 1) if threads > 1 else None
        self.grads = [np.empty(s, np.float32) for s in net.param_shapes()]

    def loss_and_grads(
        self, params: Sequence[np.ndarray], X: np.ndarray, y: np.ndarray
    ) -> tuple[float, list[np.ndarray]]:
        """As FastCNN.loss_and_grads: grads shaped like params, reused by the next call."""
        B = len(X)
        edges = np.linspace(0, B, len(self.nets) + 1).round().astype(int)
        parts = [(a, b) for a, b in pairwise(edges) if b > a]
        if len(parts) == 1:
            return self.nets[0].loss_and_grads(params, X, y)
        futures = [
            self.pool.submit(net.loss_and_grads, params, X[a:b], y[a:b])
            for net, (a, b) in zip(self.nets[1:], parts[1:])
        ]
        a, b = parts[0]
        results = [self.nets[0].loss_and_grads(params, X[a:b], y[a:b])]
        results += [f.result() for f in futures]
        loss = 0.0
        for p, ((a, b), (L, grads)) in enumerate(zip(parts, results)):
            w = (b - a) / B  # Bₚ / B
            loss += w * L
            for total, g in zip(self.grads, grads):
                if p == 0:
                    np.multiply(g, np.float32(w), out=total)
                else:
                    total += np.float32(w) * g
        return loss, self.grads

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
