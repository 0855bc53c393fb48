"""Files and directories that appear whole or not at all.

Each is written under a unique hidden name in its destination's directory
(`.<name>.<random><suffix>`) and then renamed onto the destination with os.replace, which is
atomic on POSIX: a reader sees the old file or the new one, never half of one. The temporary
is removed if anything goes wrong before the rename, Ctrl-C (KeyboardInterrupt) included.

Permissions follow the user's umask, as for any file they create: files 0666 and directories
0777 less the umask, so 0644 / 0755 under umask 022 and 0600 / 0700 under umask 077.
(tempfile's mkstemp and mkdtemp would give 0600 and 0700 whatever the umask.)
"""

import contextlib
import errno
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def temp_file(target: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A new empty file beside `target` for the block to fill; removed when the block ends
    unless the block renamed it away (os.replace onto `target`)."""
    path = None
    try:
        with signals_deferred():  # a stop meanwhile comes inside the `try`, `path` set
            path = _unique(target, suffix, _new_file)
        yield path
    finally:
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


@contextlib.contextmanager
def replacing(
    target: Path, mode: str = "wb", *, suffix: str = ".tmp", fsync: bool = False
) -> Iterator[IO]:
    """Write `target` atomically: the block writes to the yielded file (a `temp_file` opened
    in `mode`); only if the block ends without an exception is the file closed (flushed to
    disk first if `fsync`) and renamed onto `target`."""
    with temp_file(target, suffix) as temp:
        with open(temp, mode) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(temp, target)


def write_text(target: Path, text: str, *, suffix: str = ".tmp") -> None:
    """Replace `target` by a file holding `text`, atomically."""
    with replacing(target, "w", suffix=suffix) as f:
        f.write(text)


OLD_SUFFIX = ".old"  # a directory moved aside while another takes its name


@contextlib.contextmanager
def temp_dir(target: Path, suffix: str = "") -> Iterator[Path]:
    """A new empty directory `.<name>.<random><suffix>` beside `target` for the block to build
    `target` in; removed with whatever it holds when the block ends, unless the block renamed
    it away (`replace_dir`)."""
    path = None
    try:
        with signals_deferred():  # a stop meanwhile comes inside the `try`, `path` set
            path = _unique(target, suffix, os.mkdir)
        yield path
    finally:
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)


def fsync_files(directory: Path) -> None:
    """Flush every file in `directory` to disk (before a rename makes them visible)."""
    for path in directory.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def replace_dir(
    new: Path, target: Path, *, keep_target: bool = False, last: str | None = None
) -> None:
    """Put the directory `new` in `target`'s place so that `target` is, at every instant, the
    old directory or the new one, whole:

    - `target` missing or an empty directory: one rename (rename(2) replaces an empty
      directory). With `keep_target`, `target` must stay the directory it is (a shell's
      working directory, for `--out .`): `new`'s entries are moved into it one by one
      instead (each replacing its namesake), `last` last, so that the entry readers trust
      appears only with the others;
    - `target` not empty: exchanged with `new` in one step (renameat2's RENAME_EXCHANGE), and
      the old directory, now at `new`, removed. Where the filesystem cannot exchange, `target`
      is moved aside and `new` renamed in, and an exception between the two renames (Ctrl-C
      included) moves the old one back.

    SIGINT and SIGTERM that arrive meanwhile take effect once the renames are done
    (`signals_deferred`)."""
    with signals_deferred():
        if not target.is_dir():
            os.replace(new, target)  # onto nothing
        elif keep_target:
            _move_entries(new, target, last)
        elif not any(target.iterdir()):
            os.replace(new, target)
        elif _exchange(new, target):
            shutil.rmtree(new, ignore_errors=True)  # the old directory
        else:
            _replace_in_two_renames(new, target)


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths `a` and `b` in one step (Linux renameat2 with RENAME_EXCHANGE); False,
    with nothing done, where the kernel, the C library or the filesystem cannot."""
    import ctypes  # here: only a run replacing another pays for the import

    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # a C library without it (glibc < 2.28, not Linux)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p] * 2 + [ctypes.c_uint]
    at_cwd, exchange = -100, 2  # AT_FDCWD, RENAME_EXCHANGE
    if renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # the filesystem (or kernel) cannot exchange
    raise OSError(err, os.strerror(err), str(b))


def _replace_in_two_renames(new: Path, target: Path) -> None:
    """`target` moved aside, `new` renamed in, the old one removed; an exception between the
    renames puts the old one back. (A SIGKILL between them leaves `target` missing and the old
    directory at `.<name>.<random>.old`, which stale.py puts back.)"""
    # an empty directory reserves the name; renaming `target` onto it replaces it
    old = _unique(target, OLD_SUFFIX, os.mkdir)
    try:
        os.replace(target, old)
        os.replace(new, target)
    except BaseException:
        if os.path.lexists(new):  # not installed: the old directory goes back
            if any(old.iterdir()):
                os.replace(old, target)
            else:  # the first rename did not happen
                os.rmdir(old)
        else:  # installed: the replacement is complete, the old one goes
            shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _move_entries(new: Path, target: Path, last: str | None = None) -> None:
    """Move what `new` holds into the empty directory `target`, `last` (if there) last, then
    remove `new`: `target` stays the same directory. An error puts back what was moved."""
    names = sorted(os.listdir(new), key=lambda name: (name == last, name))
    moved: list[str] = []
    try:
        for name in names:
            os.rename(new / name, target / name)
            moved.append(name)
    except BaseException:
        for name in moved:
            os.rename(target / name, new / name)
        raise
    os.rmdir(new)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Run the block with SIGINT and SIGTERM held back: a signal that arrives meanwhile is
    raised again, to its own handler, when the block ends. Only the main thread can set
    handlers; elsewhere (and for a handler not set from Python) the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    signums = [
        s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not None
    ]
    previous = {s: signal.signal(s, lambda n, f: received.append(n)) for s in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)


def _new_file(path: Path) -> None:
    """Create the empty file `path`, failing if it exists; mode 0666 less the umask."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


NAME_MAX = 255  # bytes in one file name (Linux, macOS, most filesystems)


def _unique(target: Path, suffix: str, create: Callable[[Path], object]) -> Path:
    """`create` a path `.<target name>.<random><suffix>` beside `target` that did not exist;
    the target's name is cut short (at a byte) when the whole would pass NAME_MAX, so that
    every name the filesystem accepts for `target` gets a temporary."""
    # os.urandom(4).hex() is secrets.token_hex(4), without importing secrets (and hmac,
    # hashlib, random) at every command's start
    for _ in range(100):
        tail = f".{os.urandom(4).hex()}{suffix}"
        head = os.fsencode(f".{target.name}")[: NAME_MAX - len(os.fsencode(tail))]
        path = target.parent / (os.fsdecode(head) + tail)
        try:
            create(path)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free temporary name beside {target}")
