"""A run directory: claimed before training, the finished run installed into it whole.

Two runs given the same --out must not both train into it, nor one silently replace the
other's run; and an output place that cannot be written must fail before training, not after.
So a run first *claims* its directory (claim_run_dir):

1. --out must not be a symbolic link (with or without --force: a run is written at --out, not
   through it), nor a file, nor under one, and its path must be valid UTF-8.
2. --out (and its parents) is created if missing, opened without following a link, and locked
   (an exclusive, non-blocking flock): a second run fails at once, "in use by another run".
   The lock lives as long as the process, so a run killed by SIGKILL leaves no stale claim.
3. The directory must be empty, or, with --force (and --resume), hold a previous run or what an
   interrupted one left: nothing but a run's files (RUN_FILES, pictures *.png), among them
   weights.npz, metrics.json, checkpoint.npz or a config.toml that mnist-train wrote. Anything else (`--out .`,
   a folder of the user's own files) is refused: --force replaces only a run.
4. What killed runs left beside --out is removed (stale.py: staging directories no live
   process holds), then the staging directory `.<name>.<random>.staging` is created beside
   --out (proving, before training, that the place can be written) and locked too.

Training writes each epoch's checkpoint.npz into --out itself (claimed: the staging directory
is removed a minute after its run dies). The finished run is written into the staging
directory, flushed, and put in --out's place in one step (RunClaim.install,
atomic.replace_dir): exchanged with what --out holds (its checkpoint, a previous run), or
renamed onto it if empty. A SIGKILL at any instant leaves --out as it was or whole. An --out
that existed empty, or the working directory (`--out .`, `--resume .`), stays that directory:
the files are moved in beside the checkpoint, each replacing its namesake, weights.npz last. Leaving the claim removes the staging
directory and, if nothing was installed or checkpointed, the directory the claim created.
"""

import contextlib
import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mnist_cli.atomic import replace_dir, signals_deferred, temp_dir
from mnist_cli.errors import RunDirectoryError, shown
from mnist_cli.rundir.out_checks import check_out_path, create_parents
from mnist_cli.rundir.stale import (
    STAGING,
    STAGING_NEW,
    clean_stale,
    clean_temp_files,
    lock_dir,
)

WEIGHTS = "weights.npz"
METRICS = "metrics.json"
CONFIG = "config.toml"
CHECKPOINT = (
    "checkpoint.npz"  # the last epoch's (rundir/checkpoint.py), written in --out
)
RUN_FILES = (WEIGHTS, METRICS, CONFIG, CHECKPOINT)  # and the pictures, *.png
CONFIG_HEADER = b"# mnist-train configuration"  # how config.to_toml's text begins


@dataclass
class RunClaim:
    """A run directory this process holds: `path` (as given) until the claim is left."""

    path: Path  # --out as given, for messages
    target: Path  # its absolute path, for the renames
    staging: Path  # beside it: the run is written here, then put in `target`'s place
    lock: int  # the open, flock'ed directory `target`
    keep_target: bool  # it existed empty, or is the working directory: kept as it is
    installed: bool = False  # whether install() put the run in place
    checkpointed: bool = False  # --out holds this run's checkpoint: kept with it

    def install(self) -> None:
        """Put the staging directory, holding the finished run, in --out's place."""
        if not _same_file(self.lock, self.target):
            raise RunDirectoryError(
                f"{shown(self.path)} was replaced by another run while this one "
                "trained; this run is not saved",
                self.path,
            )
        with signals_deferred():  # a signal meanwhile comes once `installed` says so
            replace_dir(
                self.staging, self.target, keep_target=self.keep_target, last=WEIGHTS
            )
            self.installed = True


@contextlib.contextmanager
def claim_run_dir(out_dir: Path, force: bool = False) -> Iterator[RunClaim]:
    """Claim `out_dir` for a run (steps 1 to 4 above) for the block, which writes the run into
    `claim.staging` and calls `claim.install()`; RunDirectoryError (one line) if it cannot be
    claimed. Leaving the block releases the claim and removes what the run left unfinished."""
    target = Path(os.path.abspath(out_dir))
    check_out_path(out_dir, target)
    claim: RunClaim | None = None
    with contextlib.ExitStack() as leave:
        with signals_deferred():  # a stop meanwhile finds the release registered
            try:
                create_parents(out_dir, target.parent)
                created, lock = _create_and_lock(out_dir, target)
            except OSError as e:
                raise RunDirectoryError(
                    f"{shown(out_dir)}: cannot create it ({e.strerror})",
                    out_dir,
                    "another",
                ) from None
            leave.callback(lambda: _release(target, lock, created, claim))
        with contextlib.suppress(OSError):  # the claim is ours: any is a dead writer's
            clean_temp_files(target)
        empty = _check_contents(out_dir, target, force)
        with contextlib.suppress(OSError):  # a courtesy: correctness does not need it
            clean_stale(target.parent)
        with _staging(out_dir, target, created) as staging:
            # `--out .`, `--resume .`: a shell's working directory stays that directory
            keep = not created and (empty or os.path.samefile(target, os.getcwd()))
            claim = RunClaim(out_dir, target, staging, lock, keep_target=keep)
            yield claim


def _release(target: Path, lock: int, created: bool, claim: RunClaim | None) -> None:
    """Close the claim's lock, first removing the directory it created if it is still ours,
    empty (not ours to remove otherwise) and no run was installed in it."""
    if created and not (claim and claim.installed) and _same_file(lock, target):
        with contextlib.suppress(OSError):
            os.rmdir(target)
    os.close(lock)


def _create_and_lock(out_dir: Path, target: Path) -> tuple[bool, int]:
    """(whether this call created `target`, the open and locked directory)."""
    for _ in range(10):  # another run may remove or replace it between the steps
        created = False
        with contextlib.suppress(FileExistsError):
            os.mkdir(target)
            created = True
        try:
            lock = lock_dir(target)
        except FileNotFoundError:
            continue  # removed meanwhile (a run that failed): create it again
        if lock is None:
            raise RunDirectoryError(
                f"{out_dir} is in use by another mnist-train run", out_dir, "wait"
            )
        if _same_file(lock, target):
            return created, lock
        os.close(lock)  # replaced meanwhile: lock the new one
    raise RunDirectoryError(f"{out_dir} keeps changing", out_dir, "another")


def _same_file(fd: int, path: Path) -> bool:
    """Whether `path` still names the directory open as `fd`."""
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def _check_contents(out_dir: Path, target: Path, force: bool) -> bool:
    """Whether `target` is empty; RunDirectoryError if it cannot be claimed (step 3)."""
    with os.scandir(target) as entries:
        found = {entry.name: entry.is_file(follow_symlinks=False) for entry in entries}
    if not found:
        return True
    if not force:
        raise RunDirectoryError(f"{out_dir} exists and is not empty", out_dir, "force")
    foreign = sorted(
        name
        for name, is_file in found.items()
        if not (is_file and (name in RUN_FILES or name.endswith(".png")))
    )
    trusted = WEIGHTS in found or METRICS in found or CHECKPOINT in found
    if foreign or not (trusted or _ours(target / CONFIG)):
        what = (
            f"holds {', '.join(map(shown, foreign[:3]))}" if foreign else "has no run"
        )
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise RunDirectoryError(
            f"{out_dir} is not a previous run ({what}{more})", out_dir, "not-a-run"
        )
    return False


def _ours(config: Path) -> bool:
    """Whether `config` is a config.toml mnist-train wrote: what an install interrupted
    between its moves leaves, with perhaps metrics.json (weights.npz comes last)."""
    try:
        with open(config, "rb") as f:
            return f.read(len(CONFIG_HEADER)) == CONFIG_HEADER
    except OSError:
        return False


@contextlib.contextmanager
def _staging(out_dir: Path, target: Path, created_target: bool) -> Iterator[Path]:
    """The staging directory beside `target`, created and locked for the block (stale.py
    leaves it alone while it is locked; its suffix says whether the claim created `target`);
    RunDirectoryError if the place cannot be written (a read-only folder, a full disk)."""
    made = False
    try:
        with temp_dir(target, STAGING_NEW if created_target else STAGING) as staging:
            made = True
            lock = lock_dir(staging)
            if lock is None:
                raise RunDirectoryError(f"{shown(staging)}: in use by another process")
            try:
                yield staging
            finally:
                os.close(lock)
    except OSError as e:
        if made:
            raise
        remedy = "space" if e.errno == errno.ENOSPC else "another"
        raise RunDirectoryError(
            f"{out_dir}: cannot write in {target.parent} ({e.strerror})",
            out_dir,
            remedy,
        ) from None
