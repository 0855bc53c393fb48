"""The verification record beside each cached file, `<name>.verified.json`.

    {"sha256": ..., "size": ..., "mtime_ns": ..., "ctime_ns": ..., "ino": ...,
     "checksum": "sha256:65a5..."}

the sha256 of the decompressed content; the size, mtime, ctime and inode number the file had
when it was verified; and what the catalogue pinned at the time (so a catalogue change makes
the record stale). A file whose four stats still match its record is trusted without reading
it; any other is re-hashed (and the record rewritten if the content is still right: a record
from before ctime and inode were kept is thus re-hashed once). `touch -r` restores an mtime,
but no user can set a ctime, and replacing the file changes its inode. Only a regular file is
trusted: the cached path is examined with lstat and opened without following a symlink, so a
symlink to /dev/zero or a FIFO in its place is reported (NOT_REGULAR), never read. Nothing here
deletes or downloads: cache.py and fetch.py decide what to do.
"""

import contextlib
import json
import os
import stat
from pathlib import Path

from mnist_cli import atomic
from mnist_cli.data.catalogue import DataFile
from mnist_cli.data.policy import open_regular

SUFFIX = ".verified.json"
MISSING = "is missing"
CHANGED = "no longer matches its checksum"
UNRECORDED = "has no verification record"
NOT_REGULAR = "is not a regular file (a symlink, FIFO, device or folder)"
MAX_RECORD = 1 << 16  # bytes; a record is ~250


def path_of(target: Path) -> Path:
    return target.with_name(target.name + SUFFIX)


def is_fresh(file: DataFile, target: Path) -> bool:
    """The cheap check: a record for this checksum, of this very regular file (same size,
    mtime, ctime and inode). No hashing, no writing."""
    try:
        info = target.lstat()
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode):
        return False
    record = _read(target)
    return record.get("checksum") == describe(file) and all(
        record.get(key) == value for key, value in _stats(info).items()
    )


def recheck(file: DataFile, target: Path) -> str | None:
    """None if `target` is a verified copy of `file`, else MISSING, CHANGED or UNRECORDED.

    Past `is_fresh`, the content is re-hashed against the record (or the catalogue, if it pins
    the content's sha256), and the record rewritten if the content still matches.
    """
    if is_fresh(file, target):
        return None
    try:
        info = target.lstat()
    except FileNotFoundError:
        return MISSING
    except OSError:
        return CHANGED
    if not stat.S_ISREG(info.st_mode):
        return NOT_REGULAR
    record = _read(target)
    trusted = record if record.get("checksum") == describe(file) else {}
    known = {trusted.get("sha256")}
    if file.algorithm == "sha256" and not file.of_gzip:
        known.add(file.checksum.lower())
    known.discard(None)
    if not known:
        return UNRECORDED
    try:
        sha256 = hash_file(target, "sha256", follow=False)
    except OSError:
        return CHANGED
    if sha256 not in known:
        return CHANGED
    with contextlib.suppress(OSError):  # a read-only cache can still be read
        write(target, sha256, file)
    return None


def write(target: Path, sha256: str, file: DataFile) -> None:
    """Record that `target`, as it is now, has content `sha256` verified against `file`."""
    record = {"sha256": sha256, **_stats(target.lstat()), "checksum": describe(file)}
    text = json.dumps(record, indent=2) + "\n"
    atomic.write_text(path_of(target), text, suffix=".json.part")


def describe(file: DataFile) -> str:
    """What a file is verified against, e.g. "sha256:65a5..." or "md5:... of gzip"."""
    of_gzip = " of gzip" if file.of_gzip else ""
    return f"{file.algorithm}:{file.checksum.lower()}{of_gzip}"


def hash_file(path: Path, algorithm: str, *, follow: bool = True) -> str:
    """The hex digest of the regular file `path` (OSError for anything else)."""
    import hashlib  # here: a warm cache is checked without hashing (a few ms of start-up)

    digest = hashlib.new(algorithm)
    with open_regular(path, follow=follow) as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _stats(info: os.stat_result) -> dict[str, int]:
    """What the record keeps of a file's stat: what a change of content changes."""
    return {
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "ctime_ns": info.st_ctime_ns,
        "ino": info.st_ino,
    }


def _read(target: Path) -> dict:
    """The record of `target`, {} if absent or unreadable (a FIFO or symlink is not read)."""
    try:
        with open_regular(path_of(target), follow=False) as f:
            record = json.loads(f.read(MAX_RECORD))  # a longer one fails to parse
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}
