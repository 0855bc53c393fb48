"""fast/conv.py against the reference layers chained in float64: the same loss and the same
gradient of every parameter, batch for batch, through a few SGD steps."""

import numpy as np
import pytest

from mnist_cli.fast.conv import FastCNN
from mnist_cli.fast.shared import SharedCNN
from mnist_cli.nn.architecture import assemble, dense_layers
from mnist_cli.nn.conv import Conv2d, Flatten, MaxPool2d, Unflatten
from mnist_cli.nn.layers import Act
from mnist_cli.nn.network import Network, init_network


def reference_layers(net: FastCNN) -> tuple:
    """The network's own layers (nn/), as nn.architecture.cnn_layers builds them, for the
    fast path's sizes (any input shape)."""
    layers: list = [Unflatten(net.in_shape)]
    for s in net.blocks:
        layers += [Conv2d(s.c_in, s.c_out, s.k), Act("relu"), MaxPool2d()]
    return (*layers, Flatten(), *dense_layers(net.dense[1:-1], "relu"))


def network_of(layers, params) -> Network:
    """The reference network of `layers` with the flat [W₁, b₁, …] as its parameters."""
    per_layer = assemble(layers, "softmax", zip(params[::2], params[1::2])).params
    return Network(
        tuple(layers), per_layer, "softmax", (int(np.prod(layers[0].shape)),)
    )


def reference_loss_and_grads(layers, params, X, y, loss):
    """nn/network.py's loss and gradients (float64), as a flat list like FastCNN's."""
    network = network_of(layers, params)
    L, grads = network.loss_and_grads(loss, X, np.eye(10)[y])
    return L, [g for layer_grads in grads for g in layer_grads]


def images(rng, n, in_shape):
    """Random pixels inside a blank border, as MNIST's digits: the blank parts make exact ties
    in the first pool's windows, which both sides must send to the same position."""
    X = np.zeros((n, *in_shape))
    X[:, :, 3:-3, 3:-3] = rng.random((n, in_shape[0], in_shape[1] - 6, in_shape[2] - 6))
    return X.reshape(n, -1)


def init(layers, net, rng):
    """The flat [W₁, b₁, …] of the layers' own initialisation, float64."""
    in_shape = (int(np.prod(net.in_shape)),)
    network = init_network(layers, "softmax", in_shape, rng, np.float64)
    return [p for layer_params in network.params for p in layer_params]


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
    Z = network_of(layers, params).logits(X)
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
