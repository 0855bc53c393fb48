"""fast/conv.py against the reference layers chained in float64: the same loss and the same
gradient of every parameter, batch for batch, through a few SGD steps."""

from dataclasses import dataclass

import numpy as np
import pytest

from mnist_cli.fast.conv import FastCNN
from mnist_cli.fast.shared import SharedCNN
from mnist_cli.nn.conv import Conv2d, Flatten, MaxPool2d, Unflatten


# Dense and ReLU in the layer interface, stand-ins for the layer list's own (issue 18)
@dataclass(frozen=True)
class Dense:
    n_in: int
    n_out: int

    def init(self, in_shape, rng, dtype):
        W = rng.standard_normal((self.n_out, self.n_in)) * np.sqrt(2 / self.n_in)
        return W.astype(dtype), np.zeros(self.n_out, dtype)

    def forward(self, params, A):
        W, b = params
        return A @ W.T + b, A  # Z = A Wᵀ + b (B, n_out)

    def backward(self, params, A, dZ):
        W, _ = params
        return dZ @ W, (dZ.T @ A, dZ.sum(axis=0))  # dA, (∂L/∂W, ∂L/∂b)


@dataclass(frozen=True)
class ReLU:
    def init(self, in_shape, rng, dtype):
        return ()

    def forward(self, params, A):
        return np.maximum(A, 0), A > 0

    def backward(self, params, mask, dZ):
        return dZ * mask, ()


def reference_layers(net: FastCNN) -> list:
    layers: list = [Unflatten(net.in_shape)]
    for s in net.blocks:
        layers += [Conv2d(s.c_in, s.c_out, s.k), ReLU(), MaxPool2d()]
    layers.append(Flatten())
    for i, (n_in, n_out) in enumerate(zip(net.dense[:-1], net.dense[1:])):
        layers += [Dense(n_in, n_out)] + ([ReLU()] if i < len(net.dense) - 2 else [])
    return layers


def split(layers, params) -> list[tuple]:
    """The flat list [W₁, b₁, …] as each layer's tuple of parameters."""
    out, i = [], 0
    for layer in layers:
        n = 2 if isinstance(layer, Conv2d | Dense) else 0
        out.append(tuple(params[i : i + n]))
        i += n
    return out


def reference_loss_and_grads(layers, params, X, y, loss):
    """Forward through the layer list, the loss of models.py/mlp.py, backward; float64."""
    per_layer = split(layers, params)
    A, caches = X, []
    for layer, p in zip(layers, per_layer):
        A, cache = layer.forward(p, A)
        caches.append(cache)
    B = len(X)
    S = np.exp(A - A.max(axis=1, keepdims=True))
    S /= S.sum(axis=1, keepdims=True)  # (B, K)
    Y = np.eye(A.shape[1])[y]  # (B, K)
    if loss == "cross-entropy":
        L, dZ = -np.log(S[np.arange(B), y]).sum() / B, (S - Y) / B
    else:
        L, G = np.square(S - Y).sum() / B, 2 * (S - Y) / B
        dZ = S * (G - (G * S).sum(axis=1, keepdims=True))
    grads = []
    for layer, p, cache in reversed(list(zip(layers, per_layer, caches))):
        dZ, g = layer.backward(p, cache, dZ)
        grads = [*g, *grads]
    return L, grads


def images(rng, n, in_shape):
    """Random pixels inside a blank border, as MNIST's digits: the blank parts make exact ties
    in the first pool's windows, which both sides must send to the same position."""
    X = np.zeros((n, *in_shape))
    X[:, :, 3:-3, 3:-3] = rng.random((n, in_shape[0], in_shape[1] - 6, in_shape[2] - 6))
    return X.reshape(n, -1)


def init(layers, net, rng):
    shapes = [*net.in_shape]
    params = []
    for layer in layers:
        params += layer.init(tuple(shapes), rng, np.float64)
        if isinstance(layer, Dense):
            shapes = [layer.n_out]
        elif not isinstance(layer, ReLU):
            shapes = list(layer.out_shape(tuple(shapes)))
    return params


NETS = [  # 12 -> 10 -> 5 -> 3 -> 1: both pools drop an odd edge
    {"channels": (2, 3), "kernel": 3, "hidden": (5,), "in_shape": (1, 12, 12)},
    {"channels": (3, 4), "kernel": 5, "hidden": (8, 6), "in_shape": (1, 28, 28)},
]


def close(ours, theirs, what):
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4 * scale, err_msg=what)


@pytest.mark.parametrize("loss", ["cross-entropy", "squared"])
@pytest.mark.parametrize("spec", NETS)
def test_fast_steps_follow_the_reference_batch_for_batch(spec, loss):
    """Three SGD steps of batches 5, 3, 5 (a last batch has buffers of its own): after each,
    the loss, every gradient (in the reference's shapes) and every parameter agree."""
    rng = np.random.default_rng(0)
    net = FastCNN(**spec, loss=loss)
    layers = reference_layers(net)
    params = init(layers, net, rng)
    assert [p.shape for p in params] == net.param_shapes()
    ours = [p.astype(np.float32) for p in params]
    for step, B in enumerate((5, 3, 5)):
        X, y = images(rng, B, net.in_shape), rng.integers(0, 10, B)
        L, grads = reference_loss_and_grads(layers, params, X, y, loss)
        L32, grads32 = net.loss_and_grads(ours, X.astype(np.float32), y)
        assert L32 == pytest.approx(L, rel=1e-5), (step, L32, L)
        for i, (g32, g) in enumerate(zip(grads32, grads)):
            assert g32.shape == g.shape, (i, g32.shape, g.shape)
            close(g32, g, f"step {step} gradient {i}")
        lr = 0.5 if loss == "squared" else 0.1
        params = [p - lr * g for p, g in zip(params, grads)]
        ours = [p - np.float32(lr) * g for p, g in zip(ours, grads32)]
        for i, (p32, p) in enumerate(zip(ours, params)):
            close(p32, p, f"step {step} parameter {i}")


def test_forward_logits_are_the_references():
    rng = np.random.default_rng(1)
    net = FastCNN(**NETS[1])
    layers = reference_layers(net)
    params = init(layers, net, rng)
    X = images(rng, 7, net.in_shape)
    Z = X
    for layer, p in zip(layers, split(layers, params)):
        Z, _ = layer.forward(p, Z)
    logits = net.forward([p.astype(np.float32) for p in params], X.astype(np.float32))
    assert logits.shape == (10, 7)  # (K, B), the batch axis last
    close(logits.T, Z, "logits")
    p32 = [p.astype(np.float32) for p in params]
    chunked = net.logits(p32, X.astype(np.float32), chunk=3)  # chunks of 3, 3, 1
    close(chunked, Z, "logits by chunks")


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="loss"):
        FastCNN((8,), 5, (), loss="hinge")
    with pytest.raises(ValueError, match="kernel"):
        FastCNN((8, 16, 32), 5, ())  # 28 -> 24 -> 12 -> 8 -> 4 -> 0
    for channels, kernel in (((8, 0), 5), ((), 5), ((8,), 0)):
        with pytest.raises(ValueError, match="need >= 1"):
            FastCNN(channels, kernel, ())


def test_fast_gradients_match_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(2)
    net = FastCNN((4, 6), 5, (16,))
    params = [p.astype(np.float32) for p in init(reference_layers(net), net, rng)]
    X, y = images(rng, 6, net.in_shape).astype(np.float32), rng.integers(0, 10, 6)
    L, grads = net.loss_and_grads(params, X, y)
    t = [torch.tensor(p, requires_grad=True) for p in params]
    a = torch.tensor(X).reshape(6, 1, 28, 28)
    a = F.max_pool2d(F.relu(F.conv2d(a, t[0], t[1])), 2)
    a = F.max_pool2d(F.relu(F.conv2d(a, t[2], t[3])), 2)
    z = F.linear(F.relu(F.linear(a.flatten(1), t[4], t[5])), t[6], t[7])
    tL = F.cross_entropy(z, torch.tensor(y))
    tL.backward()
    assert L == pytest.approx(tL.item(), rel=1e-5)
    for i, (g, tp) in enumerate(zip(grads, t)):
        close(g, tp.grad.numpy(), f"gradient {i}")


def test_pool_ties_go_where_the_reference_sends_them():
    """Kernels that see only their centre pixel, on images of small integers: many windows
    hold equal maxima over different patches, so ∂L/∂W depends on which position of a tie
    takes the gradient (the first in row-major order, on both sides)."""
    rng = np.random.default_rng(3)
    net = FastCNN(channels=(2,), kernel=3, hidden=(), in_shape=(1, 8, 8))
    layers = reference_layers(net)
    params = init(layers, net, rng)
    params[0][:] = 0
    params[0][:, 0, 1, 1] = (1.0, -1.0)  # Z = ±X[y + 1, x + 1]: exact ties
    X, y = rng.integers(0, 3, (6, 64)).astype(np.float64), rng.integers(0, 10, 6)
    _, grads = reference_loss_and_grads(layers, params, X, y, "cross-entropy")
    _, ours = net.loss_and_grads(
        [p.astype(np.float32) for p in params], X.astype(np.float32), y
    )
    for i, (g32, g) in enumerate(zip(ours, grads)):
        close(g32, g, f"gradient {i}")


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_shared_batch_gives_the_whole_batchs_loss_and_gradients(threads):
    """Slices of 7 images (3 threads: 2, 3, 2) weighted by their sizes: the batch's numbers."""
    rng = np.random.default_rng(4)
    net = FastCNN(**NETS[0])
    params = [p.astype(np.float32) for p in init(reference_layers(net), net, rng)]
    X, y = images(rng, 7, net.in_shape).astype(np.float32), rng.integers(0, 10, 7)
    L, grads = net.loss_and_grads(params, X, y)
    grads = [g.copy() for g in grads]
    with SharedCNN(FastCNN(**NETS[0]), threads) as shared:
        for _ in range(2):  # the second call reuses every buffer
            L2, grads2 = shared.loss_and_grads(params, X, y)
            assert L2 == pytest.approx(L, rel=1e-6)
            for i, (g2, g) in enumerate(zip(grads2, grads)):
                close(g2, g, f"gradient {i}")
