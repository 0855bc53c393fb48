"""Atomic writes: whole or not at all, no temporary left behind, and the user's umask on every
file and directory the package creates (the cache, a run directory, a picture)."""

import gzip
import hashlib
import os
import signal
import stat
from pathlib import Path

import numpy as np
import pytest
from helpers import save_run, write_idx

from mnist_cli import atomic
from mnist_cli.data.catalogue import DataFile
from mnist_cli.data.fetch import fetch
from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import one_layer
from mnist_cli.nn.layers import Params


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


@pytest.fixture(
    params=[(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)], ids=["022", "077"]
)
def umask(request):
    """Run the test under a umask; yield the (file, directory) modes it should give."""
    mask, file_mode, dir_mode = request.param
    old = os.umask(mask)
    try:
        yield oct(file_mode), oct(dir_mode)
    finally:
        os.umask(old)


def test_replacing_writes_the_new_content_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    with atomic.replacing(target, "w") as f:
        f.write("new")

    assert target.read_text() == "new", f"got {target.read_text()!r}"
    listing = sorted(p.name for p in tmp_path.iterdir())
    assert listing == ["f.txt"], f"expected no temporary file, got {listing}"


@pytest.mark.parametrize("fault", [OSError, KeyboardInterrupt])
def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path, fault):
    target = tmp_path / "f.txt"
    target.write_text("old")

    with pytest.raises(fault), atomic.replacing(target, "w") as f:
        f.write("half")
        raise fault

    assert target.read_text() == "old", (
        f"expected the old file, got {target.read_text()!r}"
    )
    listing = sorted(p.name for p in tmp_path.iterdir())
    assert listing == ["f.txt"], f"expected no temporary file, got {listing}"


def test_a_failed_build_removes_the_temporary_directory(tmp_path):
    with pytest.raises(KeyboardInterrupt), atomic.temp_dir(tmp_path / "run") as staging:
        (staging / "weights.npz").write_bytes(b"half")
        raise KeyboardInterrupt

    assert list(tmp_path.iterdir()) == [], f"left behind: {list(tmp_path.iterdir())}"


def test_temporary_names_are_hidden_and_unique(tmp_path):
    target = tmp_path / "f"
    with atomic.temp_file(target) as a, atomic.temp_file(target) as b:
        assert a != b, f"two temporaries share the name {a}"
        for path in (a, b):
            assert path.parent == tmp_path and path.name.startswith(".f."), path
            assert path.stat().st_size == 0, f"{path} is not empty"
    assert list(tmp_path.iterdir()) == [], "temporaries not removed"


def test_write_text_follows_the_umask(tmp_path, umask):
    file_mode, _ = umask
    atomic.write_text(tmp_path / "f.json", "{}\n")
    assert mode(tmp_path / "f.json") == file_mode, f"expected {file_mode}"


def test_cache_files_follow_the_umask(tmp_path, umask):
    file_mode, _ = umask
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_idx(tmp_path / "labels", np.arange(20, dtype=np.uint8) % 10)
    content = (tmp_path / "labels").read_bytes()
    (mirror / "labels.gz").write_bytes(gzip.compress(content))
    file = DataFile("labels", hashlib.sha256(content).hexdigest(), size=len(content))
    cache = tmp_path / "cache"

    fetch(file, [str(mirror)], cache)

    modes = {p.name: mode(p) for p in cache.iterdir()}
    names = ("labels", "labels.lock", "labels.verified.json")
    expected = dict.fromkeys(names, file_mode)
    assert modes == expected, f"expected {expected}, got {modes}"


def test_a_run_directory_and_its_files_follow_the_umask(tmp_path, umask):
    file_mode, dir_mode = umask
    run = tmp_path / "runs" / "r"
    params = Params(W=np.zeros((K, D), np.float32), b=np.zeros(K, np.float32))

    save_run(
        run,
        network=one_layer("softmax", params),
        metrics={"test_accuracy": 0.5},
        config_toml='model = "softmax"\n',
    )

    assert mode(run) == dir_mode, f"run directory: expected {dir_mode}, got {mode(run)}"
    modes = {p.name: mode(p) for p in run.iterdir()}
    expected = dict.fromkeys(("config.toml", "metrics.json", "weights.npz"), file_mode)
    assert modes == expected, f"expected {expected}, got {modes}"


def test_a_run_replaced_with_force_follows_the_umask(tmp_path, umask):
    file_mode, dir_mode = umask
    run = tmp_path / "r"
    run.mkdir(mode=0o750)
    (run / "weights.npz").write_bytes(b"old")
    params = Params(W=np.zeros((K, D), np.float32), b=np.zeros(K, np.float32))

    linear = one_layer("linear", params)
    save_run(run, network=linear, metrics={}, config_toml="", force=True)

    assert mode(run) == dir_mode, f"expected {dir_mode}, got {mode(run)}"
    assert mode(run / "weights.npz") == file_mode, f"expected {file_mode}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"], "leftovers"


def test_a_picture_follows_the_umask(tmp_path, umask):
    pytest.importorskip("matplotlib")
    from mnist_cli import plots

    file_mode, _ = umask
    path = plots.save(plots.new_figure((40, 30)), tmp_path / "p.png")

    assert mode(path) == file_mode, f"expected {file_mode}, got {mode(path)}"
    assert path.read_bytes()[:4] == b"\x89PNG", "not a PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"], "leftovers"


@pytest.mark.parametrize("how", ["exception", "signal"])
def test_an_interrupt_between_the_renames_puts_the_old_run_back(
    tmp_path, monkeypatch, how
):
    """Where the filesystem cannot exchange two directories (two renames instead), Ctrl-C
    right after the old run is moved aside: an exception there puts it back; a real SIGINT
    is held until the new run is in place (the replacement then completes)."""
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target, new = tmp_path / "run", tmp_path / "new"
    for directory, text in ((target, "old"), (new, "new")):
        directory.mkdir()
        (directory / "weights.npz").write_text(text)
    real_replace = os.replace

    def interrupted_replace(src, dst):
        real_replace(src, dst)
        if Path(src) == target:  # the old run has just been moved aside
            if how == "signal":
                signal.raise_signal(signal.SIGINT)
            else:
                raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        atomic.replace_dir(new, target)

    expected = "old" if how == "exception" else "new"
    text = (target / "weights.npz").read_text()
    assert text == expected, f"expected the {expected} run in place, got {text!r}"
    listing = sorted(p.name for p in tmp_path.iterdir())
    expected_listing = ["new", "run"] if how == "exception" else ["run"]
    assert listing == expected_listing, f"expected no hidden leftovers, got {listing}"


def test_a_run_replaces_another_in_one_exchange(tmp_path, monkeypatch):
    """Over a non-empty directory, one renameat2(RENAME_EXCHANGE): os.replace is never called
    (no instant where the target is missing), and the old directory is gone after."""
    target, new = tmp_path / "run", tmp_path / "new"
    for directory, text in ((target, "old"), (new, "new")):
        directory.mkdir()
        (directory / "weights.npz").write_text(text)
    (target / "extra.png").write_text("old picture")
    inode = new.stat().st_ino

    def no_replace(src, dst):
        raise AssertionError(f"os.replace({src}, {dst}) called: not one step")

    monkeypatch.setattr(os, "replace", no_replace)
    atomic.replace_dir(new, target)

    assert target.stat().st_ino == inode, "the new directory is not the one in place"
    assert sorted(os.listdir(target)) == ["weights.npz"], os.listdir(target)
    assert (target / "weights.npz").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"], "leftovers"


@pytest.mark.parametrize("keep_target", [False, True])
def test_onto_an_empty_directory_one_rename_or_moves_that_keep_it(
    tmp_path, monkeypatch, keep_target
):
    """Onto an empty directory: the new one is renamed in one step; with keep_target (`--out
    .`), the entries are moved in and the directory stays the same, `last` moved last."""
    target, new = tmp_path / "run", tmp_path / "new"
    target.mkdir()
    new.mkdir()
    for name in ("a.toml", "weights.npz", "z.json"):
        (new / name).write_text(name)
    kept, replaced = target.stat().st_ino, new.stat().st_ino
    moved = []
    real_rename = os.rename
    monkeypatch.setattr(
        os, "rename", lambda a, b: moved.append(Path(a).name) or real_rename(a, b)
    )

    atomic.replace_dir(new, target, keep_target=keep_target, last="weights.npz")

    assert target.stat().st_ino == (kept if keep_target else replaced)
    assert sorted(os.listdir(target)) == ["a.toml", "weights.npz", "z.json"]
    expected = ["a.toml", "z.json", "weights.npz"] if keep_target else []
    assert moved == expected, f"expected the moves {expected}, got {moved}"
    assert not new.exists()
