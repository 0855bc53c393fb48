"""The models a user names, as networks: the one place where "linear", "softmax", "mlp" and
"cnn" become layers, and layers become those names again (for the weights file, the run
listing and the summary line).

    linear   [Dense(K)]                                                  identity output
    softmax  [Dense(K)]                                                  softmax output
    mlp      [Dense(n₁), act, …, Dense(n_{L−1}), act, Dense(K)]         softmax output
    cnn      [Unflatten(1, 28, 28), (Conv2d(C_l, k), relu, MaxPool2d) per block, Flatten,
              Dense(n₁), relu, …, Dense(K)]                              softmax output
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from mnist_cli.config.choices import IMAGE, INITS
from mnist_cli.nn import D, K
from mnist_cli.nn.conv import Conv2d, Flatten, MaxPool2d, Unflatten
from mnist_cli.nn.layers import Act, Activation, Dense, Params, inputs
from mnist_cli.nn.network import Network, init_network

Kind = Literal["linear", "softmax", "mlp", "cnn"]  # one of config.choices.KINDS
SMALL_STD = 0.01  # the "normal" init of linear and softmax: N(0, 0.01²)


def dense_layers(
    hidden: Sequence[int], activation: Activation | None, std: float | None = None
) -> tuple:
    """[Dense(n₁), act, …, Dense(K)]: gain 2 (He) for relu, 1 for sigmoid and tanh."""
    gain = 2.0 if activation == "relu" else 1.0
    layers: list = []
    for n in hidden:
        layers += [Dense(n, gain, std), Act(activation)]
    return (*layers, Dense(K, gain, std))


def build(
    kind: Kind,
    init: str,
    rng: np.random.Generator,
    hidden: tuple[int, ...] = (),
    activation: Activation | None = None,
    dtype: np.dtype = np.float32,
    *,
    channels: tuple[int, ...] = (),
    kernel: int = 5,
) -> Network:
    """A model's starting weights, drawn from `rng` (same seed, same weights).

    linear and softmax: zeros, or N(0, 0.01²) for "normal". mlp and cnn: only "normal", which
    for them is He's N(0, 2/fan_in) (or 1/fan_in for sigmoid and tanh units): zeros would keep
    every hidden unit identical.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {INITS}")
    if kind == "cnn":
        return init_network(
            cnn_layers(channels, kernel, hidden), "softmax", (D,), rng, dtype
        )
    if kind != "mlp":
        std = 0.0 if init == "zeros" else SMALL_STD
        output = "identity" if kind == "linear" else "softmax"
        return init_network((Dense(K, std=std),), output, (D,), rng, dtype)
    if init != "normal":
        raise ValueError(f"an mlp starts from init 'normal', not {init!r}")
    return init_network(dense_layers(hidden, activation), "softmax", (D,), rng, dtype)


def cnn_layers(channels: Sequence[int], kernel: int, hidden: Sequence[int]) -> tuple:
    """One block per entry of `channels` (k × k convolution → relu → 2 × 2 max-pool), then
    the dense layers of `hidden` (relu) and the K outputs."""
    layers: list = [Unflatten(IMAGE)]
    c_in = IMAGE[0]
    for c_out in channels:
        layers += [Conv2d(c_in, c_out, kernel), Act("relu"), MaxPool2d()]
        c_in = c_out
    return (*layers, Flatten(), *dense_layers(hidden, "relu"))


def assemble(layers: tuple, output: str, weights: Sequence) -> Network:
    """The network of `layers` whose layers with parameters take `weights`' (W, b) in order,
    the others () (a weights file's, a gradient check's)."""
    given = iter(weights)
    params = tuple(
        tuple(next(given)) if isinstance(la, Dense | Conv2d) else () for la in layers
    )
    return Network(tuple(layers), params, output, (D,))


def from_dense(
    kind: Kind, params: Sequence[Params], activation: Activation | None = None
) -> Network:
    """The network of `kind` with the given dense layers' (W_l, b_l) (a weights file's)."""
    hidden = tuple(p.W.shape[0] for p in params[:-1])
    layers = dense_layers(hidden, activation)
    given = iter(params)
    full = [Params(*next(given)) if isinstance(la, Dense) else () for la in layers]
    output = "identity" if kind == "linear" else "softmax"
    return Network(layers, tuple(full), output, (params[0].W.shape[1],))


def dense_params(network: Network) -> tuple[Params, ...]:
    """(W_l, b_l) of each dense layer, in order."""
    return tuple(
        Params(*p) for layer, p in zip(network.layers, network.params)
        if isinstance(layer, Dense)
    )  # fmt: skip


def kind_of(network: Network) -> Kind:
    """The name of the model the network is: linear, softmax, mlp or cnn."""
    if network.output == "identity":
        return "linear"
    if convolutions(network):
        return "cnn"
    return "softmax" if len(network.layers) == 1 else "mlp"


def activation_of(network: Network) -> Activation | None:
    """The hidden layers' activation, None for a one-layer model."""
    acts = [layer.name for layer in network.layers if isinstance(layer, Act)]
    return acts[0] if acts else None


def convolutions(network: Network) -> tuple[Conv2d, ...]:
    """The network's convolution layers, in order."""
    return tuple(layer for layer in network.layers if isinstance(layer, Conv2d))


def sizes(network: Network) -> tuple[int, ...]:
    """(D, n₁, …, K): every dense layer's input size, then the last one's output size."""
    ps = dense_params(network)
    return (ps[0].W.shape[1], *(p.W.shape[0] for p in ps))


def hidden_of(network: Network) -> tuple[int, ...]:
    """The hidden layers' widths, () for linear and softmax."""
    return sizes(network)[1:-1]


def describe(network: Network) -> str:
    """The model in one phrase: "linear", "softmax", "mlp 784-256-10 relu" or
    "cnn 16,32 k5 / 128" (channels, kernel / hidden widths)."""
    kind = kind_of(network)
    if kind == "cnn":
        convs = convolutions(network)
        widths = ",".join(str(c.c_out) for c in convs)
        hidden = ",".join(map(str, hidden_of(network))) or "-"
        return f"cnn {widths} k{convs[0].k} / {hidden}"
    if kind != "mlp":
        return kind
    return f"mlp {'-'.join(map(str, sizes(network)))} {activation_of(network)}"


def one_layer(kind: Kind, params: Params) -> Network:
    """The linear or softmax model of W (K, D), b (K,)."""
    return from_dense(kind, [params])


def score_bounds(network: Network) -> tuple[float, ...]:
    """For each layer with weights, a bound m_l of |z| over every input in [0, 1]^D:
    m_l = max over its outputs of Σ |w| m_{l−1} + |b| (a convolution's output channel sums its
    C_in·k·k weights), with m_0 = 1; m = 1 after a sigmoid or tanh, a relu or a max-pool keeps
    it; in float64, where float32 products would overflow."""
    bounds, m = [], 1.0
    for layer, p in zip(network.layers, network.params):
        if p:
            W, b = p
            rows = (
                np.abs(W).astype(np.float64).reshape(len(W), -1).sum(axis=1)
            )  # (n_l,)
            bounds.append(float((rows * m + np.abs(b)).max()))
            m = bounds[-1]
        elif isinstance(layer, Act) and layer.name in ("sigmoid", "tanh"):
            m = 1.0
    return tuple(bounds)


def feature_maps(
    network: Network, digit: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """A picture (D,) uint8 as (28, 28) pixels / 255, and a cnn's feature maps (C, H, W) after
    each of its blocks (the output of each max-pool), by the reference forward pass."""
    X = inputs(digit[None])  # (1, D)
    A, maps = X, []
    for layer, params in zip(network.layers, network.params):
        A = layer.forward(params, A)[0]
        if isinstance(layer, MaxPool2d):
            maps.append(A[0])  # (C, H, W)
    return X[0].reshape(IMAGE[1:]), maps
