"""The training loop: mini-batch SGD over shuffled epochs, progress through callbacks.

The loop owns no math (that is models.py) and prints nothing: after each batch it calls
`on_batch(batch_size, loss)`, after each epoch `on_epoch(EpochResult)`; the CLI turns those into
a progress bar and one line per epoch.

It is written for speed without changing an equation (bench/ measures it against the BLAS floor):
each shuffled batch is gathered as uint8 rows (4 × fewer bytes than float32) and cast into a
preallocated (B, D) array of raw pixels 0..255; the 1/255 is applied to the (B, K) and (K, D)
products instead (`x_scale`, see models.py); every step writes into a `Workspace` allocated once
per batch size, and W, b are updated in place.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import TrainingDivergedError
from .metrics import evaluate
from .models import (
    D,
    ModelKind,
    Params,
    Workspace,
    loss_and_gradients,
    one_hot,
    sgd_step,
)

PIXEL_SCALE = 1 / 255  # the model's inputs are x = pixels / 255


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based
    epochs: int
    train_loss: float  # mean of the epoch's batch losses, weighted by batch size
    monitor_accuracy: float | None  # accuracy on the monitored split after the epoch
    seconds: float  # wall time of the epoch's SGD steps (evaluation excluded)

    def to_json(self, monitor_name: str = "test") -> dict:
        return {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            f"{monitor_name}_accuracy": self.monitor_accuracy,
            "seconds": self.seconds,
        }


def batches(n: int, batch_size: int, rng: np.random.Generator):
    """Index arrays of a fresh random permutation of range(n), batch_size at a time.
    The last batch is smaller when batch_size does not divide n: it is used, not dropped."""
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


@dataclass(frozen=True)
class _Buffers:
    """What one step at batch size B writes into: the batch itself and the model's Workspace."""

    X: np.ndarray  # (B, D) raw pixels 0..255, float
    Y: np.ndarray  # (B, K) one-hot targets, column-major like the Workspace
    work: Workspace

    @classmethod
    def for_batch(cls, B: int, dtype: np.dtype) -> "_Buffers":
        work = Workspace.for_batch(B, dtype)
        return cls(X=np.empty((B, D), dtype), Y=np.empty_like(work.G), work=work)


def train(
    kind: ModelKind,
    params: Params,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    rng: np.random.Generator,
    monitor: tuple[np.ndarray, np.ndarray] | None = None,
    on_batch: Callable[[int, float], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> tuple[Params, list[EpochResult]]:
    """Train `params` on images (N, D) uint8 and labels (N,) with mini-batch SGD.

    Each epoch draws a fresh permutation from `rng` (the same seed gives the same weights),
    and for each batch computes x = pixels / 255, the loss and its analytic gradient,
    and steps W ← W − lr ∂L/∂W, b ← b − lr ∂L/∂b. `monitor` = (images, labels) is scored after
    every epoch. Raises TrainingDivergedError, before any update with it, as soon as a batch
    loss is not finite. The `params` passed in are left as they were.
    """
    dtype = params.W.dtype
    params = Params(W=params.W.copy(), b=params.b.copy())  # updated in place below
    # a plain ndarray view of the memmap (no copy): indexing it is about twice as fast
    images = np.asarray(images)
    Y_all = one_hot(labels, dtype)  # (N, K)
    # batch size -> its arrays (the last batch of an epoch may be smaller)
    buffers: dict[int, _Buffers] = {}
    history: list[EpochResult] = []
    with np.errstate(
        over="ignore", invalid="ignore"
    ):  # divergence is caught by the check below
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            loss_sum = 0.0
            for idx in batches(len(labels), batch_size, rng):
                if len(idx) not in buffers:
                    buffers[len(idx)] = _Buffers.for_batch(len(idx), dtype)
                buf = buffers[len(idx)]
                np.copyto(buf.X, images[idx])  # (B, D) uint8 rows gathered, then cast
                np.take(Y_all, idx, axis=0, out=buf.Y)  # (B, K)
                loss, grads = loss_and_gradients(
                    kind, params, buf.X, buf.Y, x_scale=PIXEL_SCALE, work=buf.work
                )
                if not math.isfinite(loss):
                    raise TrainingDivergedError(
                        f"the loss became {loss} in epoch {epoch} (lr {lr}): "
                        "training diverged; try a smaller --lr"
                    )
                sgd_step(params, grads, lr, out=params)
                loss_sum += loss * len(idx)
                if on_batch:
                    on_batch(len(idx), loss)
            seconds = time.perf_counter() - start
            accuracy = evaluate(params, *monitor).accuracy if monitor else None
            result = EpochResult(
                epoch, epochs, loss_sum / len(labels), accuracy, seconds
            )
            history.append(result)
            if on_epoch:
                on_epoch(result)
    return params, history
