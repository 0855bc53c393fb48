"""The download cache: mirrors in order, verify before caching, cheap warm hits, clear errors."""

import errno
import gzip
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, tiny_labels, write_idx

from mnist_cli import __version__
from mnist_cli.data import fetch as fetching
from mnist_cli.data import http, manifest
from mnist_cli.data.cache import default_cache_dir
from mnist_cli.data.catalogue import MNIST, DataFile
from mnist_cli.data.fetch import fetch
from mnist_cli.data.mirrors import normalize_mirror, parse_mirrors
from mnist_cli.data.policy import FetchPolicy
from mnist_cli.errors import CacheError, DownloadError

NAME = TINY
FAST = FetchPolicy(attempts=2, base_delay=0.01, max_delay=0.05, read_timeout=1.0)
"""Retries and timeouts small enough for tests; the defaults are tested in test_transport.py."""


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[DataFile, bytes, Path]:
    return tiny_labels(tmp_path)


def dead_url() -> str:
    """An http URL on a local port nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def cache_listing(cache: Path) -> list[str]:
    """The files in `cache` but the lock files (which stay, empty, by design)."""
    if not cache.exists():
        return []
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock"))


def test_fetch_from_server_verifies_and_writes_manifest(tiny, http_server, tmp_path):
    file, content, mirror = tiny
    server = http_server(mirror)
    cache = tmp_path / "cache" / "tiny"

    path = fetch(file, [server.url], cache)

    assert path == cache / NAME, f"expected {cache / NAME}, got {path}"
    assert path.read_bytes() == content, (
        "cached file differs from the decompressed content"
    )
    manifest = json.loads((cache / f"{NAME}.verified.json").read_text())
    stat = path.stat()
    expected = {
        "sha256": file.checksum,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }
    actual = {key: manifest.get(key) for key in expected}
    assert actual == expected, f"manifest: expected {expected}, got {actual}"
    listing = cache_listing(cache)
    assert listing == [NAME, f"{NAME}.verified.json"], (
        f"expected no temp files, got {listing}"
    )
    assert server.paths == [f"/{NAME}.gz"], (
        f"expected one request for the .gz, got {server.paths}"
    )
    agent = server.headers[0].get("User-Agent")
    assert agent == f"mnist-cli/{__version__}", (
        f"expected mnist-cli/{__version__}, got {agent}"
    )


def test_uncompressed_name_is_accepted(tiny, http_server, tmp_path):
    file, content, mirror = tiny
    (mirror / f"{NAME}.gz").unlink()
    (mirror / NAME).write_bytes(content)
    server = http_server(mirror)

    path = fetch(file, [server.url], tmp_path / "cache")

    assert path.read_bytes() == content, "cached file differs from the served content"
    expected = [f"/{NAME}.gz", f"/{NAME}"]
    assert server.paths == expected, f"expected requests {expected}, got {server.paths}"


def test_failing_mirrors_are_skipped_in_order(tiny, http_server, tmp_path):
    file, content, mirror = tiny
    missing = http_server()  # 404 for everything
    broken = http_server(
        routes={f"/{NAME}.gz": (500, b"oops"), f"/{NAME}": (500, b"oops")}
    )
    good = http_server(mirror)

    path = fetch(
        file, [missing.url, broken.url, good.url], tmp_path / "cache", policy=FAST
    )

    assert path.read_bytes() == content, (
        "cached file differs from the good mirror's content"
    )
    expected = [f"/{NAME}.gz", f"/{NAME}"]
    assert missing.paths == expected, f"expected {expected}, got {missing.paths}"
    # 500 on every attempt: the mirror is abandoned, its other name is not asked for
    expected = [f"/{NAME}.gz", f"/{NAME}.gz"]
    assert broken.paths == expected, f"expected {expected}, got {broken.paths}"


def test_wrong_bytes_are_rejected_and_not_cached(tiny, http_server, tmp_path):
    file, content, mirror = tiny
    wrong = gzip.compress(content[:-1] + b"\x07")  # valid gzip, one label changed
    liar = http_server(routes={f"/{NAME}.gz": (200, wrong)})
    cache = tmp_path / "cache"

    with pytest.raises(DownloadError):
        fetch(file, [liar.url], cache)
    assert cache_listing(cache) == [], (
        f"expected an empty cache, got {cache_listing(cache)}"
    )

    good = http_server(mirror)
    path = fetch(file, [liar.url, good.url], cache)
    assert path.read_bytes() == content, (
        "cached the liar's bytes instead of the good mirror's"
    )


def test_all_mirrors_failing_names_each_mirror_and_reason(tiny, http_server, tmp_path):
    file, content, _ = tiny
    missing = http_server()
    broken = http_server(routes={f"/{NAME}.gz": (503, b"")})
    wrong = http_server(routes={f"/{NAME}.gz": (200, gzip.compress(b"not it"))})
    corrupt = http_server(routes={f"/{NAME}.gz": (200, gzip.compress(content)[:-9])})
    dead = dead_url()
    got = hashlib.sha256(b"not it").hexdigest()

    with pytest.raises(DownloadError) as info:
        fetch(
            file,
            [missing.url, broken.url, wrong.url, corrupt.url, dead],
            tmp_path / "c",
            policy=FAST,
        )

    message = str(info.value)
    expected_parts = [
        f"could not fetch {NAME} from any mirror: ",
        f"{missing.url} (HTTP 404); ",
        f"{broken.url} (HTTP 503 (after 2 attempts)); ",
        (
            f"{wrong.url} ({NAME}.gz: checksum mismatch: got {got[:12]}..., "
            f"expected {file.checksum[:12]}... / {NAME}: HTTP 404); "
        ),
        f"{corrupt.url} ({NAME}.gz: corrupt gzip data",
        f"{dead} (connection refused)",
    ]
    for part in expected_parts:
        assert part in message, f"expected {part!r} in the message, got {message!r}"
    assert "\n" not in message, f"expected one line, got {message!r}"
    assert cache_listing(tmp_path / "c") == [], (
        f"expected no files, got {cache_listing(tmp_path / 'c')}"
    )


def test_read_timeout_is_summarized(tiny, http_server, tmp_path):
    file, _, _ = tiny

    def stall(handler):
        time.sleep(0.5)

    slow = http_server(routes={f"/{NAME}.gz": stall, f"/{NAME}": stall})
    with pytest.raises(DownloadError) as info:
        policy = FetchPolicy(attempts=1, read_timeout=0.1)
        fetch(file, [slow.url], tmp_path / "cache", policy=policy)
    expected = f"{slow.url} (read timed out after 0.1 s)"
    assert expected in str(info.value), f"expected {expected!r} in {str(info.value)!r}"


def test_cache_hit_makes_no_request_and_hashes_nothing(
    tiny, http_server, tmp_path, monkeypatch
):
    file, content, mirror = tiny
    server = http_server(mirror)
    cache = tmp_path / "cache"
    fetch(file, [server.url], cache)
    server.paths.clear()
    warnings: list[str] = []

    def no_hashing(*args):
        raise AssertionError(
            "expected no hashing on a warm cache hit, but a file was hashed"
        )

    monkeypatch.setattr(manifest, "hash_file", no_hashing)

    path = fetch(file, [server.url], cache, on_warning=warnings.append)

    assert path.read_bytes() == content, "cache hit returned different content"
    assert server.paths == [], f"expected no request on a cache hit, got {server.paths}"
    assert warnings == [], f"expected no warning, got {warnings}"


def test_missing_manifest_is_rebuilt_by_hashing(tiny, tmp_path):
    file, content, mirror = tiny
    cache = tmp_path / "cache"
    fetch(file, [str(mirror)], cache)
    (cache / f"{NAME}.verified.json").unlink()
    (mirror / f"{NAME}.gz").unlink()  # a fetch would now fail

    path = fetch(file, [str(mirror)], cache)

    assert path.read_bytes() == content, "expected the cached content"
    assert (cache / f"{NAME}.verified.json").exists(), (
        "expected the manifest to be rewritten"
    )


def flip_bit(data: bytes) -> bytes:
    return data[:20] + bytes([data[20] ^ 0x01]) + data[21:]


@pytest.mark.parametrize(
    "damage",
    [flip_bit, lambda data: data[:-1], lambda data: data + b"\x00", lambda data: b""],
    ids=["bit-flipped", "truncated", "appended", "emptied"],
)
def test_corrupted_cache_file_warns_and_refetches(tiny, http_server, tmp_path, damage):
    file, content, mirror = tiny
    server = http_server(mirror)
    cache = tmp_path / "cache"
    path = fetch(file, [server.url], cache)
    path.write_bytes(damage(path.read_bytes()))
    stat = path.stat()  # coarse clocks may leave mtime unchanged; a real edit moves it
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    server.paths.clear()
    warnings: list[str] = []

    path = fetch(file, [server.url], cache, on_warning=warnings.append)

    expected = [
        f"cached {NAME} no longer matches its checksum ({cache}); discarding it and fetching again"
    ]
    assert warnings == expected, f"expected {expected}, got {warnings}"
    assert server.paths == [f"/{NAME}.gz"], f"expected a re-fetch, got {server.paths}"
    assert path.read_bytes() == content, "expected the re-fetched, correct content"


def test_local_directory_and_file_url_mirrors(tiny, tmp_path):
    file, content, mirror = tiny
    for i, spec in enumerate([str(mirror), mirror.as_uri()]):
        cache = tmp_path / f"cache{i}"
        path = fetch(file, [normalize_mirror(spec)], cache)
        assert path.read_bytes() == content, f"mirror {spec}: wrong content"


def test_file_url_escapes_are_decoded_once(tiny, tmp_path):
    """A folder whose name holds "%41" (and a space) is reached by its file:// URI, which
    escapes that as "%2541": decoding twice would look for "A" instead."""
    file, content, mirror = tiny
    odd = tmp_path / "mirror %41"
    mirror.rename(odd)
    assert normalize_mirror(odd.as_uri()) == str(odd), odd.as_uri()
    path = fetch(file, [normalize_mirror(odd.as_uri())], tmp_path / "cache")
    assert path.read_bytes() == content


def test_local_mirror_missing_file(tiny, tmp_path):
    file, _, _ = tiny
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DownloadError) as info:
        fetch(file, [str(empty)], tmp_path / "cache")
    expected = f"{empty} (not found)"
    assert expected in str(info.value), f"expected {expected!r} in {str(info.value)!r}"


def test_checksum_of_gzip_and_other_algorithms(tiny, http_server, tmp_path):
    _, content, mirror = tiny
    gz = (mirror / f"{NAME}.gz").read_bytes()
    server = http_server(mirror)
    file = DataFile(NAME, hashlib.md5(gz).hexdigest(), algorithm="md5", of_gzip=True)

    path = fetch(file, [server.url], tmp_path / "cache")
    assert path.read_bytes() == content, "expected the decompressed content"

    (mirror / f"{NAME}.gz").rename(mirror / "elsewhere.gz")
    (mirror / NAME).write_bytes(content)
    with pytest.raises(DownloadError) as info:
        fetch(file, [server.url], tmp_path / "cache2")
    expected = "served uncompressed, but the checksum covers the .gz file"
    assert expected in str(info.value), f"expected {expected!r} in {str(info.value)!r}"


def test_progress_reports_every_byte(tiny, http_server, tmp_path):
    file, _, mirror = tiny
    server = http_server(mirror)
    size = (mirror / f"{NAME}.gz").stat().st_size
    calls: list[tuple[str, int | None]] = []
    updates: list[int] = []
    closed: list[bool] = []

    class FakeBar:
        def update(self, n: int) -> None:
            updates.append(n)

        def close(self) -> None:
            closed.append(True)

    def progress(desc: str, total: int | None) -> FakeBar:
        calls.append((desc, total))
        return FakeBar()

    fetch(file, [server.url], tmp_path / "cache", progress=progress)
    assert calls == [(NAME, size)], f"expected [({NAME!r}, {size})], got {calls}"
    assert sum(updates) == size, f"expected {size} bytes reported, got {sum(updates)}"
    assert closed == [True], f"expected the bar closed once, got {closed}"


def test_unwritable_cache_dir_is_a_cache_error(tiny, tmp_path):
    file, _, mirror = tiny
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cache = blocker / "cache"
    with pytest.raises(CacheError) as info:
        fetch(file, [str(mirror)], cache)
    message = str(info.value)
    for part in (str(cache), "choose another cache directory"):
        assert part in message, f"expected {part!r} in {message!r}"
    assert "--" not in message, "the library names no option: the CLI does"


def test_real_mnist_labels_from_bundled_copy(mnist_dir, http_server, tmp_path):
    server = http_server(mnist_dir)
    path = fetch(MNIST.test_labels, [server.url], tmp_path / "cache")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == MNIST.test_labels.checksum, (
        f"expected {MNIST.test_labels.checksum}, got {digest}"
    )
    size = path.stat().st_size
    assert size == 10008, f"expected 10008 bytes, got {size}"


def test_normalize_mirror(tmp_path):
    (tmp_path / "sub").mkdir()
    cases = {
        "http://example.org/mnist": "http://example.org/mnist/",
        "https://example.org/mnist/": "https://example.org/mnist/",
        "sub": str(tmp_path / "sub"),
        (tmp_path / "sub").as_uri(): str(tmp_path / "sub"),
    }
    for mirror, expected in cases.items():
        actual = normalize_mirror(mirror, base_dir=tmp_path)
        assert actual == expected, f"{mirror}: expected {expected}, got {actual}"


@pytest.mark.parametrize(
    ("mirror", "message"),
    [
        ("ftp://example.org/mnist/", "unsupported scheme ftp://"),
        ("missing-dir", "is not an existing directory"),
        ("file:///no/such/dir", "is not an existing directory"),
        ("http:///path-without-host", "has no host"),
    ],
)
def test_normalize_mirror_rejects(tmp_path, mirror, message):
    with pytest.raises(ValueError) as info:
        normalize_mirror(mirror, base_dir=tmp_path)
    assert message in str(info.value), f"expected {message!r} in {str(info.value)!r}"


def test_parse_mirrors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local").mkdir()
    actual = parse_mirrors(" http://a.example/x , local,,")
    expected = ("http://a.example/x/", str(tmp_path / "local"))
    assert actual == expected, f"expected {expected}, got {actual}"
    with pytest.raises(ValueError):
        parse_mirrors(" , ")


def test_default_cache_dir_precedence():
    cases = [
        ({"MNIST_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/x", "HOME": "/h"}, Path("/c")),
        (
            {"MNIST_CACHE_DIR": "", "XDG_CACHE_HOME": "/x", "HOME": "/h"},
            Path("/x/mnist-cli"),
        ),
        ({"XDG_CACHE_HOME": "relative", "HOME": "/h"}, Path("/h/.cache/mnist-cli")),
        ({"HOME": "/h"}, Path("/h/.cache/mnist-cli")),
    ]
    for env, expected in cases:
        actual = default_cache_dir(env)
        assert actual == expected, f"{env}: expected {expected}, got {actual}"


def test_interrupted_download_leaves_no_temp_files(tiny, http_server, tmp_path):
    file, _, mirror = tiny
    server = http_server(mirror)
    cache = tmp_path / "cache"

    class InterruptingBar:
        def update(self, n: int) -> None:
            raise KeyboardInterrupt

        def close(self) -> None:
            pass

    with pytest.raises(KeyboardInterrupt):
        fetch(file, [server.url], cache, progress=lambda desc, total: InterruptingBar())
    assert cache_listing(cache) == [], (
        f"expected an empty cache, got {cache_listing(cache)}"
    )


def sized(file: DataFile, content: bytes) -> DataFile:
    return DataFile(file.name, file.checksum, size=len(content))


def test_body_beyond_the_known_size_is_rejected(tiny, http_server, tmp_path):
    file, content, _ = tiny
    file = sized(file, content)  # 108 bytes: a body may have 108 + 1 + 4096
    bound = fetching.body_bound(file)
    big = http_server(routes={f"/{NAME}.gz": (200, os.urandom(bound + 1))})

    with pytest.raises(DownloadError) as info:
        fetch(file, [big.url], tmp_path / "cache", policy=FAST)

    expected = f"{bound + 1} bytes announced, more than the {bound} expected"
    assert expected in str(info.value), f"expected {expected!r} in {str(info.value)!r}"
    assert len(big.paths) == 2, f"expected one request per name, got {big.paths}"
    listing = cache_listing(tmp_path / "cache")
    assert listing == [], f"expected an empty cache, got {listing}"


@pytest.mark.parametrize(
    ("served", "message"),
    [
        (bytes(1_000_000), "gzip data inflates beyond the 108 bytes expected"),
        (bytes(50), "50 bytes, expected 108"),
    ],
    ids=["gzip-bomb", "short"],
)
def test_decompressed_size_is_bounded_by_the_known_size(
    tiny, http_server, tmp_path, served, message
):
    file, content, _ = tiny
    server = http_server(routes={f"/{NAME}.gz": (200, gzip.compress(served))})

    with pytest.raises(DownloadError) as info:
        fetch(sized(file, content), [server.url], tmp_path / "cache", policy=FAST)

    assert message in str(info.value), f"expected {message!r} in {str(info.value)!r}"
    listing = cache_listing(tmp_path / "cache")
    assert listing == [], f"expected an empty cache, got {listing}"


def test_mnist_catalogue_knows_every_size():
    expected = {
        "train-images-idx3-ubyte": 16 + 60000 * 28 * 28,
        "train-labels-idx1-ubyte": 8 + 60000,
        "t10k-images-idx3-ubyte": 16 + 10000 * 28 * 28,
        "t10k-labels-idx1-ubyte": 8 + 10000,
    }
    actual = {f.name: f.size for f in MNIST.files}
    assert actual == expected, f"expected {expected}, got {actual}"


class FullDisk:
    """A file whose every write fails as on a full disk."""

    def __init__(self, f):
        self.f = f

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.f.close()


@pytest.mark.parametrize("module", [http, fetching], ids=["body", "gunzip"])
def test_disk_full_is_one_cache_error_and_leaves_nothing(
    tiny, http_server, tmp_path, monkeypatch, module
):
    file, _, mirror = tiny
    server = http_server(mirror)
    cache = tmp_path / "cache"

    def full_open(path, mode="r", *args, **kwargs):
        f = open(path, mode, *args, **kwargs)  # noqa: SIM115 (closed by FullDisk)
        return FullDisk(f) if "w" in mode or "+" in mode else f

    monkeypatch.setattr(module, "open", full_open, raising=False)

    with pytest.raises(CacheError) as info:
        fetch(file, [server.url], cache, policy=FAST)

    expected = (
        f"cannot write to cache directory {cache}: No space left on device; "
        "free some space or choose another cache directory"
    )
    assert str(info.value) == expected, (
        f"expected {expected!r}, got {str(info.value)!r}"
    )
    assert server.paths == [f"/{NAME}.gz"], f"expected no retry, got {server.paths}"
    assert cache_listing(cache) == [], f"expected no files, got {cache_listing(cache)}"


def test_lock_file_is_created_beside_the_file_and_kept(tiny, tmp_path):
    file, _, mirror = tiny
    cache = tmp_path / "cache"
    fetch(file, [str(mirror)], cache)
    lock = cache / f"{NAME}.lock"
    assert lock.is_file() and lock.stat().st_size == 0, f"expected an empty {lock}"


DRIVER = """
import json, sys
from pathlib import Path
from mnist_cli.data import load_split
from mnist_cli.data.catalogue import DataFile, Dataset

spec = json.loads(sys.argv[1])
images, labels = (DataFile(**f) for f in spec["files"])
dataset = Dataset("tiny", images, labels, images, labels, mirrors=(spec["mirror"],))
(Path(spec["ready"]) / sys.argv[2]).touch()
split = load_split(dataset, "test", Path(spec["cache"]))
print(len(split), int(split.labels.sum()))
"""


def test_concurrent_processes_download_each_file_once(http_server, tmp_path):
    mirror, ready, cache = tmp_path / "mirror", tmp_path / "ready", tmp_path / "cache"
    mirror.mkdir()
    ready.mkdir()
    labels = np.arange(50, dtype=np.uint8) % 10
    files = []
    for name, array in (
        ("tiny-images-idx3-ubyte", np.zeros((50, 28, 28), np.uint8)),
        ("tiny-labels-idx1-ubyte", labels),
    ):
        write_idx(mirror / name, array)
        content = (mirror / name).read_bytes()
        (mirror / f"{name}.gz").write_bytes(gzip.compress(content))
        (mirror / name).unlink()
        files.append(
            {
                "name": name,
                "checksum": hashlib.sha256(content).hexdigest(),
                "size": len(content),
            }
        )

    def when_all_ready(handler):
        """Serve the first file only once all three processes are about to fetch it."""
        deadline = time.monotonic() + 20
        while len(list(ready.iterdir())) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # let the two others reach the lock
        body = (mirror / "tiny-images-idx3-ubyte.gz").read_bytes()
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    server = http_server(mirror, routes={"/tiny-images-idx3-ubyte.gz": when_all_ready})
    spec = json.dumps(
        {"files": files, "mirror": server.url, "ready": str(ready), "cache": str(cache)}
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", DRIVER, spec, str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    results = [(p.wait(timeout=60), *p.communicate()) for p in processes]

    for code, out, err in results:
        assert (code, out) == (0, f"50 {int(labels.sum())}\n"), (
            f"expected exit 0 and '50 {labels.sum()}', got {code}, {out!r}, {err!r}"
        )
    expected = ["/tiny-images-idx3-ubyte.gz", "/tiny-labels-idx1-ubyte.gz"]
    assert sorted(server.paths) == expected, (
        f"expected one GET per file, got {sorted(server.paths)}"
    )
    listing = cache_listing(cache / "tiny")
    expected_files = sorted(
        [f"{f['name']}{suffix}" for f in files for suffix in ("", ".verified.json")]
    )
    assert listing == expected_files, f"expected {expected_files}, got {listing}"
