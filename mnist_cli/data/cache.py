"""The cache folder: where it is, who may write a file in it, and which files it trusts.

`default_cache_dir` places it (MNIST_CACHE_DIR, XDG_CACHE_HOME, ~/.cache). Each file
`<name>` has a lock `<name>.lock`, held while it is fetched so that processes sharing the cache
download it once (`locked`), and a verification record `<name>.verified.json` (manifest.py).
`cached` says whether the file there is still the verified copy, and discards it if not (a
symlink, FIFO or device in its place included: the cache trusts only regular files);
`install` renames a verified temp file into place and records it. Every OSError of the cache
folder becomes one `CacheError` naming the folder (`cache_error`).

The lock is a courtesy, never needed for correctness (each process writes its own temp files
and installs by an atomic rename): a process waits for it at most `wait` seconds (--timeout),
then fetches on its own. A lock that is a symlink is not followed (no file is created outside
the cache). Each temp file is itself flocked by the process writing it (`own`), so that
`clean_stale` can remove the `.part` files a killed process left without ever touching those of
a live one.
"""

import contextlib
import errno
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from mnist_cli.data import manifest
from mnist_cli.data.catalogue import DataFile
from mnist_cli.errors import CacheError

try:
    import fcntl
except ImportError:  # not POSIX: no lock, which correctness does not need
    fcntl = None

LOCK_SUFFIX = ".lock"
# seconds without a write before an unlocked temp file counts as left
STALE_AFTER = 3600.0
LOCK_POLL = 0.05  # seconds between two tries of a held lock


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """$MNIST_CACHE_DIR, else $XDG_CACHE_HOME/mnist-cli, else ~/.cache/mnist-cli.

    Empty variables count as unset, and so does a relative XDG_CACHE_HOME (as the XDG spec says).
    """
    if env.get("MNIST_CACHE_DIR"):
        return Path(env["MNIST_CACHE_DIR"])
    xdg = env.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "mnist-cli"
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".cache" / "mnist-cli"


@contextlib.contextmanager
def locked(
    target: Path,
    wait: float,
    on_warning: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[bool]:
    """Hold an exclusive flock on `<target>.lock` (created if needed, never removed: removing a
    lock file lets two processes lock different files), waiting for it at most `wait` seconds.
    Yields whether the lock is held: without it (no flock, a read-only cache, a lock that is
    not a regular file, another process holding it too long) the caller goes on unlocked."""
    path = target.with_name(target.name + LOCK_SUFFIX)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP and on_warning is not None:
            on_warning(
                f"{path} is a symbolic link, not followed; fetching without the lock"
            )
        # a read-only cache can still be read; a write will say what is wrong
        yield False
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            if on_warning is not None:
                on_warning(f"{path} is not a regular file; fetching without the lock")
            held = False
        else:
            held = _flock(fd, wait, clock)
            if not held and fcntl is not None and on_warning is not None:
                on_warning(
                    f"another process has held {path} for {wait:g} s; "
                    f"fetching {target.name} without waiting for it"
                )
        yield held
    finally:
        os.close(fd)  # releases the lock


def _flock(fd: int, wait: float, clock: Callable[[], float]) -> bool:
    """Try for `wait` seconds to flock `fd`; False if another process kept it, or no flock."""
    if fcntl is None:
        return False
    deadline = clock() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if clock() >= deadline:
                return False
            time.sleep(LOCK_POLL)
        except OSError:  # e.g. a filesystem without locks
            return False


def own(temp: Path) -> int | None:
    """Flock the temp file `temp` we just created, for as long as the returned descriptor is
    open (close it when done): `clean_stale` in another process then leaves it alone."""
    if fcntl is None:
        return None
    fd = os.open(temp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def clean_stale(target: Path, now: float | None = None) -> list[Path]:
    """Remove the temp files `.<name>.*.part` beside `target` that a killed process left: regular
    files unchanged for STALE_AFTER seconds that no live process holds a flock on. Call with the
    lock of `target` held. Returns the paths removed."""
    if fcntl is None:
        return []
    now = time.time() if now is None else now
    removed = []
    for path in target.parent.glob(f".{target.name}.*.part"):
        try:
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < STALE_AFTER:
                continue
            fd = os.open(
                path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK
            )
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a live writer holds it
            path.unlink()
            removed.append(path)
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed


def cached(
    file: DataFile, target: Path, on_warning: Callable[[str], None] | None
) -> bool:
    """True if `target` is a verified copy; discard it (with a warning) if it no longer is.
    Call with the lock held: it may delete the file."""
    problem = manifest.recheck(file, target)
    if problem is None:
        return True
    if problem == manifest.MISSING:
        return False
    if on_warning is not None:
        on_warning(
            f"cached {file.name} {problem} ({target.parent}); discarding it and fetching again"
        )
    for path in (target, manifest.path_of(target)):
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise cache_error(target.parent, exc) from exc
    return False


def install(content: Path, target: Path, sha256: str, file: DataFile) -> None:
    """Rename the verified temp file `content` to `target`, then record it (manifest.py).

    `content` is an `atomic.temp_file`: it has the user's umask, as `target` will.
    """
    os.replace(content, target)
    manifest.write(target, sha256, file)


def cache_error(directory: Path, exc: OSError) -> CacheError:
    what = "free some space or choose" if exc.errno == errno.ENOSPC else "choose"
    return CacheError(
        f"cannot write to cache directory {directory}: {exc.strerror or exc}; "
        f"{what} another cache directory"
    )
