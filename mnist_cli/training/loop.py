"""The training loop: mini-batch SGD over shuffled epochs, progress through callbacks.

The loop owns no math and prints nothing: each batch is one call of a fused step (the equations
of models.py and mlp.py, fused for speed: fused.streamed_sgd_step for linear and softmax,
fused_mlp.streamed_mlp_step for the mlp, a batch larger than a chunk taken in pieces), the
batches come from batches.shuffled_batches (gathered and cast ahead of time by a background
thread), and after each batch it calls `on_batch(batch_size, loss)`, after each epoch
`on_epoch(EpochResult)`, and `on_warning(text)` when training looks stuck; the CLI turns those
into a progress bar, one line per epoch and a Warning line. bench/ measures it against the
BLAS floor.

The monitored split is scored after every epoch on a copy of the weights, by a thread of its
own while the next epoch trains (numpy releases the GIL in the cast and the product, and the
step keeps one core busy, so the scoring takes what the batches thread leaves of the other):
an epoch is reported as soon as its score is in, checked after each batch, so its line comes
during the next epoch (softmax at batch 100: after ~80-100 of its 600 batches), or after it
when an epoch is a single batch; epochs are always reported in order, and what the callbacks
take is not counted in an epoch's seconds. The last
epoch's score, with nothing left to train beside it, is computed at once, on the threads
fused_scores.py chooses. Measured on 2 cores (paired runs, 2026-12-01): `--config
configs/mlp.toml` (its monitor, 10,000 × 784 × 256 multiply-adds an epoch, ~60 ms) took 6.3-6.6 s
instead of 6.7-6.9 s; the softmax's monitor is small and `mnist-train --epochs 10` shows no
clear change (20 alternating pairs: median 0.95 ×, 12 of them faster): its steps slow down by
most of what the monitor no longer costs in line, as the scoring shares the second core with
the batches thread.
"""

import contextvars
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass, field, replace
from itertools import islice

import numpy as np

from mnist_cli.errors import TrainingDivergedError
from mnist_cli.fast.batches import pieces_per_batch, shuffled_batches
from mnist_cli.fast.scoring import score
from mnist_cli.fast.threads import blas_threads
from mnist_cli.fused import Work, from_theta, streamed_sgd_step, to_theta
from mnist_cli.metrics import Evaluation, evaluate
from mnist_cli.mlp import Loss
from mnist_cli.models import D, K, one_hot
from mnist_cli.network import Network

# an epoch that leaves the monitored accuracy below twice chance (1/K), its loss within 1 % of
# the epoch before's, is stuck: a saturated output (e.g. sigmoid units, squared loss, large lr)
STUCK_ACCURACY = 2 / K
STUCK_LOSS_CHANGE = 0.01


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based
    epochs: int
    train_loss: float  # mean of the epoch's batch losses, weighted by batch size
    monitor_accuracy: float | None  # accuracy on the monitored split after the epoch
    seconds: float  # wall time of the epoch's SGD steps (evaluation excluded)
    # the monitored split's whole evaluation after the last epoch, the final weights' (run.fit
    # reuses it instead of scoring again); None in the earlier epochs' results
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


# (pieces of a batch, each (Ũ (m, D + 1), Yᵀ (K, m)), its rows B) -> the batch loss
Step = Callable[[Iterable[tuple[np.ndarray, np.ndarray]], int], float]
# (images (N, D) uint8, labels (N,), threads or None for fused_scores' choice) -> the
# Evaluation of the weights the scorer was made from
Scorer = Callable[[np.ndarray, np.ndarray, int | None], Evaluation]


def fused_step(
    network: Network, loss: Loss, lr: float
) -> tuple[Step, Callable[[], Network], Callable[[], Scorer]]:
    """(step, current, frozen): `step` updates a float32 copy of the network's weights in
    place by one SGD step and returns the batch loss; `current()` is the network those weights
    make now; `frozen()` a Scorer of a copy of them as they are now, which training may go on
    beside (from Θ itself for linear and softmax: fused_scores.py). The arrays are allocated
    once, each piece size cut into blocks at its first batch."""
    if network.kind == "mlp":
        from mnist_cli.fused_mlp import (
            MlpWork,
            from_thetas,
            streamed_mlp_step,
            to_thetas,
        )

        thetas = to_thetas(network.layers)  # Θ_l, see fused_mlp.py
        mlp_work = MlpWork.for_batch(0, thetas)

        def mlp_step(pieces, B: int) -> float:
            act = network.activation
            return streamed_mlp_step(act, loss, thetas, pieces, B, lr, mlp_work)

        def current_mlp() -> Network:
            return replace(network, layers=from_thetas(thetas))  # new arrays: a copy

        def frozen_mlp() -> Scorer:
            now = current_mlp()
            return lambda X, y, threads=None: evaluate(now, X, y)

        return mlp_step, current_mlp, frozen_mlp
    theta = to_theta(network.params)  # (K, D + 1) Θ = [W, b] / 255, see fused.py
    work = Work.for_batch(0, D + 1)

    def step(pieces, B: int) -> float:
        return streamed_sgd_step(network.kind, theta, pieces, B, lr, work, loss)

    def current() -> Network:
        return Network.one_layer(network.kind, from_theta(theta))

    def frozen() -> Scorer:
        now = theta.copy()
        return lambda X, y, threads=None: score(now, X, y, threads=threads)

    return step, current, frozen


def train(
    network: Network,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    rng: np.random.Generator,
    loss: Loss = "squared",
    monitor: tuple[np.ndarray, np.ndarray] | None = None,
    on_batch: Callable[[int, float], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> tuple[Network, list[EpochResult]]:
    """Train `network` on images (N, D) uint8 and labels (N,) with mini-batch SGD on `loss`.

    Each epoch draws a fresh permutation from `rng` (the same seed gives the same weights;
    the batches thread draws them, so `rng` is the run's alone until train() returns),
    and for each batch computes x = pixels / 255, the loss and its analytic gradient, and steps
    W_l ← W_l − lr ∂L/∂W_l, b_l ← b_l − lr ∂L/∂b_l. The last, smaller batch of an epoch is used,
    not dropped. `monitor` = (images, labels) is scored after every epoch (beside the next
    epoch's steps, on a copy of the weights: see above), each epoch's result is given to
    `on_epoch` when its score is in, in epoch order, and `on_warning` is told once if
    training looks stuck (stuck_warning). Raises TrainingDivergedError as soon as
    a batch loss is not finite (the weights are dropped). The network passed in is left as
    it was.
    """
    step, current, frozen = fused_step(network, loss, lr)
    images = np.asarray(images)  # a plain view of a memmap: gathers from it are faster
    Yt_all = np.ascontiguousarray(one_hot(labels).T)  # (K, N)
    N = len(labels)
    # an epoch's batch sizes (the last maybe smaller), and how many items of `batches` make
    # up each: one, or its pieces when batches are streamed (batches.py)
    sizes = [batch_size] * (N // batch_size) + [N % batch_size] * (N % batch_size > 0)
    layout = [(B, pieces_per_batch(B, batch_size)) for B in sizes]
    history: list[EpochResult] = []
    warned = False
    # epochs trained whose monitor score is still being computed, in epoch order
    scoring: deque[tuple[EpochResult, Future[Evaluation]]] = deque()

    def report(result: EpochResult) -> None:
        """Add an epoch's result, with its score, to the history and tell the callbacks."""
        nonlocal warned
        if history:  # only the last epoch keeps its evaluation: the history stays lean
            history[-1] = replace(history[-1], evaluation=None)
        history.append(result)
        if on_epoch:
            on_epoch(result)
        warning = stuck_warning(network, loss, history)
        if warning and on_warning and not warned:
            on_warning(warning)
            warned = True

    def report_scored(wait: bool = False) -> None:
        """Report the epochs whose score is in (with `wait`, all of them), in order."""
        while scoring and (wait or scoring[0][1].done()):
            result, future = scoring.popleft()
            report(scored(result, future.result()))

    batches = shuffled_batches(images, Yt_all, batch_size, epochs, rng)
    # the steps' BLAS threads (threads.py); overflow is not warned about: a loss that is not
    # finite stops training below
    with ExitStack() as stack:
        stack.enter_context(closing(batches))
        stack.enter_context(blas_threads("sgd"))
        stack.enter_context(np.errstate(over="ignore", invalid="ignore"))
        if monitor:  # leaving early waits for the score being computed, drops the rest
            scorer = ThreadPoolExecutor(1, thread_name_prefix="mnist-cli monitor")
            stack.callback(scorer.shutdown, wait=True, cancel_futures=True)
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            reporting = (
                0.0  # time in the earlier epochs' callbacks, off this epoch's clock
            )
            loss_sum = 0.0
            for B, pieces in layout:  # each piece Ũ (m, D + 1), Yᵀ (K, m)
                # a batch is one item of `batches`, or `pieces` of them when streamed
                items = (next(batches),) if pieces == 1 else islice(batches, pieces)
                batch_loss = step(items, B)
                if not math.isfinite(batch_loss):
                    raise TrainingDivergedError(
                        f"the loss became {batch_loss} in epoch {epoch} (lr {lr}): "
                        "training diverged; try a smaller --lr"
                    )
                loss_sum += batch_loss * B
                if on_batch:
                    on_batch(B, batch_loss)
                if scoring and scoring[0][1].done():
                    reported = time.perf_counter()
                    report_scored()
                    reporting += time.perf_counter() - reported
            seconds = time.perf_counter() - start - reporting
            result = EpochResult(epoch, epochs, loss_sum / N, None, seconds)
            if not monitor:
                report(result)
            elif epoch < epochs:  # scored beside the next epoch, on one thread, in this
                # thread's context (numpy's error state is a context variable: a new thread
                # would start from numpy's defaults)
                in_context = contextvars.copy_context().run
                job = scorer.submit(in_context, frozen(), *monitor, 1)
                scoring.append((result, job))
            else:  # the last: scored now, by as many threads as fused_scores chooses
                report_scored(wait=True)
                with blas_threads("score"):
                    evaluation = frozen()(*monitor, None)
                report(scored(result, evaluation))
    return current(), history


def scored(result: EpochResult, evaluation: Evaluation) -> EpochResult:
    """An epoch's result with the score of its monitored split."""
    return replace(result, monitor_accuracy=evaluation.accuracy, evaluation=evaluation)


def stuck_warning(
    network: Network, loss: Loss, history: Sequence[EpochResult]
) -> str | None:
    """What to say when training has stopped moving at chance level: the last epoch left the
    monitored accuracy below STUCK_ACCURACY and its loss within STUCK_LOSS_CHANGE of the
    epoch before's (so not before epoch 2: a first epoch at chance may still be on its way);
    None while training moves."""
    if len(history) < 2:
        return None
    before, last = history[-2], history[-1]
    if last.monitor_accuracy is None or last.monitor_accuracy >= STUCK_ACCURACY:
        return None
    if abs(last.train_loss - before.train_loss) > STUCK_LOSS_CHANGE * before.train_loss:
        return None
    tries = ["a smaller --lr"]
    if network.kind == "mlp" and network.activation != "relu":
        tries.append("--activation relu")
    if network.kind != "linear" and loss == "squared":
        tries.append("--loss cross-entropy")
    return (
        f"training looks stuck at chance level: accuracy {100 * last.monitor_accuracy:.2f}% "
        f"after epoch {last.epoch}, loss {last.train_loss:.4f} as in the epoch before (the "
        f"outputs may have saturated); try {', '.join(tries)}"
    )
