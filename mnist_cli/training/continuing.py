"""What a run continued from another (--init-from RUN) carries over: the earlier run's epochs,
so that the new run's epochs are numbered after them and its history starts with theirs.
rundir/listing.py reads it from the earlier run's metrics.json."""

from dataclasses import dataclass


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
