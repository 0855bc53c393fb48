"""What killed runs leave beside their run directories, found and removed.

A run builds itself in a staging directory beside --out (claim.py), `.<name>.<random>.staging`,
or `.staging-new` when the claim created --out itself, and holds a flock on it for as long as
the process lives. A run replacing another where the filesystem cannot exchange two
directories moves the old one aside for an instant, `.<name>.<random>.old` (atomic.py), and
that directory is the claimed --out, locked too. A process killed by SIGKILL (or a power cut)
leaves them, unlocked: `clean_stale` removes them, puts back an old run whose replacement never
came (--out missing), and removes an empty --out that a dead claim created; `clean_temp_files`
removes the temporary files a killed writer left inside a run directory.

A directory counts as left only if no process holds its flock and it is unchanged for
STALE_AFTER seconds: a live run locks its staging directory the instant after creating it, and
the delay covers that instant. Nothing else is touched: only directories (not links) with
those names, in the one folder given.
"""

import contextlib
import fcntl
import os
import re
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

STAGING = ".staging"  # a run being built, for an --out that existed before the claim
STAGING_NEW = ".staging-new"  # ... for an --out that the claim created
OLD = ".old"  # a previous run moved aside (atomic.OLD_SUFFIX)
# seconds without a change before an unlocked directory counts as left
STALE_AFTER = 60.0
LEFT = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}(?P<kind>\.staging|\.staging-new|\.old)")
TEMP = re.compile(r"\..+\.[0-9a-f]{8}\.tmp")  # atomic.temp_file's names


def clean_stale(folder: Path, now: float | None = None) -> list[Path]:
    """Remove what dead runs left in `folder` (see above); the paths removed or put back.
    Best effort: an entry that cannot be examined or removed is left as it is."""
    now = time.time() if now is None else now
    done = []
    # old runs first: one is put back only where its replacement never took its place
    entries = sorted(os.scandir(folder), key=lambda e: not e.name.endswith(OLD))
    for entry in entries:
        match = LEFT.fullmatch(entry.name)
        if match is None:
            continue
        path, target = Path(entry.path), folder / match["name"]
        with contextlib.suppress(OSError), _left(path, now) as left:
            if not left:
                continue
            if match["kind"] == OLD and not os.path.lexists(target):
                os.rename(path, target)  # the run it was to be replaced by never came
            else:
                shutil.rmtree(path)
                if match["kind"] == STAGING_NEW:
                    _remove_if_empty_and_free(target)
            done.append(path)
    return done


def lock_dir(directory: Path) -> int | None:
    """`directory` opened (a link is not followed) and flock'ed, for as long as the returned
    descriptor is open (the process, at most): None if another process holds it."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(directory, flags)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def clean_temp_files(run_dir: Path) -> list[Path]:
    """Remove the temporary files `.<name>.<random>.tmp` a killed writer left in `run_dir` (a
    picture drawn after the run was installed). Call with `run_dir` claimed: only the claim's
    holder writes in it, so every one is a dead process's. Returns the paths removed."""
    removed = []
    for entry in os.scandir(run_dir):
        if TEMP.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def _left(path: Path, now: float) -> Iterator[bool]:
    """Whether `path` is a directory a dead process left, holding its flock meanwhile."""
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or now - info.st_mtime < STALE_AFTER:
        yield False
        return
    fd = lock_dir(path)
    try:
        yield fd is not None  # None: a live run holds it
    finally:
        if fd is not None:
            os.close(fd)


def _remove_if_empty_and_free(directory: Path) -> None:
    """Remove the empty `directory` a dead claim created, unless a run has claimed it since."""
    with contextlib.suppress(OSError), _left(directory, float("inf")) as free:
        if free:
            os.rmdir(directory)  # fails, as it should, if not empty
