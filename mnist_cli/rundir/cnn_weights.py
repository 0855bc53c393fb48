"""Weights format 3, the cnn's: its layers as text, checked before any array is read.

    model "cnn", dataset, format_version 3, and
    layers   (string)  the layer list, one entry per layer, e.g.
                       "conv 1 16 5; relu; pool; conv 16 32 5; relu; pool; flatten;
                        dense 512 128; relu; dense 128 10"
                       (conv C_in C_out k: a k × k convolution; pool: 2 × 2 max-pool;
                        dense n_in n_out)
    W{l}, b{l}         float32, the l-th layer with parameters: a convolution's
                       (C_out, C_in, k, k), (C_out,); a dense layer's (n_out, n_in), (n_out,)

The list is parsed and every shape chained from the 1 × 28 × 28 picture to the K = 10 outputs
and bounded (MAX_BLOCKS blocks of at most MAX_CHANNELS channels, MAX_HIDDEN_LAYERS hidden
layers of at most MAX_UNITS units) from the file's listing; only then are the arrays read, each
against its exact shape (npz.py). Formats 1 and 2 are weights.py's.
"""

from pathlib import Path

import numpy as np

from mnist_cli.config.choices import (
    IMAGE,
    MAX_BLOCKS,
    MAX_CHANNELS,
    MAX_HIDDEN_LAYERS,
    MAX_UNITS,
)
from mnist_cli.errors import WeightsError
from mnist_cli.nn import K
from mnist_cli.nn.architecture import cnn_layers
from mnist_cli.nn.conv import Conv2d, Flatten, MaxPool2d
from mnist_cli.nn.layers import Act, Dense
from mnist_cli.nn.network import Network
from mnist_cli.rundir import npz

CNN_VERSION = 3
MAX_LAYERS_CHARS = 400  # the longest layer list: 4 blocks and 4 hidden layers fit


def layer_text(network: Network) -> str:
    """The `layers` member: the network's layers as "conv 1 16 5; relu; pool; …"."""
    words, shape = [], network.in_shape
    for layer in network.layers:
        if isinstance(layer, Conv2d):
            words.append(f"conv {layer.c_in} {layer.c_out} {layer.k}")
        elif isinstance(layer, MaxPool2d):
            words.append("pool")
        elif isinstance(layer, Flatten):
            words.append("flatten")
        elif isinstance(layer, Dense):
            words.append(f"dense {shape[0]} {layer.units}")
        elif isinstance(layer, Act):
            words.append(layer.name)
        shape = layer.out_shape(shape)
    return "; ".join(w for w in words)


def cnn_arrays(network: Network) -> dict[str, np.ndarray]:
    """The `layers` member and W{l}, b{l} of each layer with parameters (float32)."""
    arrays: dict[str, np.ndarray] = {"layers": np.array(layer_text(network))}
    for l, (W, b) in enumerate((p for p in network.params if p), start=1):
        arrays[f"W{l}"], arrays[f"b{l}"] = W.astype(np.float32), b.astype(np.float32)
    return arrays


def parse_layers(file: Path, text: str) -> tuple[tuple, tuple[int, ...], int]:
    """(channels, hidden, kernel) of a `layers` text that is exactly what cnn_layers builds
    (and layer_text writes) from them, every size within its bound; else WeightsError."""

    def refuse(why: str) -> WeightsError:
        return WeightsError(
            f"{file}: layers {text[:80]!r}: {why}; give weights mnist-train wrote"
        )

    words = [w.strip().split() for w in text.split(";")]
    convs = [w for w in words if w and w[0] == "conv"]
    dense = [w for w in words if w and w[0] == "dense"]
    try:
        channels = tuple(int(w[2]) for w in convs)
        kernel = int(convs[0][3]) if convs else 0
        hidden = tuple(int(w[2]) for w in dense[:-1])
    except (IndexError, ValueError):
        raise refuse("a conv or dense entry without its sizes") from None
    if not 1 <= len(channels) <= MAX_BLOCKS or not 1 <= kernel <= IMAGE[1]:
        raise refuse(f"1 to {MAX_BLOCKS} convolutions of one kernel size expected")
    if not all(1 <= c <= MAX_CHANNELS for c in channels):
        raise refuse(f"a convolution has 1 to {MAX_CHANNELS} channels")
    if len(hidden) > MAX_HIDDEN_LAYERS or not all(1 <= n <= MAX_UNITS for n in hidden):
        raise refuse(
            f"at most {MAX_HIDDEN_LAYERS} hidden layers of 1 to {MAX_UNITS} units"
        )
    try:
        expected = layer_text(
            Network(cnn_layers(channels, kernel, hidden), (), "softmax", (784,))
        )
    except ValueError as e:  # a kernel larger than a block's map
        raise refuse(str(e)) from None
    if " ".join(text.split()) != expected:
        raise refuse(f"not the layers of a cnn; expected {expected!r}")
    return channels, hidden, kernel


def cnn_spec(layers: tuple) -> dict[str, npz.Expect]:
    """What the file may hold for these layers: each W{l}, b{l} of its exact size."""
    spec = {"layers": npz.string(MAX_LAYERS_CHARS)}
    shape = (784,)
    l = 0
    for layer in layers:
        if isinstance(layer, Conv2d | Dense):
            l += 1
            W = (
                (layer.c_out, layer.c_in, layer.k, layer.k)
                if isinstance(layer, Conv2d)
                else (layer.units, shape[0])
            )
            spec[f"W{l}"] = npz.float32(int(np.prod(W)), len(W))
            spec[f"b{l}"] = npz.float32(W[0], 1)
        shape = layer.out_shape(shape)
    return spec


def cnn_network(file: Path, arrays: dict, checked_array) -> Network:
    """The cnn of a format 3 file: its layers parsed, each W{l}, b{l} of its exact shape and
    finite (`checked_array` of weights.py)."""
    channels, hidden, kernel = parse_layers(file, str(arrays["layers"]))
    layers = cnn_layers(channels, kernel, hidden)
    params, shape, l = [], (784,), 0
    for layer in layers:
        if isinstance(layer, Conv2d | Dense):
            l += 1
            if isinstance(layer, Conv2d):
                W_shape = (layer.c_out, layer.c_in, layer.k, layer.k)
            else:
                W_shape = (layer.units, shape[0])
            W = checked_array(file, arrays, f"W{l}", W_shape)
            b = checked_array(file, arrays, f"b{l}", W_shape[:1])
            params.append((W, b))
        else:
            params.append(())
        shape = layer.out_shape(shape)
    if shape != (K,):
        raise WeightsError(f"{file}: the layers give {shape} outputs, not {K}")
    return Network(layers, tuple(params), "softmax", (784,))


def cnn_members(file: Path, layers_text: str) -> dict[str, npz.Expect]:
    """The spec to read a format 3 file by, from its `layers` member."""
    channels, hidden, kernel = parse_layers(file, layers_text)
    return cnn_spec(cnn_layers(channels, kernel, hidden))
