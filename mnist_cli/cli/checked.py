"""Click callbacks that check an option's value as the config file's would be checked
(config.settings.check_value): a bad value exits 2 with the rule it breaks."""

import click
import numpy as np

from mnist_cli.config.settings import check_value


def option_value(key: str):
    """A click callback that checks an option against the config rules (exit 2 if invalid)."""

    def callback(ctx, param, value):
        if value is None:
            return None
        try:
            return check_value(key, value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None

    return callback


def config_option(name: str, type: type, help: str, **kwargs):
    """An option that sets the config key of its name, checked as the config file's is."""
    key = name.removeprefix("--").replace("-", "_")
    return click.option(
        name, type=type, callback=option_value(key), help=help, **kwargs
    )


def comma_list(key: str, what: str, example: str):
    """A click callback: "256" or "256,128" -> (256,) or (256, 128), checked as config key
    `key` is; `what` and `example` word the error for a value that is not such a list."""

    def callback(ctx, param, value):
        if value is None:
            return None
        try:
            numbers = [int(w) for w in value.split(",")]
        except ValueError:
            raise click.BadParameter(
                f"must be {what} (integers) separated by commas, such as {example}, "
                f"not {value!r}"
            ) from None
        return option_value(key)(ctx, param, numbers)

    return callback


hidden_widths = comma_list("hidden", "layer widths", "256 or 256,128")
channel_counts = comma_list("channels", "channel counts", "16 or 16,32")


def positive_tol(ctx, param, value):
    if not (np.isfinite(value) and value > 0):
        raise click.BadParameter(f"must be a finite number > 0, not {value!r}")
    return value
