"""The training loop: mini-batch gradient descent over shuffled epochs, progress by callbacks.

The loop owns no math and prints nothing. Each batch is one step (training/step.py: the fast
path's gradients handed to the optimizer, at the learning rate the schedule gives for step t);
the batches come from fast/batches.py (gathered and cast ahead of time by a thread of their
own); after each batch it calls `on_batch(batch_size, loss)`, after each epoch
`on_epoch(EpochResult)`, and `on_warning(text)` when training looks stuck; the CLI turns those
into a progress bar, one line per epoch and a Warning line.

The monitored split is scored after every epoch on a copy of the weights, by a thread of its
own while the next epoch trains (numpy releases the GIL in the cast and the product): an epoch
is reported as soon as its score is in, checked after each batch, so its line comes during the
next epoch; epochs are always reported in order, and what the callbacks take is not counted in
an epoch's seconds. The last epoch's score, with nothing left to train beside it, is computed
at once, on the threads fast/scoring.py chooses. With `on_checkpoint`, the scoring thread then
hands the epoch's Snapshot (copies taken at the epoch's end) to it, so a checkpoint holds the
epoch's score too, and its writing overlaps the next epoch as the scoring does.
"""

import contextvars
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import replace
from itertools import islice

import numpy as np

from mnist_cli.errors import TrainingDivergedError
from mnist_cli.fast.batches import pieces_per_batch, shuffled_batches
from mnist_cli.fast.threads import blas_threads
from mnist_cli.metrics import Evaluation
from mnist_cli.nn.losses import Loss, one_hot
from mnist_cli.nn.network import Network
from mnist_cli.optim import OptimizerSpec, learning_rate
from mnist_cli.training.epochs import EpochResult, Snapshot, scored, stuck_warning
from mnist_cli.training.step import Scorer, trainer_for


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
    optimizer: OptimizerSpec | None = None,
    schedule: str = "constant",
    monitored: tuple[np.ndarray, np.ndarray] | None = None,
    done: int = 0,
    optimizer_state: dict[str, np.ndarray] | None = None,
    on_batch: Callable[[int, float], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    on_checkpoint: Callable[[Snapshot], None] | None = None,
) -> tuple[Network, list[EpochResult]]:
    """Train `network` on images (N, D) uint8 and labels (N,) by mini-batch gradient descent on
    `loss`, with `optimizer` at the learning rate `schedule` gives (optim.learning_rate).

    Each epoch draws a fresh permutation from `rng` (the same seed gives the same weights;
    the batches thread draws them, so `rng` is the run's alone until train() returns),
    and for each batch computes x = pixels / 255, the loss and its analytic gradient, and lets
    the optimizer step. The last, smaller batch of an epoch is used, not dropped.
    `monitored` = (images, labels) is scored after every epoch (beside the next epoch's
    steps, on a copy of the weights: see above), each epoch's result is given to `on_epoch`
    when its score is in, in epoch order, and `on_warning` is told once if training looks
    stuck (stuck_warning). Raises TrainingDivergedError as soon as
    a batch loss is not finite (the weights are dropped). The network passed in is left as
    it was.

    A run resumed after `done` of its `epochs` passes the checkpoint's network, optimizer
    state and `rng` (restored to the state saved after epoch `done`'s draw); it trains epochs
    done + 1 … epochs, from step t = done · (steps per epoch) of the schedule's T = epochs ·
    (steps per epoch). After each epoch, once its score is in (by the scoring thread, in
    epoch order), `on_checkpoint` gets the Snapshot to save.
    """
    trainer = trainer_for(network, loss, optimizer or OptimizerSpec())
    if optimizer_state is not None:
        trainer.load_state(optimizer_state)
    images = np.asarray(images)  # a plain view of a memmap: gathers from it are faster
    Yt_all = np.ascontiguousarray(one_hot(labels).T)  # (K, N)
    N = len(labels)
    # an epoch's batch sizes (the last maybe smaller), and how many items of `batches` make
    # up each: one, or its pieces when batches are streamed (batches.py)
    sizes = [batch_size] * (N // batch_size) + [N % batch_size] * (N % batch_size > 0)
    layout = [(B, pieces_per_batch(B, batch_size)) for B in sizes]
    T = epochs * len(sizes)  # the run's steps, over which the schedule runs
    t = done * len(sizes)  # steps taken
    history: list[EpochResult] = []
    # rng's state after each epoch's draw (appended by the batches thread)
    drawn: list[dict] = []
    saved: list[EpochResult] = []  # the epochs checkpointed, by one thread at a time

    def save(result: EpochResult, evaluation: Evaluation | None, at: tuple) -> None:
        """Hand the snapshot taken at the end of `result`'s epoch, scored, to on_checkpoint."""
        saved.append(
            result if evaluation is None else scored(result, evaluation, False)
        )
        on_checkpoint(Snapshot(*at, history=tuple(saved)))

    def scored_and_saved(result: EpochResult, scorer: Scorer, at: tuple | None):
        """The scoring thread's job: score an epoch's weights, then save its snapshot."""
        evaluation = scorer(*monitored, 1)
        if at:
            save(result, evaluation, at)
        return evaluation

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

    on_draw = drawn.append if on_checkpoint else None
    batches = shuffled_batches(images, Yt_all, batch_size, epochs - done, rng, on_draw)
    # the steps' BLAS threads (threads.py); overflow is not warned about: a loss that is not
    # finite stops training below
    with ExitStack() as stack:
        stack.enter_context(closing(batches))
        stack.enter_context(blas_threads("sgd"))
        stack.enter_context(np.errstate(over="ignore", invalid="ignore"))
        # leaving early waits for the score being computed and drops the rest; with
        # checkpoints, every epoch trained is scored and saved first (a few ms each)
        if monitored:
            scorer = ThreadPoolExecutor(1, thread_name_prefix="mnist-cli monitor")
            drop = on_checkpoint is None
            stack.callback(scorer.shutdown, wait=True, cancel_futures=drop)
        for epoch in range(done + 1, epochs + 1):
            start = time.perf_counter()
            reporting = (
                0.0  # time in the earlier epochs' callbacks, off this epoch's clock
            )
            loss_sum = 0.0
            for B, pieces in layout:  # each piece Ũ (m, D + 1), Yᵀ (K, m)
                # a batch is one item of `batches`, or `pieces` of them when streamed
                items = (next(batches),) if pieces == 1 else islice(batches, pieces)
                lr_t = learning_rate(schedule, lr, t, T)
                batch_loss = trainer.step(items, B, lr_t)
                t += 1
                if not math.isfinite(batch_loss):
                    raise TrainingDivergedError(
                        f"the loss became {batch_loss} in epoch {epoch} "
                        f"(learning rate {lr_t:g}): training diverged"
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
            # what a checkpoint keeps of this instant: copies, saved once the score is in
            at = on_checkpoint and (
                epoch,
                t,
                trainer.current(),
                trainer.state(),
                drawn[epoch - done - 1],
            )
            if not monitored:
                if at:
                    save(result, None, at)
                report(result)
            elif epoch < epochs:  # scored beside the next epoch, on one thread, in this
                # thread's context (numpy's error state is a context variable: a new thread
                # would start from numpy's defaults)
                in_context = contextvars.copy_context().run
                job = scorer.submit(
                    in_context, scored_and_saved, result, trainer.frozen(), at
                )
                scoring.append((result, job))
            else:  # the last: scored now, by as many threads as fast/scoring.py chooses
                report_scored(wait=True)
                with blas_threads("score"):
                    evaluation = trainer.frozen()(*monitored, None)
                if at:
                    save(result, evaluation, at)
                report(scored(result, evaluation))
    return trainer.current(), history
