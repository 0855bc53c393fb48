"""An epoch of training as the loop reports it (EpochResult), what the loop says when training
looks stuck, and the Snapshot a checkpoint keeps at an epoch's end."""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from mnist_cli.metrics import Evaluation
from mnist_cli.nn import K
from mnist_cli.nn.layers import Act
from mnist_cli.nn.losses import Loss
from mnist_cli.nn.network import Network

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

    def to_json(self, split: str = "test") -> dict:
        """The entry of metrics.json's history; `split` names the monitored split,
        "val" or "test", so that the keys are the same whatever it is."""
        return {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "monitor": split,
            "monitor_accuracy": self.monitor_accuracy,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class Snapshot:
    """A run at the end of an epoch, as a checkpoint keeps it (copies, which training does not
    touch): what `train(..., done=epoch)` needs to go on exactly as if it had not stopped."""

    epoch: int  # epochs completed
    step: int  # the schedule's position t: steps taken
    network: Network
    optimizer: dict[str, np.ndarray]  # the trainer's state(), per parameter
    rng_state: dict  # the shuffling generator's, right before the next epoch's draw
    history: tuple[EpochResult, ...]  # this call's epochs up to `epoch`, scored


def scored(result: EpochResult, evaluation: Evaluation, keep=True) -> EpochResult:
    """An epoch's result with the score of its monitored split (and, if `keep`, the whole
    evaluation)."""
    kept = evaluation if keep else None
    return replace(result, monitor_accuracy=evaluation.accuracy, evaluation=kept)


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
    tries = ["a smaller learning rate"]
    if any(isinstance(la, Act) and la.name != "relu" for la in network.layers):
        tries.append("relu units")
    if network.output == "softmax" and loss == "squared":
        tries.append("the cross-entropy loss")
    return (
        f"training looks stuck at chance level: accuracy {100 * last.monitor_accuracy:.2f}% "
        f"after epoch {last.epoch}, loss {last.train_loss:.4f} as in the epoch before (the "
        f"outputs may have saturated); try {', '.join(tries)}"
    )
