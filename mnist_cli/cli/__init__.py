"""The command-line interface: a thin click layer over the library, one module per command.

Options become a TrainConfig (config.py, resolve.py), data comes from data.py, a training run
from run.fit, and runs are written and read by artifacts.py. What the commands share: common.py
(the command decorator, one-line errors, signals), options.py (the shared options and the
data-loading call), config_options.py (mnist-train's TrainConfig options), progress.py (bars,
epoch and summary lines).
"""

from .mnist_eval import eval_command
from .mnist_gradcheck import gradcheck_command
from .mnist_predict import predict_command
from .mnist_runs import runs_command
from .mnist_train import train_command

__all__ = [
    "eval_command",
    "gradcheck_command",
    "predict_command",
    "runs_command",
    "train_command",
]
