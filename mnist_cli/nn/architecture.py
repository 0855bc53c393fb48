"""The models a user names, as networks: the one place where "linear", "softmax" and "mlp"
become layers, and layers become those names again (for the weights file, the run listing and
the summary line).

    linear   [Dense(K)]                                  identity output
    softmax  [Dense(K)]                                  softmax output
    mlp      [Dense(n₁), act, …, Dense(n_{L−1}), act, Dense(K)]   softmax output
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from mnist_cli.config.choices import INITS
from mnist_cli.nn import D, K
from mnist_cli.nn.layers import Act, Activation, Dense, Params
from mnist_cli.nn.network import Network, init_network

Kind = Literal["linear", "softmax", "mlp"]  # one of config.choices.KINDS
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
) -> Network:
    """A model's starting weights, drawn from `rng` (same seed, same weights).

    linear and softmax: zeros, or N(0, 0.01²) for "normal". mlp: only "normal", which for it is
    the scaled normal N(0, gain/fan_in) (Dense): zeros would keep every hidden unit identical.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {INITS}")
    if kind != "mlp":
        std = 0.0 if init == "zeros" else SMALL_STD
        output = "identity" if kind == "linear" else "softmax"
        return init_network((Dense(K, std=std),), output, (D,), rng, dtype)
    if init != "normal":
        raise ValueError(f"an mlp starts from init 'normal', not {init!r}")
    return init_network(dense_layers(hidden, activation), "softmax", (D,), rng, dtype)


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
    """The name of the model the network is: linear, softmax or mlp."""
    if network.output == "identity":
        return "linear"
    return "softmax" if len(network.layers) == 1 else "mlp"


def activation_of(network: Network) -> Activation | None:
    """The hidden layers' activation, None for a one-layer model."""
    acts = [layer.name for layer in network.layers if isinstance(layer, Act)]
    return acts[0] if acts else None


def sizes(network: Network) -> tuple[int, ...]:
    """(D, n₁, …, K): every dense layer's input size, then the last one's output size."""
    ps = dense_params(network)
    return (ps[0].W.shape[1], *(p.W.shape[0] for p in ps))


def hidden_of(network: Network) -> tuple[int, ...]:
    """The hidden layers' widths, () for linear and softmax."""
    return sizes(network)[1:-1]


def describe(network: Network) -> str:
    """The model in one phrase: "linear", "softmax", or "mlp 784-256-10 relu"."""
    kind = kind_of(network)
    if kind != "mlp":
        return kind
    return f"mlp {'-'.join(map(str, sizes(network)))} {activation_of(network)}"


def one_layer(kind: Kind, params: Params) -> Network:
    """The linear or softmax model of W (K, D), b (K,)."""
    return from_dense(kind, [params])


def score_bounds(network: Network) -> tuple[float, ...]:
    """For each dense layer l, a bound m_l of |z| over every input in [0, 1]^D:
    m_l = max_k Σ_j |W_kj| m_{l−1} + |b_k|, with m_0 = 1 and m = 1 after a sigmoid or tanh
    (a relu keeps m); in float64, where float32 products would overflow."""
    bounds, m = [], 1.0
    for p in dense_params(network):
        row_sums = np.abs(p.W).astype(np.float64) @ np.full(p.W.shape[1], m)  # (n_l,)
        bounds.append(float((row_sums + np.abs(p.b)).max()))
        m = 1.0 if activation_of(network) in ("sigmoid", "tanh") else bounds[-1]
    return tuple(bounds)
