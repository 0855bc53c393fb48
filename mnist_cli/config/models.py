"""What each model takes: the options only some models have, the shapes a cnn's blocks need,
and the architecture --init-from weights must share with the run (resolve.py asks)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mnist_cli.config.choices import IMAGE
from mnist_cli.config.settings import TrainConfig
from mnist_cli.errors import ConfigError, OptionsError


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


def cnn_misfit(channels: tuple[int, ...], kernel: int) -> str | None:
    """Why these blocks do not fit a 28 × 28 picture (a k × k convolution must leave each
    block's map at least 2 × 2 to pool), or None if they do."""
    side, sides = IMAGE[1], []
    for block, _ in enumerate(channels, start=1):
        if side - kernel + 1 < 2:
            return (
                f"block {block} would convolve a {side}×{side} map (28 → "
                f"{' → '.join(sides) or '…'}) with a {kernel}×{kernel} kernel, leaving less "
                "than 2×2 to pool"
            )
        side = (side - kernel + 1) // 2
        sides.append(str(side))
    return None


def check_cnn_shapes(config: TrainConfig, origin: Callable[[str], str]) -> None:
    """Each block's k × k convolution must fit its map and leave one at least 2 × 2 to pool."""
    if why := cnn_misfit(config.channels, config.kernel):
        raise OptionsError(
            f"{origin('kernel')} {config.kernel} with {origin('channels')} "
            f"{','.join(map(str, config.channels))}: {why}; use a smaller --kernel or fewer "
            "--channels"
        )
