"""metrics.json, typed: the one definition of what a finished run records.

`fit` (run.py) builds a RunRecord and rundir/weights.py writes its `to_json()`; the readers
(rundir/record.py: mnist-runs, mnist-eval, --init-from) check each field they use against
`FIELDS` there, which names exactly these fields (tests/test_run_record.py holds the two
together, and checks that what `fit` writes passes what the readers accept). A reader never
builds a RunRecord: metrics.json on disk is untrusted, and a run from an older version, or one
edited by hand, is read field by field, each with its own default.
"""

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class RunRecord:
    """What one run wrote, in metrics.json's order."""

    model: str  # linear, softmax, mlp or cnn (nn/architecture.py)
    loss: str  # squared or cross-entropy
    dataset: str  # mnist, fashion-mnist, kmnist
    solver: str  # sgd or exact
    train_loss: float  # mean loss on the images trained on, with the final weights
    train_accuracy: float  # fraction of them classified right
    val_accuracy: float | None  # on the held-out images (--val-size), else None
    test_accuracy: float  # on the test split
    per_class_accuracy: list[float]  # (K,) on the test split
    confusion_matrix: list[
        list[int]
    ]  # (K, K) counts: row the true class, column the predicted
    class_names: list[str]  # (K,)
    history: list[
        dict
    ]  # one entry an epoch (epochs.EpochResult.to_json), earlier runs' first
    started_from: (
        dict | None
    )  # the run it continued (continuing.Earlier.to_json), else None
    config: dict  # the resolved TrainConfig, as config.toml holds it
    data: dict  # file name -> {algorithm: checksum} of the data it was trained on
    seconds: float  # wall time of the whole fit
    version: str  # mnist-cli's
    created: str  # ISO 8601, UTC, to the second

    def to_json(self) -> dict:
        """The object metrics.json holds (keys in field order)."""
        return asdict(self)


FIELD_NAMES = tuple(f.name for f in fields(RunRecord))
