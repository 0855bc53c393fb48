"""A training run, start to finish, without I/O: the data in, the weights and their metrics out.

The CLI resolves the configuration and loads the data; `fit` holds out the validation images
(--val-size), trains (loop.py) or solves the linear model exactly (nn/exact.py), scores the
result (fast/scoring.py) and assembles the RunRecord that metrics.json holds (record.py);
rundir/weights.py writes it.
"""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

import numpy as np

from mnist_cli import __version__
from mnist_cli.config.settings import TrainConfig
from mnist_cli.data import Dataset, Split, holdout
from mnist_cli.fast.scoring import score
from mnist_cli.fast.threads import blas_threads
from mnist_cli.metrics import Evaluation
from mnist_cli.nn.architecture import build, from_dense
from mnist_cli.nn.exact import least_squares
from mnist_cli.nn.network import Network
from mnist_cli.optim import OptimizerSpec
from mnist_cli.training.continuing import Earlier, RunState
from mnist_cli.training.epochs import EpochResult, Snapshot
from mnist_cli.training.loop import train
from mnist_cli.training.record import RunRecord


@dataclass(frozen=True)
class RunResult:
    network: Network  # the trained model
    record: RunRecord  # what metrics.json holds
    test: Evaluation  # on the test split
    val: Evaluation | None  # on the held-out images, if --val-size
    example: np.ndarray | None = (
        None  # the first test picture (D,) uint8: features.png's
    )


def monitor_name(config: TrainConfig) -> str:
    """What the epoch lines and the history report: "val" with --val-size, else "test"."""
    return "val" if config.val_size else "test"


def fit(
    config: TrainConfig,
    dataset: Dataset,
    train_split: Split,
    test_split: Split,
    *,
    start: Network | None = None,
    earlier: Earlier | None = None,
    resume: RunState | None = None,
    on_batch: Callable[[int, float], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    on_checkpoint: Callable[[RunState], None] | None = None,
) -> RunResult:
    """Train (or solve) the model of `config` from `start` (else `config.init`, drawn from the
    seeded generator) and score it; `on_warning` hears when training looks stuck.

    With config.val_size, the validation images are held out of the training split by a
    generator of their own, np.random.default_rng(seed) (data.holdout), monitored after each
    epoch instead of the test split, which is then scored once, at the end.

    `on_checkpoint` gets the RunState at the end of every epoch (training/loop.py), and
    `resume`, one of those, goes on from it: its network, optimizer state, generator and
    history, the epochs after its own up to config.epochs (the --init-from run it continued
    is resume.earlier(...), the caller's `earlier`).
    """
    started = time.perf_counter()
    fit_split, val_split = train_split, None
    if config.val_size:
        rng = np.random.default_rng(config.seed)
        fit_split, val_split = holdout(train_split, config.val_size, rng)
    monitor = test_split if val_split is None else val_split
    before: tuple[dict, ...] = ()  # this run's epochs trained before it was resumed
    if config.solver == "exact":
        with blas_threads("solve"):
            params = least_squares(fit_split.images, fit_split.labels, config.l2)
        network = from_dense(config.model, [params])
        history: list[EpochResult] = []
    else:
        done = earlier.epochs if earlier else 0

        def renumber(r: EpochResult) -> EpochResult:
            return replace(r, epoch=done + r.epoch, epochs=done + r.epochs)

        rng = np.random.default_rng(config.seed)
        # resumed: the generator as the checkpoint left it, before the next epoch's draw
        if resume:
            rng.bit_generator.state = resume.rng_state
            start = resume.network
        before = resume.history[done:] if resume else ()
        init = (config.model, config.init, rng, config.hidden, config.activation)

        def state_of(s: Snapshot) -> RunState:
            new = [renumber(r).to_json(monitor_name(config)) for r in s.history]
            history = (*(earlier.history if earlier else ()), *before, *new)
            return RunState(
                s.network, s.optimizer, s.rng_state, s.epoch, s.step, history
            )

        network, history = train(
            start or build(*init, channels=config.channels, kernel=config.kernel or 5),
            fit_split.images,
            fit_split.labels,
            epochs=config.epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            rng=rng,
            loss=config.loss,
            optimizer=optimizer_spec(config),
            schedule=config.schedule,
            monitored=(monitor.images, monitor.labels),
            done=resume.epoch if resume else 0,
            optimizer_state=resume.optimizer if resume else None,
            on_batch=on_batch,
            on_epoch=None if on_epoch is None else (lambda r: on_epoch(renumber(r))),
            on_warning=on_warning,
            on_checkpoint=on_checkpoint and (lambda s: on_checkpoint(state_of(s))),
        )
        history = [renumber(r) for r in history]
    # the last epoch scored the monitored split with these weights: not scored again
    monitor_eval = history[-1].evaluation if history else None
    with blas_threads("score"):
        fit = (fit_split.images, fit_split.labels)
        train_eval = score(network, *fit, loss=config.loss)
        if monitor_eval is None:
            monitor_eval = score(network, monitor.images, monitor.labels)
        test_eval, val_eval = monitor_eval, None
        if val_split is not None:
            test = (test_split.images, test_split.labels)
            test_eval, val_eval = score(network, *test), monitor_eval
    record = RunRecord(
        model=config.model,
        loss=config.loss,
        dataset=dataset.name,
        solver=config.solver,
        train_loss=train_eval.loss,
        train_accuracy=train_eval.accuracy,
        val_accuracy=val_eval.accuracy if val_eval else None,
        test_accuracy=test_eval.accuracy,
        per_class_accuracy=test_eval.to_json()["per_class_accuracy"],
        confusion_matrix=test_eval.confusion_matrix.tolist(),
        class_names=list(dataset.class_names),
        history=[
            *(earlier.history if earlier else ()),
            *(
                resume.history[len(earlier.history) if earlier else 0 :]
                if resume
                else ()
            ),
            *(r.to_json(monitor_name(config)) for r in history),
        ],
        started_from=earlier.to_json() if earlier else None,
        config={**asdict(config), "mirrors": list(config.mirrors)},
        data={f.name: {f.algorithm: f.checksum} for f in dataset.files},
        seconds=time.perf_counter() - started,
        version=__version__,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return RunResult(network, record, test_eval, val_eval, test_split.images[0])


def optimizer_spec(config: TrainConfig) -> OptimizerSpec:
    """The optimizer's settings from the run's configuration."""
    return OptimizerSpec(
        name=config.optimizer,
        momentum=config.momentum,
        beta1=config.beta1,
        beta2=config.beta2,
        eps=config.eps,
        weight_decay=config.weight_decay,
    )
