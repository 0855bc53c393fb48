"""The training loop: mini-batch SGD over shuffled epochs, progress through callbacks.

The loop owns no math and prints nothing: each batch is one call of a fused step (the equations
of models.py and mlp.py, fused for speed: fused.streamed_sgd_step for linear and softmax,
fused_mlp.streamed_mlp_step for the mlp, a batch larger than a chunk taken in pieces), the
batches come from batches.shuffled_batches (gathered
and cast ahead of time by a background thread), and after each batch it calls
`on_batch(batch_size, loss)`, after each epoch `on_epoch(EpochResult)`, and `on_warning(text)`
when training looks stuck; the CLI turns those into a progress bar, one line per epoch and a
Warning line. bench/ measures it against the BLAS floor.
"""

import math
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from itertools import islice

import numpy as np

from .batches import pieces_per_batch, shuffled_batches
from .errors import TrainingDivergedError
from .fused import Work, from_theta, streamed_sgd_step, to_theta
from .fused_mlp import MlpWork, from_thetas, streamed_mlp_step, to_thetas
from .fused_scores import score
from .metrics import Evaluation, evaluate
from .mlp import Loss
from .models import D, K, one_hot
from .network import Network
from .threads import blas_threads

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
# (images (N, D) uint8, labels (N,)) -> the Evaluation of the weights as they are now
Scorer = Callable[[np.ndarray, np.ndarray], Evaluation]


def fused_step(
    network: Network, loss: Loss, lr: float
) -> tuple[Step, Callable[[], Network], Scorer]:
    """(step, current, scorer): `step` updates a float32 copy of the network's weights in
    place by one SGD step and returns the batch loss; `current()` is the network those weights
    make now; `scorer` scores them (from Θ itself for linear and softmax: fused_scores.py).
    The arrays are allocated once, each piece size cut into blocks at its first batch."""
    if network.kind == "mlp":
        thetas = to_thetas(network.layers)  # Θ_l, see fused_mlp.py
        mlp_work = MlpWork.for_batch(0, thetas)

        def mlp_step(pieces, B: int) -> float:
            act = network.activation
            return streamed_mlp_step(act, loss, thetas, pieces, B, lr, mlp_work)

        def current_mlp() -> Network:
            return replace(network, layers=from_thetas(thetas))

        return mlp_step, current_mlp, lambda X, y: evaluate(current_mlp(), X, y)
    theta = to_theta(network.params)  # (K, D + 1) Θ = [W, b] / 255, see fused.py
    work = Work.for_batch(0, D + 1)

    def step(pieces, B: int) -> float:
        return streamed_sgd_step(network.kind, theta, pieces, B, lr, work, loss)

    def current() -> Network:
        return Network.one_layer(network.kind, from_theta(theta))

    return step, current, lambda X, y: score(theta, X, y)


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
    not dropped. `monitor` = (images, labels) is scored after every epoch, and `on_warning`
    told once if training looks stuck (stuck_warning). Raises TrainingDivergedError as soon as
    a batch loss is not finite (the weights are dropped). The network passed in is left as
    it was.
    """
    step, current, scorer = fused_step(network, loss, lr)
    images = np.asarray(images)  # a plain view of a memmap: gathers from it are faster
    Yt_all = np.ascontiguousarray(one_hot(labels).T)  # (K, N)
    N = len(labels)
    # an epoch's batch sizes (the last maybe smaller), and how many items of `batches` make
    # up each: one, or its pieces when batches are streamed (batches.py)
    sizes = [batch_size] * (N // batch_size) + [N % batch_size] * (N % batch_size > 0)
    layout = [(B, pieces_per_batch(B, batch_size)) for B in sizes]
    history: list[EpochResult] = []
    warned = False
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
                batch_loss = step(islice(batches, pieces), B)
                if not math.isfinite(batch_loss):
                    raise TrainingDivergedError(
                        f"the loss became {batch_loss} in epoch {epoch} (lr {lr}): "
                        "training diverged; try a smaller --lr"
                    )
                loss_sum += batch_loss * B
                if on_batch:
                    on_batch(B, batch_loss)
            seconds = time.perf_counter() - start
            evaluation = None
            if monitor:
                with blas_threads("score"):
                    evaluation = scorer(*monitor)
            accuracy = evaluation.accuracy if evaluation else None
            result = EpochResult(
                epoch, epochs, loss_sum / N, accuracy, seconds, evaluation
            )
            if (
                history
            ):  # only the last epoch keeps its evaluation: the history stays lean
                history[-1] = replace(history[-1], evaluation=None)
            history.append(result)
            if on_epoch:
                on_epoch(result)
            warning = stuck_warning(network, loss, history)
            if warning and on_warning and not warned:
                on_warning(warning)
                warned = True
    return current(), history


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
