"""What a checkpoint costs against an epoch of the mlp 784-256-10 (issue 21's target: ≤ 3 %).

Three measurements on MNIST's 60,000 training images, batch 100, Adam (the largest state: the
weights and two buffers, 3 × 203,530 float32 numbers, a 2.4 MB file):

- write: write_checkpoint of that network and state into a folder, flushed to disk (fsync)
  and renamed into place, the median of --writes, wall time;
- snapshot: what the training thread itself pays at an epoch's end (copies of the weights,
  of the optimizer's state and the generator's state); the write runs on the scoring thread,
  beside the next epoch;
- in training: train() for --epochs epochs with a checkpoint written at every epoch's end and
  without, in alternation, --rounds times: the median of the paired ratios of their times.

Run: .venv/bin/python bench/checkpoint_bench.py [--rounds 6] [--json]  (~40 s)
bench/run.py calls rows() for make bench.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mnist_cli.config.files import to_toml
from mnist_cli.config.settings import TrainConfig
from mnist_cli.data import default_cache_dir, get_dataset, load_dataset
from mnist_cli.nn.architecture import build
from mnist_cli.optim import OptimizerSpec
from mnist_cli.rundir.checkpoint import write_checkpoint
from mnist_cli.rundir.generator_state import restored
from mnist_cli.training.loop import train
from mnist_cli.training.step import trainer_for

ROOT = Path(__file__).resolve().parent.parent
ADAM = OptimizerSpec("adam")
LR = 0.001


def network(seed: int = 0):
    return build("mlp", "normal", np.random.default_rng(seed), (256,), "relu")


def epochs(images, labels, n: int, folder: Path | None) -> float:
    """Seconds of train() for n epochs, with a checkpoint at each epoch's end into `folder`
    (None: without)."""
    config_toml = to_toml(TrainConfig(model="mlp", optimizer="adam", lr=LR))

    def save(s) -> None:
        write_checkpoint(
            folder / "checkpoint.npz",
            network=s.network,
            dataset="mnist",
            optimizer=s.optimizer,
            rng=restored(s.rng_state),
            epoch=s.epoch,
            step=s.step,
            history=[r.to_json() for r in s.history],
            config_toml=config_toml,
        )

    start = time.perf_counter()
    train(
        network(), images, labels, epochs=n, batch_size=100, lr=LR,
        rng=np.random.default_rng(0), optimizer=ADAM,
        on_checkpoint=save if folder else None,
    )  # fmt: skip
    return time.perf_counter() - start


def rows(
    cache: Path | None = None, rounds: int = 3, writes: int = 20, n: int = 2
) -> dict:
    """The measurements above, as {name: value} (seconds, and percentages of an epoch)."""
    mirror = str(ROOT / "data" / "mnist")
    cache = cache or default_cache_dir(os.environ)
    split, _ = load_dataset(get_dataset("mnist"), cache, [mirror])
    images, labels = split.images, split.labels
    with tempfile.TemporaryDirectory(
        dir=ROOT
    ) as tmp:  # the disk the runs are written on
        folder = Path(tmp)
        states = []
        _, history = train(  # one epoch: Adam's state after it, and the epoch's time
            network(), images, labels, epochs=1, batch_size=100, lr=LR,
            rng=np.random.default_rng(0), optimizer=ADAM,
            on_checkpoint=states.append,
        )  # fmt: skip
        snap = states[-1]
        trainer = trainer_for(snap.network, "squared", ADAM)
        trainer.load_state(
            snap.optimizer
        )  # its buffers, copied by state() as at an epoch's end
        write_times, snapshot_times = [], []
        for _ in range(writes):
            start = time.perf_counter()
            write_checkpoint(
                folder / "checkpoint.npz", network=snap.network, dataset="mnist",
                optimizer=snap.optimizer, rng=restored(snap.rng_state), epoch=1,
                step=snap.step, history=[], config_toml="",
            )  # fmt: skip
            write_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            (
                trainer.current(),
                trainer.state(),
                np.random.default_rng(0).bit_generator.state,
            )
            snapshot_times.append(time.perf_counter() - start)
        size = (folder / "checkpoint.npz").stat().st_size
        ratios, plain = [], []
        for i in range(rounds):  # in alternation, the order rotated
            pair = {}
            for with_checkpoints in (i % 2 == 0, i % 2 == 1):
                key = "with" if with_checkpoints else "without"
                pair[key] = epochs(
                    images, labels, n, folder if with_checkpoints else None
                )
            ratios.append(pair["with"] / pair["without"])
            plain.append(pair["without"] / n)
    epoch = statistics.median(plain)
    write, snapshot = statistics.median(write_times), statistics.median(snapshot_times)
    median = statistics.median(ratios)
    return {
        "mlp epoch (adam) s": epoch,
        "checkpoint file MB": size / 1e6,
        "checkpoint write ms": 1e3 * write,
        "checkpoint write % of an epoch": 100 * write / epoch,
        "snapshot ms (training thread)": 1e3 * snapshot,
        "snapshot % of an epoch": 100 * snapshot / epoch,
        "training with checkpoints, % over without": 100 * (median - 1),
        "  its paired ratios, lowest and highest %": (
            f"{100 * (min(ratios) - 1):+.1f}, {100 * (max(ratios) - 1):+.1f}"
        ),
        "first epoch s (for reference)": history[0].seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    measured = rows(args.cache, args.rounds)
    if args.json:
        json.dump(measured, sys.stdout)
        return
    for name, value in measured.items():
        print(
            f"{name:<45} {value:8.2f}"
            if isinstance(value, float)
            else f"{name:<45} {value}"
        )


if __name__ == "__main__":
    main()
