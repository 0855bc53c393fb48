"""The command-line interface: a thin click layer over the library, one module per command.

Options become a TrainConfig (config.py), data comes from data.py, training from train.py, and
runs are written and read by artifacts.py; common.py holds what the commands share.
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
