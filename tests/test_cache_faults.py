"""The cache trusts only what it verified: non-regular files in the cache or a mirror folder,
a lock that is a symlink, a file swapped behind the manifest's back, temp files left by a kill."""

import fcntl
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import TINY, tiny_labels

from mnist_cli.data import cache as caching
from mnist_cli.data import manifest
from mnist_cli.data.catalogue import DataFile
from mnist_cli.data.fetch import fetch
from mnist_cli.data.policy import FetchPolicy
from mnist_cli.errors import DownloadError

NAME = TINY
FAST = FetchPolicy(attempts=2, base_delay=0.01, max_delay=0.05, read_timeout=0.5)


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[DataFile, bytes, Path]:
    return tiny_labels(tmp_path)


def within(seconds: float, work: Callable[[], object]) -> object:
    """`work()`, failing the test (instead of hanging it) if it takes more than `seconds`."""
    result: list[object] = []
    errors: list[Exception] = []

    def run() -> None:
        try:
            result.append(work())
        except Exception as exc:  # noqa: BLE001 (handed to the test below)
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"expected it to end within {seconds} s: it hangs"
    if errors:
        raise errors[0]
    return result[0]


@pytest.mark.parametrize("kind", ["symlink to /dev/zero", "fifo", "symlink to a file"])
def test_a_cache_entry_that_is_not_a_regular_file_is_discarded_and_fetched(
    tiny, tmp_path, kind
):
    file, content, mirror = tiny
    cache = tmp_path / "cache"
    fetch(file, [str(mirror)], cache)
    target = cache / NAME
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "symlink to a file":
        (tmp_path / "elsewhere").write_bytes(content)
        target.symlink_to(tmp_path / "elsewhere")
    else:
        target.symlink_to("/dev/zero")
    warnings: list[str] = []

    path = within(
        10, lambda: fetch(file, [str(mirror)], cache, on_warning=warnings.append)
    )

    assert path.is_file() and not path.is_symlink(), f"expected a regular {path}"
    assert path.read_bytes() == content, "expected the fetched content"
    expected = f"cached {NAME} {manifest.NOT_REGULAR} ({cache}); discarding it and fetching again"
    assert warnings == [expected], f"expected [{expected!r}], got {warnings}"


@pytest.mark.parametrize("form", ["path", "file:// URL"])
def test_a_fifo_in_a_mirror_folder_is_refused_unread(tiny, tmp_path, form):
    file, content, mirror = tiny
    fifos = tmp_path / "fifos"
    fifos.mkdir()
    os.mkfifo(fifos / f"{NAME}.gz")
    os.mkfifo(fifos / NAME)
    first = str(fifos) if form == "path" else fifos.as_uri()

    path = within(10, lambda: fetch(file, [first, str(mirror)], tmp_path / "cache"))

    assert path.read_bytes() == content, "expected the next mirror's file"


def test_a_device_in_a_mirror_folder_is_one_failure(tiny, tmp_path):
    file, _, _ = tiny
    devices = tmp_path / "devices"
    devices.mkdir()
    (devices / f"{NAME}.gz").symlink_to("/dev/zero")
    (devices / NAME).symlink_to("/dev/zero")

    with pytest.raises(DownloadError) as info:
        within(10, lambda: fetch(file, [str(devices)], tmp_path / "cache"))
    expected = f"{devices} (cannot read: not a regular file)"
    assert expected in str(info.value), f"expected {expected!r} in {info.value}"


def test_a_dangling_lock_symlink_is_not_followed(tiny, tmp_path):
    file, content, mirror = tiny
    cache, outside = tmp_path / "cache", tmp_path / "outside"
    cache.mkdir()
    outside.mkdir()
    lock = cache / f"{NAME}.lock"
    lock.symlink_to(outside / "created")
    warnings: list[str] = []

    path = fetch(file, [str(mirror)], cache, on_warning=warnings.append)

    assert path.read_bytes() == content, "expected the file fetched without the lock"
    assert list(outside.iterdir()) == [], (
        f"expected nothing created outside the cache, got {list(outside.iterdir())}"
    )
    expected = f"{lock} is a symbolic link, not followed; fetching without the lock"
    assert warnings == [expected], f"expected [{expected!r}], got {warnings}"


def same_size_other_content(content: bytes) -> bytes:
    other = bytearray(content)
    other[-1] = (other[-1] + 1) % 10  # still a valid label file, one label changed
    return bytes(other)


@pytest.mark.parametrize("how", ["replaced", "rewritten in place"])
def test_a_same_size_swap_with_the_mtime_restored_is_detected(tiny, tmp_path, how):
    file, content, mirror = tiny
    cache = tmp_path / "cache"
    target = fetch(file, [str(mirror)], cache)
    before = target.stat()
    time.sleep(0.05)  # past the granularity of the kernel's clock for ctime
    if how == "replaced":
        (tmp_path / "swap").write_bytes(same_size_other_content(content))
        os.replace(tmp_path / "swap", target)
    else:
        with open(target, "r+b") as f:
            f.write(same_size_other_content(content))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `touch -r` does
    assert target.stat().st_size == before.st_size
    warnings: list[str] = []

    path = fetch(file, [str(mirror)], cache, on_warning=warnings.append)

    assert path.read_bytes() == content, (
        "expected the swapped file discarded, fetched again"
    )
    expected = (
        f"cached {NAME} {manifest.CHANGED} ({cache}); discarding it and fetching again"
    )
    assert warnings == [expected], f"expected [{expected!r}], got {warnings}"


def test_an_old_manifest_is_rehashed_once_and_rewritten(tiny, tmp_path, monkeypatch):
    file, _, mirror = tiny
    cache = tmp_path / "cache"
    target = fetch(file, [str(mirror)], cache)
    record_path = manifest.path_of(target)
    record = manifest._read(target)
    old = {k: record[k] for k in ("sha256", "size", "mtime_ns", "checksum")}
    record_path.write_text(json.dumps(old))
    hashed: list[Path] = []
    real_hash = manifest.hash_file

    def counting(path, *args, **kwargs):
        hashed.append(Path(path))
        return real_hash(path, *args, **kwargs)

    monkeypatch.setattr(manifest, "hash_file", counting)

    fetch(file, [str(mirror)], cache)
    first = list(hashed)
    fetch(file, [str(mirror)], cache)

    assert first == [target], f"expected one re-hash of {target}, got {first}"
    assert hashed == first, f"expected no hashing the second time, got {hashed[1:]}"
    rewritten = manifest._read(target)
    stats = target.stat()
    assert (rewritten.get("ctime_ns"), rewritten.get("ino")) == (
        stats.st_ctime_ns,
        stats.st_ino,
    ), f"expected ctime_ns and ino recorded, got {rewritten}"


def test_temp_files_left_by_a_killed_process_are_cleaned_live_ones_kept(tiny, tmp_path):
    file, content, mirror = tiny
    cache = tmp_path / "cache"
    cache.mkdir()
    old = time.time() - 2 * caching.STALE_AFTER
    left = cache / f".{NAME}.dead0001.part"  # a SIGKILLed download
    live = cache / f".{NAME}.11ve0001.part"  # a live process, stuck for long
    recent = cache / f".{NAME}.5ec0e001.part"  # a process that just created it
    other = (
        cache / ".other-file.dead0002.part"
    )  # another file's: its own fetch cleans it
    for path in (left, live, recent, other):
        path.write_bytes(b"partial")
    for path in (left, live, other):
        os.utime(path, (old, old))

    with open(live, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)  # as `cache.own` holds it while writing
        path = fetch(file, [str(mirror)], cache)
        assert path.read_bytes() == content

        remaining = sorted(p.name for p in cache.iterdir() if p.name.endswith(".part"))
    expected = sorted(p.name for p in (live, recent, other))
    assert remaining == expected, f"expected {expected} kept, got {remaining}"


def test_a_download_in_progress_owns_its_temp_file(tiny, http_server, tmp_path):
    file, content, mirror = tiny
    cache = tmp_path / "cache"
    server = http_server(mirror)
    seen: list[list[str]] = []

    class Bar:
        def update(self, n: int) -> None:
            pass

        def close(self) -> None:
            pass

    def progress(name: str, total: int | None) -> Bar:
        # another process cleaning now, as if every temp file were a day old
        caching.clean_stale(cache / NAME, now=time.time() + 86400)
        seen.append(sorted(p.name for p in cache.iterdir() if p.name.endswith(".part")))
        return Bar()

    path = fetch(file, [server.url], cache, progress=progress)

    assert path.read_bytes() == content, "expected the download to complete"
    assert seen and len(seen[0]) == 1, f"expected our temp file kept, got {seen}"
