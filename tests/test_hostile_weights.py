"""Weights files with members the model does not use (issue 22): refused in one line naming
them, as the strict reader refuses everything else it was not asked for."""

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_cli.cli import predict_command
from mnist_cli.errors import WeightsError
from mnist_cli.nn.architecture import describe
from mnist_cli.rundir.weights import load_weights


def zeros(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


META = {"dataset": np.array("mnist")}
# what mnist-train writes: an mlp 784-8-10 (format 2), a softmax (format 1)
MLP = {
    **META,
    "model": np.array("mlp"),
    "activation": np.array("relu"),
    "format_version": np.array(2),
    "W1": zeros(8, 784),
    "b1": zeros(8),
    "W2": zeros(10, 8),
    "b2": zeros(10),
}
SOFTMAX = {
    **META,
    "model": np.array("softmax"),
    "format_version": np.array(1),
    "W": zeros(10, 784),
    "b": zeros(10),
}


def extra(arrays: dict, **members) -> dict:
    return {**arrays, **members}


@pytest.mark.parametrize(
    "arrays, stray, model",
    [
        (extra(MLP, b3=zeros(10)), "b3", "mlp 784-8-10 relu"),
        (extra(MLP, W=zeros(10, 784), b=zeros(10)), "W, b", "mlp 784-8-10 relu"),
        (extra(SOFTMAX, W1=zeros(10, 784)), "W1", "softmax"),
        (extra(SOFTMAX, activation=np.array("relu")), "activation", "softmax"),
    ],
    ids=[
        "mlp b3 without W3",
        "mlp with W and b",
        "softmax with W1",
        "softmax activation",
    ],
)
def test_a_member_the_model_does_not_use_is_refused(tmp_path, arrays, stray, model):
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    message = (
        f"{path}: unexpected member {stray} for a {model} model; "
        "give a weights.npz mnist-train wrote"
    )
    with pytest.raises(WeightsError) as e:
        load_weights(path)
    assert str(e.value) == message
    result = CliRunner().invoke(predict_command, [str(path), str(path)])
    assert (result.exit_code, result.output) == (1, f"Error: {message}\n")


@pytest.mark.parametrize(
    "arrays, model", [(MLP, "mlp 784-8-10 relu"), (SOFTMAX, "softmax")]
)
def test_every_member_the_writer_writes_is_read(tmp_path, arrays, model):
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    assert describe(load_weights(path).network) == model
