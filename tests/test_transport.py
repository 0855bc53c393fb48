"""One URL into a file, against a fault-injecting server on 127.0.0.1: resets, stalls, 5xx,
429 with Retry-After, servers that ignore Range, oversized bodies, hostile redirects."""

import random
import socket
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from mnist_cli.data import http
from mnist_cli.data.policy import (
    Failure,
    FetchPolicy,
    parse_retry_after,
    retry_delay,
)
from mnist_cli.data.transport import download

BODY = bytes(range(256)) * 40  # 10,240 bytes, every offset distinguishable
SIZE = len(BODY)
FAST = FetchPolicy(attempts=3, base_delay=0.01, max_delay=0.05, read_timeout=1.0)


def scripted(*answers):
    """A route answering the n-th request with answers[n] (the last one repeats).

    Each answer is a function (handler) -> None; see the helpers below."""
    count = [0]

    def route(handler):
        answer = answers[min(count[0], len(answers) - 1)]
        count[0] += 1
        answer(handler)

    return route


def full(handler, body=BODY):
    """200 with the whole body (ignoring any Range header)."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def reset_after(n):
    """200 announcing the whole body, then the connection drops after n bytes."""

    def answer(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(BODY)))
        handler.end_headers()
        handler.wfile.write(BODY[:n])
        handler.wfile.flush()
        handler.close_connection = True

    return answer


def ranged(handler):
    """Honours `Range: bytes=N-` with a 206, else sends the whole body."""
    spec = handler.headers.get("Range", "")
    if not spec.startswith("bytes="):
        return full(handler)
    start = int(spec.removeprefix("bytes=").rstrip("-"))
    handler.send_response(206)
    handler.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
    handler.send_header("Content-Length", str(len(BODY) - start))
    handler.end_headers()
    handler.wfile.write(BODY[start:])


def status(code, **headers):
    def answer(handler):
        handler.send_response(code)
        for key, value in headers.items():
            handler.send_header(key.replace("_", "-"), value)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


def get(server, tmp_path, policy=FAST, max_bytes=SIZE, sleeps=None):
    dest = tmp_path / "dest.part"
    dest.touch()
    download(
        server.url + "f.gz",
        dest,
        max_bytes=max_bytes,
        policy=policy,
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
    )
    return dest


def range_headers(server):
    return [h.get("Range") for h in server.headers]


def test_reset_mid_body_resumes_with_range(http_server, tmp_path):
    server = http_server(routes={"/f.gz": scripted(reset_after(3000), ranged)})

    dest = get(server, tmp_path)

    assert dest.read_bytes() == BODY, "expected the whole body, resumed at byte 3000"
    expected = [None, "bytes=3000-"]
    actual = range_headers(server)
    assert actual == expected, f"expected Range headers {expected}, got {actual}"


def test_server_ignoring_range_restarts_from_zero(http_server, tmp_path):
    server = http_server(routes={"/f.gz": scripted(reset_after(3000), full)})

    dest = get(server, tmp_path)

    assert dest.read_bytes() == BODY, "expected the 200 body alone, not appended"
    expected = [None, "bytes=3000-"]
    actual = range_headers(server)
    assert actual == expected, f"expected Range headers {expected}, got {actual}"


def test_503_then_200_is_retried_after_a_backoff(http_server, tmp_path):
    server = http_server(routes={"/f.gz": scripted(status(503), full)})
    sleeps: list[float] = []

    dest = get(server, tmp_path, sleeps=sleeps)

    assert dest.read_bytes() == BODY, "expected the body of the second answer"
    assert len(server.paths) == 2, f"expected 2 requests, got {server.paths}"
    assert len(sleeps) == 1 and 0.005 <= sleeps[0] <= 0.01, (
        f"expected one wait of base_delay 0.01 s times a jitter in [0.5, 1], got {sleeps}"
    )


@pytest.mark.parametrize(
    ("retry_after", "expected"), [("0", 0.0), ("1", 0.05), ("3600", 0.05)]
)
def test_429_honours_retry_after_capped(http_server, tmp_path, retry_after, expected):
    answer = status(429, Retry_After=retry_after)
    server = http_server(routes={"/f.gz": scripted(answer, full)})
    sleeps: list[float] = []

    dest = get(server, tmp_path, sleeps=sleeps)

    assert dest.read_bytes() == BODY, "expected the body after the 429"
    assert sleeps == [expected], (
        f"Retry-After {retry_after} with max_delay 0.05: expected {[expected]}, got {sleeps}"
    )


@pytest.mark.parametrize("code", [403, 404, 410])
def test_client_errors_are_not_retried(http_server, tmp_path, code):
    server = http_server(routes={"/f.gz": status(code)})
    with pytest.raises(Failure) as info:
        get(server, tmp_path)
    assert info.value.reason == f"HTTP {code}", f"got {info.value.reason!r}"
    assert len(server.paths) == 1, f"expected one request, got {server.paths}"


def test_persistent_5xx_gives_up_after_the_attempts(http_server, tmp_path):
    server = http_server(routes={"/f.gz": status(502)})
    sleeps: list[float] = []
    with pytest.raises(Failure) as info:
        get(server, tmp_path, sleeps=sleeps)
    expected = "HTTP 502 (after 3 attempts)"
    assert info.value.reason == expected, (
        f"expected {expected!r}, got {info.value.reason!r}"
    )
    assert len(server.paths) == 3 and len(sleeps) == 2, (
        f"expected 3 requests and 2 waits, got {server.paths} and {sleeps}"
    )


def test_stall_mid_body_is_abandoned_after_the_read_timeout(http_server, tmp_path):
    released = threading.Event()

    def stall(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(BODY)))
        handler.end_headers()
        handler.wfile.write(BODY[:100])
        handler.wfile.flush()
        released.wait(5)

    server = http_server(routes={"/f.gz": stall})
    policy = FetchPolicy(attempts=2, base_delay=0.01, read_timeout=0.2)
    try:
        with pytest.raises(Failure) as info:
            get(server, tmp_path, policy=policy)
    finally:
        released.set()
    expected = "read timed out after 0.2 s (after 2 attempts)"
    assert info.value.reason == expected, (
        f"expected {expected!r}, got {info.value.reason!r}"
    )
    expected_ranges = [None, "bytes=100-"]
    actual = range_headers(server)
    assert actual == expected_ranges, f"expected {expected_ranges}, got {actual}"


def test_content_length_beyond_the_bound_is_refused_unread(http_server, tmp_path):
    server = http_server(routes={"/f.gz": full})
    with pytest.raises(Failure) as info:
        get(server, tmp_path, max_bytes=len(BODY) - 1)
    expected = f"{len(BODY)} bytes announced, more than the {len(BODY) - 1} expected"
    assert info.value.reason == expected, (
        f"expected {expected!r}, got {info.value.reason!r}"
    )
    assert len(server.paths) == 1, f"expected no retry, got {server.paths}"


def test_body_beyond_the_bound_without_content_length_is_cut_off(http_server, tmp_path):
    def endless(
        handler,
    ):  # HTTP/1.0, no Content-Length: the body ends when the socket does
        handler.send_response(200)
        handler.end_headers()
        try:
            for _ in range(100):
                handler.wfile.write(BODY)
        except ConnectionError:  # the client hung up, as it should
            pass

    server = http_server(routes={"/f.gz": endless})
    with pytest.raises(Failure) as info:
        get(server, tmp_path, max_bytes=5000)
    expected = "body exceeds the 5000 bytes expected"
    assert info.value.reason == expected, (
        f"expected {expected!r}, got {info.value.reason!r}"
    )
    size = (tmp_path / "dest.part").stat().st_size
    assert size <= 5000, f"expected at most 5000 bytes written, got {size}"


def test_redirects_are_followed_only_to_http(http_server, tmp_path):
    server = http_server(
        routes={
            "/f.gz": status(302, Location="/elsewhere/f.gz"),
            "/elsewhere/f.gz": full,
            "/evil.gz": status(302, Location="file:///etc/passwd"),
        }
    )
    assert get(server, tmp_path).read_bytes() == BODY, "expected the redirected body"

    dest = tmp_path / "evil.part"
    dest.touch()
    with pytest.raises(Failure) as info:
        download(server.url + "evil.gz", dest, max_bytes=10**6, policy=FAST)
    expected = "redirected to a non-http(s) URL (file:)"
    assert info.value.reason == expected, (
        f"expected {expected!r}, got {info.value.reason!r}"
    )
    assert dest.read_bytes() == b"", "expected nothing read from the redirect target"


def test_redirect_loop_is_bounded(http_server, tmp_path):
    server = http_server(routes={"/f.gz": status(302, Location="/f.gz")})
    with pytest.raises(Failure) as info:
        get(server, tmp_path, policy=FetchPolicy(max_redirects=3))
    assert info.value.reason == "more than 3 redirects", f"got {info.value.reason!r}"
    assert len(server.paths) == 4, f"expected 1 + 3 requests, got {len(server.paths)}"


def test_backoff_doubles_with_jitter_and_is_capped():
    policy = FetchPolicy(base_delay=0.5, max_delay=3.0)
    jitter = random.Random(0)
    for attempt, (low, high) in enumerate(
        [(0.25, 0.5), (0.5, 1.0), (1.0, 2.0), (1.5, 3.0), (1.5, 3.0)], start=1
    ):
        delays = [retry_delay(attempt, None, policy, jitter) for _ in range(50)]
        assert low <= min(delays) and max(delays) <= high, (
            f"attempt {attempt}: expected delays in [{low}, {high}], got "
            f"[{min(delays):.3f}, {max(delays):.3f}]"
        )
        assert len(set(delays)) > 1, (
            f"attempt {attempt}: expected jitter, got {delays[:3]}"
        )


def test_parse_retry_after():
    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=90), usegmt=True)
    cases = {"7": 7.0, " 120 ": 120.0, date: 90.0, "soon": None, "": None, None: None}
    for value, expected in cases.items():
        actual = parse_retry_after(value, now=now)
        assert actual == expected, (
            f"Retry-After {value!r}: expected {expected}, got {actual}"
        )


def test_defaults_are_sane():
    policy = FetchPolicy()
    actual = (
        policy.attempts,
        policy.base_delay,
        policy.max_delay,
        policy.read_timeout,
        policy.min_speed,
    )
    expected = (4, 0.5, 30.0, 30.0, 1024)
    assert actual == expected, f"expected {expected}, got {actual}"


def test_local_file_is_bounded_too(tmp_path: Path):
    (tmp_path / "big").write_bytes(BODY)
    dest = tmp_path / "dest.part"
    dest.touch()
    with pytest.raises(Failure) as info:
        download(str(tmp_path / "big"), dest, max_bytes=1000)
    expected = "body exceeds the 1000 bytes expected"
    assert info.value.reason == expected, (
        f"expected {expected!r}, got {info.value.reason!r}"
    )


def test_unreachable_host_is_not_retried(tmp_path):
    with socket.socket() as s:  # a local port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/f.gz"
    dest = tmp_path / "dest.part"
    dest.touch()
    sleeps: list[float] = []
    with pytest.raises(Failure) as info:
        download(url, dest, max_bytes=SIZE, policy=FAST, sleep=sleeps.append)
    actual = (info.value.reason, info.value.unreachable, sleeps)
    expected = ("connection refused", True, [])
    assert actual == expected, f"expected {expected}, got {actual}"


def test_body_longer_than_its_content_length_is_rejected(tmp_path):
    """http.client itself stops at Content-Length, so this guard is tested with a stub."""

    class Raw:
        def __init__(self):
            self.chunks = [BODY, b"more"]

        def read1(self, n):
            return self.chunks.pop(0) if self.chunks else b""

    class Response:
        raw = Raw()

    dest = tmp_path / "dest.part"
    dest.touch()
    with pytest.raises(Failure) as info:
        http._write_body(Response(), dest, 0, SIZE, 2 * SIZE, FAST, "f", None)
    expected = f"body longer than its Content-Length ({SIZE} bytes)"
    assert info.value.reason == expected, (
        f"expected {expected!r}, got {info.value.reason!r}"
    )
