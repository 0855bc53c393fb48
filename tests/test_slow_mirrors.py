"""Nothing hangs, slow mirrors cost seconds: stalls, 5xx with Retry-After, trickles, a held lock
and malformed responses, against real servers on 127.0.0.1 with tiny timeouts."""

import fcntl
import gzip
import hashlib
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import write_idx

from mnist_cli.data import load_dataset
from mnist_cli.data.catalogue import DataFile, Dataset
from mnist_cli.data.fetch import fetch
from mnist_cli.data.policy import Failure, FetchPolicy, SpeedFloor
from mnist_cli.data.transport import download

TIMEOUT = 0.5  # the read timeout of these tests: --timeout
POLICY = FetchPolicy(
    attempts=4,
    base_delay=0.01,
    max_delay=0.05,
    connect_timeout=1.0,
    read_timeout=TIMEOUT,
)
SLACK = 2.0  # seconds for everything but the waits (a loaded machine included)


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> tuple[Dataset, Path]:
    """A dataset of four small distinct files, and a folder holding their .gz (a mirror)."""
    mirror = tmp_path / "good"
    mirror.mkdir()
    files = []
    for name, array in (
        ("t-train-images", np.full((30, 28, 28), 1, np.uint8)),
        ("t-train-labels", np.arange(30, dtype=np.uint8) % 10),
        ("t-test-images", np.full((20, 28, 28), 2, np.uint8)),
        ("t-test-labels", np.arange(20, dtype=np.uint8) % 7),
    ):
        write_idx(tmp_path / name, array)
        content = (tmp_path / name).read_bytes()
        (mirror / f"{name}.gz").write_bytes(gzip.compress(content))
        files.append(
            DataFile(name, hashlib.sha256(content).hexdigest(), size=len(content))
        )
    return Dataset("tiny", *files, mirrors=()), mirror


def headers_then_silence(released: threading.Event):
    def answer(handler):
        handler.send_response(200)  # no Content-Length: the body ends when it closes
        handler.end_headers()
        handler.wfile.write(b"\x1f\x8b" + bytes(1022))  # 1 KiB, then nothing
        handler.wfile.flush()
        released.wait(10)

    return answer


class SilentListener:
    """A port that accepts connections (as a proxy would) and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.connections.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.sock.close()


@pytest.mark.parametrize("stall", ["headers-then-silence", "accepts-never-answers"])
def test_a_stalling_first_mirror_costs_two_timeouts_for_the_whole_run(
    tiny_dataset, http_server, tmp_path, stall
):
    dataset, good_dir = tiny_dataset
    released = threading.Event()
    if stall == "headers-then-silence":
        silent = headers_then_silence(released)
        names = [f"/{f.name}{ext}" for f in dataset.files for ext in (".gz", "")]
        server = http_server(routes=dict.fromkeys(names, silent))
        url, requests = server.url, lambda: len(server.paths)
    else:
        listener = SilentListener()
        url, requests = listener.url, lambda: len(listener.connections)
    good = http_server(good_dir)
    warnings: list[str] = []

    start = time.monotonic()
    try:
        train, test = load_dataset(
            dataset,
            tmp_path / "cache",
            [url, good.url],
            on_warning=warnings.append,
            policy=POLICY,
        )
    finally:
        elapsed = time.monotonic() - start
        released.set()
        if stall == "accepts-never-answers":
            listener.close()

    assert (len(train), len(test)) == (30, 20), "expected the good mirror's files"
    assert elapsed <= 2 * TIMEOUT + SLACK, (
        f"expected at most 2 x {TIMEOUT} s + {SLACK} s for four files, took {elapsed:.2f} s"
    )
    assert requests() == 2, (
        f"expected the stalled mirror asked twice in the whole run (one resume), "
        f"got {requests()}"
    )
    expected = (
        f"mirror {url} abandoned for the rest of this run: "
        f"read timed out after {TIMEOUT:g} s (after 2 attempts)"
    )
    assert expected in warnings, f"expected the warning {expected!r}, got {warnings}"


def test_a_mirror_failing_every_attempt_with_retry_after_is_asked_once_per_run(
    tiny_dataset, http_server, tmp_path
):
    dataset, good_dir = tiny_dataset

    def busy(handler):
        handler.send_response(503)
        handler.send_header("Retry-After", "30")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    busy_server = http_server(
        routes={f"/{f.name}{ext}": busy for f in dataset.files for ext in (".gz", "")}
    )
    good = http_server(good_dir)
    warnings: list[str] = []

    load_dataset(
        dataset,
        tmp_path / "cache",
        [busy_server.url, good.url],
        on_warning=warnings.append,
        policy=POLICY,
    )

    assert len(busy_server.paths) == POLICY.attempts, (
        f"expected {POLICY.attempts} requests for the whole run (one file's attempts), "
        f"got {len(busy_server.paths)}: {busy_server.paths}"
    )
    expected = (
        f"mirror {busy_server.url} abandoned for the rest of this run: "
        f"HTTP 503 (after {POLICY.attempts} attempts)"
    )
    assert warnings == [expected], f"expected [{expected!r}], got {warnings}"


def test_a_local_copy_used_after_the_mirrors_failed_is_said_once(
    tiny_dataset, http_server, tmp_path
):
    dataset, good_dir = tiny_dataset
    broken = http_server(
        routes={
            f"/{f.name}{ext}": (502, b"") for f in dataset.files for ext in (".gz", "")
        }
    )
    warnings: list[str] = []

    load_dataset(
        dataset,
        tmp_path / "cache",
        [broken.url, str(good_dir)],
        on_warning=warnings.append,
        policy=POLICY,
    )

    local = [w for w in warnings if "local copy" in w]
    expected = [f"the mirrors before it failed: using the local copy {good_dir}"]
    assert local == expected, f"expected {expected} once for four files, got {warnings}"


def trickle(released: threading.Event, seconds: float = 4.0):
    """200 announcing 10 KiB, then one byte every 20 ms (50 bytes/s) for `seconds`."""

    def answer(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "10240")
        handler.end_headers()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not released.is_set():
            handler.wfile.write(b"\x00")
            handler.wfile.flush()
            time.sleep(0.02)
        handler.close_connection = True

    return answer


def test_a_trickling_mirror_is_abandoned_below_the_speed_floor(http_server, tmp_path):
    released = threading.Event()
    server = http_server(routes={"/f.gz": trickle(released)})
    dest = tmp_path / "dest.part"
    dest.touch()

    start = time.monotonic()
    try:
        with pytest.raises(Failure) as info:
            download(server.url + "f.gz", dest, max_bytes=10240, policy=POLICY)
    finally:
        elapsed = time.monotonic() - start
        released.set()

    expected = f"slower than 1024 bytes/s over {TIMEOUT:g} s (after 2 attempts)"
    assert info.value.reason == expected, (
        f"expected {expected!r}, got {info.value.reason!r}"
    )
    assert info.value.stalled, "expected the trickle counted as a stall"
    assert elapsed <= 2 * TIMEOUT + SLACK, (
        f"expected at most 2 x {TIMEOUT} s + {SLACK} s, took {elapsed:.2f} s"
    )
    assert len(server.paths) == 2, f"expected one resume, got {server.paths}"


@pytest.mark.parametrize(
    ("rate", "too_slow"), [(500, True), (1000, True), (1100, False), (50_000, False)]
)
def test_speed_floor_averages_over_each_window(rate, too_slow):
    now = [0.0]
    floor = SpeedFloor(
        FetchPolicy(read_timeout=2.0, min_speed=1024), clock=lambda: now[0]
    )

    def feed(seconds: float) -> None:  # `rate` bytes/s in chunks of 0.1 s
        for _ in range(int(seconds * 10)):
            now[0] += 0.1
            floor.check(int(rate * 0.1))

    feed(1.9)  # less than one window: never judged, however slow
    if too_slow:
        with pytest.raises(Failure):
            feed(10)
    else:
        feed(10)


def test_a_held_download_lock_is_waited_for_at_most_the_timeout(tiny_dataset, tmp_path):
    dataset, good_dir = tiny_dataset
    file = dataset.test_labels
    cache = tmp_path / "cache"
    cache.mkdir()
    lock = cache / f"{file.name}.lock"
    warnings: list[str] = []
    result: list[Path] = []

    # another process downloading (flock is per open file, so this fd counts as one)
    holder = open(lock, "w")  # noqa: SIM115 (closed in the finally below)
    fcntl.flock(holder, fcntl.LOCK_EX)
    start = time.monotonic()
    try:
        thread = threading.Thread(
            target=lambda: result.append(
                fetch(
                    file,
                    [str(good_dir)],
                    cache,
                    on_warning=warnings.append,
                    policy=POLICY,
                )
            ),
            daemon=True,
        )
        thread.start()
        thread.join(TIMEOUT + SLACK + 3)
        elapsed = time.monotonic() - start
    finally:
        holder.close()  # releases the lock: a waiting fetch goes on
    thread.join(10)

    assert elapsed <= TIMEOUT + SLACK, (
        f"expected the wait bounded by {TIMEOUT} s (+ {SLACK} s), took {elapsed:.2f} s"
    )
    assert result and result[0].read_bytes() == gzip.decompress(
        (good_dir / f"{file.name}.gz").read_bytes()
    ), "expected the file fetched without the lock"
    expected = (
        f"another process has held {lock} for {TIMEOUT:g} s; "
        f"fetching {file.name} without waiting for it"
    )
    assert warnings == [expected], f"expected [{expected!r}], got {warnings}"


def raw_server(answer: bytes) -> tuple[str, list[bytes], socket.socket]:
    """A server that answers any request with the raw bytes `answer`, then closes."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    requests: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                try:
                    requests.append(conn.recv(65536))
                    conn.sendall(answer)
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{sock.getsockname()[1]}/", requests, sock


MALFORMED = {
    "Location not a URL": b"HTTP/1.1 302 Found\r\nLocation: http://[::1/x\r\n"
    b"Content-Length: 0\r\n\r\n",
    "Location with an invalid host": "HTTP/1.1 302 Found\r\nLocation: http://a\u2100b/x\r\n"
    "Content-Length: 0\r\n\r\n".encode(),
    "Location with a bad port": b"HTTP/1.1 301 Moved\r\nLocation: http://h:99999/x\r\n"
    b"Content-Length: 0\r\n\r\n",
    "two Content-Lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
    b"Content-Length: 6\r\n\r\nhello",
    "bad Content-Length": b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello",
    "bad Content-Range": b"HTTP/1.1 206 Partial\r\nContent-Range: bytes x-y/z\r\n"
    b"Content-Length: 5\r\n\r\nhello",
    "bad chunking": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"zz\r\nhello\r\n0\r\n\r\n",
    "garbage status line": b"GARBAGE\r\n\r\n",
    "status out of range": b"HTTP/1.1 99999 X\r\nContent-Length: 0\r\n\r\n",
    "header line too long": b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
    "closed before a status line": b"",
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_response_is_one_mirrors_failure(tiny_dataset, tmp_path, case):
    dataset, good_dir = tiny_dataset
    file = dataset.test_labels
    url, requests, sock = raw_server(MALFORMED[case])
    try:
        path = fetch(file, [url, str(good_dir)], tmp_path / "cache", policy=POLICY)
    finally:
        sock.close()

    assert requests, "expected the malformed mirror to be asked first"
    expected = gzip.decompress((good_dir / f"{file.name}.gz").read_bytes())
    assert path.read_bytes() == expected, "expected the next mirror's file"
