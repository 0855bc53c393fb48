"""A training run, start to finish, without I/O: the data in, the weights and their metrics out.

The CLI resolves the configuration and loads the data; `fit` holds out the validation images
(--val-size), trains by SGD (train.py) or solves the linear model exactly (exact.py), scores the
result (metrics.py) and assembles the object that metrics.json holds; artifacts.py writes it.
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
from mnist_cli.training.continuing import Earlier
from mnist_cli.training.loop import EpochResult, train


@dataclass(frozen=True)
class RunResult:
    network: Network  # the trained model
    metrics: dict  # what metrics.json holds
    test: Evaluation  # on the test split
    val: Evaluation | None  # on the held-out images, if --val-size


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
    on_batch: Callable[[int, float], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> RunResult:
    """Train (or solve) the model of `config` from `start` (else `config.init`, drawn from the
    seeded generator) and score it; `on_warning` hears when training looks stuck.

    With config.val_size, the validation images are held out of the training split by a
    generator of their own, np.random.default_rng(seed) (data.holdout), monitored after each
    epoch instead of the test split, which is then scored once, at the end.
    """
    started = time.perf_counter()
    fit_split, val_split = train_split, None
    if config.val_size:
        rng = np.random.default_rng(config.seed)
        fit_split, val_split = holdout(train_split, config.val_size, rng)
    monitor = test_split if val_split is None else val_split
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
        init = (config.model, config.init, rng, config.hidden, config.activation)
        network, history = train(
            start or build(*init),
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
            on_batch=on_batch,
            on_epoch=None if on_epoch is None else (lambda r: on_epoch(renumber(r))),
            on_warning=on_warning,
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
    metrics = {
        "model": config.model,
        "loss": config.loss,
        "dataset": dataset.name,
        "solver": config.solver,
        "train_loss": train_eval.loss,
        "train_accuracy": train_eval.accuracy,
        "val_accuracy": val_eval.accuracy if val_eval else None,
        "test_accuracy": test_eval.accuracy,
        "per_class_accuracy": test_eval.to_json()["per_class_accuracy"],
        "confusion_matrix": test_eval.confusion_matrix.tolist(),
        "class_names": list(dataset.class_names),
        "history": [
            *(earlier.history if earlier else ()),
            *(r.to_json(monitor_name(config)) for r in history),
        ],
        "started_from": earlier.to_json() if earlier else None,
        "config": {**asdict(config), "mirrors": list(config.mirrors)},
        "data": {f.name: {f.algorithm: f.checksum} for f in dataset.files},
        "seconds": time.perf_counter() - started,
        "version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return RunResult(network, metrics, test_eval, val_eval)


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
