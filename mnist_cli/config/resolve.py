"""One run's configuration: the command line, a config file and the starting weights become one
frozen TrainConfig, or a typed error naming the settings that contradict each other.

Precedence: a command-line option > the config file > what another choice implies (the model,
dataset and mlp architecture of the --init-from weights; linear for --solver exact) > the
model's default > the global default. Settings that cannot go together raise OptionsError (the CLI exits 2, as for a
bad option value); --init-from weights of another model or dataset raise ConfigError (exit 1).
"""

from collections.abc import Mapping
from typing import Any

from mnist_cli.config.choices import OPTIMIZER_KEYS, OPTIMIZER_SETTINGS
from mnist_cli.config.files import toml_string
from mnist_cli.config.models import Start, check_architecture, check_model_options
from mnist_cli.config.settings import TrainConfig, resolve
from mnist_cli.errors import ConfigError, OptionsError, shown

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
                option=option,
                key=key,
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
            option="--val-size",
            key="val_size",
        )
