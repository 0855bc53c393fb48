"""Mirrors -> a verified, decompressed file in the cache.

`fetch` is the whole story. A cached file whose manifest `<name>.verified.json` still matches
its stats is returned at once, with no hashing and no lock. Otherwise, holding the lock
`<name>.lock` (so that processes sharing the cache download each file once; waited for at
most `policy.read_timeout` seconds), it removes the temp files a killed process left, looks
again, and then tries each mirror in order but those the run's `MirrorLog` has abandoned:
`transport.download` streams the body into a uniquely named temp file in the cache folder,
which is gunzipped (if it starts with the gzip magic 1f 8b) into another temp file,
size-checked and verified against the catalogue checksum, and only then renamed into place
beside its manifest (cache.py, manifest.py). Correctness does not depend on the lock (shared
filesystems break locks): every process writes its own temp files and installs by an atomic
rename, so a reader sees either no file or a verified one.
Temp files are removed whatever happens, Ctrl-C included; each is flocked while it is written.

Every byte count is bounded: the body by the file's known size (plus a margin for gzip), the
decompressed content by the known size itself (no decompression bomb).
"""

import contextlib
import gzip
import os
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from mnist_cli import atomic
from mnist_cli.data import manifest
from mnist_cli.data.cache import cache_error, cached, clean_stale, install, locked, own
from mnist_cli.data.catalogue import DataFile
from mnist_cli.data.mirrors import MirrorLog, join
from mnist_cli.data.policy import DEFAULT_POLICY, Failure, FetchPolicy, ProgressFactory
from mnist_cli.data.transport import download
from mnist_cli.errors import DownloadError

CHUNK_SIZE = 1 << 16
GZIP_MAGIC = b"\x1f\x8b"


def fetch(
    file: DataFile,
    mirrors: Sequence[str],
    cache_dir: Path,
    *,
    progress: ProgressFactory | None = None,
    on_warning: Callable[[str], None] | None = None,
    policy: FetchPolicy = DEFAULT_POLICY,
    log: MirrorLog | None = None,
) -> Path:
    """Return the path of the verified, decompressed `cache_dir / file.name`, fetching it if needed.

    Each mirror (as `normalize_mirror` returns them) is tried in order, first for `<name>.gz`
    then for `<name>`. A mirror whose failure was not about this file (it stalled, failed every
    attempt, or cannot be reached) is abandoned in `log`, which the caller shares between the
    files of one run. Raises DownloadError naming every mirror and why it failed, or CacheError
    if `cache_dir` cannot be created or written (disk full included).
    """
    target = Path(cache_dir) / file.name
    if manifest.is_fresh(file, target):  # no hashing, no lock
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cache_error(target.parent, exc) from exc
    log = MirrorLog() if log is None else log
    with locked(target, policy.read_timeout, on_warning) as held:
        if held:  # no other process works on this file now: temp files left can go
            clean_stale(target)
        if cached(file, target, on_warning):  # perhaps another process just fetched it
            return target
        failures = []
        for mirror in mirrors:
            if mirror in log.abandoned:
                failures.append(f"{mirror} (abandoned: {log.abandoned[mirror]})")
                continue
            reasons: dict[str, str] = {}  # name tried -> why it failed
            for name in (file.name + ".gz", file.name):
                try:
                    _fetch_one(file, join(mirror, name), target, progress, policy)
                    log.used(mirror, bool(failures), on_warning)
                    return target
                except Failure as failure:
                    reasons[name] = failure.reason
                    if failure.unreachable or failure.retry:
                        # retries spent on a fault of the mirror, not of this file
                        log.abandon(mirror, failure.reason, on_warning)
                        break
            failures.append(f"{mirror} ({_summary(reasons)})")
    tried = "; ".join(failures) if failures else "no mirrors given"
    raise DownloadError(f"could not fetch {file.name} from any mirror: {tried}")


def body_bound(file: DataFile, policy: FetchPolicy = DEFAULT_POLICY) -> int:
    """The most bytes a mirror may send for `file`: its known size plus a margin for the
    gzip container (deflate adds at most ~0.03 % to incompressible data), else policy.max_size."""
    if file.size is None:
        return policy.max_size
    return file.size + file.size // 100 + 4096


def _fetch_one(
    file: DataFile,
    url: str,
    target: Path,
    progress: ProgressFactory | None,
    policy: FetchPolicy,
) -> None:
    """Download `url`, decompress, verify, and install as `target`; raise Failure if not good."""
    try:
        with contextlib.ExitStack() as temps:
            raw = _temp_file(temps, target)
            download(
                url,
                raw,
                max_bytes=body_bound(file, policy),
                policy=policy,
                name=file.name,
                progress=progress,
            )
            with open(raw, "rb") as f:
                gzipped = f.read(len(GZIP_MAGIC)) == GZIP_MAGIC
            content = raw
            if gzipped:
                content = _temp_file(temps, target)
                limit = file.size if file.size is not None else policy.max_size
                _decompress(raw, content, limit)
            size = content.stat().st_size
            if file.size is not None and size != file.size:
                raise Failure(f"{size} bytes, expected {file.size}")
            sha256 = _verify(file, raw if gzipped else None, content)
            install(content, target, sha256, file)
    except OSError as exc:
        # failures to read the source are Failure, so an OSError here is the cache's fault
        raise cache_error(target.parent, exc) from exc


def _temp_file(temps: contextlib.ExitStack, target: Path) -> Path:
    """A new temp file beside `target`, flocked (cache.own) and removed when `temps` closes."""
    path = temps.enter_context(atomic.temp_file(target, ".part"))
    fd = own(path)
    if fd is not None:
        temps.callback(os.close, fd)
    return path


def _decompress(src: Path, dst: Path, limit: int) -> None:
    """Gunzip `src` into `dst`, stopping past `limit` bytes; a corrupt or truncated stream, or
    one that inflates beyond the limit, is a Failure of the URL."""
    written = 0
    with gzip.open(src, "rb") as g, open(dst, "wb") as out:
        while True:
            try:
                block = g.read(CHUNK_SIZE)
            except (OSError, EOFError, zlib.error) as exc:
                raise Failure(f"corrupt gzip data ({exc})") from exc
            if not block:
                return
            written += len(block)
            if written > limit:
                raise Failure(f"gzip data inflates beyond the {limit} bytes expected")
            out.write(block)


def _verify(file: DataFile, gz: Path | None, content: Path) -> str:
    """Check the catalogue checksum and return the sha256 of the decompressed content.

    `gz` is the downloaded gzip file, or None if the mirror served the file uncompressed.
    """
    if file.of_gzip and gz is None:
        raise Failure("served uncompressed, but the checksum covers the .gz file")
    sha256 = manifest.hash_file(content, "sha256")
    if file.of_gzip:
        actual = manifest.hash_file(gz, file.algorithm)
    elif file.algorithm == "sha256":
        actual = sha256
    else:
        actual = manifest.hash_file(content, file.algorithm)
    if actual != file.checksum.lower():
        raise Failure(
            f"checksum mismatch: got {actual[:12]}..., expected {file.checksum[:12]}..."
        )
    return sha256


def _summary(reasons: dict[str, str]) -> str:
    """ "HTTP 404" if every name failed alike, else "a.gz: HTTP 503 / a: HTTP 404"."""
    if len(set(reasons.values())) == 1:
        return next(iter(reasons.values()))
    return " / ".join(f"{name}: {reason}" for name, reason in reasons.items())
