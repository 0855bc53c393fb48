"""Mirrors -> a verified, decompressed file in the cache.

`fetch` is the whole story. A cached file whose manifest `<name>.verified.json` still matches
its size and mtime is returned at once, with no hashing and no lock. Otherwise, holding the
lock `<name>.lock` (so that processes sharing the cache download each file once), it looks
again, and then tries each mirror in order: `transport.download` streams the body into a
uniquely named temp file in the cache folder, which is gunzipped (if it starts with the gzip
magic 1f 8b) into another temp file, size-checked and verified against the catalogue checksum,
and only then renamed into place beside its manifest (manifest.py). Correctness does not depend on the lock
(shared filesystems break locks): every process writes its own temp files and installs by an
atomic rename, so a reader sees either no file or a verified one. Temp files are removed
whatever happens, Ctrl-C included.

Every byte count is bounded: the body by the file's known size (plus a margin for gzip), the
decompressed content by the known size itself (no decompression bomb).
"""

import contextlib
import errno
import gzip
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from ..errors import CacheError, DownloadError
from . import manifest
from .catalogue import DataFile
from .mirrors import join
from .transport import (
    DEFAULT_POLICY,
    Failure,
    FetchPolicy,
    ProgressFactory,
    download,
)

try:
    import fcntl
except ImportError:  # not POSIX: no lock, which correctness does not need
    fcntl = None

CHUNK_SIZE = 1 << 16
GZIP_MAGIC = b"\x1f\x8b"
LOCK_SUFFIX = ".lock"
CACHE_FILE_MODE = 0o644  # mkstemp creates 0600; a cache may be shared between users


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


def fetch(
    file: DataFile,
    mirrors: Sequence[str],
    cache_dir: Path,
    *,
    progress: ProgressFactory | None = None,
    on_warning: Callable[[str], None] | None = None,
    policy: FetchPolicy = DEFAULT_POLICY,
) -> Path:
    """Return the path of the verified, decompressed `cache_dir / file.name`, fetching it if needed.

    Each mirror (as `normalize_mirror` returns them) is tried in order, first for `<name>.gz`
    then for `<name>`. Raises DownloadError naming every mirror and why it failed, or CacheError
    if `cache_dir` cannot be created or written (disk full included).
    """
    target = Path(cache_dir) / file.name
    if manifest.is_fresh(file, target):  # no hashing, no lock
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cache_error(target.parent, exc) from exc
    with _locked(target):
        if _cached(file, target, on_warning):  # perhaps another process just fetched it
            return target
        failures = []
        for mirror in mirrors:
            reasons: dict[str, str] = {}  # name tried -> why it failed
            for name in (file.name + ".gz", file.name):
                try:
                    _fetch_one(file, join(mirror, name), target, progress, policy)
                    return target
                except Failure as failure:
                    reasons[name] = failure.reason
                    if failure.unreachable:
                        break  # the other name lives on the same unreachable host
            failures.append(f"{mirror} ({_summary(reasons)})")
    tried = "; ".join(failures) if failures else "no mirrors given"
    raise DownloadError(
        f"could not fetch {file.name} from any mirror: {tried}. "
        "Check --mirror / MNIST_MIRRORS or your network."
    )


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
    temps: list[Path] = []
    try:
        raw = _temp_file(target, ".part", temps)
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
            content = _temp_file(target, ".part", temps)
            limit = file.size if file.size is not None else policy.max_size
            _decompress(raw, content, limit)
        size = content.stat().st_size
        if file.size is not None and size != file.size:
            raise Failure(f"{size} bytes, expected {file.size}")
        sha256 = _verify(file, raw if gzipped else None, content)
        os.chmod(content, CACHE_FILE_MODE)
        os.replace(content, target)
        manifest.write(target, sha256, file)
    except OSError as exc:
        # failures to read the source are Failure, so an OSError here is the cache's fault
        raise _cache_error(target.parent, exc) from exc
    finally:
        for temp in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


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


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """Hold an exclusive flock on `<target>.lock` (created if needed, never removed: removing a
    lock file lets two processes lock different files). Without flock, go on unlocked."""
    path = target.with_name(target.name + LOCK_SUFFIX)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except (
        OSError
    ):  # a read-only cache can still be read; a write will say what is wrong
        yield
        return
    try:
        if fcntl is not None:
            with contextlib.suppress(OSError):  # e.g. a filesystem without locks
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _cached(
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
            raise _cache_error(target.parent, exc) from exc
    return False


def _temp_file(target: Path, suffix: str, temps: list[Path]) -> Path:
    """A new, uniquely named empty file next to `target`, registered in `temps` for cleanup."""
    fd, name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=suffix
    )
    os.close(fd)
    temps.append(Path(name))
    return Path(name)


def _summary(reasons: dict[str, str]) -> str:
    """ "HTTP 404" if every name failed alike, else "a.gz: HTTP 503 / a: HTTP 404"."""
    if len(set(reasons.values())) == 1:
        return next(iter(reasons.values()))
    return " / ".join(f"{name}: {reason}" for name, reason in reasons.items())


def _cache_error(directory: Path, exc: OSError) -> CacheError:
    what = "free some space or choose" if exc.errno == errno.ENOSPC else "choose"
    return CacheError(
        f"cannot write to cache directory {directory}: {exc.strerror or exc}; "
        f"{what} another with --cache-dir or MNIST_CACHE_DIR"
    )
