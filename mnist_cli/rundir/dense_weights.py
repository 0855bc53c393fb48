"""Weights formats 1 and 2, the dense models': their arrays checked against each other.

    version 1 (linear, softmax)  W float32 (10, 784), b float32 (10,)
    version 2 (mlp)              activation (string), and for l = 1…L
                                 W{l} float32 (n_l, n_{l−1}), b{l} float32 (n_l,)

(weights.py reads and writes the file; cnn_weights.py is format 3.)
"""

from pathlib import Path

import numpy as np

from mnist_cli.config.choices import ACTIVATIONS, MAX_UNITS
from mnist_cli.errors import WeightsError
from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import from_dense
from mnist_cli.nn.layers import Params
from mnist_cli.nn.network import Network


def checked_array(file: Path, arrays: dict, key: str, shape: tuple) -> np.ndarray:
    """arrays[key] (float32: npz.py checked the dtype), if it is there, of `shape`, finite."""
    if key not in arrays:
        raise WeightsError(f"{file}: not an mnist-cli weights file (missing {key})")
    a = arrays[key]
    if a.shape != shape:
        raise WeightsError(f"{file}: {key} has shape {a.shape}, expected {shape}")
    if not np.isfinite(a).all():
        raise WeightsError(f"{file}: {key} contains NaN or infinite values")
    return a


def one_layer_network(file: Path, arrays: dict, kind: str) -> Network:
    """A version 1 file (linear, softmax): W (K, D), b (K,)."""
    missing = [key for key in ("W", "b") if key not in arrays]
    if missing:
        raise WeightsError(
            f"{file}: not an mnist-cli weights file (missing {', '.join(missing)})"
        )
    W = checked_array(file, arrays, "W", (K, D))
    b = checked_array(file, arrays, "b", (K,))
    return from_dense(kind, [Params(W=W, b=b)])


def mlp_network(file: Path, arrays: dict, version: int) -> Network:
    """A version 2 file (mlp): activation, and W{l} (n_l, n_{l−1}), b{l} (n_l,) for
    l = 1…L, each shape checked against its neighbours: W1 takes the D = 784 pixels, each
    W{l} takes what W{l−1} gives, the last gives K = 10; at most MAX_HIDDEN_LAYERS hidden
    layers (WEIGHTS_SPEC allows no more) of at most MAX_UNITS units."""
    if version < 2:
        raise WeightsError(f"{file}: an mlp needs format version 2, not {version}")
    activation = str(arrays.get("activation", ""))
    if activation not in ACTIVATIONS:
        raise WeightsError(
            f"{file}: unknown activation {activation!r}; "
            f"expected one of {', '.join(ACTIVATIONS)}"
        )
    L = sum(1 for key in arrays if key.startswith("W") and key[1:].isdigit())
    if L < 2:
        raise WeightsError(f"{file}: {L} layers; an mlp has at least 2 (W1 … WL)")
    layers, fan_in = [], D
    for l in range(1, L + 1):
        W = arrays.get(f"W{l}")
        if W is None:
            raise WeightsError(f"{file}: W{l} is missing")
        n = K if l == L else W.shape[0]
        if not 1 <= n <= MAX_UNITS:
            raise WeightsError(
                f"{file}: W{l} has {n} units; a layer has 1 to {MAX_UNITS}"
            )
        W = checked_array(file, arrays, f"W{l}", (n, fan_in))
        b = checked_array(file, arrays, f"b{l}", (n,))
        layers.append(Params(W=W, b=b))
        fan_in = n
    return from_dense("mlp", layers, activation)
