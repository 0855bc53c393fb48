"""`python -m mnist_cli COMMAND ...`: every command, where the console scripts are not on PATH.

`python -m mnist_cli train --epochs 5` is `mnist-train --epochs 5` (the full name, mnist-train,
works too); `python -m mnist_cli` alone lists the commands.
"""

from mnist_cli.console import stop_at_once

if __name__ == "__main__":  # before the imports below (numpy): see console.py
    stop_at_once()

import click

from mnist_cli import __version__
from mnist_cli.cli import (
    eval_command,
    gradcheck_command,
    predict_command,
    runs_command,
    serve_command,
    train_command,
)
from mnist_cli.cli.common import CONTEXT

COMMANDS = {
    "train": train_command,
    "eval": eval_command,
    "predict": predict_command,
    "gradcheck": gradcheck_command,
    "runs": runs_command,
    "serve": serve_command,
}


class UnknownCommand(click.UsageError):
    """An unknown COMMAND: one line (not click's usage block), exit 2."""

    def show(self, file=None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


class Commands(click.Group):
    """The commands by their short names, in COMMANDS order; mnist-<name> is accepted too."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self.commands.get(name.removeprefix("mnist-"))

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0]
        if self.get_command(ctx, name) is None and not name.startswith("-"):
            raise UnknownCommand(
                f"no command {name!r}; the commands are {', '.join(COMMANDS)} "
                "(python -m mnist_cli -h)"
            )
        return super().resolve_command(ctx, args)


@click.group(
    cls=Commands,
    commands=COMMANDS,
    invoke_without_command=True,
    context_settings=CONTEXT,
    epilog="""\b
Example:
  python -m mnist_cli train --config configs/default.toml
  python -m mnist_cli eval runs/softmax-20261126-101500
  python -m mnist_cli runs --sort accuracy
  python -m mnist_cli train -h
""",
)
@click.version_option(__version__, "-V", "--version", package_name="mnist-cli")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Run any mnist-cli command: `python -m mnist_cli train` is `mnist-train`.

    For where the console scripts (mnist-train, mnist-eval, ...) are not on PATH.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


if __name__ == "__main__":
    main(prog_name="python -m mnist_cli")
