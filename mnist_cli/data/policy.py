"""How hard to try one URL, and the limits every transfer keeps.

`FetchPolicy` holds the knobs (attempts, back-off, timeouts, redirects, the size bound, the
speed floor); `retry_delay` and `parse_retry_after` say how long to wait before the next try;
`write_chunks` writes a body into a file, each chunk checked against the byte bounds before it
is written; `SpeedFloor` abandons a body that trickles; `open_regular` opens a local file only
if it is a regular file (a FIFO would block, a device never end). A try that fails raises
`Failure`, a few words for the error line and whether to try again.
"""

# annotations stay unevaluated: `random` is imported only to type a parameter, and only
# downloads need it
from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import random

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
    # bytes/s averaged over read_timeout; a slower body is abandoned
    min_speed: int = 1024


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
    reached (so the caller skips its other file names); `stalled`: the mirror went silent or
    slower than the speed floor (resumed once at most); `retry_after`: seconds the server
    asked us to wait.
    """

    def __init__(
        self,
        reason: str,
        *,
        retry: bool = False,
        unreachable: bool = False,
        stalled: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason, self.retry, self.unreachable = reason, retry, unreachable
        self.stalled, self.retry_after = stalled, retry_after


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


def _check_bounds(received: int, total: int | None, max_bytes: int) -> None:
    if received > max_bytes:
        raise Failure(f"body exceeds the {max_bytes} bytes expected")
    if total is not None and received > total:
        raise Failure(f"body longer than its Content-Length ({total} bytes)")


def write_chunks(
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


class SpeedFloor:
    """Abandon a body that arrives slower than `policy.min_speed` bytes/s, averaged over each
    window of `policy.read_timeout` seconds (a mirror that trickles a byte just inside every
    read timeout would otherwise never end). Call `check(n)` with each chunk's size."""

    def __init__(
        self, policy: FetchPolicy, clock: Callable[[], float] = time.monotonic
    ):
        self.window, self.min_speed, self.clock = (
            policy.read_timeout,
            policy.min_speed,
            clock,
        )
        self.start, self.bytes = clock(), 0

    def check(self, n: int) -> None:
        self.bytes += n
        now = self.clock()
        if now - self.start < self.window:
            return
        if self.bytes < self.min_speed * (now - self.start):
            raise Failure(
                f"slower than {self.min_speed} bytes/s over {self.window:g} s",
                retry=True,
                stalled=True,
            )
        self.start, self.bytes = now, 0


def open_regular(path: str | os.PathLike, *, follow: bool = True):
    """`path` opened for binary reading if it is a regular file, else OSError (ELOOP for a
    symlink when not `follow`, EINVAL with "not a regular file" for a FIFO, device, folder).
    O_NONBLOCK: opening a FIFO does not wait for a writer (it has no effect on regular files)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
