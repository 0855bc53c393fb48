"""One URL -> its bytes in a file: streaming, timeouts, retries with back-off, resume, bounds.

`download(url, dest, max_bytes=...)` fills the existing file `dest` with the body at `url`
(an http(s) URL or a local path) and raises `Failure` if it cannot. It trusts nothing it
receives, and checks nothing about the content either: `fetch.py` verifies the result. The single HTTP try
is `http.try_once`; the policy, the back-off and the byte bounds are in policy.py.

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

- Stalls: a try is abandoned after `policy.read_timeout` seconds without a byte (headers
  then silence, or a connection accepted and never answered), or when the body arrives slower
  than `policy.min_speed` bytes/s over that long. A stall is resumed once at most: the second
  ends the URL, so that a stalling mirror costs at most about 2 x read_timeout (fetch.py then
  skips that mirror for the rest of the run).
- Local copies: only from a regular file (a FIFO would block, /dev/zero never end).

Errors writing `dest` (disk full, ...) are not a Failure of the URL: they propagate as OSError.
"""

import os
import time
from collections.abc import Callable
from pathlib import Path

from mnist_cli.data.policy import (
    CHUNK_SIZE,
    DEFAULT_POLICY,
    Failure,
    FetchPolicy,
    ProgressFactory,
    open_regular,
    retry_delay,
    write_chunks,
)


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
    # imported here: http.py (and socket, requests, random) only when a download goes over
    # HTTP, not on every command's start
    import random

    from mnist_cli.data import http

    jitter = random.Random()
    stalls = 0
    for attempt in range(1, policy.attempts + 1):
        try:
            return http.try_once(url, dest, max_bytes, policy, name, progress)
        except Failure as failure:
            stalls += failure.stalled
            if not failure.retry or attempt == policy.attempts or stalls == 2:
                if attempt > 1:
                    failure.reason += f" (after {attempt} attempts)"
                raise
            sleep(retry_delay(attempt, failure.retry_after, policy, jitter))
    raise AssertionError("unreachable: policy.attempts must be >= 1")


def _copy_local(
    path: str,
    dest: Path,
    max_bytes: int,
    name: str,
    progress: ProgressFactory | None,
) -> None:
    """Copy a file on disk into `dest` (no retries: a local read either works or not)."""
    try:
        source = open_regular(path)  # a FIFO or a device: refused, not read
        size = os.fstat(source.fileno()).st_size
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
            write_chunks(read, out, 0, None, max_bytes, bar)
        finally:
            if bar is not None:
                bar.close()
