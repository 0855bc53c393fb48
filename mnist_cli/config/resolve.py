"""One run's configuration: the command line, a config file and the starting weights become one
frozen TrainConfig, or a typed error naming the settings that contradict each other.

Precedence: a command-line option > the config file > what another choice implies (the model,
dataset and mlp architecture of the --init-from weights; linear for --solver exact) > the
model's default > the global default. Settings that cannot go together raise OptionsError (the CLI exits 2, as for a
bad option value); --init-from weights of another model or dataset raise ConfigError (exit 1).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mnist_cli.config.choices import IMAGE, OPTIMIZER_KEYS, OPTIMIZER_SETTINGS
from mnist_cli.config.files import toml_string
from mnist_cli.config.settings import TrainConfig, resolve
from mnist_cli.errors import ConfigError, OptionsError, shown


@dataclass(frozen=True)
class Start:
    """What the --init-from weights fix for the run: their model and dataset, an mlp's hidden
    widths and activation, and the loss of the run they come from (None if unknown)."""

    kind: str
    dataset: str
    hidden: tuple[int, ...] = ()
    activation: str | None = None
    loss: str | None = None
    channels: tuple[int, ...] = ()
    kernel: int | None = None


# the options only some models take, and those models
OWN_OPTIONS = {
    "hidden": ("mlp", "cnn"),
    "activation": ("mlp",),
    "channels": ("cnn",),
    "kernel": ("cnn",),
}


# What the exact solver has no use for: it solves for the optimum (no epochs, no starting point).
SGD_ONLY = ("epochs", "batch_size", "lr", "init", "init_from", *OPTIMIZER_KEYS)


def start_path(
    options: Mapping[str, Any], file_values: Mapping[str, Any]
) -> str | None:
    """The weights a run starts from: --init-from, else the config file's init_from unless --init
    is given (an option overrides the file); None for none. --init and --init-from exclude each
    other."""
    if options.get("init") and options.get("init_from"):
        raise OptionsError("--init and --init-from exclude each other; give one")
    if options.get("init"):
        return None
    return options.get("init_from") or file_values.get("init_from")


def resolve_run(
    file_values: Mapping[str, Any],
    options: Mapping[str, Any],
    start: Start | None = None,
) -> TrainConfig:
    """The run's configuration from `options` (the command line; None where not given),
    `file_values` (read_config_file) and `start`, what the weights of start_path fix (if any).

    A dataset other than the file's drops the file's mirrors (they hold the file's dataset).
    """
    given = {key: v for key, v in options.items() if v is not None}
    init_from = start_path(given, file_values)
    implied = implied_defaults(given, file_values, start)
    from_file = {key: v for key, v in file_values.items() if key != "init_from"}
    dataset = given.get("dataset", implied.get("dataset"))
    if dataset and dataset != from_file.get("dataset", TrainConfig.dataset):
        from_file.pop("mirrors", None)
    config = resolve(from_file, {**implied, **given, "init_from": init_from})
    check_combination(config, given, start)
    check_optimizer_options(config, {*given, *file_values})
    check_paths(config)
    return config


def check_paths(config: TrainConfig) -> None:
    """Every path of the run must go into its config.toml, to re-run it with --config: refuse
    before training a mirror or --init-from path that is not valid UTF-8 (a command-line path
    holding bytes that are not; TOML, like JSON, holds only Unicode text)."""
    paths = [("--mirror", "mirrors", m) for m in config.mirrors]
    if config.init_from:
        paths.append(("--init-from", "init_from", config.init_from))
    for option, key, path in paths:
        try:
            toml_string(path)
        except ValueError:
            raise OptionsError(
                f"{shown(path)} is not valid UTF-8, so the run's config.toml could not "
                "record it; rename it or give another path",
                param=f"'{option}' (config key {key})",
            ) from None


def implied_defaults(
    given: Mapping[str, Any],
    file_values: Mapping[str, Any],
    start: Start | None,
) -> dict[str, Any]:
    """Defaults implied by other choices, when neither the command line nor the config file
    sets them: the model, dataset and (mlp) hidden widths and activation of the --init-from
    weights, and the loss of the run they come from (a run continues on its own loss), and
    linear for --solver exact (the only model with a closed-form optimum)."""
    implied = {}
    if start:
        inherited = [("model", start.kind), ("dataset", start.dataset)]
        if start.loss:
            inherited.append(("loss", start.loss))
        if start.kind == "mlp":
            inherited += [("hidden", start.hidden), ("activation", start.activation)]
        if start.kind == "cnn":
            inherited += [("hidden", start.hidden), ("channels", start.channels)]
            inherited += [("kernel", start.kernel)]
        for key, value in inherited:
            if key not in given and key not in file_values:
                implied[key] = value
    solver = given.get("solver", file_values.get("solver"))
    if solver == "exact" and "model" not in implied and "model" not in file_values:
        implied["model"] = given.get("model", "linear")
    return implied


def check_combination(
    config: TrainConfig, given: Mapping[str, Any], start: Start | None
) -> None:
    """Refuse settings that contradict each other: --init-from weights of another model,
    architecture or dataset (ConfigError), and options the chosen model or solver cannot use
    (OptionsError)."""
    if start and start.kind != config.model:
        raise ConfigError(
            f"--init-from {config.init_from}: the weights are a {start.kind} model, "
            f"but this run trains {config.model}; use --model {start.kind} or other weights"
        )
    if start and start.dataset != config.dataset:
        raise ConfigError(
            f"--init-from {config.init_from}: the weights were trained on {start.dataset}, "
            f"but this run trains on {config.dataset}; use --dataset {start.dataset} "
            "or other weights"
        )
    if start and start.kind in ("mlp", "cnn"):
        check_architecture(config, start)
    check_model_options(config, given)
    if config.solver == "sgd" and config.l2:
        raise OptionsError("--l2 is for --solver exact; SGD has no ridge term")
    if config.solver == "exact":
        changed = [
            k for k in OPTIMIZER_KEYS if getattr(config, k) != getattr(TrainConfig, k)
        ]
        keys = [k for k in SGD_ONLY if k in given or k in changed]
        unused = [f"--{key.replace('_', '-')}" for key in keys]
        if unused or config.init_from:
            raise OptionsError(
                f"{', '.join(unused) or 'init_from'} cannot be used with --solver exact, "
                "which solves for the optimum directly (no epochs, no starting point, "
                "no optimizer)"
            )
        if config.model != "linear":
            raise OptionsError(
                f"--solver exact needs --model linear: the {config.model} model has "
                "no closed-form optimum"
            )


def architecture(model: TrainConfig | Start) -> str:
    """An mlp or cnn as the run's summary names one: "mlp 784-256-10 relu", "cnn 16,32 k5 /
    128" (as nn.architecture.describe)."""
    if model.channels:
        channels = ",".join(map(str, model.channels))
        return f"cnn {channels} k{model.kernel} / {','.join(map(str, model.hidden)) or '-'}"
    return f"mlp {'-'.join(map(str, (784, *model.hidden, 10)))} {model.activation}"


def check_architecture(config: TrainConfig, start: Start) -> None:
    """--init-from mlp weights must have the hidden widths and activation of the run."""
    if architecture(start) != architecture(config):
        raise ConfigError(
            f"--init-from {config.init_from}: the weights are an {architecture(start)}, "
            f"but this run trains an {architecture(config)}; give the weights' --hidden "
            "and --activation (or --channels and --kernel), or leave them out, or other "
            "weights"
        )


def check_model_options(config: TrainConfig, given: Mapping[str, Any]) -> None:
    """The options only the mlp takes, the loss only a softmax output takes, and no zeros
    init for the mlp. Each error names the option (or the config key) to blame."""

    def origin(key: str) -> str:
        return f"--{key}" if key in given else f"the config key {key}"

    for key, models in OWN_OPTIONS.items():
        if config.model not in models and getattr(config, key):
            raise OptionsError(
                f"{origin(key)} is for --model {' or '.join(models)}; "
                f"the {config.model} model has no {key}"
            )
    if config.model == "cnn":
        check_cnn_shapes(config, origin)
    if config.loss == "cross-entropy" and config.model == "linear":
        raise OptionsError(
            f"{origin('loss')} cross-entropy needs a softmax output (−log ŷ of the true "
            "class), which the linear model does not have; use --model softmax or mlp"
        )
    if (
        config.model in ("mlp", "cnn")
        and config.init == "zeros"
        and not config.init_from
    ):
        raise OptionsError(
            f"{origin('init')} zeros cannot train an {config.model}: every hidden unit would get the "
            "same gradient and stay identical; use --init normal (its default)"
        )


def check_cnn_shapes(config: TrainConfig, origin: Callable[[str], str]) -> None:
    """Each block's k × k convolution must fit its map and leave one at least 2 × 2 to pool."""
    side, sides = IMAGE[1], [str(IMAGE[1])]
    for block, channels in enumerate(config.channels, start=1):
        if side - config.kernel + 1 < 2:
            raise OptionsError(
                f"{origin('kernel')} {config.kernel} with {origin('channels')} "
                f"{','.join(map(str, config.channels))}: block {block} would convolve a "
                f"{side}×{side} map (28 → {' → '.join(sides[1:]) or '…'}) with a "
                f"{config.kernel}×{config.kernel} kernel, leaving less than 2×2 to pool; "
                "use a smaller --kernel or fewer --channels"
            )
        side = (side - config.kernel + 1) // 2
        sides.append(str(side))


def check_optimizer_options(config: TrainConfig, chosen: set[str]) -> None:
    """Refuse a setting the run's optimizer does not use (--beta1 with momentum, --momentum
    with adam, any of them with --solver exact); `chosen` are the keys the command line or
    the config file set."""
    if config.solver == "exact":
        return  # check_combination refuses every optimizer option for the exact solver
    for key, optimizers in OPTIMIZER_SETTINGS.items():
        if key in chosen and config.optimizer not in optimizers:
            raise OptionsError(
                f"--{key} is for --optimizer {' or '.join(optimizers)}, not "
                f"{config.optimizer}, which has no such setting"
            )


def check_val_size(config: TrainConfig, n_train: int) -> None:
    """val_size must leave some of the `n_train` training images to train on."""
    if config.val_size >= n_train:
        raise OptionsError(
            f"must be less than the {n_train:,} training images of {config.dataset}, "
            f"not {config.val_size}",
            param="'--val-size' (config key val_size)",
        )
