"""The command-line interface: a thin click layer over the library, one module per command.

Options become a TrainConfig (config/), data comes from the data package (mnist_cli/data/), a training run
from training/run.py's fit, and runs are written and read by rundir/. What the commands share: common.py
(the command decorator, one-line errors), signals.py (Ctrl-C and SIGTERM), options.py (the shared options and the
data-loading call), config_options.py (mnist-train's TrainConfig options), progress.py (bars,
epoch and summary lines).

Each command is imported when it is first asked for (`from mnist_cli.cli import eval_command`
imports mnist_eval.py alone): a console script then loads its own command, not the training
loop, the plots and the gradient checker of the other four, and starts sooner.
"""

import importlib
from typing import TYPE_CHECKING

from mnist_cli.fast.threads import one_thread_start

# numpy's BLAS starts with one thread, not one per core: see threads.py
with one_thread_start():
    import numpy  # noqa: F401

MODULES = {
    "eval_command": "mnist_eval",
    "gradcheck_command": "mnist_gradcheck",
    "predict_command": "mnist_predict",
    "runs_command": "mnist_runs",
    "serve_command": "mnist_serve",
    "train_command": "mnist_train",
}

__all__ = [
    "eval_command",
    "gradcheck_command",
    "predict_command",
    "runs_command",
    "serve_command",
    "train_command",
]

if TYPE_CHECKING:
    from mnist_cli.cli.mnist_eval import eval_command
    from mnist_cli.cli.mnist_gradcheck import gradcheck_command
    from mnist_cli.cli.mnist_predict import predict_command
    from mnist_cli.cli.mnist_runs import runs_command
    from mnist_cli.cli.mnist_serve import serve_command
    from mnist_cli.cli.mnist_train import train_command


def __getattr__(name: str):
    """The command `name`, its module imported on first use (PEP 562)."""
    if name not in MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    command = getattr(importlib.import_module(f".{MODULES[name]}", __name__), name)
    globals()[name] = command
    return command
