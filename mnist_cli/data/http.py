"""One HTTP GET of a URL into a file, the single try that `transport.download` repeats.

`try_once` asks for the rest of a broken body (`Range: bytes=N-`, appended only if the 206
starts at N), rejects a Content-Length or a body beyond the bounds as soon as it is seen,
follows redirects by hand (each only to http(s)), abandons a body slower than the speed
floor, and turns what requests and urllib3 raise into a `Failure` of a few words that says
whether another try is worth it. A malformed response (a Location that is no URL, a bad
Content-Length, broken chunking, a garbage status line, ...) is a Failure of this URL like
any other, never an exception that would stop the fallback to the next mirror.
"""

import http.client
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from mnist_cli import __version__
from mnist_cli.data.policy import (
    CHUNK_SIZE,
    RETRY_STATUS,
    Failure,
    FetchPolicy,
    ProgressFactory,
    SpeedFloor,
    parse_retry_after,
    write_chunks,
)

MALFORMED = (ValueError, LookupError, http.client.HTTPException)
"""What parsing a hostile response may raise beyond requests' own errors (urljoin's ValueError
for `Location: http://[::1/x`, ...): each is a Failure of the URL. OSError is not among them:
an error writing `dest` is the cache's fault and propagates."""


def try_once(
    url: str,
    dest: Path,
    max_bytes: int,
    policy: FetchPolicy,
    name: str,
    progress: ProgressFactory | None,
) -> None:
    """One GET; resumes after the bytes `dest` already holds if the server allows it."""
    try:
        _try_once(url, dest, max_bytes, policy, name, progress)
    except MALFORMED as exc:
        raise Failure(f"malformed response ({type(exc).__name__}: {exc})") from exc


def _try_once(
    url: str,
    dest: Path,
    max_bytes: int,
    policy: FetchPolicy,
    name: str,
    progress: ProgressFactory | None,
) -> None:
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
            # a complete body (also from a server that ignores Range): restart
            offset = 0
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
            floor = SpeedFloor(policy)

            def read() -> bytes:
                try:
                    chunk = next(chunks, b"")
                except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                    raise _request_failure(exc, policy) from exc
                floor.check(len(chunk))
                return chunk

            return write_chunks(read, out, offset, total, max_bytes, bar)
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
        location = response.headers["Location"]
        try:
            url = urljoin(url, location)
            scheme = urlsplit(url).scheme.lower()
        except ValueError as exc:
            raise Failure(f"redirected to a malformed URL ({exc})") from exc
        if scheme not in ("http", "https"):
            raise Failure(f"redirected to a non-http(s) URL ({scheme}:)")
    raise Failure(f"more than {policy.max_redirects} redirects")


def _range_start(response) -> int | None:
    """The first byte of a 206's `Content-Range: bytes START-END/TOTAL`, or None."""
    value = response.headers.get("Content-Range", "")
    unit, _, spec = value.partition(" ")
    start = spec.partition("-")[0]
    return int(start) if unit == "bytes" and start.isdigit() else None


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
        reason = f"read timed out after {policy.read_timeout:g} s"
        return Failure(reason, retry=True, stalled=True)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return Failure("connection refused", unreachable=True)
    if isinstance(
        exc, requests.exceptions.ChunkedEncodingError | urllib3.exceptions.ProtocolError
    ):
        return Failure("connection broken during download", retry=True)
    if isinstance(exc, requests.ConnectionError | urllib3.exceptions.HTTPError):
        return Failure("connection failed", retry=True)
    if isinstance(exc, requests.exceptions.InvalidURL):
        return Failure("redirected to a malformed URL")
    return Failure(f"malformed response ({type(exc).__name__})")


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
