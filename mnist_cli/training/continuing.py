"""What a run carries over from training before it: the epochs of the run it continues
(--init-from RUN: Earlier), so that its epochs are numbered after them and its history starts
with theirs; and its own state at the end of an epoch (RunState), which its checkpoint keeps
and `--resume` restores. rundir/listing.py reads Earlier from the earlier run's metrics.json,
rundir/checkpoint.py RunState from a checkpoint (this module imports no numpy: mnist-runs
imports it)."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from mnist_cli.nn.network import Network


@dataclass(frozen=True)
class Earlier:
    """The training a continued run extends: the run directory and its per-epoch history."""

    run: str
    history: tuple[dict, ...]  # metrics.json's history entries, epochs 1..n

    @property
    def epochs(self) -> int:
        return len(self.history)

    def to_json(self) -> dict:
        return {"run": self.run, "epochs": self.epochs}


@dataclass(frozen=True)
class RunState:
    """A run at the end of one of its epochs: what goes on from there exactly as if it had
    not stopped (copies, which training does not touch)."""

    network: "Network"
    optimizer: "dict[str, np.ndarray]"  # the trainer's state(), per parameter
    rng_state: (
        dict  # the shuffling generator's (PCG64), right before the next epoch's draw
    )
    epoch: int  # this run's epochs completed (an --init-from run's not counted)
    step: int  # the schedule's position t: optimizer steps taken
    history: tuple[
        dict, ...
    ]  # metrics.json's history so far, an --init-from run's first

    def earlier(self, init_from: str | None) -> Earlier | None:
        """The --init-from run's epochs this run continues: the history's first entries."""
        n = len(self.history) - self.epoch
        return Earlier(init_from, self.history[:n]) if n > 0 and init_from else None
