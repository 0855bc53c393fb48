"""The verification record beside each cached file, `<name>.verified.json`.

    {"sha256": ..., "size": ..., "mtime_ns": ..., "checksum": "sha256:65a5..."}

the sha256 of the decompressed content, the size and mtime the file had when it was verified,
and what the catalogue pinned at the time (so a catalogue change makes the record stale). A
file whose size and mtime still match its record is trusted without reading it; any other is
re-hashed. Nothing here deletes or downloads: cache.py and fetch.py decide what to do.
"""

import contextlib
import hashlib
import json
from pathlib import Path

from .. import atomic
from .catalogue import DataFile

SUFFIX = ".verified.json"
MISSING = "is missing"
CHANGED = "no longer matches its checksum"
UNRECORDED = "has no verification record"


def path_of(target: Path) -> Path:
    return target.with_name(target.name + SUFFIX)


def is_fresh(file: DataFile, target: Path) -> bool:
    """The cheap check: a record for this checksum, of a file of exactly this size and mtime.
    No hashing, no writing."""
    try:
        stat = target.stat()
    except OSError:
        return False
    record = _read(target)
    return (
        record.get("checksum") == describe(file)
        and record.get("size") == stat.st_size
        and record.get("mtime_ns") == stat.st_mtime_ns
    )


def recheck(file: DataFile, target: Path) -> str | None:
    """None if `target` is a verified copy of `file`, else MISSING, CHANGED or UNRECORDED.

    Past `is_fresh`, the content is re-hashed against the record (or the catalogue, if it pins
    the content's sha256), and the record rewritten if the content still matches.
    """
    if is_fresh(file, target):
        return None
    if not target.exists():
        return MISSING
    record = _read(target)
    trusted = record if record.get("checksum") == describe(file) else {}
    known = {trusted.get("sha256")}
    if file.algorithm == "sha256" and not file.of_gzip:
        known.add(file.checksum.lower())
    known.discard(None)
    if not known:
        return UNRECORDED
    try:
        sha256 = hash_file(target, "sha256")
    except OSError:
        return CHANGED
    if sha256 not in known:
        return CHANGED
    with contextlib.suppress(OSError):  # a read-only cache can still be read
        write(target, sha256, file)
    return None


def write(target: Path, sha256: str, file: DataFile) -> None:
    """Record that `target`, as it is now, has content `sha256` verified against `file`."""
    stat = target.stat()
    record = {
        "sha256": sha256,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "checksum": describe(file),
    }
    text = json.dumps(record, indent=2) + "\n"
    atomic.write_text(path_of(target), text, suffix=".json.part")


def describe(file: DataFile) -> str:
    """What a file is verified against, e.g. "sha256:65a5..." or "md5:... of gzip"."""
    of_gzip = " of gzip" if file.of_gzip else ""
    return f"{file.algorithm}:{file.checksum.lower()}{of_gzip}"


def hash_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _read(target: Path) -> dict:
    try:
        record = json.loads(path_of(target).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}
