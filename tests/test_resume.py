"""Stop anywhere, resume exactly (#21): a run stopped after epoch k and resumed from its
checkpoint ends with the weights, bit for bit, and the metrics.json (timings aside) of the run
that never stopped, for every model and optimizer; what --resume takes and refuses; mnist-runs
and mnist-eval on an unfinished run. The subprocess tests (signals, SIGKILL) are
test_resume_signals.py."""

import errno
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_cli.cli import eval_command, runs_command, train_command
from mnist_cli.cli.progress import TrainProgress
from mnist_cli.config.files import to_toml
from mnist_cli.config.settings import TrainConfig
from mnist_cli.data import Split
from mnist_cli.nn.architecture import dense_params
from mnist_cli.rundir import checkpoint as checkpoint_module
from mnist_cli.rundir.checkpoint import read_checkpoint, write_checkpoint
from mnist_cli.rundir.claim import claim_run_dir
from mnist_cli.rundir.generator_state import restored
from mnist_cli.rundir.resumable import run_state
from mnist_cli.training.continuing import RunState
from mnist_cli.training.run import fit

EPOCHS = 3  # stopped after epoch 1 and after epoch 2, the middle one
TIMINGS = ("seconds", "created")


def same_weights(a, b) -> bool:
    pairs = zip(dense_params(a), dense_params(b), strict=True)
    return all(np.array_equal(p.W, q.W) and np.array_equal(p.b, q.b) for p, q in pairs)


def without_timings(metrics: dict) -> dict:
    m = {k: v for k, v in metrics.items() if k not in TIMINGS}
    m["history"] = [
        {k: v for k, v in h.items() if k != "seconds"} for h in m["history"]
    ]
    return m


@pytest.fixture(scope="module")
def tiny(mnist_splits):
    """300 training and 100 test images: 5 steps of 64 an epoch (4 with val_size 50)."""
    train, test = mnist_splits
    return Split(train.images[:300], train.labels[:300]), Split(
        test.images[:100], test.labels[:100]
    )


MLP = {"model": "mlp", "hidden": (8,), "init": "normal"}
CASES = {  # (model, optimizer) and settings: every kind, every rule, the schedule, decay
    "linear-sgd": {"model": "linear", "lr": 0.005},
    "linear-momentum": {"model": "linear", "optimizer": "momentum", "lr": 0.002},
    "softmax-nesterov": {"model": "softmax", "optimizer": "nesterov", "lr": 0.1},
    "softmax-adam-cosine": {"optimizer": "adam", "lr": 0.01, "schedule": "cosine"},
    "softmax-sgd-decay-val": {"weight_decay": 0.01, "val_size": 50},
    "mlp-sgd": {**MLP, "activation": "relu"},
    "mlp-momentum-cosine": {
        **MLP,
        "hidden": (8, 6),
        "activation": "tanh",
        "optimizer": "momentum",
        "lr": 0.05,
        "schedule": "cosine",
        "loss": "cross-entropy",
    },
    "mlp-nesterov": {
        **MLP,
        "activation": "sigmoid",
        "optimizer": "nesterov",
        "lr": 0.1,
    },
    "mlp-adam": {
        **MLP,
        "activation": "relu",
        "optimizer": "adam",
        "lr": 0.005,
        "weight_decay": 0.001,
        "loss": "cross-entropy",
    },
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_run_resumed_after_epoch_k_ends_as_the_run_never_stopped(
    case, tiny, tmp_path, mnist_dataset
):
    config = TrainConfig(**{"batch_size": 64, "epochs": EPOCHS, **CASES[case]})
    train_split, test_split = tiny
    states: list[RunState] = []
    whole = fit(
        config, mnist_dataset, train_split, test_split, on_checkpoint=states.append
    )
    assert [s.epoch for s in states] == list(range(1, EPOCHS + 1))

    for k in (1, 2):  # stopped after epoch k: its checkpoint, through the file
        path = tmp_path / f"checkpoint-{k}.npz"
        s = states[k - 1]
        write_checkpoint(
            path, network=s.network, dataset="mnist", optimizer=s.optimizer,
            rng=restored(s.rng_state), epoch=s.epoch, step=s.step,
            history=list(s.history), config_toml=to_toml(config),
        )  # fmt: skip
        state = run_state(read_checkpoint(path))
        assert state.step == k * states[0].step, f"t after epoch {k}: {state.step}"
        later: list[RunState] = []
        resumed = fit(
            config, mnist_dataset, train_split, test_split, resume=state,
            on_checkpoint=later.append,
        )  # fmt: skip

        assert same_weights(resumed.network, whole.network), f"{case}, after epoch {k}"
        assert without_timings(resumed.record.to_json()) == without_timings(
            whole.record.to_json()
        ), case
        assert [s.epoch for s in later] == list(range(k + 1, EPOCHS + 1))
        last = later[-1]  # the final checkpoints agree too (what --epochs N extends)
        assert last.step == states[-1].step and last.rng_state == states[-1].rng_state
        for name, a in states[-1].optimizer.items():
            assert np.array_equal(last.optimizer[name], a), f"{case}: {name}"


@pytest.fixture(scope="module")
def mnist_dataset():
    from mnist_cli.data import get_dataset

    return get_dataset("mnist")


# --- the command ---------------------------------------------------------------------------

ARGS = ["--model", "mlp", "--hidden", "8", "--optimizer", "adam", "--lr", "0.003"]
ARGS += ["--batch-size", "250", "-q"]


def train(*args, mini=()):
    return CliRunner().invoke(train_command, [*map(str, args), *mini])


def weights(run: Path) -> dict:
    with np.load(run / "weights.npz") as f:
        return {k: f[k] for k in f.files if k[0] in "Wb"}


def same_files(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def metrics(run: Path) -> dict:
    return without_timings(json.loads((run / "metrics.json").read_text()))


def stop_after(monkeypatch, epoch: int, stop=KeyboardInterrupt) -> None:
    """A Ctrl-C as epoch `epoch` is reported (in the main thread, its checkpoint written:
    the scoring thread's job for an epoch ends once its checkpoint is saved)."""
    real = TrainProgress.on_epoch

    def on_epoch(self, result):
        real(self, result)
        if result.epoch == epoch:
            raise stop

    monkeypatch.setattr(TrainProgress, "on_epoch", on_epoch)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, mini_mnist_data):
    """The uninterrupted runs: 4 epochs, and 3 epochs of cosine."""
    root = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as patch:
        from mnist_cli.data import DATASETS

        patch.setitem(DATASETS, "mnist", mini_mnist_data.dataset)
        mini = mini_mnist_data.args
        assert (
            train(*ARGS, "--epochs", 4, "--out", root / "four", mini=mini).exit_code
            == 0
        )
        cosine = ["--schedule", "cosine", "--epochs", 3, "--out", root / "cosine"]
        assert train(*ARGS, *cosine, mini=mini).exit_code == 0
    return root


def test_ctrl_c_keeps_the_checkpoint_and_resume_finishes_in_place(
    tmp_path, mini_mnist, monkeypatch, reference
):
    out = tmp_path / "r"
    with monkeypatch.context() as patch:
        stop_after(patch, 2)
        stopped = train(*ARGS, "--epochs", 4, "--out", out, mini=mini_mnist)

    assert stopped.exit_code == 130, stopped.output
    # the epoch after may have been checkpointed meanwhile: the line says which is kept
    k = read_checkpoint(out / "checkpoint.npz").epoch
    assert k in (2, 3), k
    assert stopped.output.strip() == (
        f"Interrupted after epoch {k}/4 (checkpointed in {out}): "
        f"mnist-train --resume {out} continues it."
    )
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz"]
    listing = CliRunner().invoke(runs_command, [str(tmp_path)])
    assert listing.output.splitlines()[1:] == [
        f"r    interrupted at epoch {k}/4: mnist-train --resume {out} continues it"
    ], listing.output
    scored = CliRunner().invoke(eval_command, [str(out), *mini_mnist])
    assert scored.exit_code == 0, scored.output
    assert scored.output.startswith(
        f"unfinished: interrupted at epoch {k}/4: mnist-train --resume {out} continues it; "
        "its last checkpoint is scored\n"
    ), scored.output

    resumed = train("--resume", out, "--json", mini=mini_mnist)

    assert resumed.exit_code == 0, resumed.output
    assert same_files(out, reference / "four")
    assert metrics(out) == metrics(reference / "four")
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.npz", "config.toml", "metrics.json", "weights.npz",
    ]  # fmt: skip
    assert (out / "config.toml").read_text() == (
        reference / "four" / "config.toml"
    ).read_text()


def test_epochs_extends_a_finished_run_as_documented(tmp_path, mini_mnist, reference):
    """Constant schedule: a 2-epoch run extended to 4 ends as the 4-epoch run. Cosine: T
    becomes the longer run's, so a 2-epoch run extended to 3 does not end as the 3-epoch run
    (its first 2 epochs followed the shorter curve), while an unfinished one does."""
    out = tmp_path / "two"
    assert train(*ARGS, "--epochs", 2, "--out", out, mini=mini_mnist).exit_code == 0
    assert train("--resume", out, "--epochs", 4, mini=mini_mnist).exit_code == 0
    assert same_files(out, reference / "four")
    assert metrics(out) == metrics(reference / "four")

    cosine = tmp_path / "cosine"
    args = [*ARGS, "--schedule", "cosine", "--out", cosine]
    assert train(*args, "--epochs", 2, mini=mini_mnist).exit_code == 0
    assert train("--resume", cosine, "--epochs", 3, mini=mini_mnist).exit_code == 0
    assert not same_files(cosine, reference / "cosine")


def test_resume_refuses_what_would_change_the_run(tmp_path, mini_mnist, reference):
    out = tmp_path / "r"
    assert train(*ARGS, "--epochs", 2, "--out", out, mini=mini_mnist).exit_code == 0
    before = (out / "checkpoint.npz").read_bytes()

    def error(*args) -> tuple[int, str]:
        result = train("--resume", out, *args, mini=mini_mnist)
        assert "Traceback" not in result.output, result.output
        return result.exit_code, result.output.strip().splitlines()[-1]

    refused = (
        "Error: --resume goes on with the run's own configuration and finishes it in "
        "place; --lr, --optimizer, --seed, --out would change it (only --epochs may be "
        "given, to extend it)"
    )
    options = ("--lr", 0.1, "--optimizer", "sgd", "--seed", 1, "--out", tmp_path)
    assert error(*options) == (2, refused)
    finished = (
        f"Error: --resume {out}: the run is finished (2 epochs); give --epochs N above 2 "
        "to extend it"
    )
    assert error() == (1, finished)
    fewer = (
        "Error: Invalid value for '--epochs' (config key epochs): the run has trained 2 "
        "epochs already; give more to extend it"
    )
    assert error("--epochs", 1) == (2, fewer)
    assert (out / "checkpoint.npz").read_bytes() == before


def test_a_checkpoint_of_another_version_or_tampered_is_one_line(
    tmp_path, mini_mnist, monkeypatch
):
    out = tmp_path / "r"
    with monkeypatch.context() as patch:
        stop_after(patch, 1)
        assert (
            train(*ARGS, "--epochs", 2, "--out", out, mini=mini_mnist).exit_code == 130
        )
    path = out / "checkpoint.npz"
    c = read_checkpoint(path)
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint_module, "__version__", "0.0.1")
        write_checkpoint(
            path, network=c.weights.network, dataset="mnist", optimizer=c.optimizer,
            rng=c.generator(), epoch=c.epoch, step=c.step, history=c.history,
            config_toml=c.config_toml,
        )  # fmt: skip
    result = train("--resume", out, mini=mini_mnist)
    assert result.exit_code == 1
    other = (
        f"Error: {out / 'checkpoint.npz'}: written by mnist-cli 0.0.1, this is "
        f"{checkpoint_module.__version__}: resume it with mnist-cli 0.0.1, or train again"
    )
    assert result.output.strip().splitlines() == [other]

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte in the middle of an array
    path.write_bytes(bytes(data))
    result = train("--resume", out, mini=mini_mnist)
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}"), lines


@pytest.mark.parametrize(
    "code, cause",
    [(errno.ENOSPC, "free some space"), (errno.EACCES, "check the folder")],
)
def test_a_full_disk_or_read_only_folder_while_checkpointing_keeps_the_previous_one(
    tmp_path, mini_mnist, monkeypatch, code, cause
):
    """(The tests run as root, which a read-only folder does not stop: the write's error is
    raised instead.)"""
    out = tmp_path / "r"
    real = checkpoint_module.replacing
    calls = []

    def replacing(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:  # epoch 2's checkpoint
            raise OSError(code, "simulated", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "replacing", replacing)
    result = train(*ARGS, "--epochs", 3, "--out", out, mini=mini_mnist)

    assert result.exit_code == 1, result.output
    line = (
        f"Error: cannot write the checkpoint {out / 'checkpoint.npz'}: simulated; the "
        f"previous one is kept: {cause}; then mnist-train --resume {out}"
    )
    assert result.output.strip().splitlines() == [line]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz"]
    assert read_checkpoint(out / "checkpoint.npz").epoch == 1


def test_stopped_while_the_run_is_written_the_last_checkpoint_finishes_it(
    tmp_path, mini_mnist, monkeypatch, reference
):
    out = tmp_path / "r"
    with monkeypatch.context() as patch:
        from mnist_cli.rundir import weights as weights_module

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        patch.setattr(weights_module, "fsync_files", interrupted)
        stopped = train(*ARGS, "--epochs", 4, "--out", out, mini=mini_mnist)
    assert stopped.exit_code == 130, stopped.output
    assert "after epoch 4/4" in stopped.output
    listing = CliRunner().invoke(runs_command, [str(tmp_path)])
    assert "interrupted at epoch 4/4" in listing.output, listing.output

    assert train("--resume", out, mini=mini_mnist).exit_code == 0
    assert same_files(out, reference / "four")
    assert metrics(out) == metrics(reference / "four")


def test_the_checkpoint_holds_the_runs_config(tmp_path, mini_mnist):
    out = tmp_path / "r"
    assert train(*ARGS, "--epochs", 1, "--out", out, mini=mini_mnist).exit_code == 0
    c = read_checkpoint(out / "checkpoint.npz")
    assert c.config_toml == (out / "config.toml").read_text()


def test_a_run_continued_from_another_resumes_with_its_numbering(
    tmp_path, mini_mnist, monkeypatch
):
    """--init-from RUN, stopped, resumed: the history starts with RUN's epochs, the numbering
    follows them (in the stop line, mnist-runs and the history), metrics.json is the
    uninterrupted continuation's."""
    first, whole, out = tmp_path / "first", tmp_path / "whole", tmp_path / "r"
    assert train(*ARGS, "--epochs", 2, "--out", first, mini=mini_mnist).exit_code == 0
    more = ["--init-from", first, "--epochs", 3, "--lr", "0.01", "-q"]
    assert train(*more, "--out", whole, mini=mini_mnist).exit_code == 0
    with monkeypatch.context() as patch:
        stop_after(patch, 3)  # the continued run's first epoch, 3 of 5
        stopped = train(*more, "--out", out, mini=mini_mnist)
    assert stopped.exit_code == 130, stopped.output
    k = read_checkpoint(out / "checkpoint.npz").epoch + 2
    assert f"after epoch {k}/5" in stopped.output, stopped.output
    listing = CliRunner().invoke(runs_command, [str(tmp_path)])
    assert f"interrupted at epoch {k}/5" in listing.output, listing.output

    assert train("--resume", out, mini=mini_mnist).exit_code == 0
    assert same_files(out, whole)
    assert metrics(out) == metrics(whole)
    assert [h["epoch"] for h in metrics(out)["history"]] == [1, 2, 3, 4, 5]


def test_a_run_in_use_is_named_by_resume_and_no_other_place_is_offered(
    tmp_path, mini_mnist
):
    out = tmp_path / "r"
    assert train(*ARGS, "--epochs", 1, "--out", out, mini=mini_mnist).exit_code == 0
    before = sorted(p.name for p in out.iterdir())
    with claim_run_dir(out, force=True):  # another mnist-train holds it
        result = train("--resume", out, "--epochs", 2, mini=mini_mnist)
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1] == (
        f"Error: --resume {out} is in use by another mnist-train run; wait for it to end"
    )
    assert sorted(p.name for p in out.iterdir()) == before
