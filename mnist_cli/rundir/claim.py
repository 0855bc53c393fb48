"""A run directory: claimed before training, the finished run installed into it whole.

Two runs given the same --out must not both train into it, nor one silently replace the
other's run; and an output place that cannot be written must fail before training, not after.
So a run first *claims* its directory (claim_run_dir):

1. --out must not be a symbolic link (with or without --force: a run is written at --out, not
   through it), nor a file, nor under one, and its path must be valid UTF-8.
2. --out (and its parents) is created if missing, opened without following a link, and locked
   (an exclusive, non-blocking flock): a second run fails at once, "in use by another run".
   The lock lives as long as the process, so a run killed by SIGKILL leaves no stale claim.
3. The directory must be empty, or, with --force, hold a previous run: weights.npz or
   metrics.json, and nothing but a run's files (RUN_FILES, pictures *.png). Anything else
   (`--out .`, a folder of the user's own files) is refused: --force replaces only a run.
4. The staging directory `.<name>.<random>` is created beside --out (proving, before training,
   that the place can be written) and locked too.

After training, the run is written into the staging directory, flushed, and renamed onto
--out (RunClaim.install, atomic.replace_dir): onto the empty claimed directory in one rename;
over a previous run, the old run is moved aside and put back if anything fails, signals
deferred between the renames. Leaving the claim removes the staging directory and, if the run
was not installed, the empty directory the claim created: a run that fails or is interrupted
leaves nothing behind, and a weights.npz only ever appears complete.
"""

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mnist_cli.atomic import replace_dir, temp_dir
from mnist_cli.errors import RunDirectoryError, shown

WEIGHTS = "weights.npz"
METRICS = "metrics.json"
CONFIG = "config.toml"
RUN_FILES = (WEIGHTS, METRICS, CONFIG)  # and the pictures, *.png


@dataclass(frozen=True)
class RunClaim:
    """A run directory this process holds: `path` (as given) until the claim is left."""

    path: Path  # --out as given, for messages
    target: Path  # its absolute path, for the renames
    staging: Path  # beside it: the run is written here, then renamed onto `target`
    lock: int  # the open, flock'ed directory `target`

    def install(self) -> None:
        """Rename the staging directory, holding the finished run, onto --out."""
        if not _same_file(self.lock, self.target):
            raise RunDirectoryError(
                f"--out {shown(self.path)} was replaced by another run while this one "
                "trained; this run is not saved"
            )
        replace_dir(self.staging, self.target)


def is_utf8(path: Path | str) -> bool:
    """Whether `path` is valid UTF-8 (a command-line path that is not holds surrogates)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@contextlib.contextmanager
def claim_run_dir(out_dir: Path, force: bool = False) -> Iterator[RunClaim]:
    """Claim `out_dir` for a run (steps 1 to 4 above) for the block, which writes the run into
    `claim.staging` and calls `claim.install()`; RunDirectoryError (one line) if it cannot be
    claimed. Leaving the block releases the claim and removes what the run left unfinished."""
    target = Path(os.path.abspath(out_dir))
    _check_path(out_dir, target)
    try:
        _create_parents(out_dir, target.parent)
        created, lock = _create_and_lock(out_dir, target)
    except OSError as e:
        raise RunDirectoryError(
            f"--out {shown(out_dir)}: cannot create it ({e.strerror}); "
            "choose another --out"
        ) from None
    installed = False
    try:
        _check_contents(out_dir, target, force)
        with _staging(out_dir, target) as (staging, _):
            try:
                yield RunClaim(out_dir, target, staging, lock)
            finally:
                installed = not os.path.lexists(staging)
    finally:
        if created and not installed and _same_file(lock, target):
            with contextlib.suppress(OSError):  # not empty: not ours to remove
                os.rmdir(target)
        os.close(lock)


def _check_path(out_dir: Path, target: Path) -> None:
    if not is_utf8(out_dir):
        raise RunDirectoryError(
            f"--out {shown(out_dir)} is not valid UTF-8; choose a name that is"
        )
    if target.is_symlink():
        raise RunDirectoryError(
            f"--out {out_dir} is a symbolic link (to {os.readlink(target)}); "
            "give a directory that is not a link, such as the link's target"
        )
    if target == target.parent:
        raise RunDirectoryError(f"--out {out_dir} cannot be a run directory")
    if target.exists() and not target.is_dir():
        raise RunDirectoryError(
            f"--out {out_dir} is an existing file; give a directory"
        )


def _create_parents(out_dir: Path, parent: Path) -> None:
    for ancestor in (parent, *parent.parents):
        if ancestor.exists() or ancestor.is_symlink():
            if not ancestor.is_dir():
                raise RunDirectoryError(
                    f"--out {out_dir}: {ancestor} is a file, not a directory; "
                    "choose another --out"
                )
            break
    parent.mkdir(parents=True, exist_ok=True)


def _create_and_lock(out_dir: Path, target: Path) -> tuple[bool, int]:
    """(whether this call created `target`, the open and locked directory)."""
    for _ in range(10):  # another run may remove or replace it between the steps
        created = False
        with contextlib.suppress(FileExistsError):
            os.mkdir(target)
            created = True
        try:
            lock = _lock(target)
        except FileNotFoundError:
            continue  # removed meanwhile (a run that failed): create it again
        if lock is None:
            raise RunDirectoryError(
                f"--out {out_dir} is in use by another mnist-train run; "
                "wait for it to end or choose another --out"
            )
        if _same_file(lock, target):
            return created, lock
        os.close(lock)  # replaced meanwhile: lock the new one
    raise RunDirectoryError(f"--out {out_dir} keeps changing; choose another --out")


def _lock(directory: Path) -> int | None:
    """`directory` opened (a link is not followed) and flock'ed; None if another holds it."""
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


def _same_file(fd: int, path: Path) -> bool:
    """Whether `path` still names the directory open as `fd`."""
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def _check_contents(out_dir: Path, target: Path, force: bool) -> None:
    with os.scandir(target) as entries:
        found = {entry.name: entry.is_file(follow_symlinks=False) for entry in entries}
    if not found:
        return
    if not force:
        raise RunDirectoryError(
            f"--out {out_dir} exists and is not empty; "
            "use --force to replace it or choose another --out"
        )
    foreign = sorted(
        name
        for name, is_file in found.items()
        if not (is_file and (name in RUN_FILES or name.endswith(".png")))
    )
    if foreign or not (WEIGHTS in found or METRICS in found):
        what = (
            f"holds {', '.join(map(shown, foreign[:3]))}" if foreign else "has no run"
        )
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise RunDirectoryError(
            f"--out {out_dir} is not a previous run ({what}{more}); --force replaces only "
            f"a run directory ({', '.join(RUN_FILES)}, pictures): choose another --out"
        )


@contextlib.contextmanager
def _staging(out_dir: Path, target: Path) -> Iterator[tuple[Path, int]]:
    """The staging directory beside `target`, created and locked; RunDirectoryError if the
    place cannot be written (a read-only folder, a full disk)."""
    created = False
    try:
        with temp_dir(target) as staging:
            created = True
            lock = _lock(staging)
            if lock is None:
                raise RunDirectoryError(f"{shown(staging)}: in use by another process")
            try:
                yield staging, lock
            finally:
                os.close(lock)
    except OSError as e:
        if created:
            raise
        advice = (
            "free some space" if e.errno == errno.ENOSPC else "choose another --out"
        )
        raise RunDirectoryError(
            f"--out {out_dir}: cannot write in {target.parent} ({e.strerror}); {advice}"
        ) from None
