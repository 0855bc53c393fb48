"""Ctrl-C and SIGTERM while a command runs: both unwind through every `finally` (temp files,
staging directories are removed), then the command prints one line and exits 130 or 143.

Before the command runs, console.py's handlers end the process at once (nothing is written
yet); `handled` replaces them for the command's time. A stop that comes after a run was saved
says so (`says_when_saved`): the run is whole in --out, only what came after it is missing.
"""

import contextlib
import signal
import threading
from collections.abc import Iterator

from mnist_cli.errors import shown
from mnist_cli.rundir.claim import RunClaim


class Terminated(BaseException):
    """Raised by the SIGTERM handler: unwinds like KeyboardInterrupt, through every `finally`."""


def raise_terminated(signum, frame):
    raise Terminated


HANDLERS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: raise_terminated}
WORDS = {KeyboardInterrupt: "\nInterrupted", Terminated: "Terminated"}
CODES = {KeyboardInterrupt: 130, Terminated: 143}  # 128 + the signal's number


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """The block runs with SIGINT raising KeyboardInterrupt and SIGTERM raising Terminated;
    the handlers before it are put back after it. Only the main thread can set handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s, handler in HANDLERS.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, handler)


def stop_line(stop: KeyboardInterrupt | Terminated) -> str:
    """ "Interrupted." or "Terminated.", with the note the stop carries: "Terminated after
    the run was saved in runs/r."."""
    word = WORDS[
        KeyboardInterrupt if isinstance(stop, KeyboardInterrupt) else Terminated
    ]
    return f"{word} {stop.args[0]}." if stop.args else f"{word}."


def stop_code(stop: KeyboardInterrupt | Terminated) -> int:
    return CODES[
        KeyboardInterrupt if isinstance(stop, KeyboardInterrupt) else Terminated
    ]


@contextlib.contextmanager
def says_when_saved(claim: RunClaim) -> Iterator[None]:
    """A Ctrl-C or SIGTERM in the block once `claim`'s run is installed (one deferred while it
    was installed included) carries the note "after the run was saved in --out"."""
    try:
        yield
    except (KeyboardInterrupt, Terminated) as stop:
        if not claim.installed:
            raise
        raise type(stop)(f"after the run was saved in {shown(claim.path)}") from None
