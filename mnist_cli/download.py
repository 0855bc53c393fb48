"""Mirrors -> a verified, decompressed file in the cache.

`fetch` is the whole story: a cached file whose manifest still matches is returned at once;
otherwise each mirror is tried in order, the body is streamed into a temp file in the cache
folder, gunzipped (if it starts with the gzip magic 1f 8b) into another temp file, verified
against the catalogue checksum, and only then renamed into place next to a manifest
`<name>.verified.json` recording its sha256, size and mtime. A file is never cached before it
is verified, and temp files are removed whatever happens.

The pieces are separate so that retries, resume and locks can be added around them:
`_download` fetches one URL into an open file, `_decompress` and `_verify` check it,
`_install` moves it into place, and `fetch` walks the mirrors.
"""

import contextlib
import gzip
import hashlib
import json
import os
import socket
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from mnist_cli import __version__
from mnist_cli.datasets import DataFile
from mnist_cli.errors import CacheError, DownloadError

CHUNK_SIZE = 1 << 16
GZIP_MAGIC = b"\x1f\x8b"
MANIFEST_SUFFIX = ".verified.json"


class Bar(Protocol):
    """A progress bar, as tqdm has it: `update` by a number of bytes, `close` once."""

    def update(self, n: int) -> object: ...

    def close(self) -> object: ...


ProgressFactory = Callable[[str, int | None], Bar]
"""Called once per download attempt with the file name and the byte count (None if unknown)."""


class _Failure(Exception):
    """One URL did not yield a verified file; `reason` is a few words for the error line."""

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable  # the host itself could not be reached


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


def parse_mirrors(value: str) -> tuple[str, ...]:
    """Split a comma-separated list (MNIST_MIRRORS) and normalize each mirror.

    Relative directories are resolved against the working directory. Raises ValueError if the
    list is empty or a mirror is not usable.
    """
    mirrors = tuple(normalize_mirror(part) for part in value.split(",") if part.strip())
    if not mirrors:
        raise ValueError(f"expected a comma-separated list of mirrors, got {value!r}")
    return mirrors


def normalize_mirror(mirror: str, base_dir: Path | None = None) -> str:
    """Check a mirror and return it in canonical form.

    http(s)://host/path -> the URL ending in "/"; file:///dir and plain directory paths (relative
    ones resolved against `base_dir`, default the working directory) -> an absolute directory
    path. Raises ValueError for other schemes and for paths that are not existing directories.
    """
    text = mirror.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.netloc:
            raise ValueError(f"mirror {mirror!r} has no host")
        return text if text.endswith("/") else text + "/"
    if scheme == "file":
        directory = Path(url2pathname(unquote(parts.path)))
    elif "://" in text:
        raise ValueError(
            f"mirror {mirror!r}: unsupported scheme {scheme}://; "
            "use an http(s):// or file:// URL or a local directory"
        )
    elif not text:
        raise ValueError(
            "empty mirror; use an http(s):// or file:// URL or a local directory"
        )
    else:
        directory = Path(text)
        if not directory.is_absolute():
            directory = (base_dir if base_dir is not None else Path.cwd()) / directory
    if not directory.is_dir():
        raise ValueError(f"mirror {mirror!r}: {directory} is not an existing directory")
    return str(directory.resolve())


def fetch(
    file: DataFile,
    mirrors: Sequence[str],
    cache_dir: Path,
    *,
    progress: ProgressFactory | None = None,
    on_warning: Callable[[str], None] | None = None,
    timeout: tuple[float, float] = (10.0, 30.0),
) -> Path:
    """Return the path of the verified, decompressed `cache_dir / file.name`, fetching it if needed.

    Each mirror (as `normalize_mirror` returns them) is tried in order, first for `<name>.gz`
    then for `<name>`. Raises DownloadError naming every mirror and why it failed, or CacheError
    if `cache_dir` cannot be created or written.
    """
    target = Path(cache_dir) / file.name
    if _cached(file, target, on_warning):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cache_error(target.parent, exc) from exc
    failures = []
    for mirror in mirrors:
        reasons: dict[str, str] = {}  # name tried -> why it failed
        for name in (file.name + ".gz", file.name):
            try:
                _fetch_one(file, _join(mirror, name), target, progress, timeout)
                return target
            except _Failure as failure:
                reasons[name] = failure.reason
                if failure.unreachable:
                    break  # the other name lives on the same unreachable host
        if len(set(reasons.values())) == 1:
            failures.append(f"{mirror} ({next(iter(reasons.values()))})")
        else:
            failures.append(
                f"{mirror} ({' / '.join(f'{n}: {r}' for n, r in reasons.items())})"
            )
    tried = "; ".join(failures) if failures else "no mirrors given"
    raise DownloadError(
        f"could not fetch {file.name} from any mirror: {tried}. "
        "Check --mirror / MNIST_MIRRORS or your network."
    )


def _fetch_one(
    file: DataFile,
    url: str,
    target: Path,
    progress: ProgressFactory | None,
    timeout: tuple[float, float],
) -> None:
    """Download `url`, decompress, verify, and install as `target`; raise _Failure if not good."""
    temps: list[Path] = []
    try:
        raw = _temp_file(target, ".part", temps)
        with open(raw, "wb") as out:
            _download(url, out, file.name, progress, timeout)
        with open(raw, "rb") as f:
            gzipped = f.read(len(GZIP_MAGIC)) == GZIP_MAGIC
        content = raw
        if gzipped:
            content = _temp_file(target, ".part", temps)
            _decompress(raw, content)
        sha256 = _verify(file, raw if gzipped else None, content)
        _install(content, target, sha256, file, temps)
    except OSError as exc:
        # failures to read the source are _Failure, so an OSError here is the cache's fault
        raise _cache_error(target.parent, exc) from exc
    finally:
        for temp in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def _download(
    url: str,
    out: BinaryIO,
    name: str,
    progress: ProgressFactory | None,
    timeout: tuple[float, float],
) -> None:
    """Copy the body at `url` (http(s) or a local path) into `out`, reporting progress."""
    total, chunks = _open_http(url, timeout) if "://" in url else _open_local(url)
    bar = progress(name, total) if progress is not None else None
    try:
        for chunk in chunks:
            out.write(chunk)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()


def _open_http(
    url: str, timeout: tuple[float, float]
) -> tuple[int | None, Iterator[bytes]]:
    """Start a streamed GET; return the Content-Length and an iterator over the body."""
    import requests  # imported here so that `import mnist_cli.data` stays fast

    headers = {"User-Agent": f"mnist-cli/{__version__}"}
    try:
        response = requests.get(url, stream=True, timeout=timeout, headers=headers)
    except requests.RequestException as exc:
        raise _request_failure(exc, timeout) from exc
    if not 200 <= response.status_code < 300:
        response.close()
        raise _Failure(f"HTTP {response.status_code}")
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None

    def body() -> Iterator[bytes]:
        with response:
            try:
                yield from response.iter_content(CHUNK_SIZE)
            except requests.RequestException as exc:
                raise _request_failure(exc, timeout) from exc

    return total, body()


def _open_local(path: str) -> tuple[int | None, Iterator[bytes]]:
    """Check a file on disk; return its size and an iterator over its bytes."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise _Failure("not found") from None
    except OSError as exc:
        raise _Failure(f"cannot read: {exc.strerror}") from exc

    def body() -> Iterator[bytes]:
        try:
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK_SIZE):
                    yield chunk
        except OSError as exc:  # only reading: writes happen in the caller, not in here
            raise _Failure(f"cannot read: {exc.strerror}") from exc

    return size, body()


def _decompress(src: Path, dst: Path) -> None:
    """Gunzip `src` into `dst`; a corrupt or truncated stream is a _Failure of the URL."""
    with gzip.open(src, "rb") as g, open(dst, "wb") as out:
        while True:
            try:
                block = g.read(CHUNK_SIZE)
            except (OSError, EOFError, zlib.error) as exc:
                raise _Failure(f"corrupt gzip data ({exc})") from exc
            if not block:
                return
            out.write(block)


def _verify(file: DataFile, gz: Path | None, content: Path) -> str:
    """Check the catalogue checksum and return the sha256 of the decompressed content.

    `gz` is the downloaded gzip file, or None if the mirror served the file uncompressed.
    """
    if file.of_gzip and gz is None:
        raise _Failure("served uncompressed, but the checksum covers the .gz file")
    sha256 = _hash_file(content, "sha256")
    if file.of_gzip:
        actual = _hash_file(gz, file.algorithm)
    elif file.algorithm == "sha256":
        actual = sha256
    else:
        actual = _hash_file(content, file.algorithm)
    if actual != file.checksum.lower():
        raise _Failure(
            f"checksum mismatch: got {actual[:12]}..., expected {file.checksum[:12]}..."
        )
    return sha256


def _install(
    content: Path, target: Path, sha256: str, file: DataFile, temps: list[Path]
) -> None:
    """Move the verified file into place, then write its manifest (both by atomic rename)."""
    os.replace(content, target)
    _write_manifest(target, sha256, file, temps)


def _cached(
    file: DataFile, target: Path, on_warning: Callable[[str], None] | None
) -> bool:
    """True if `target` is a verified copy; discard it (with a warning) if it no longer is.

    Cheap path: the manifest matches the file's size and mtime, so no hashing at all. Otherwise
    the content is re-hashed against the manifest (or the catalogue, if it pins the content's
    sha256) and the manifest rewritten if it still matches.
    """
    try:
        stat = target.stat()
    except OSError:  # missing, or its folder is not usable: fetch reports the latter
        return False
    manifest = _read_manifest(target)
    stamp = _describe_checksum(file)
    trusted = manifest if manifest.get("checksum") == stamp else {}
    if (
        trusted.get("size") == stat.st_size
        and trusted.get("mtime_ns") == stat.st_mtime_ns
    ):
        return True
    known = {trusted.get("sha256")}
    if file.algorithm == "sha256" and not file.of_gzip:
        known.add(file.checksum.lower())
    known.discard(None)
    if known:
        try:
            sha256 = _hash_file(target, "sha256")
        except OSError:
            sha256 = None
        if sha256 in known:
            with contextlib.suppress(OSError):  # a read-only cache can still be read
                _write_manifest(target, sha256, file, [])
            return True
    if on_warning is not None:
        problem = (
            "no longer matches its checksum" if known else "has no verification record"
        )
        on_warning(
            f"cached {file.name} {problem} ({target.parent}); discarding it and fetching again"
        )
    for path in (target, _manifest_path(target)):
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise _cache_error(target.parent, exc) from exc
    return False


def _write_manifest(
    target: Path, sha256: str, file: DataFile, temps: list[Path]
) -> None:
    stat = target.stat()
    record = {
        "sha256": sha256,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "checksum": _describe_checksum(file),
    }
    temp = _temp_file(target, ".json.part", temps)
    temp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(temp, _manifest_path(target))


def _read_manifest(target: Path) -> dict:
    try:
        record = json.loads(_manifest_path(target).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _manifest_path(target: Path) -> Path:
    return target.with_name(target.name + MANIFEST_SUFFIX)


def _describe_checksum(file: DataFile) -> str:
    """What the file was verified against, e.g. "sha256:65a5..." (stale if the catalogue changes)."""
    of_gzip = " of gzip" if file.of_gzip else ""
    return f"{file.algorithm}:{file.checksum.lower()}{of_gzip}"


def _temp_file(target: Path, suffix: str, temps: list[Path]) -> Path:
    """A new, uniquely named empty file next to `target`, registered in `temps` for cleanup."""
    fd, name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=suffix
    )
    os.close(fd)
    temps.append(Path(name))
    return Path(name)


def _hash_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _join(mirror: str, name: str) -> str:
    """The URL or path of `name` on a normalized mirror."""
    if mirror.startswith(("http://", "https://")):
        return mirror + ("" if mirror.endswith("/") else "/") + name
    if mirror.startswith("file://"):
        return str(Path(url2pathname(unquote(urlsplit(mirror).path))) / name)
    return str(Path(mirror) / name)


def _request_failure(exc: Exception, timeout: tuple[float, float]) -> _Failure:
    """Summarize a requests exception in a few words (not a repr of urllib3's internals)."""
    import requests

    causes = _causes(exc)
    if isinstance(exc, requests.ConnectTimeout):
        return _Failure(f"connect timed out after {timeout[0]:g} s", unreachable=True)
    if isinstance(exc, requests.ReadTimeout) or any(
        isinstance(c, TimeoutError) for c in causes
    ):
        return _Failure(f"read timed out after {timeout[1]:g} s")
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return _Failure("connection refused", unreachable=True)
    if any(isinstance(c, socket.gaierror) for c in causes):
        return _Failure("host not found", unreachable=True)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return _Failure("connection broken during download")
    if isinstance(exc, requests.ConnectionError):
        return _Failure("connection failed")
    if isinstance(exc, requests.TooManyRedirects):
        return _Failure("too many redirects")
    return _Failure(type(exc).__name__)


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and everything it wraps (args, .reason, __cause__, __context__), breadth first."""
    seen: list[BaseException] = []
    queue: list[object] = [exc]
    while queue:
        item = queue.pop(0)
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        queue += [
            *item.args,
            getattr(item, "reason", None),
            item.__cause__,
            item.__context__,
        ]
    return seen


def _cache_error(directory: Path, exc: OSError) -> CacheError:
    return CacheError(
        f"cannot write to cache directory {directory}: {exc.strerror or exc}; "
        "choose another with --cache-dir or MNIST_CACHE_DIR"
    )
