"""The training loop's fast step is the reference math, step for step.

train() gathers uint8 rows, applies the 1/255 to the small products (x_scale) and writes into
preallocated arrays; the reference is the plain equations of models.py in float64:
X = pixels / 255, models.loss_and_gradients, models.sgd_step. Both see the same shuffles.
"""

import numpy as np
import pytest

from mnist_cli.data import load_split
from mnist_cli.datasets import MNIST
from mnist_cli.models import (
    MODEL_KINDS,
    K,
    Workspace,
    init_params,
    inputs,
    loss_and_gradients,
    one_hot,
    sgd_step,
)
from mnist_cli.train import batches, train

LR = {"softmax": 0.5, "linear": 0.005}


@pytest.fixture(scope="module")
def few_images(mnist_cache, mnist_server_url):
    """The first 1,050 training images: 10 batches of 100 and a last, smaller batch of 50."""
    split = load_split(MNIST, "train", mnist_cache, mirrors=[mnist_server_url])
    return split.images[:1050], split.labels[:1050]


def reference_train(kind, images, labels, *, epochs, batch_size, lr, seed):
    """SGD written as plainly as the note: float64, new arrays every step."""
    rng = np.random.default_rng(seed)
    params = init_params("normal", rng, np.float64)
    Y_all = one_hot(labels, np.float64)
    losses = []
    for _ in range(epochs):
        for idx in batches(len(labels), batch_size, rng):
            X = inputs(images[idx], np.float64)  # (B, D) pixels / 255
            loss, grads = loss_and_gradients(kind, params, X, Y_all[idx])
            params = sgd_step(params, grads, lr)
            losses.append(loss)
    return params, losses


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_workspace_and_raw_pixels_give_the_plain_gradient(kind, few_images):
    """loss_and_gradients on raw pixels with x_scale = 1/255, writing into a Workspace, is the
    plain call on X = pixels / 255 (float64, so only rounding differs)."""
    images, labels = few_images
    rng = np.random.default_rng(2)
    params = init_params("normal", rng, np.float64)
    Y = one_hot(labels[:32], np.float64)
    loss, grads = loss_and_gradients(kind, params, inputs(images[:32], np.float64), Y)
    work = Workspace.for_batch(32, np.float64)
    raw = images[:32].astype(np.float64)  # (32, D) pixels 0..255
    fast_loss, fast = loss_and_gradients(
        kind, params, raw, np.asfortranarray(Y), x_scale=1 / 255, work=work
    )
    assert fast is work.grads, "with a Workspace the gradients are written into it"
    assert fast_loss == pytest.approx(loss, rel=1e-12), f"{kind}: {fast_loss} != {loss}"
    np.testing.assert_allclose(fast.W, grads.W, rtol=1e-10, atol=1e-15, err_msg=kind)
    np.testing.assert_allclose(fast.b, grads.b, rtol=1e-10, atol=1e-15, err_msg=kind)
    assert work.Z.shape == work.G.shape == (32, K)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_fast_training_equals_the_reference_math(kind, few_images):
    images, labels = few_images
    ref, ref_losses = reference_train(
        kind, images, labels, epochs=2, batch_size=100, lr=LR[kind], seed=7
    )
    losses = []
    rng = np.random.default_rng(7)
    params, history = train(
        kind,
        init_params("normal", rng),  # float32, as mnist-train trains
        images,
        labels,
        epochs=2,
        batch_size=100,
        lr=LR[kind],
        rng=rng,
        on_batch=lambda n, loss: losses.append(loss),
    )
    assert params.W.dtype == np.float32, f"expected float32 W, got {params.W.dtype}"
    assert len(losses) == len(ref_losses) == 22, f"{len(losses)} batches, expected 22"
    for name, fast, slow in (("W", params.W, ref.W), ("b", params.b, ref.b)):
        error = np.max(np.abs(fast - slow)) / np.max(np.abs(slow))
        assert error < 1e-5, (
            f"{kind}: {name} after 22 steps differs from the float64 reference by "
            f"{error:.2e} of its largest entry, expected < 1e-5 (float32 rounding)"
        )
    np.testing.assert_allclose(
        losses, ref_losses, rtol=1e-5, err_msg=f"{kind}: batch losses"
    )
    epoch_means = [np.average(ref_losses[:11], weights=[100] * 10 + [50])]
    assert history[0].train_loss == pytest.approx(epoch_means[0], rel=1e-5), (
        f"{kind}: epoch 1 loss {history[0].train_loss}, expected {epoch_means[0]}"
    )


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_same_seed_same_weights_and_given_params_untouched(kind, few_images):
    images, labels = few_images
    start = init_params("normal", np.random.default_rng(1))
    before = start.W.copy()
    runs = [
        train(
            kind,
            start,
            images,
            labels,
            epochs=1,
            batch_size=64,
            lr=LR[kind],
            rng=np.random.default_rng(3),
        )[0]
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].W, runs[1].W, f"{kind}: same seed, other W")
    np.testing.assert_array_equal(runs[0].b, runs[1].b, f"{kind}: same seed, other b")
    np.testing.assert_array_equal(start.W, before, f"{kind}: train() changed its input")
