"""The reference math of nn/ (layers, losses, network, architecture) against definitions
written out here, in float64: every gradient against central differences and against the
per-sample np.outer loop, the softmax Jacobian against its definition, the losses against
their formulas, stability at logits ±1000, and the starting weights.

tests/test_fast_dense.py checks the fast path against this math; tests/test_gradcheck.py
checks the slips mnist-gradcheck must catch.
"""

from itertools import pairwise

import numpy as np
import pytest

from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import (
    build,
    dense_params,
    describe,
    from_dense,
    kind_of,
    one_layer,
)
from mnist_cli.nn.layers import Act, Dense, Params, activate, activation_grad, inputs
from mnist_cli.nn.losses import (
    batch_loss,
    grad_logits,
    log_softmax,
    one_hot,
    predict,
    softmax,
    softmax_backward,
)
from mnist_cli.nn.network import Network, sgd_update

# (kind, hidden widths, activation): every depth and activation the models have
MODELS = [
    ("linear", (), None),
    ("softmax", (), None),
    ("mlp", (6,), "relu"),
    ("mlp", (6, 5), "sigmoid"),
    ("mlp", (6, 5, 4), "tanh"),
]
# with each loss its output allows: cross-entropy needs a softmax
CASES = [
    (*model, loss)
    for model in MODELS
    for loss in ("squared", "cross-entropy")
    if not (model[0] == "linear" and loss == "cross-entropy")
]


def random_network(kind, hidden=(), activation=None, seed=0, dtype=np.float64):
    """A network of `kind` with weights W_l ~ N(0, 1/fan_in) (the output layer's 3 times
    that, so that a softmax is neither uniform nor saturated) and biases ~ N(0, 0.5²)."""
    rng = np.random.default_rng(seed)
    sizes = (D, *hidden, K)
    params = []
    for l, (n_in, n_out) in enumerate(pairwise(sizes), start=1):
        std = (3.0 if l == len(sizes) - 1 else 1.0) / np.sqrt(n_in)
        W = std * rng.standard_normal((n_out, n_in))  # (n_l, n_{l−1})
        b = 0.5 * rng.standard_normal(n_out)  # (n_l,)
        params.append(Params(W.astype(dtype), b.astype(dtype)))
    return from_dense(kind, params, activation)


def random_batch(B, seed=1):
    """X (B, D) in [0, 1], about half the pixels 0 as in MNIST, and one-hot Y (B, K)."""
    rng = np.random.default_rng(seed)
    X = rng.random((B, D)) * (rng.random((B, D)) < 0.5)
    return X, one_hot(rng.integers(0, K, B), np.float64)


def rel_error(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-12)


def loss_of(network, loss, X, Y):
    return network.loss(loss, network.logits(X), Y)


def central_differences(network, loss, X, Y, coords, h=1e-6):
    """∂ℒ/∂θ at each (layer, array, index) of `coords`, by (ℒ(θ + h) − ℒ(θ − h)) / 2h."""
    numeric = []
    for l, a, index in coords:
        values = []
        for step in (h, -h):
            params = [list(p) for p in network.params]
            params[l][a] = params[l][a].copy()
            params[l][a][index] += step
            values.append(loss_of(network.with_params(params), loss, X, Y))
        numeric.append((values[0] - values[1]) / (2 * h))
    return np.array(numeric)


def some_coords(network, rng, per_array=12):
    """(layer, array, index) for up to `per_array` random entries of every parameter array."""
    coords = []
    for l, params in enumerate(network.params):
        for a, array in enumerate(params):
            flat = rng.choice(array.size, min(per_array, array.size), replace=False)
            coords += [(l, a, np.unravel_index(i, array.shape)) for i in flat]
    return coords


def gradient_error(network, loss, grads, X, Y, seed=2):
    """The largest relative error, over the parameter arrays, of `grads` at some entries
    against central differences."""
    coords = some_coords(network, np.random.default_rng(seed))
    numeric = central_differences(network, loss, X, Y, coords)
    analytic = np.array([grads[l][a][index] for l, a, index in coords])
    errors = []
    for l, a in {(l, a) for l, a, _ in coords}:
        mine = [i for i, (m, b, _) in enumerate(coords) if (m, b) == (l, a)]
        errors.append(rel_error(analytic[mine], numeric[mine]))
    return max(errors)


@pytest.mark.parametrize("kind, hidden, activation, loss", CASES)
def test_every_gradient_matches_central_differences(kind, hidden, activation, loss):
    network = random_network(kind, hidden, activation)
    X, Y = random_batch(8)
    _, grads = network.loss_and_grads(loss, X, Y)
    for params, g in zip(network.params, grads):
        assert [p.shape for p in params] == [a.shape for a in g]
    error = gradient_error(network, loss, grads, X, Y)
    assert error < 1e-6, (
        f"{kind} {hidden} {activation} {loss}: relative error {error:.1e}"
    )


class NoDerivative(Act):
    """A slip: the activation's backward pass without act′ (dZ = dA)."""

    def backward(self, params, cache, dA):
        return dA, ()


@pytest.mark.parametrize(
    "slip", ["no activation derivative", "no softmax Jacobian", "no 1/B", "none"]
)
def test_central_differences_catch_a_wrong_gradient(slip):
    """The check above fails for the slips a hand-derived gradient makes."""
    network = random_network("mlp", (6, 5), "sigmoid")
    X, Y = random_batch(8)
    Z, caches = network.forward(X)
    dZ = grad_logits("softmax", "squared", Z, Y)  # (B, K)
    if slip == "no activation derivative":
        layers = tuple(NoDerivative(la.name) if isinstance(la, Act) else la
                       for la in network.layers)  # fmt: skip
        network_with_slip = Network(layers, network.params, "softmax", (D,))
        grads = network_with_slip.backward(caches, dZ)[1]
    elif slip == "no softmax Jacobian":
        grads = network.backward(caches, 2 * (softmax(Z) - Y) / len(Y))[1]
    elif slip == "no 1/B":
        grads = network.backward(caches, dZ * len(Y))[1]
    else:  # the correct gradient: the check passes
        grads = network.backward(caches, dZ)[1]
    error = gradient_error(network, "squared", grads, X, Y)
    if slip == "none":
        assert error < 1e-6, error
    else:
        assert error > 1e-2, f"{slip}: relative error only {error:.1e}"


@pytest.mark.parametrize("kind, hidden, activation, loss", CASES)
def test_input_gradient_matches_central_differences(kind, hidden, activation, loss):
    """Network.backward's dX = ∂ℒ/∂X (B, D), which mnist-serve shows, by central
    differences in some pixels of every sample."""
    network = random_network(kind, hidden, activation, seed=3)
    X, Y = random_batch(4, seed=4)
    Z, caches = network.forward(X)
    dX, _ = network.backward(caches, grad_logits(network.output, loss, Z, Y))
    assert dX.shape == X.shape
    rng = np.random.default_rng(5)
    coords = [(i, j) for i in range(len(X)) for j in rng.choice(D, 10, replace=False)]
    numeric, h = [], 1e-6
    for index in coords:
        Xp, Xm = X.copy(), X.copy()
        Xp[index] += h
        Xm[index] -= h
        numeric.append(
            (loss_of(network, loss, Xp, Y) - loss_of(network, loss, Xm, Y)) / (2 * h)
        )
    error = rel_error([dX[index] for index in coords], numeric)
    assert error < 1e-6, f"{kind} {hidden} {activation} {loss}: dX error {error:.1e}"


@pytest.mark.parametrize("kind, hidden, activation, loss", CASES)
def test_batched_gradient_is_mean_of_per_sample_outer_products(
    kind, hidden, activation, loss
):
    """Backpropagation one sample at a time, written out here: dW_l += np.outer(dz_l, a_{l−1})
    and db_l += dz_l, through an explicit K × K softmax Jacobian and act′(z_l), the sum
    divided by B, equals the batched products of nn/."""
    network = random_network(kind, hidden, activation, seed=6)
    X, Y = random_batch(5, seed=7)
    _, grads = network.loss_and_grads(loss, X, Y)
    layers = dense_params(network)
    loop = [Params(np.zeros_like(p.W), np.zeros_like(p.b)) for p in layers]
    derivative = {
        "relu": lambda z: (z > 0) * 1.0,
        "sigmoid": lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2,
        "tanh": lambda z: 1 / np.cosh(z) ** 2,
    }
    for x, y in zip(X, Y):
        a, zs, As = x, [], [x]
        for l, p in enumerate(layers):
            z = p.W @ a + p.b  # (n_l,)
            a = z if l == len(layers) - 1 else activate(activation, z)
            zs.append(z)
            As.append(a)
        z = zs[-1]
        if kind == "linear":
            dz = 2 * (z - y)
        else:
            s = np.exp(z) / np.exp(z).sum()
            J = np.diag(s) - np.outer(s, s)  # (K, K) ∂s/∂z
            dz = s - y if loss == "cross-entropy" else J @ (2 * (s - y))
        for l in range(len(layers) - 1, -1, -1):
            loop[l].W[...] += np.outer(dz, As[l]) / len(X)
            loop[l].b[...] += dz / len(X)
            if l > 0:
                dz = (layers[l].W.T @ dz) * derivative[activation](zs[l - 1])
    for l, (g, expected) in enumerate(
        zip(dense_params(network.with_params(grads)), loop)
    ):
        np.testing.assert_allclose(
            g.W, expected.W, rtol=1e-10, atol=1e-14, err_msg=f"W{l + 1}"
        )
        np.testing.assert_allclose(
            g.b, expected.b, rtol=1e-10, atol=1e-14, err_msg=f"b{l + 1}"
        )


def test_softmax_jacobian_matches_its_definition():
    """∂Sᵢ/∂zⱼ = Sᵢ(1 − Sᵢ) for i = j and −SᵢSⱼ for i ≠ j, by central differences; and
    softmax_backward applies that Jacobian to a vector without building it."""
    rng = np.random.default_rng(2)
    z = rng.standard_normal(K)
    s = softmax(z[None])[0]
    h = 1e-6
    numeric = np.empty((K, K))
    for j in range(K):
        e = np.zeros(K)
        e[j] = h
        numeric[:, j] = (softmax((z + e)[None])[0] - softmax((z - e)[None])[0]) / (
            2 * h
        )
    expected = np.where(np.eye(K, dtype=bool), s * (1 - s), -np.outer(s, s))
    np.testing.assert_allclose(numeric, expected, atol=1e-9)
    g = rng.standard_normal(K)
    np.testing.assert_allclose(
        softmax_backward(s[None], g[None])[0], expected @ g, atol=1e-15
    )


def test_softmax_is_stable_and_normalised():
    Z = np.array([[1000.0, 1000.0, -1000.0] + [0.0] * 7, [-1e4] * 10])
    with np.errstate(over="raise", invalid="raise"):
        S = softmax(Z)
    np.testing.assert_allclose(S.sum(axis=1), 1.0)
    np.testing.assert_allclose(S[0, :2], 0.5)
    np.testing.assert_allclose(S[1], 0.1)
    np.testing.assert_array_equal(predict("softmax", Z), S)
    np.testing.assert_array_equal(predict("identity", Z), Z)


def test_squared_loss_is_the_batch_mean_of_the_squared_error():
    Z = np.array([[0.5, 0.5] + [0.0] * 8, [1.0] + [0.0] * 9])
    Y = one_hot(np.array([0, 0]), np.float64)
    # identity: (0.25 + 0.25 + 0) / 2
    assert batch_loss("identity", "squared", Z, Y) == pytest.approx(0.25, rel=1e-15)
    S = softmax(Z)
    expected = np.sum((S - Y) ** 2) / 2
    assert batch_loss("softmax", "squared", Z, Y) == pytest.approx(expected, rel=1e-15)


def test_identity_grad_logits_is_two_residuals_over_the_batch():
    Z = np.array([[0.5, 0.5] + [0.0] * 8, [1.0] + [0.0] * 9])
    Y = one_hot(np.array([0, 0]), np.float64)
    expected = np.zeros((2, K))
    expected[0, :2] = [-0.5, 0.5]  # 2 (ŷ − y) / B
    np.testing.assert_allclose(grad_logits("identity", "squared", Z, Y), expected)


def test_cross_entropy_is_minus_the_mean_log_probability_of_the_true_class():
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((5, K)) * 2  # (B, K)
    labels = rng.integers(0, K, 5)
    S = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(S[np.arange(5), labels]))
    got = batch_loss("softmax", "cross-entropy", Z, one_hot(labels, np.float64))
    assert got == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(log_softmax(Z), np.log(S), rtol=1e-12)


def test_cross_entropy_is_stable_for_logits_around_1000():
    """Where S underflows to 0, log S is still the finite −2000, not −inf."""
    Z = np.zeros((2, K))
    Z[:, 0], Z[:, 1] = 1000.0, -1000.0
    Y = one_hot(np.array([0, 1]), np.float64)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss = batch_loss("softmax", "cross-entropy", Z, Y)
        dZ = grad_logits("softmax", "cross-entropy", Z, Y)
        log_S = log_softmax(Z)
    # sample 0: −log S₀ ≈ 0 (e^−1000 terms); sample 1: −log S₁ = 2000 + log(1 + …) ≈ 2000
    assert loss == pytest.approx(1000.0, rel=1e-12), loss
    np.testing.assert_allclose(log_S[:, 1], -2000.0, rtol=1e-12)
    np.testing.assert_allclose(dZ[1, :2], [0.5, -0.5])  # (S − Y)/B: S ≈ e₀ for both


def test_cross_entropy_is_refused_on_an_identity_output():
    Z, Y = np.zeros((2, K)), one_hot(np.array([0, 1]), np.float64)
    for f in (batch_loss, grad_logits):
        with pytest.raises(ValueError, match="needs a softmax output"):
            f("identity", "cross-entropy", Z, Y)


def test_relu_derivative_is_zero_at_zero():
    Z = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(
        activation_grad("relu", Z, activate("relu", Z)), [0.0, 0.0, 1.0]
    )


def test_sigmoid_is_the_logistic_function_without_overflow():
    Z = np.array([-800.0, -3.0, 0.0, 2.0, 800.0])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        got = activate("sigmoid", Z)
    np.testing.assert_allclose(
        got, [0.0, 1 / (1 + np.exp(3)), 0.5, 1 / (1 + np.exp(-2)), 1.0]
    )


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_activation_grad_is_the_derivative(activation):
    Z = np.linspace(-4, 4, 9) + 0.1  # no z = 0, where relu has no derivative
    h = 1e-6
    numeric = (activate(activation, Z + h) - activate(activation, Z - h)) / (2 * h)
    got = activation_grad(activation, Z, activate(activation, Z))
    np.testing.assert_allclose(got, numeric, rtol=1e-8, atol=1e-10)


def test_an_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        Act("swish")
    with pytest.raises(ValueError, match="unknown activation"):
        activate("swish", np.zeros(3))


def test_dense_logits_orientation():
    """Z = X Wᵀ + b: pixel j of a sample reaches class k through W[k, j]."""
    params = Params(
        W=np.arange(K * D, dtype=float).reshape(K, D), b=np.arange(K, dtype=float)
    )
    x = np.zeros(D)
    x[3] = 1.0
    np.testing.assert_array_equal(
        one_layer("linear", params).logits(x[None])[0], params.W[:, 3] + params.b
    )


@pytest.mark.parametrize("kind, hidden, activation, loss", CASES)
def test_sgd_update_is_a_step_against_the_gradient_that_lowers_the_loss(
    kind, hidden, activation, loss
):
    network = random_network(kind, hidden, activation)
    X, Y = random_batch(32)
    before, grads = network.loss_and_grads(loss, X, Y)
    params = sgd_update(network.params, grads, 1e-2)
    for ps, qs, gs in zip(network.params, params, grads):
        for p, q, g in zip(ps, qs, gs):
            np.testing.assert_array_equal(q, p - 1e-2 * g)
    after = loss_of(network.with_params(params), loss, X, Y)
    assert after < before, f"{kind} {loss}: loss {before} -> {after} after a small step"


def test_linear_and_softmax_start_from_zeros_or_small_normal_weights():
    rng = np.random.default_rng(0)
    for kind in ("linear", "softmax"):
        (zeros,) = build(kind, "zeros", rng).params
        assert zeros.W.shape == (K, D) and zeros.W.dtype == np.float32
        assert not zeros.W.any() and not zeros.b.any()
    (normal,) = build("softmax", "normal", np.random.default_rng(5)).params
    (again,) = build("softmax", "normal", np.random.default_rng(5)).params
    np.testing.assert_array_equal(normal.W, again.W)
    assert 0.0099 < normal.W.std() < 0.0101, f"std {normal.W.std()}, expected 0.01"
    with pytest.raises(ValueError, match="unknown init"):
        build("softmax", "ones", rng)
    with pytest.raises(ValueError, match="starts from init 'normal'"):
        build("mlp", "zeros", rng, (8,), "relu")


def test_init_scale_per_layer_and_the_same_seed_gives_the_same_weights():
    hidden = (512, 256)
    sizes = (D, *hidden, K)
    for activation, gain in (("relu", 2.0), ("tanh", 1.0), ("sigmoid", 1.0)):
        network = build("mlp", "normal", np.random.default_rng(0), hidden, activation)
        for l, (p, fan_in) in enumerate(
            zip(dense_params(network), sizes[:-1]), start=1
        ):
            assert p.W.dtype == np.float32 and p.W.shape == (sizes[l], fan_in)
            n = p.W.size
            var, expected = float(p.W.var()), gain / fan_in
            assert abs(var / expected - 1) < 6 * np.sqrt(2 / n), (
                f"{activation} W{l}: var {var:.3g}, expected {expected:.3g}"
            )
            assert abs(float(p.W.mean())) < 6 * np.sqrt(expected / n), p.W.mean()
            assert not p.b.any(), f"{activation} b{l} should start at 0"
    first, again, other = (
        dense_params(
            build("mlp", "normal", np.random.default_rng(seed), hidden, "relu")
        )
        for seed in (0, 0, 1)
    )
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a.W, b.W)
        assert not np.array_equal(a.W, c.W), "another seed gave the same weights"


@pytest.mark.parametrize("kind, hidden, activation", MODELS)
def test_a_network_is_its_kind_again_from_its_dense_layers(kind, hidden, activation):
    network = random_network(kind, hidden, activation)
    assert kind_of(network) == kind
    expected = (
        kind
        if kind != "mlp"
        else f"mlp {'-'.join(map(str, (D, *hidden, K)))} {activation}"
    )
    assert describe(network) == expected
    again = from_dense(kind, dense_params(network), activation)
    X, _ = random_batch(3)
    np.testing.assert_array_equal(again.predict(X), network.predict(X))
    layers = [type(la) for la in network.layers]
    assert layers == [Dense, Act] * len(hidden) + [Dense]


def test_inputs_scale_uint8_to_unit_float32():
    X = inputs(np.array([[0, 128, 255]], dtype=np.uint8))
    assert X.dtype == np.float32
    np.testing.assert_allclose(X, [[0.0, 128 / 255, 1.0]], rtol=1e-7)
