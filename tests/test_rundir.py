"""Run directories claimed before training: racing runs, --force, a failed run's claim.

Races are run with threads calling the library directly (each claim is its own open file
description, so flock tells them apart as it does processes): fast, and the overlap is forced
by a barrier instead of left to timing."""

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import save_run

from mnist_cli.errors import RunDirectoryError
from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import one_layer
from mnist_cli.nn.layers import Params
from mnist_cli.rundir.claim import CHECKPOINT, RUN_FILES, claim_run_dir
from mnist_cli.rundir.stale import STALE_AFTER, clean_stale, lock_dir
from mnist_cli.rundir.weights import load_weights, write_run


def params(value: float) -> Params:
    return Params(W=np.full((K, D), value, np.float32), b=np.zeros(K, np.float32))


def write(claim, value: float) -> None:
    write_run(
        claim,
        network=one_layer("softmax", params(value)),
        metrics={"run": value},
        config_toml="",
    )


def race(out: Path, force: bool, runs: int = 2) -> list[str]:
    """`runs` threads claim `out` at once, each holding its claim until every one has tried,
    then write a run (W filled with its number); what each ended with: "ok" or the error."""
    tried = threading.Barrier(runs, timeout=10)
    outcomes: list[str] = [""] * runs

    def run(i: int) -> None:
        try:
            with claim_run_dir(out, force) as claim:
                tried.wait()
                write(claim, i + 1)
            outcomes[i] = "ok"
        except RunDirectoryError as e:
            tried.wait()
            outcomes[i] = str(e)
        except Exception as e:  # noqa: BLE001 (a traceback: what must never happen)
            outcomes[i] = f"{type(e).__name__}: {e}"

    threads = [threading.Thread(target=run, args=(i,)) for i in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@pytest.mark.parametrize(
    ("force", "existing"),
    [(False, False), (True, False), (True, True)],
    ids=["new-out", "new-out-force", "force-over-a-run"],
)
def test_racing_runs_on_one_out_have_exactly_one_winner(tmp_path, force, existing):
    out = tmp_path / "runs" / "r"
    if existing:
        network = one_layer("softmax", params(0))
        save_run(out, network=network, metrics={}, config_toml="")

    outcomes = race(out, force)

    winners = [i + 1 for i, o in enumerate(outcomes) if o == "ok"]
    losers = [o for o in outcomes if o != "ok"]
    assert len(winners) == 1, f"expected exactly one winner, got {outcomes}"
    expected = f"{out} is in use by another mnist-train run"
    assert all(o.startswith(expected) for o in losers), f"got {losers}"
    W = load_weights(out).params.W
    assert (W == winners[0]).all(), f"expected the winner's weights, got W = {W[0, 0]}"
    listing = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert listing == ["r"], f"expected only the run, no hidden leftovers: {listing}"


def test_a_claim_is_free_again_once_released(tmp_path):
    out = tmp_path / "r"
    with claim_run_dir(out) as claim:
        write(claim, 1)
    with claim_run_dir(out, force=True) as claim:
        write(claim, 2)
    assert (load_weights(out).params.W == 2).all(), "the second run did not replace it"


@pytest.mark.parametrize("fault", [KeyboardInterrupt, ValueError])
def test_a_failed_run_releases_its_claim_and_leaves_nothing(tmp_path, fault):
    out = tmp_path / "runs" / "r"
    with pytest.raises(fault), claim_run_dir(out) as claim:
        assert claim.staging.is_dir() and out.is_dir(), "claimed before training"
        raise fault
    listing = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert listing == [], f"expected the claimed directory removed, got {listing}"
    with claim_run_dir(out) as claim:  # free for the next run
        write(claim, 3)
    assert (load_weights(out).params.W == 3).all()


def test_a_failed_force_run_keeps_the_previous_run(tmp_path):
    out = tmp_path / "r"
    network = one_layer("softmax", params(7))
    save_run(out, network=network, metrics={}, config_toml="")
    with pytest.raises(ValueError), claim_run_dir(out, force=True):
        raise ValueError
    assert (load_weights(out).params.W == 7).all(), "the previous run was damaged"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_a_claim_removed_by_someone_else_does_not_install(tmp_path):
    out = tmp_path / "r"
    replaced = pytest.raises(RunDirectoryError, match="was replaced by another run")
    with replaced, claim_run_dir(out) as claim:
        os.rmdir(out)  # what a --force run racing in the same instant could do
        out.mkdir()
        write(claim, 1)
    assert list(out.iterdir()) == [], "a run was installed into a directory not claimed"


def test_a_run_into_the_working_directory_keeps_it(tmp_path, monkeypatch):
    """`--out .` in an empty folder: the run's files go into that very directory (renaming a
    new one onto it would leave the shell's working directory pointing at a removed one)."""
    monkeypatch.chdir(tmp_path)
    before = os.stat(".")
    with claim_run_dir(Path("."), force=False) as claim:
        write(claim, 1.0)  # writes the run and installs it
    after = os.stat(os.getcwd())
    assert (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)
    written = sorted(set(RUN_FILES) - {CHECKPOINT})  # no epochs: no checkpoint
    assert sorted(os.listdir(".")) == written, os.listdir(".")
    assert load_weights(Path(".")).params.W[0, 0] == 1.0


def aged(path: Path) -> Path:
    """`path` last changed STALE_AFTER seconds ago and more."""
    then = time.time() - STALE_AFTER - 5
    os.utime(path, (then, then), follow_symlinks=False)
    return path


def test_what_dead_runs_left_is_removed_and_live_ones_kept(tmp_path):
    """clean_stale: unlocked and unchanged for a minute, our names only; a dead claim's empty
    --out goes with its staging, an old run whose replacement never came is put back."""
    runs = tmp_path / "runs"
    runs.mkdir()
    for name in (
        "a",
        "b",
        "d",
    ):  # --out of each (e: missing: its old run is moved aside)
        (runs / name).mkdir()
    (runs / "d" / "weights.npz").write_text("the new run of d")
    dead = {
        ".a.0000000a.staging-new": "a dead claim that created a/",
        ".b.0000000b.staging": "a dead claim of the existing b/",
        ".d.0000000d.old": "d's old run, moved aside; d/ is the new one",
        ".e.0000000e.old": "e's old run, moved aside; e/ never came",
    }
    kept = {
        ".c.0000000c.staging": "a live run's (locked)",
        ".f.0000000f.staging": "just created, not yet locked",
        ".g.staging": "not our name",
        ".cache": "the user's own",
    }
    for name, text in {**dead, **kept}.items():
        (runs / name).mkdir()
        (runs / name / "weights.npz").write_text(text)
        if name != ".f.0000000f.staging":
            aged(runs / name)
    live = lock_dir(runs / ".c.0000000c.staging")
    (runs / ".h.0000000h.staging").symlink_to(runs / "d")  # a link: not followed
    try:
        removed = clean_stale(runs)
    finally:
        os.close(live)

    assert sorted(p.name for p in removed) == sorted(dead), removed
    listing = sorted(os.listdir(runs))
    expected = sorted(["b", "d", "e", *kept, ".h.0000000h.staging"])
    assert listing == expected, f"expected {expected}, got {listing}"
    assert (runs / "e" / "weights.npz").read_text() == dead[".e.0000000e.old"]
    assert (runs / "d" / "weights.npz").read_text() == "the new run of d"


def test_a_claim_removes_what_a_dead_run_left_beside_it(tmp_path):
    left = tmp_path / ".r.12345678.staging-new"
    left.mkdir()
    aged(left)
    (tmp_path / "r").mkdir()
    with claim_run_dir(tmp_path / "s") as claim:
        write(claim, 1)
    assert sorted(os.listdir(tmp_path)) == ["s"], os.listdir(tmp_path)


def test_every_remedy_the_library_gives_has_words_in_the_cli():
    """A RunDirectoryError's remedy (its third argument, or `remedy=` / a variable set from
    literals) is a key of cli/run_place.py's REMEDIES: none is said as nothing."""
    import ast

    from mnist_cli import rundir
    from mnist_cli.cli.run_place import REMEDIES

    given = set()
    for path in Path(rundir.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == (
                "RunDirectoryError"
            ):
                args = [*node.args[2:], *(k.value for k in node.keywords)]
                given |= {a.value for a in args if isinstance(a, ast.Constant)}
            if (
                isinstance(node, ast.Assign)
                and getattr(node.targets[0], "id", "") == "remedy"
            ):
                given |= {
                    c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant)
                }
    assert {
        "force",
        "wait",
        "another",
        "space-or-another",
    } <= given  # the scan sees them
    assert given <= set(REMEDIES), given - set(REMEDIES)
