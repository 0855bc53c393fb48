"""The reference conv layers (nn/conv.py): forward against the defining sums, backward against
central differences in float64, and data that tells a flipped kernel, a transposed channel
axis, an off-by-one window and a misrouted pool gradient from the right answer."""

import numpy as np
import pytest

from mnist_cli.nn.conv import Conv2d, Flatten, MaxPool2d, Unflatten

EPS = 1e-6


def naive_conv(A, W, b):
    """Z[b, o, y, x] = Σ_{c,i,j} W[o, c, i, j] A[b, c, y + i, x + j] + b[o], by loops."""
    B, _, H, Wd = A.shape
    O, _, k, _ = W.shape
    Z = np.empty((B, O, H - k + 1, Wd - k + 1))
    for n in range(B):
        for o in range(O):
            for y in range(H - k + 1):
                for x in range(Wd - k + 1):
                    Z[n, o, y, x] = np.sum(W[o] * A[n, :, y : y + k, x : x + k]) + b[o]
    return Z


def scalar_loss(layer, params, A, R):
    """L = Σ Z ⊙ R: its gradient with respect to Z is R, a random direction."""
    return float(np.sum(layer.forward(params, A)[0] * R))


def check_gradients(layer, params, A, rng, coords=6):
    """Each of params and A: random coordinates and a random direction, central differences."""
    Z, cache = layer.forward(params, A)
    R = rng.standard_normal(Z.shape)
    dA, grads = layer.backward(params, cache, R)
    arrays = [*params, A]
    for which, (x, g) in enumerate(zip(arrays, [*grads, dA])):
        assert g.shape == x.shape, (which, g.shape, x.shape)

        def loss_at(dx, which=which):
            moved = [a + dx if i == which else a for i, a in enumerate(arrays)]
            return scalar_loss(layer, tuple(moved[:-1]), moved[-1], R)

        for _ in range(coords):
            idx = tuple(rng.integers(0, n) for n in x.shape)
            e = np.zeros_like(x)
            e[idx] = EPS
            numeric = (loss_at(e) - loss_at(-e)) / (2 * EPS)
            assert numeric == pytest.approx(g[idx], rel=1e-6, abs=1e-8), (which, idx)
        v = rng.standard_normal(x.shape)
        numeric = (loss_at(EPS * v) - loss_at(-EPS * v)) / (2 * EPS)
        assert numeric == pytest.approx(np.sum(g * v), rel=1e-6), which


@pytest.mark.parametrize("c_in, c_out, k, H, W", [(3, 2, 3, 7, 6), (1, 4, 5, 9, 9)])
def test_conv_forward_is_the_defining_sum(c_in, c_out, k, H, W):
    rng = np.random.default_rng(1)
    layer = Conv2d(c_in, c_out, k)
    params = layer.init((c_in, H, W), rng, np.float64)
    params = (params[0], rng.standard_normal(c_out))
    A = rng.standard_normal((2, c_in, H, W))
    Z, _ = layer.forward(params, A)
    assert (
        Z.shape
        == (2, *layer.out_shape((c_in, H, W)))
        == (2, c_out, H - k + 1, W - k + 1)
    )
    np.testing.assert_allclose(Z, naive_conv(A, *params), rtol=1e-12, atol=1e-12)


def test_conv_data_tells_a_flipped_kernel_transposed_channels_a_shifted_window():
    """The defining sum above separates the right convolution from its usual mistakes on
    this data, so test_conv_forward_is_the_defining_sum fails for each of them."""
    rng = np.random.default_rng(2)
    A, W, b = (
        rng.standard_normal((2, 3, 7, 7)),
        rng.standard_normal((3, 3, 3, 3)),
        np.zeros(3),
    )
    right, _ = Conv2d(3, 3, 3).forward((W, b), A)
    flipped = naive_conv(A, W[:, :, ::-1, ::-1], b)  # a true convolution, not torch's
    transposed = naive_conv(A, W.transpose(1, 0, 2, 3), b)  # C_in and C_out swapped
    shifted = naive_conv(A[:, :, 1:, 1:], W, b)  # windows one pixel off
    for wrong in (flipped, transposed):
        assert not np.allclose(right, wrong)
    assert not np.allclose(right[:, :, :-1, :-1], shifted)


def test_conv_single_pixel_places_the_kernel():
    """A one-hot input at (2, 3) gives Z[y, x] = W[2 − y, 3 − x]: the kernel flipped in the
    output, because the layer correlates; and ∂L/∂A of a one-hot dZ is the kernel itself."""
    W = np.arange(9.0).reshape(1, 1, 3, 3)
    A = np.zeros((1, 1, 5, 6))
    A[0, 0, 2, 3] = 1
    Z, cache = Conv2d(1, 1, 3).forward((W, np.zeros(1)), A)
    expect = np.zeros((3, 4))
    for y in range(3):
        for x in range(4):
            if 0 <= 2 - y < 3 and 0 <= 3 - x < 3:
                expect[y, x] = W[0, 0, 2 - y, 3 - x]
    np.testing.assert_array_equal(Z[0, 0], expect)
    dZ = np.zeros((1, 1, 3, 4))
    dZ[0, 0, 1, 2] = 1
    dA, _ = Conv2d(1, 1, 3).backward((W, np.zeros(1)), cache, dZ)
    np.testing.assert_array_equal(dA[0, 0, 1:4, 2:5], W[0, 0])
    assert dA.sum() == W.sum()


@pytest.mark.parametrize("c_in, c_out, k, H, W", [(2, 3, 3, 6, 7), (3, 2, 2, 5, 5)])
def test_conv_gradients_match_central_differences(c_in, c_out, k, H, W):
    rng = np.random.default_rng(3)
    layer = Conv2d(c_in, c_out, k)
    W_, _ = layer.init((c_in, H, W), rng, np.float64)
    params = (W_, rng.standard_normal(c_out))
    check_gradients(layer, params, rng.standard_normal((2, c_in, H, W)), rng)


def test_conv_init_is_he_and_seeded():
    layer = Conv2d(8, 16, 5)
    W, b = layer.init((8, 12, 12), np.random.default_rng(0), np.float64)
    W2, _ = layer.init((8, 12, 12), np.random.default_rng(0), np.float64)
    np.testing.assert_array_equal(W, W2)
    assert W.shape == (16, 8, 5, 5) and b.shape == (16,) and not b.any()
    assert W.std() == pytest.approx(np.sqrt(2 / 200), rel=0.1)


@pytest.mark.parametrize("shape", [(2, 3, 6, 8), (2, 2, 7, 5)])
def test_maxpool_gradients_match_central_differences(shape):
    rng = np.random.default_rng(4)
    A = rng.permutation(np.prod(shape)).reshape(shape) * 0.01  # distinct: no ties
    layer = MaxPool2d()
    Z, _ = layer.forward((), A)
    B, C, H, W = shape
    assert Z.shape == (B, C, H // 2, W // 2)
    np.testing.assert_array_equal(Z, A[:, :, : H // 2 * 2, : W // 2 * 2]
        .reshape(B, C, H // 2, 2, W // 2, 2).max(axis=(3, 5)))  # fmt: skip
    check_gradients(layer, (), A, rng)


def test_maxpool_gradient_goes_to_the_maximum():
    A = np.array([[1.0, 5, 2, 0], [3, 4, 1, 9]]).reshape(1, 1, 2, 4)
    Z, cache = MaxPool2d().forward((), A)
    np.testing.assert_array_equal(Z, [[[[5, 9]]]])
    dA, _ = MaxPool2d().backward((), cache, np.array([[[[10.0, 20]]]]))
    np.testing.assert_array_equal(dA[0, 0], [[0, 10, 0, 0], [0, 0, 0, 20]])


def test_maxpool_ties_go_to_the_first_maximum_in_row_major_order():
    """Windows: all equal -> top-left; top-right = bottom-left -> top-right; bottom row
    equal -> bottom-left."""
    A = np.array([[7.0, 7, 1, 6, 0, 0], [7, 7, 6, 2, 5, 5]]).reshape(1, 1, 2, 6)
    _, cache = MaxPool2d().forward((), A)
    dA, _ = MaxPool2d().backward((), cache, np.ones((1, 1, 1, 3)))
    np.testing.assert_array_equal(dA[0, 0], [[1, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0]])


def test_flatten_is_c_order_and_unflatten_inverts_it():
    A = np.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)
    F, cache = Flatten().forward((), A)
    assert Flatten().out_shape((3, 4, 5)) == (60,)
    np.testing.assert_array_equal(F[1], np.arange(60, 120))  # index c·20 + y·5 + x
    dA, grads = Flatten().backward((), cache, F * 2)
    np.testing.assert_array_equal(dA, A * 2)
    assert grads == ()
    U, cache = Unflatten((3, 4, 5)).forward((), F)
    np.testing.assert_array_equal(U, A)
    np.testing.assert_array_equal(Unflatten((3, 4, 5)).backward((), cache, U)[0], F)


def test_shapes_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match="Conv2d"):
        Conv2d(1, 8, 5).out_shape((1, 4, 4))
    with pytest.raises(ValueError, match="Conv2d"):
        Conv2d(2, 8, 3).out_shape((1, 9, 9))
    with pytest.raises(ValueError, match="MaxPool2d"):
        MaxPool2d().out_shape((3, 1, 4))
    with pytest.raises(ValueError, match="Unflatten"):
        Unflatten((1, 28, 28)).out_shape((700,))


def pool(A):
    return MaxPool2d().forward((), A)[0]


def test_pool_commutes_with_relu_and_a_channel_bias():
    """max(relu(z)) = relu(max(z)) and max(z + b) = max(z) + b: fast/conv.py pools first."""
    rng = np.random.default_rng(5)
    Z = rng.standard_normal((3, 4, 6, 6))
    b = rng.standard_normal(4)[:, None, None]
    np.testing.assert_array_equal(
        pool(np.maximum(Z + b, 0)), np.maximum(pool(Z) + b, 0)
    )


def test_reference_layers_match_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(6)
    conv, pool = Conv2d(3, 4, 3), MaxPool2d()
    W, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    A = rng.standard_normal((2, 3, 9, 8))
    Z, c1 = conv.forward((W, b), A)
    P, c2 = pool.forward((), Z)
    R = rng.standard_normal(P.shape)
    dZ, _ = pool.backward((), c2, R)
    dA, (dW, db) = conv.backward((W, b), c1, dZ)
    tA, tW, tb = (torch.tensor(x, requires_grad=True) for x in (A, W, b))
    tP = F.max_pool2d(F.conv2d(tA, tW, tb), 2)
    (tP * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(P, tP.detach().numpy(), rtol=1e-10)
    for ours, theirs in ((dA, tA), (dW, tW), (db, tb)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-9, atol=1e-12)
