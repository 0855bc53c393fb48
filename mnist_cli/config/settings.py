"""Run configuration: TOML file -> validated values -> one frozen dataclass, and back to TOML.

The hyperparameters that depend on the model (lr, batch_size, epochs; for the mlp also its
hidden layers, activation and init) default per model, so `--model linear` alone picks a
learning rate that converges for linear. Which settings go together, and what the
--init-from weights imply, is resolve.py.
"""

import math
from dataclasses import dataclass, fields
from typing import Any

from mnist_cli.config.choices import (
    ACTIVATIONS,
    IMAGE,
    INITS,
    KINDS,
    LOSSES,
    MAX_BLOCKS,
    MAX_CHANNELS,
    MAX_HIDDEN_LAYERS,
    MAX_UNITS,
    OPTIMIZERS,
    SCHEDULES,
    SOLVERS,
)
from mnist_cli.data import DATASETS


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (the cache directory aside)."""

    # "linear" (ŷ = Wx + b), "softmax" (ŷ = softmax(Wx + b)), "mlp" or "cnn"
    model: str = "softmax"
    hidden: tuple[
        int, ...
    ] = ()  # mlp, cnn: hidden layer widths, e.g. (256,) or (256, 128)
    channels: tuple[
        int, ...
    ] = ()  # cnn: one k × k convolution → relu → 2 × 2 max-pool each
    kernel: int | None = None  # cnn: the convolutions' k
    activation: str | None = None  # mlp: "relu", "sigmoid" or "tanh" (its hidden units)
    loss: str = "squared"  # or "cross-entropy" −(1/B) Σ log ŷ_y (softmax outputs only)
    epochs: int = 10  # passes over the 60,000 training images
    batch_size: int = 100  # samples per SGD step; the last, smaller batch is used
    lr: float = 0.5  # learning rate: W ← W − lr ∂L/∂W (plain sgd)
    optimizer: str = (
        "sgd"  # or "momentum", "nesterov", "adam" (optim.py, PyTorch's rules)
    )
    momentum: float = 0.9  # μ of momentum and nesterov: v ← μv + g
    beta1: float = 0.9  # adam: m ← β₁m + (1 − β₁)g
    beta2: float = 0.999  # adam: v ← β₂v + (1 − β₂)g²
    eps: float = 1e-8  # adam: θ ← θ − lr m̂/(√v̂ + ε)
    weight_decay: float = 0.0  # λ: g ← g + λθ for every parameter, biases included
    schedule: str = (
        "constant"  # or "cosine": lr_t = lr ½(1 + cos(π t/T)) over all T steps
    )
    seed: int = 0  # seeds the shuffling (and --init normal): same seed, same weights
    # or "normal": N(0, 0.01²); mlp: N(0, 2/fan_in) relu, else 1/fan_in
    init: str = "zeros"
    mirrors: tuple[str, ...] = ()  # where to fetch MNIST; () = the built-in mirrors
    dataset: str = (
        "mnist"  # "mnist", "fashion-mnist" or "kmnist" (see data/catalogue.py)
    )
    solver: str = "sgd"  # or "exact": the closed-form least squares (linear only)
    l2: float = 0.0  # ridge term of the exact solver: minimises Σ‖ŷ − y‖² + l2 ‖W‖²
    val_size: int = 0  # training images held out for validation (0: none)
    init_from: str | None = None  # weights or run directory to start from


# the most epochs in a run, a continued run's included: its metrics.json stays readable (~2 MB)
MAX_EPOCHS = 10_000
MAX_CONFIG_BYTES = 64 * 1024  # a config file's bound: the shipped ones are under 1 KiB


# Defaults that depend on the model, chosen so that each converges in 10 epochs. Linear needs a
# small rate: the largest curvature of its loss is 2 λmax(E[x xᵀ]) ≈ 78 on MNIST pixels, so
# plain gradient descent is stable only for lr < 2/78 ≈ 0.026 (an lr of 0.1 diverges).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "softmax": {"lr": 0.5, "batch_size": 100, "epochs": 10},
    "linear": {"lr": 0.005, "batch_size": 100, "epochs": 10},
    # configs/mlp.toml (cross-entropy) reaches 98 % in 10 epochs with these; init "normal" is
    # the only one for the mlp (zeros would keep every hidden unit identical)
    "mlp": {
        "lr": 0.5,
        "batch_size": 100,
        "epochs": 10,
        "hidden": (256,),
        "activation": "relu",
        "init": "normal",
    },
    # configs/cnn.toml's recipe (see it for how it was chosen)
    "cnn": {
        "lr": 0.05,
        "batch_size": 64,
        "epochs": 10,
        "hidden": (128,),
        "channels": (16, 32),
        "kernel": 5,
        "init": "normal",
        "loss": "cross-entropy",
        "optimizer": "momentum",
        "schedule": "cosine",
    },
}

KEYS = tuple(f.name for f in fields(TrainConfig))


def check_value(key: str, value: Any) -> Any:
    """Return `value` as the type of config key `key`, or raise ValueError saying what is wrong.

    Checks one value alone; which combinations make sense (solver "exact" with model "linear",
    val_size below the number of training images) resolve.py checks once everything is known.
    """

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if key in (
        "model", "init", "dataset", "solver", "activation", "loss", "optimizer", "schedule"
    ):  # fmt: skip
        choices = {
            "model": KINDS,
            "init": INITS,
            "dataset": tuple(DATASETS),
            "solver": SOLVERS,
            "activation": ACTIVATIONS,
            "loss": LOSSES,
            "optimizer": OPTIMIZERS,
            "schedule": SCHEDULES,
        }[key]
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {value!r}")
        return value
    if key == "epochs":
        if not is_int(value) or not 1 <= value <= MAX_EPOCHS:
            raise ValueError(
                f"must be an integer from 1 to {MAX_EPOCHS:,}, not {value!r}"
            )
        return value
    if key == "batch_size":
        if not is_int(value) or value < 1:
            raise ValueError(f"must be an integer ≥ 1, not {value!r}")
        return value
    if key in ("seed", "val_size"):
        if not is_int(value) or value < 0:
            raise ValueError(f"must be an integer ≥ 0, not {value!r}")
        return value
    if key == "lr":
        if not (is_int(value) or isinstance(value, float)) or not (
            math.isfinite(value) and value > 0
        ):
            raise ValueError(f"must be a finite number > 0, not {value!r}")
        return float(value)
    if key in ("momentum", "beta1", "beta2"):
        if not (is_int(value) or isinstance(value, float)) or not 0 <= value < 1:
            raise ValueError(f"must be a number in [0, 1), not {value!r}")
        return float(value)
    if key == "eps":
        if not (is_int(value) or isinstance(value, float)) or not (
            math.isfinite(value) and value > 0
        ):
            raise ValueError(f"must be a finite number > 0, not {value!r}")
        return float(value)
    if key in ("l2", "weight_decay"):
        if not (is_int(value) or isinstance(value, float)) or not (
            math.isfinite(value) and value >= 0
        ):
            raise ValueError(f"must be a finite number ≥ 0, not {value!r}")
        return float(value)
    if key == "init_from":
        if not isinstance(value, str) or not value.strip():
            raise ValueError(
                f"must be the path of a run directory or weights.npz, not {value!r}"
            )
        return value
    if key == "hidden":
        widths = f"a list of 1 to {MAX_HIDDEN_LAYERS} layer widths, each from 1 to {MAX_UNITS}"
        if (
            not isinstance(value, list | tuple)
            or not 1 <= len(value) <= MAX_HIDDEN_LAYERS
        ):
            raise ValueError(f"must be {widths}, not {value!r}")
        for width in value:
            if not is_int(width) or not 1 <= width <= MAX_UNITS:
                raise ValueError(f"must be {widths}, not {width!r} in {value!r}")
        return tuple(value)
    if key == "channels":
        counts = (
            f"a list of 1 to {MAX_BLOCKS} channel counts, each from 1 to {MAX_CHANNELS}"
        )
        if not isinstance(value, list | tuple) or not 1 <= len(value) <= MAX_BLOCKS:
            raise ValueError(f"must be {counts}, not {value!r}")
        for count in value:
            if not is_int(count) or not 1 <= count <= MAX_CHANNELS:
                raise ValueError(f"must be {counts}, not {count!r} in {value!r}")
        return tuple(value)
    if key == "kernel":
        if not is_int(value) or not 1 <= value <= IMAGE[1] - 1:
            raise ValueError(
                f"must be an integer from 1 to {IMAGE[1] - 1}, not {value!r}"
            )
        return value
    if key == "mirrors":
        if not isinstance(value, list | tuple) or not all(
            isinstance(m, str) for m in value
        ):
            raise ValueError(f"must be a list of strings, not {value!r}")
        return tuple(value)
    raise ValueError(f"unknown key (expected one of: {', '.join(KEYS)})")


def resolve(file_values: dict[str, Any], overrides: dict[str, Any]) -> TrainConfig:
    """The run's configuration: overrides (options given, not None) > file > model > global."""
    given = {**file_values, **{k: v for k, v in overrides.items() if v is not None}}
    model = given.get("model", TrainConfig.model)
    return TrainConfig(**{**MODEL_DEFAULTS[model], **given})
