"""Run configuration: TOML file -> validated values -> one frozen dataclass, and back to TOML.

The hyperparameters that depend on the model (lr, batch_size, epochs; for the mlp also its
hidden layers, activation and init) default per model, so `--model linear` alone picks a
learning rate that converges for linear. Which settings go together, and what the
--init-from weights imply, is resolve.py.
"""

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from mnist_cli.config.choices import (
    ACTIVATIONS,
    INITS,
    KINDS,
    LOSSES,
    MAX_HIDDEN_LAYERS,
    MAX_UNITS,
    OPTIMIZER_SETTINGS,
    OPTIMIZERS,
    SCHEDULES,
    SOLVERS,
)
from mnist_cli.data import DATASETS, normalize_mirror
from mnist_cli.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (the cache directory aside)."""

    # "linear" (ŷ = Wx + b), "softmax" (ŷ = softmax(Wx + b)) or "mlp"
    model: str = "softmax"
    hidden: tuple[int, ...] = ()  # mlp: hidden layer widths, e.g. (256,) or (256, 128)
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
    if key in ("epochs", "batch_size"):
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
    if key == "mirrors":
        if not isinstance(value, list | tuple) or not all(
            isinstance(m, str) for m in value
        ):
            raise ValueError(f"must be a list of strings, not {value!r}")
        return tuple(value)
    raise ValueError(f"unknown key (expected one of: {', '.join(KEYS)})")


def read_config_file(path: Path) -> dict[str, Any]:
    """The validated values of a TOML config file. Mirror paths are made relative to the file."""
    try:
        with open(path, "rb") as f:
            return config_values(f.read().decode(), path.parent, str(path))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 text") from None


def config_values(text: str, base_dir: Path, where: str) -> dict[str, Any]:
    """The validated values of a config `text` (`where` it is, in errors; paths from `base_dir`)."""
    import tomllib  # here: a run without --config does not parse TOML (~2 ms of start-up)

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: invalid TOML: {e}") from None
    values = {}
    for key, value in raw.items():
        try:
            values[key] = check_value(key, value)
        except ValueError as e:
            raise ConfigError(f"{where}: key '{key}' {e}") from None
    if "mirrors" in values:
        try:
            values["mirrors"] = tuple(
                normalize_mirror(m, base_dir=base_dir) for m in values["mirrors"]
            )
        except ValueError as e:
            raise ConfigError(f"{where}: key 'mirrors': {e}") from None
    if "init_from" in values:
        values["init_from"] = str((base_dir / values["init_from"]).resolve())
    return values


def resolve(file_values: dict[str, Any], overrides: dict[str, Any]) -> TrainConfig:
    """The run's configuration: overrides (options given, not None) > file > model > global."""
    given = {**file_values, **{k: v for k, v in overrides.items() if v is not None}}
    model = given.get("model", TrainConfig.model)
    return TrainConfig(**{**MODEL_DEFAULTS[model], **given})


def to_toml(config: TrainConfig) -> str:
    """The configuration as a TOML file that `--config` reads back to the same TrainConfig.
    ValueError for a string TOML cannot hold (a path that is not valid UTF-8)."""

    def value(v: Any) -> str:
        if isinstance(v, str):
            return toml_string(v)
        if isinstance(v, tuple):  # mirrors (strings) or hidden (integers)
            return "[" + ", ".join(value(m) for m in v) + "]"
        return repr(v)

    lines = ["# mnist-train configuration, as resolved for this run"]
    # None (no init_from, no activation) and no hidden layers are left out: TOML has no
    # null, and absent means the default
    # and the settings of optimizers other than the run's (--config would refuse them)
    lines += [
        f"{key} = {value(v)}"
        for key, v in asdict(config).items()
        if v is not None
        and not (key == "hidden" and not v)
        and config.optimizer in OPTIMIZER_SETTINGS.get(key, (config.optimizer,))
    ]
    return "\n".join(lines) + "\n"


def toml_string(s: str) -> str:
    """`s` as a TOML basic string: `"` and `\\` escaped, and the control characters TOML
    forbids in one (U+0000 to U+001F but tab, and DEL U+007F) as \\uXXXX. ValueError for a
    lone surrogate (a command-line path that is not valid UTF-8): TOML cannot hold it."""
    if any("\ud800" <= c <= "\udfff" for c in s):
        raise ValueError("not valid UTF-8")
    body = s.replace("\\", "\\\\").replace('"', '\\"')
    body = "".join(f"\\u{ord(c):04X}" if c in CONTROL else c for c in body)
    return f'"{body}"'


# what a TOML basic string cannot hold unescaped, but for `"` and `\`
CONTROL = frozenset(map(chr, [*range(0x09), *range(0x0A, 0x20), 0x7F]))
