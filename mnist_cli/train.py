"""The training loop: mini-batch SGD over shuffled epochs, progress through callbacks.

The loop owns no math and prints nothing: each batch is one call of fused.streamed_sgd_step (the
equations of models.py, fused for speed), the batches come from batches.shuffled_batches
(gathered and cast ahead of time by a background thread), and after each batch it calls
`on_batch(batch_size, loss)`, after each epoch `on_epoch(EpochResult)`; the CLI turns those into
a progress bar and one line per epoch. bench/ measures it against the BLAS floor.
"""

import math
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from .batches import pieces_per_batch, shuffled_batches
from .errors import TrainingDivergedError
from .fused import Work, from_theta, streamed_sgd_step, to_theta
from .fused_scores import score
from .metrics import Evaluation
from .models import D, ModelKind, Params, one_hot
from .threads import blas_threads


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based
    epochs: int
    train_loss: float  # mean of the epoch's batch losses, weighted by batch size
    monitor_accuracy: float | None  # accuracy on the monitored split after the epoch
    seconds: float  # wall time of the epoch's SGD steps (evaluation excluded)
    # the monitored split's whole evaluation after the epoch (not in metrics.json's history):
    # after the last epoch, the final weights' (run.fit reuses it instead of scoring again)
    evaluation: Evaluation | None = field(default=None, repr=False, compare=False)

    def to_json(self, monitor: str = "test") -> dict:
        """The entry of metrics.json's history; `monitor` names the monitored split,
        "val" or "test", so that the keys are the same whatever it is."""
        return {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "monitor": monitor,
            "monitor_accuracy": self.monitor_accuracy,
            "seconds": self.seconds,
        }


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

    Each epoch draws a fresh permutation from `rng` (the same seed gives the same weights;
    the batches thread draws them, so `rng` is the run's alone until train() returns),
    and for each batch computes x = pixels / 255, the loss and its analytic gradient, and steps
    W ← W − lr ∂L/∂W, b ← b − lr ∂L/∂b. The last, smaller batch of an epoch is used, not
    dropped. `monitor` = (images, labels) is scored after every epoch. Raises
    TrainingDivergedError as soon as a batch loss is not finite (the weights are dropped).
    The `params` passed in are left as they were.
    """
    theta = to_theta(
        params
    )  # (K, D + 1) Θ = [W, b] / 255, updated in place by each step
    images = np.asarray(images)  # a plain view of a memmap: gathers from it are faster
    Yt_all = np.ascontiguousarray(one_hot(labels).T)  # (K, N)
    N = len(labels)
    # an epoch's batch sizes (the last maybe smaller), and how many items of `batches` make
    # up each: one, or its pieces when batches are streamed (batches.py)
    sizes = [batch_size] * (N // batch_size) + [N % batch_size] * (N % batch_size > 0)
    layout = [(B, pieces_per_batch(B, batch_size)) for B in sizes]
    # the step's arrays, allocated once
    work = Work.for_batch(min(batch_size, N), D + 1)
    history: list[EpochResult] = []
    batches = shuffled_batches(images, Yt_all, batch_size, epochs, rng)
    # the steps' BLAS threads (threads.py); overflow is not warned about: a loss that is not
    # finite stops training below
    with (
        closing(batches),
        blas_threads("sgd"),
        np.errstate(over="ignore", invalid="ignore"),
    ):
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            loss_sum = 0.0
            for B, pieces in layout:  # each piece Ũ (m, D + 1), Yᵀ (K, m)
                batch = islice(batches, pieces)
                loss = streamed_sgd_step(kind, theta, batch, B, lr, work)
                if not math.isfinite(loss):
                    raise TrainingDivergedError(
                        f"the loss became {loss} in epoch {epoch} (lr {lr}): "
                        "training diverged; try a smaller --lr"
                    )
                loss_sum += loss * B
                if on_batch:
                    on_batch(B, loss)
            seconds = time.perf_counter() - start
            evaluation = None
            if monitor:
                with blas_threads("score"):  # from Θ (fused_scores.py)
                    evaluation = score(theta, *monitor)
            accuracy = evaluation.accuracy if evaluation else None
            result = EpochResult(
                epoch, epochs, loss_sum / N, accuracy, seconds, evaluation
            )
            history.append(result)
            if on_epoch:
                on_epoch(result)
    return from_theta(theta), history
