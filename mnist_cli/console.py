"""The console scripts' entry points (pyproject's [project.scripts]): Ctrl-C and SIGTERM end
in one line from the first instant.

A command catches Ctrl-C (KeyboardInterrupt) and SIGTERM once it runs (cli/signals.py), but
before that Python imports numpy and the command's modules (~0.2 s): a Ctrl-C then printed a
KeyboardInterrupt traceback and exited −2, and SIGTERM killed the process without a word. So
each entry point first sets handlers that end the process at once, with the line and the exit
code the command gives (130, 143): nothing has been written yet, so there is nothing to clean
up. The command replaces them with its own, which unwind through every `finally`.
This module imports nothing of the package, so that it runs before the imports it guards.
(Python's own start-up, before it runs this, is not covered: ~20 ms.)
"""

import os
import signal
from collections.abc import Callable

LINES = {signal.SIGINT: "\nInterrupted.\n", signal.SIGTERM: "Terminated.\n"}


def _exit_at_once(signum: int, frame: object) -> None:
    os.write(2, LINES[signum].encode())
    os._exit(
        128 + signum
    )  # the shell's code for "ended by signal N", as the commands give


def stop_at_once() -> None:
    """Until a command sets its own: SIGINT and SIGTERM print their line and exit at once."""
    for signum in LINES:
        signal.signal(signum, _exit_at_once)


def _entry(command: str) -> Callable[[], object]:
    def run() -> object:
        stop_at_once()
        from mnist_cli import cli  # numpy, then the command's own modules

        return getattr(cli, command)()

    run.command = command  # the name in mnist_cli.cli of the command it runs
    return run


train = _entry("train_command")
eval = _entry("eval_command")  # shadows the builtin here only: mnist-eval's entry point
predict = _entry("predict_command")
gradcheck = _entry("gradcheck_command")
runs = _entry("runs_command")
serve = _entry("serve_command")
