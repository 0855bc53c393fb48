"""The "why" of mnist-serve (serve/explain.py): each pixel's contribution to a logit.

For linear and softmax the contributions are exact, W_k ⊙ x, and with b_k they add up to z_k;
for an mlp, ∂z_k/∂x from the network's own backward pass must be the derivative that central
differences measure, and for relu the rest z_k − Σ c_k must be what the biases add along the
active units, as the module's docstring claims.
"""

import numpy as np
import pytest

from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import build, dense_params, one_layer
from mnist_cli.nn.layers import ACTIVATIONS, Params
from mnist_cli.nn.losses import softmax
from mnist_cli.nn.network import Network
from mnist_cli.serve.explain import explain, in_float64, is_exact


def a_one_layer(kind: str, seed: int = 0) -> Network:
    rng = np.random.default_rng(seed)
    W = 0.1 * rng.standard_normal((K, D))  # (K, D)
    return one_layer(kind, Params(W=W, b=rng.standard_normal(K)))


def an_mlp(activation: str, seed: int = 0, hidden=(16, 8)) -> Network:
    """Float64 layers with biases ~ N(0, 0.5²), so that the biases matter."""
    rng = np.random.default_rng(seed)
    network = build("mlp", "normal", rng, hidden, activation, np.float64)
    return network.with_params(
        tuple(
            (p[0], 0.5 * rng.standard_normal(p[1].shape)) if p else p
            for p in network.params
        )
    )


def an_image(seed: int = 1) -> np.ndarray:
    """x (D,) in [0, 1], about a fifth of it inked, like a digit."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(D) < 0.2, rng.random(D), 0.0)


@pytest.mark.parametrize("kind", ["linear", "softmax"])
@pytest.mark.parametrize("k", range(K))
def test_one_layer_contributions_are_exact(kind, k):
    network, x = a_one_layer(kind), an_image()
    why = explain(network, x, k)
    z = network.logits(x[None])[0]  # (K,)
    W, b = dense_params(network)[0]
    assert why.exact and is_exact(network)
    np.testing.assert_array_equal(why.gradient, W[k])  # ∇z_k = W_k
    np.testing.assert_allclose(why.contributions, W[k] * x, rtol=1e-15)
    assert why.contributions.sum() + b[k] == pytest.approx(z[k], abs=1e-12), (
        f"Σ c + b_k = {why.contributions.sum() + b[k]}, z_k = {z[k]}"
    )
    assert why.rest == pytest.approx(b[k], abs=1e-12)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_the_mlp_gradient_is_what_central_differences_measure(activation):
    network, x = an_mlp(activation), an_image()
    eps = 1e-6
    Z_plus = network.logits(x + eps * np.eye(D))  # (D, K): row j moves pixel j
    Z_minus = network.logits(x - eps * np.eye(D))  # (D, K)
    for k in (0, 3, 9):
        numeric = (Z_plus[:, k] - Z_minus[:, k]) / (2 * eps)  # (D,), ∂z_k/∂x_j
        why = explain(network, x, k)
        assert not why.exact
        np.testing.assert_allclose(why.gradient, numeric, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(why.contributions, why.gradient * x)


def test_for_relu_the_rest_is_the_biases_along_the_active_units():
    """A relu net is affine where no unit switches: z = J x + r, r the net at x = 0 with
    the units active at x kept active (and the others off)."""
    network, x = an_mlp("relu"), an_image()
    *hidden, top = dense_params(network)
    A, r = x[None], np.zeros((1, D))  # the net at x, and at 0 with x's masks
    for W, b in hidden:
        Z = A @ W.T + b
        A, r = np.maximum(Z, 0), (Z > 0) * (r @ W.T + b)
    r = r @ top.W.T + top.b  # (1, K)
    for k in range(K):
        assert explain(network, x, k).rest == pytest.approx(r[0, k], abs=1e-12)


@pytest.mark.parametrize(
    "network", [a_one_layer("linear"), a_one_layer("softmax"), an_mlp("tanh")]
)
def test_the_default_class_is_the_top_one_and_the_output_is_the_models(network):
    x = an_image()
    why = explain(network, x)
    z = network.logits(x[None])[0]
    assert why.k == int(z.argmax())
    np.testing.assert_allclose(why.logits, z, rtol=1e-14)
    expected = z if network.output == "identity" else softmax(z[None])[0]
    np.testing.assert_allclose(why.output, expected, rtol=1e-14)


def test_one_backward_pass_of_the_identity_is_the_whole_jacobian():
    """dZ = I_K on K copies of x gives every ∂z_k/∂x at once: the backward pass is linear in
    dZ, row by row, which is what starting it from e_k relies on."""
    network, x = an_mlp("sigmoid"), an_image()
    _, caches = network.forward(np.tile(x, (K, 1)))  # Z (K, K) unused
    jacobian, _ = network.backward(caches, np.eye(K))  # (K, D)
    for k in range(K):
        np.testing.assert_allclose(jacobian[k], explain(network, x, k).gradient)


def test_float32_weights_are_explained_in_float64_by_in_float64():
    W, _ = dense_params(a_one_layer("softmax"))[0]
    network = one_layer(
        "softmax", Params(W=W.astype(np.float32), b=np.ones(K, np.float32))
    )
    exact = in_float64(network)
    assert all(a.dtype == np.float64 for p in exact.params for a in p)
    np.testing.assert_array_equal(exact.params[0][0], network.params[0][0])
    why = explain(exact, an_image(), 2)
    assert why.contributions.dtype == np.float64
    assert why.contributions.sum() + 1.0 == pytest.approx(why.logits[2], abs=1e-12)
