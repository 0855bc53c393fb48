"""The cache folder: where it is, who may write a file in it, and which files it trusts.

`default_cache_dir` places it (MNIST_CACHE_DIR, XDG_CACHE_HOME, ~/.cache). Each file
`<name>` has a lock `<name>.lock`, held while it is fetched so that processes sharing the cache
download it once (`locked`), and a verification record `<name>.verified.json` (manifest.py).
`cached` says whether the file there is still the verified copy, and discards it if not;
`install` renames a verified temp file into place and records it. Every OSError of the cache
folder becomes one `CacheError` naming the folder (`cache_error`).
"""

import contextlib
import errno
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from ..errors import CacheError
from . import manifest
from .catalogue import DataFile

try:
    import fcntl
except ImportError:  # not POSIX: no lock, which correctness does not need
    fcntl = None

LOCK_SUFFIX = ".lock"


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
def locked(target: Path) -> Iterator[None]:
    """Hold an exclusive flock on `<target>.lock` (created if needed, never removed: removing a
    lock file lets two processes lock different files). Without flock, go on unlocked."""
    path = target.with_name(target.name + LOCK_SUFFIX)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        # a read-only cache can still be read; a write will say what is wrong
        yield
        return
    try:
        if fcntl is not None:
            with contextlib.suppress(OSError):  # e.g. a filesystem without locks
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


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
        f"{what} another with --cache-dir or MNIST_CACHE_DIR"
    )
