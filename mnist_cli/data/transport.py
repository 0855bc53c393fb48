"""One URL -> its bytes in a file: streaming, timeouts, retries with back-off, resume, bounds.

`download(url, dest, max_bytes=...)` fills the existing file `dest` with the body at `url`
(an http(s) URL or a local path) and raises `Failure` if it cannot. It trusts nothing it
receives, and checks nothing about the content either: `download.py` verifies the result.

- Retries: a connection that breaks or stalls (reset, read timeout, short body), 408, 429 and
  5xx are retried up to `policy.attempts` times, waiting base_delay * 2**(k-1) (times a random
  jitter in [0.5, 1]) before retry k, or what the server's `Retry-After` asks, never more than
  `policy.max_delay`. Final, so that the caller goes straight to the next mirror: 403, 404 and
  other 4xx, and a host that cannot be reached at all (name not found, connection refused,
  connect timeout): retrying those only delays the fallback, e.g. to the bundled offline copy.
- Resume: when a transfer breaks after N bytes, the retry asks for `Range: bytes=N-`. A 206
  whose Content-Range starts at N is appended; a 200 (a server that ignores Range) restarts
  from zero. Either way the caller verifies the whole file.
- Bounds: a Content-Length or a body larger than `max_bytes`, or a body longer than its own
  Content-Length, is rejected as soon as it is seen. Redirects are followed by hand, at most
  `policy.max_redirects` of them, and only to http(s) URLs.

A stalled mirror is abandoned after `policy.read_timeout` seconds without a byte. Errors
writing `dest` (disk full, ...) are not a Failure of the URL: they propagate as OSError.
"""

import os
import random
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from .. import __version__

CHUNK_SIZE = 1 << 16
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class FetchPolicy:
    """How hard to try one URL. The defaults suit real mirrors; tests pass tiny values."""

    attempts: int = 4  # tries per URL, the first included
    base_delay: float = 0.5  # seconds before the first retry; doubles each time
    max_delay: float = 30.0  # cap on any wait, a server's Retry-After included
    connect_timeout: float = 10.0  # seconds to open a connection
    read_timeout: float = 30.0  # seconds of silence before a mirror is abandoned
    max_redirects: int = 5  # hops, each only to an http(s) URL
    max_size: int = 1 << 30  # bytes; the bound for files whose size the catalogue omits


DEFAULT_POLICY = FetchPolicy()


class Bar(Protocol):
    """A progress bar, as tqdm has it: `update` by a number of bytes, `close` once."""

    def update(self, n: int) -> object: ...

    def close(self) -> object: ...


ProgressFactory = Callable[[str, int | None], Bar]
"""Called once per download attempt with the file name and the byte count (None if unknown)."""


class Failure(Exception):
    """One URL did not yield its bytes; `reason` is a few words for the error line.

    `retry`: worth trying the same URL again; `unreachable`: the host itself could not be
    reached (so the caller skips its other file names); `retry_after`: seconds the server
    asked us to wait.
    """

    def __init__(
        self,
        reason: str,
        *,
        retry: bool = False,
        unreachable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason, self.retry, self.unreachable = reason, retry, unreachable
        self.retry_after = retry_after


def download(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    policy: FetchPolicy = DEFAULT_POLICY,
    name: str = "",
    progress: ProgressFactory | None = None,
    sleep: Callable[[float], object] = time.sleep,
) -> None:
    """Fill the existing file `dest` with the body at `url`, at most `max_bytes` long.

    Raises Failure (after the retries, for http) if the URL does not yield a complete body.
    """
    if "://" not in url:
        return _copy_local(url, dest, max_bytes, name, progress)
    jitter = random.Random()
    for attempt in range(1, policy.attempts + 1):
        try:
            return _attempt(url, dest, max_bytes, policy, name, progress)
        except Failure as failure:
            if not failure.retry or attempt == policy.attempts:
                if attempt > 1:
                    failure.reason += f" (after {attempt} attempts)"
                raise
            sleep(retry_delay(attempt, failure.retry_after, policy, jitter))
    raise AssertionError("unreachable: policy.attempts must be >= 1")


def retry_delay(
    attempt: int,
    retry_after: float | None,
    policy: FetchPolicy,
    jitter: random.Random,
) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): the server's Retry-After if it
    gave one, else exponential back-off with jitter; never more than `policy.max_delay`."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.max_delay)
    backoff = policy.base_delay * 2 ** (attempt - 1)
    return min(backoff, policy.max_delay) * jitter.uniform(0.5, 1.0)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header (delay-seconds or an HTTP date) in seconds; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        import email.utils  # only for a Retry-After given as a date

        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _attempt(
    url: str,
    dest: Path,
    max_bytes: int,
    policy: FetchPolicy,
    name: str,
    progress: ProgressFactory | None,
) -> None:
    """One GET; resumes after the bytes `dest` already holds if the server allows it."""
    have = dest.stat().st_size  # bytes kept from a broken earlier attempt
    headers = {"User-Agent": f"mnist-cli/{__version__}", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    response = _get(url, headers, policy)
    with response:
        status = response.status_code
        length = response.headers.get("Content-Length", "")
        length = int(length) if length.isdigit() else None
        if status == 206 and have and _range_start(response) == have:
            offset = have  # the server resumes: append
        elif status == 200:
            offset = (
                0  # a complete body (also from a server that ignores Range): restart
            )
        elif status == 416 and have:
            os.truncate(dest, 0)
            raise Failure("HTTP 416 for a resumed download", retry=True)
        else:
            raise Failure(
                f"HTTP {status}",
                retry=status in RETRY_STATUS,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        total = None if length is None else offset + length
        if total is not None and total > max_bytes:
            raise Failure(
                f"{total} bytes announced, more than the {max_bytes} expected"
            )
        received = _write_body(
            response, dest, offset, total, max_bytes, policy, name, progress
        )
    if total is not None and received < total:
        raise Failure(
            f"connection closed after {received} of {total} bytes", retry=True
        )


def _write_body(
    response,
    dest: Path,
    offset: int,
    total: int | None,
    max_bytes: int,
    policy: FetchPolicy,
    name: str,
    progress: ProgressFactory | None,
) -> int:
    """Write the body into `dest` from byte `offset` on; return the byte count of `dest`."""
    import requests
    import urllib3

    bar = progress(name, total) if progress is not None else None
    try:
        with open(dest, "r+b") as out:
            out.truncate(offset)
            out.seek(offset)
            if bar is not None and offset:
                bar.update(offset)
            chunks = _arriving(response)

            def read() -> bytes:
                try:
                    return next(chunks, b"")
                except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                    raise _request_failure(exc, policy) from exc

            return _write_chunks(read, out, offset, total, max_bytes, bar)
    finally:
        if bar is not None:
            bar.close()


def _arriving(response) -> Iterator[bytes]:
    """The body as it arrives: `read1` returns whatever the socket has (up to CHUNK_SIZE), so
    the bytes received before a break are on disk for the resume. (iter_content would wait
    for whole chunks and drop a partial one.) urllib3 1.x has no read1: iter_content then."""
    read1 = getattr(response.raw, "read1", None)
    if read1 is None:
        yield from response.iter_content(CHUNK_SIZE)
        return
    while chunk := read1(CHUNK_SIZE):
        yield chunk


def _check_bounds(received: int, total: int | None, max_bytes: int) -> None:
    if received > max_bytes:
        raise Failure(f"body exceeds the {max_bytes} bytes expected")
    if total is not None and received > total:
        raise Failure(f"body longer than its Content-Length ({total} bytes)")


def _get(url: str, headers: dict[str, str], policy: FetchPolicy):
    """A streamed GET, following redirects by hand so that each hop can be checked."""
    import requests  # imported here so that `import mnist_cli.data` stays fast

    for _ in range(policy.max_redirects + 1):
        try:
            response = requests.get(
                url,
                headers=headers,
                stream=True,
                allow_redirects=False,
                timeout=(policy.connect_timeout, policy.read_timeout),
            )
        except requests.RequestException as exc:
            raise _request_failure(exc, policy) from exc
        if not response.is_redirect:
            return response
        response.close()
        url = urljoin(url, response.headers["Location"])
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise Failure(f"redirected to a non-http(s) URL ({scheme}:)")
    raise Failure(f"more than {policy.max_redirects} redirects")


def _range_start(response) -> int | None:
    """The first byte of a 206's `Content-Range: bytes START-END/TOTAL`, or None."""
    value = response.headers.get("Content-Range", "")
    unit, _, spec = value.partition(" ")
    start = spec.partition("-")[0]
    return int(start) if unit == "bytes" and start.isdigit() else None


def _copy_local(
    path: str,
    dest: Path,
    max_bytes: int,
    name: str,
    progress: ProgressFactory | None,
) -> None:
    """Copy a file on disk into `dest` (no retries: a local read either works or not)."""
    try:
        size = os.stat(path).st_size
        source = open(path, "rb")  # noqa: SIM115 (closed below, after the size checks)
    except FileNotFoundError:
        raise Failure("not found") from None
    except OSError as exc:
        raise Failure(f"cannot read: {exc.strerror}") from exc
    bar = progress(name, size) if progress is not None else None

    def read() -> bytes:
        try:
            return source.read(CHUNK_SIZE)
        except OSError as exc:  # reading the source; writes raise OSError freely
            raise Failure(f"cannot read: {exc.strerror}") from exc

    with source, open(dest, "wb") as out:
        try:
            _write_chunks(read, out, 0, None, max_bytes, bar)
        finally:
            if bar is not None:
                bar.close()


def _write_chunks(
    read: Callable[[], bytes],
    out,
    received: int,
    total: int | None,
    max_bytes: int,
    bar: Bar | None,
) -> int:
    """Append what `read` returns to `out` until it returns b"", each chunk checked against
    the bounds before it is written; return the byte count, `received` included."""
    while chunk := read():
        received += len(chunk)
        _check_bounds(received, total, max_bytes)
        out.write(chunk)
        if bar is not None:
            bar.update(len(chunk))
    return received


def _request_failure(exc: Exception, policy: FetchPolicy) -> Failure:
    """Summarize a requests exception in a few words (not a repr of urllib3's internals)."""
    import requests
    import urllib3

    causes = _causes(exc)
    if any(isinstance(c, socket.gaierror) for c in causes):
        return Failure("host not found", unreachable=True)
    if isinstance(exc, requests.ConnectTimeout):
        reason = f"connect timed out after {policy.connect_timeout:g} s"
        return Failure(reason, unreachable=True)
    timeouts = (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError)
    if any(isinstance(c, timeouts) for c in causes):
        return Failure(f"read timed out after {policy.read_timeout:g} s", retry=True)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return Failure("connection refused", unreachable=True)
    if isinstance(
        exc, requests.exceptions.ChunkedEncodingError | urllib3.exceptions.ProtocolError
    ):
        return Failure("connection broken during download", retry=True)
    if isinstance(exc, requests.ConnectionError | urllib3.exceptions.HTTPError):
        return Failure("connection failed", retry=True)
    return Failure(type(exc).__name__)


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
