"""mnist-gradcheck: the analytic gradient against central differences, on real MNIST images.

A gradient check is only worth running if it catches wrong gradients, so most tests here break
one step of the derivation on purpose (the way a student might) and expect it to be caught, in
the blocks that step feeds and in no other.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_cli.cli import gradcheck_command
from mnist_cli.config.choices import ACTIVATIONS, LOSSES
from mnist_cli.gradcheck import cases as gradcheck_cases
from mnist_cli.gradcheck import check as gradcheck
from mnist_cli.gradcheck.cases import MARGIN, random_layers, sample_batch
from mnist_cli.gradcheck.check import (
    H,
    Subject,
    central_difference,
    check_gradients,
    relative_error,
)
from mnist_cli.nn import D, K
from mnist_cli.nn import layers as nn_layers
from mnist_cli.nn import losses as nn_losses
from mnist_cli.nn.architecture import from_dense
from mnist_cli.nn.layers import Params
from mnist_cli.nn.losses import softmax

BIN = Path(sys.executable).parent
ONE_LAYER = ("W (10, 784)", "W·V", "b (10,)")
SQUARE = (6, 6)  # two hidden layers; W2 is square, so a transposed W2 fits its product
MLP_BLOCKS = (
    "W1 (6, 784)", "W1·V", "b1 (6,)",
    "W2 (6, 6)", "W2·V", "b2 (6,)",
    "W3 (10, 6)", "W3·V", "b3 (10,)",
)  # fmt: skip
SUBJECTS = [
    Subject("linear"),
    Subject("softmax"),
    Subject("softmax", "cross-entropy"),
    *(Subject("mlp", loss, SQUARE, a) for a in ACTIVATIONS for loss in LOSSES),
]


def name(s: Subject) -> str:
    return f"{s.model}-{s.loss}-{s.activation if s.hidden else ''}"


# Deliberately wrong steps of the one-layer derivation (nn/losses.py, nn/layers.py), each a
# plausible slip.
def softmax_backward_without_mean(S, G):
    """J g with the −SSᵀ part of the Jacobian forgotten: S ⊙ g instead of S ⊙ (g − ⟨g, S⟩)."""
    return S * G


def loss_grad_output_over_B_twice(Y_hat, Y):
    """(2/B²)(Ŷ − Y): the batch mean's 1/B applied twice."""
    return 2.0 / len(Y) ** 2 * (Y_hat - Y)


def param_grads_with_mean_bias(dZ, X):
    """∂L/∂b as the mean of the rows of dZ instead of their sum (W right)."""
    return Params(W=dZ.T @ X, b=dZ.mean(axis=0))


BUGS = {
    "softmax_backward": softmax_backward_without_mean,
    "squared_grad": loss_grad_output_over_B_twice,
    "dense_grads": param_grads_with_mean_bias,
}
BUG_MODULES = {
    "softmax_backward": nn_losses,
    "squared_grad": nn_losses,
    "dense_grads": nn_layers,
}
MODEL_KINDS = ("linear", "softmax")
# which (model, block) each bug breaks among the squared-loss one-layer rows; every other
# block must still pass
BROKEN = {
    "softmax_backward": {("softmax", b) for b in ONE_LAYER},
    "squared_grad": {(m, b) for m in MODEL_KINDS for b in ONE_LAYER},
    "dense_grads": {(m, "b (10,)") for m in MODEL_KINDS},
}


# Deliberately wrong steps of the backward pass through layers (nn/layers.py).
def no_activation_derivative(activation, Z, A):
    """act′ forgotten: dZ_{l−1} = dA_{l−1}."""
    return np.ones_like(Z)


def transposed_weight(dZ, W):
    """dA_{l−1} = dZ_l W_lᵀ instead of dZ_l W_l, where the shapes let it pass: the square W₂."""
    return dZ @ W.T if W.shape[0] == W.shape[1] else dZ @ W


def no_bias_gradient(dZ, A_prev):
    """∂L/∂b_l forgotten (left at 0), W right."""
    return Params(W=dZ.T @ A_prev, b=np.zeros(dZ.shape[1]))


# a wrong dZ_l breaks W_l, b_l and every layer below; the layers above come before it
SLIPS = {
    "activation_grad": (no_activation_derivative, {"W1", "b1", "W2", "b2"}),
    "input_grad": (transposed_weight, {"W1", "b1"}),
    "dense_grads": (no_bias_gradient, {"b1", "b2", "b3"}),
}


def layer(block: str) -> str:
    """ "W1 (6, 784)" and "W1·V" -> "W1", "b2 (6,)" -> "b2"."""
    return block.split()[0].removesuffix("·V")


@pytest.fixture(scope="module")
def train_split(mnist_splits):
    return mnist_splits[0]


def batch(train_split, subject=None, n=100, seed=0):
    subject = subject or Subject("softmax")
    rng = np.random.default_rng(seed)
    X, Y = sample_batch(train_split.images, train_split.labels, n, rng)
    return X, Y, random_layers(subject, X, rng), rng


def gradient_with(bug: str):
    """gradcheck.reference_gradient with one step of nn/ replaced by BUGS[bug]."""

    def gradient(subject, layers, X, Y):
        module = BUG_MODULES[bug]
        saved = getattr(module, bug)
        setattr(module, bug, BUGS[bug])
        try:
            return gradcheck.reference_gradient(subject, layers, X, Y)
        finally:
            setattr(module, bug, saved)

    return gradient


# --- the pure check ---------------------------------------------------------------------------


@pytest.mark.parametrize("subject", SUBJECTS, ids=name)
def test_right_gradient_of_every_layer_agrees_to_about_1e_9(train_split, subject):
    X, Y, layers, rng = batch(train_split, subject, n=40)
    checks = check_gradients(subject, X, Y, layers, rng, coords=30)
    assert [c.block for c in checks] == list(
        MLP_BLOCKS if subject.hidden else ONE_LAYER
    )
    for c in checks:
        assert c.max_rel_error < 1e-7, (
            f"{name(subject)} {c.block}: max relative error {c.max_rel_error:.1e} at "
            f"{c.worst} (analytic {c.analytic}, numerical {c.numeric}), expected < 1e-7"
        )


def test_every_output_bias_and_the_asked_coordinates_are_compared(train_split):
    subject = Subject("mlp", "squared", (40,))
    X, Y, layers, rng = batch(train_split, subject, n=20)
    checks = {
        c.block: c for c in check_gradients(subject, X, Y, layers, rng, coords=25)
    }
    assert {b: c.checked for b, c in checks.items()} == {
        "W1 (40, 784)": 25, "W1·V": 1, "b1 (40,)": 25,
        "W2 (10, 40)": 25, "W2·V": 1, "b2 (10,)": 10,
    }  # fmt: skip
    assert checks["b2 (10,)"].what == "every coordinate"
    assert checks["b1 (40,)"].what == "25 random coordinates"


@pytest.mark.parametrize("bug", BUGS)
@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_wrong_gradient_is_caught_in_the_blocks_it_breaks(train_split, kind, bug):
    subject = Subject(kind)
    X, Y, layers, rng = batch(train_split, subject)
    checks = check_gradients(subject, X, Y, layers, rng, gradient=gradient_with(bug))
    for c in checks:
        if (kind, c.block) in BROKEN[bug]:
            assert c.max_rel_error > 1e-2, (
                f"{kind} {c.block} with {bug} broken: max relative error "
                f"{c.max_rel_error:.1e}, expected > 1e-2"
            )
        else:
            assert c.max_rel_error < 1e-7, (
                f"{kind} {c.block} with {bug} broken should still pass: "
                f"{c.max_rel_error:.1e}, expected < 1e-7"
            )


@pytest.mark.parametrize("subject", SUBJECTS[3:], ids=name)
@pytest.mark.parametrize("slip", SLIPS)
def test_each_backprop_slip_is_caught_in_the_layers_it_breaks(
    train_split, subject, slip, monkeypatch
):
    wrong, broken = SLIPS[slip]
    monkeypatch.setattr(nn_layers, slip, wrong)
    X, Y, layers, rng = batch(train_split, subject, n=20)
    checks = check_gradients(subject, X, Y, layers, rng, coords=20)
    caught = {layer(c.block) for c in checks if c.max_rel_error > 1e-2}
    passed = {layer(c.block) for c in checks if c.max_rel_error < 1e-7}
    assert caught == broken, f"{slip}, {name(subject)}: caught in {sorted(caught)}"
    assert passed == {layer(b) for b in MLP_BLOCKS} - broken, (
        f"{slip}, {name(subject)}: passed {sorted(passed)}"
    )


def test_softmax_cross_entropy_is_the_one_layer_mlp_and_a_missing_bias_is_caught(
    train_split, monkeypatch
):
    subject = Subject("softmax", "cross-entropy")
    monkeypatch.setattr(nn_layers, "dense_grads", no_bias_gradient)
    X, Y, layers, rng = batch(train_split, subject)
    failed = [c.block for c in check_gradients(subject, X, Y, layers, rng)]
    errors = [c.max_rel_error for c in check_gradients(subject, X, Y, layers, rng)]
    assert [b for b, e in zip(failed, errors) if e > 1e-2] == ["b (10,)"], errors


def test_relu_units_are_kept_off_their_kink(train_split, monkeypatch):
    """With seed 0, two of the 3,200 first-layer pre-activations lie within h of relu's kink,
    where a central difference measures a jump: random_layers redraws those units' biases.
    Without the redraw, the same right gradient fails the check, in b1."""
    subject = Subject("mlp", "cross-entropy", (32,), "relu")
    X, Y, layers, rng = batch(train_split, subject)
    Z = X @ layers[0].W.T + layers[0].b  # (100, 32) the first layer's pre-activations
    assert np.abs(Z).min() >= MARGIN, np.abs(Z).min()
    monkeypatch.setattr(gradcheck_cases, "REDRAWS", 0)
    X, Y, layers, rng = batch(train_split, subject)
    assert np.abs(X @ layers[0].W.T + layers[0].b).min() < H
    b1 = check_gradients(subject, X, Y, layers, rng, coords=32)[2]
    assert b1.block == "b1 (32,)" and b1.max_rel_error > 1e-4, b1


def test_near_uniform_softmax_would_hide_a_dropped_term(train_split):
    """Why the random weights are not tiny: with S ≈ 1/K, ⟨g, S⟩ ≈ 0 for every sample, so
    forgetting it barely changes the gradient; random_params' logits expose it."""
    X, Y, (params,), _ = batch(train_split)
    wrong = gradient_with("softmax_backward")
    tiny_weights = Params(W=1e-4 * params.W, b=0 * params.b)

    def error(p):
        rng = np.random.default_rng(0)
        checks = check_gradients(Subject("softmax"), X, Y, (p,), rng, gradient=wrong)
        return checks[1]  # W·V

    hidden, shown = error(tiny_weights).max_rel_error, error(params).max_rel_error
    assert hidden < 1e-3 and shown > 1e-1, (
        f"dropped term: relative error {hidden:.1e} at near-uniform softmax (expected < 1e-3), "
        f"{shown:.1e} at random_params (expected > 1e-1)"
    )
    S = softmax(X @ params.W.T + params.b)
    assert 0.2 < S.max(axis=1).mean() < 0.8, (
        f"mean largest softmax output {S.max(axis=1).mean():.2f}, expected in (0.2, 0.8): "
        "neither uniform (0.1) nor saturated (1)"
    )


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_random_weights_leave_the_softmax_neither_uniform_nor_saturated(
    train_split, activation
):
    subject = Subject("mlp", "squared", (32,), activation)
    X, _, layers, _ = batch(train_split, subject)
    S = from_dense("mlp", layers, activation).predict(X)
    assert 0.2 < S.max(axis=1).mean() < 0.85, S.max(axis=1).mean()


def test_w_coordinates_are_drawn_among_lit_pixels(train_split):
    """One image lights only some pixels; asking for more coordinates than they offer checks
    every coordinate of those pixels, and no other."""
    X, Y, layers, rng = batch(train_split, n=1)
    lit = int((X[0] != 0).sum())
    W_block = check_gradients(Subject("softmax"), X, Y, layers, rng, coords=K * D)[0]
    assert W_block.checked == K * lit, (
        f"{W_block.checked} checked, expected {K} x {lit}"
    )
    assert W_block.what == f"{K * lit} random coordinates"


def test_relative_error_definition():
    got = relative_error(
        [1.0, 1.0, 0.0, 1e-12, 2.0], [1.0, 1.001, 0.0, 2e-12, -2.0], 1e-2
    )
    expected = [0.0, 0.001 / 1.001, 0.0, 1e-12 / 1e-2, 2.0]
    np.testing.assert_allclose(
        got, expected, rtol=1e-12, err_msg="|a − n| / max(|a|, |n|, tiny)"
    )


def test_central_difference_of_a_cubic_is_exact_up_to_h_squared():
    """For L(θ) = Σ W³ + Σ b², the central difference along eₖⱼ is 3w² + h² exactly."""
    params = Params(W=np.full((K, D), 0.5), b=np.full(K, 2.0))

    def loss(p):
        return float(np.sum(p.W**3) + np.sum(p.b**2))

    e_W = Params(W=np.zeros((K, D)), b=np.zeros(K))
    e_W.W[3, 7] = 1.0
    e_b = Params(W=np.zeros((K, D)), b=np.zeros(K))
    e_b.b[2] = 1.0
    h = 1e-3  # large, so that the h² term stands out from rounding
    dW = central_difference(loss, params, e_W, h)
    db = central_difference(loss, params, e_b, h)
    assert dW == pytest.approx(3 * 0.25 + h**2, rel=1e-9), (
        f"∂/∂W[3,7] {dW}, expected 0.75 + h²"
    )
    assert db == pytest.approx(4.0, rel=1e-9), (
        f"∂/∂b[2] {db}, expected 4 (exact for a square)"
    )


# --- the command --------------------------------------------------------------------------------

ROW = re.compile(
    r"^(linear|softmax|mlp|cnn)\s+(squared|cross-entropy)\s+(\S+(?: \([\d, ]+\))?)\s+.*?"
    r"\s(\d\.\de[-+]\d\d)\s+(\S.*?)\s+(ok|FAIL)$"
)
FAST = ["--samples", "30", "--coords", "20", "--hidden", "6,6"]  # small: a fast command


def rows(output: str) -> dict[tuple[str, str, str], tuple[float, str]]:
    """{(model, loss, block): (max rel error, status)} from the printed table."""
    found = {}
    for line in output.splitlines():
        m = ROW.match(line)
        if m:
            found[(m[1], m[2], m[3])] = (float(m[4]), m[6])
    return found


# the cnn of --hidden 6,6: blocks of 4 and 6 channels (5 × 5), then 96 → 6 → 6 → 10
CNN_BLOCKS = tuple(
    block
    for l, (W, b) in enumerate(
        [
            ((4, 1, 5, 5), 4),
            ((6, 4, 5, 5), 6),
            ((6, 96), 6),
            ((6, 6), 6),
            ((10, 6), 10),
        ],
        1,
    )
    for block in (f"W{l} {W}", f"W{l}·V", f"b{l} ({b},)")
)
EVERY_ROW = {
    *((m, "squared", b) for m in MODEL_KINDS for b in ONE_LAYER),
    *(("softmax", "cross-entropy", b) for b in ONE_LAYER),
    *(("mlp", loss, b) for loss in LOSSES for b in MLP_BLOCKS),
    *(("cnn", loss, b) for loss in LOSSES for b in CNN_BLOCKS),
}


def test_command_checks_every_model_and_loss_by_default(data_args):
    result = CliRunner().invoke(gradcheck_command, ["--hidden", "6,6", *data_args])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:2] == [
        f"100 mnist training images, random weights (seed 0), float64, h = {H:.1e}",
        "mlp: 784-6-6-10, relu",
    ], lines[:2]
    assert lines[2] == "cnn: cnn 4,6 k5 / 6,6, on the first 10 images", lines[2]
    table = rows(result.output)
    assert set(table) == EVERY_ROW, sorted(set(table) ^ EVERY_ROW)
    assert all(status == "ok" and err < 1e-7 for err, status in table.values()), (
        result.output
    )
    worst = max(err for err, _ in table.values())
    assert lines[-1] == (
        f"all {len(EVERY_ROW)} blocks agree with central differences: max relative "
        f"error {worst:.1e} <= --tol 1e-06"
    ), lines[-1]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--model", "linear"], {("linear", "squared")}),
        (["--loss", "cross-entropy"], {("softmax", "cross-entropy"), ("mlp", "cross-entropy"),
                                       ("cnn", "cross-entropy")}),
        (["--model", "cnn", "--loss", "squared"], {("cnn", "squared")}),
        (["--model", "softmax"], {("softmax", "squared"), ("softmax", "cross-entropy")}),
        (["--model", "mlp", "--loss", "squared"], {("mlp", "squared")}),
    ],
)  # fmt: skip
def test_model_and_loss_choose_the_rows(data_args, args, expected):
    result = CliRunner().invoke(gradcheck_command, [*args, *FAST[:4], *data_args])
    assert result.exit_code == 0, result.output
    assert {key[:2] for key in rows(result.output)} == expected, result.output


def test_hidden_and_activation_shape_the_mlp(data_args):
    args = ["--model", "mlp", "--hidden", "5, 4,3", "--activation", "tanh", *FAST[:4]]
    result = CliRunner().invoke(gradcheck_command, [*args, *data_args])
    assert result.exit_code == 0, result.output
    assert "mlp: 784-5-4-3-10, tanh" in result.output
    blocks = {key[2] for key in rows(result.output)}
    assert {"W1 (5, 784)", "W2 (4, 5)", "W3 (3, 4)", "W4 (10, 3)", "b4 (10,)"} <= blocks


def test_same_seed_same_report_and_one_model(data_args):
    args = ["--model", "softmax", "--samples", "20", "--coords", "30", "--seed", "7"]
    first = CliRunner().invoke(gradcheck_command, [*args, *data_args])
    again = CliRunner().invoke(gradcheck_command, [*args, *data_args])
    assert first.exit_code == 0 and first.output == again.output, first.output
    assert set(rows(first.output)) == {
        ("softmax", loss, b) for loss in LOSSES for b in ONE_LAYER
    }
    assert "30 random coordinates" in first.output


def assert_fails_in(result, broken: set) -> None:
    """Exit 1, FAIL in exactly the `broken` rows, and one Error line naming the first."""
    assert result.exit_code == 1, result.output
    table = rows(result.output)
    failed = {key for key, (_, status) in table.items() if status == "FAIL"}
    assert failed == broken, f"FAIL rows {sorted(failed)}, expected {sorted(broken)}"
    first = next(key for key in table if key in broken)  # in table order
    last = result.output.splitlines()[-1]
    assert last.startswith(
        f"Error: {first[0]} ({first[1]}) {first[2]}: the analytic gradient disagrees "
        "with central differences at "
    ), last
    assert re.search(r"relative error \d\.\de[-+]\d\d > --tol 1e-06", last), last
    more = len(broken) - 1
    assert last.endswith(f"(and {more} more blocks)" if more else "1e-06"), last
    assert "Traceback" not in result.output


@pytest.mark.parametrize("bug", BUGS)
def test_command_catches_an_injected_wrong_gradient(data_args, monkeypatch, bug):
    """Every model runs the same backward pass, so a slip in it breaks the mlp's rows too:
    all of them for a wrong dZ at the top, every bias for a wrong bias gradient."""
    monkeypatch.setattr(BUG_MODULES[bug], bug, BUGS[bug])
    result = CliRunner().invoke(
        gradcheck_command, [*FAST, "--loss", "squared", *data_args]
    )
    mlp_rows = {
        "softmax_backward": set(MLP_BLOCKS),
        "squared_grad": set(MLP_BLOCKS),
        "dense_grads": {b for b in MLP_BLOCKS if b.startswith("b")},
    }[bug]
    # the cnn's dense layers are Dense too: a wrong bias gradient breaks their biases
    cnn_rows = {
        "softmax_backward": set(CNN_BLOCKS),
        "squared_grad": set(CNN_BLOCKS),
        "dense_grads": {b for b in CNN_BLOCKS if b[:2] in ("b3", "b4", "b5")},
    }[bug]
    assert_fails_in(
        result,
        {(m, "squared", b) for m, b in BROKEN[bug]}
        | {("mlp", "squared", b) for b in mlp_rows}
        | {("cnn", "squared", b) for b in cnn_rows},
    )


@pytest.mark.parametrize("slip", SLIPS)
def test_command_names_the_layers_a_backprop_slip_breaks(data_args, monkeypatch, slip):
    wrong, broken = SLIPS[slip]
    monkeypatch.setattr(nn_layers, slip, wrong)
    args = ["--model", "mlp", "--loss", "cross-entropy", *FAST]
    result = CliRunner().invoke(gradcheck_command, [*args, *data_args])
    assert_fails_in(
        result,
        {("mlp", "cross-entropy", b) for b in MLP_BLOCKS if layer(b) in broken},
    )


def test_tolerance_below_float64_resolution_fails(data_args):
    result = CliRunner().invoke(
        gradcheck_command, ["--model", "linear", "--tol", "1e-15", *data_args]
    )
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1].startswith("Error: linear (squared) W "), (
        result.output
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--samples", "0"],
            "Invalid value for '--samples': 0 is not in the range x>=1",
        ),
        (["--coords", "0"], "Invalid value for '--coords'"),
        (
            ["--tol", "0"],
            "Invalid value for '--tol': must be a finite number > 0, not 0.0",
        ),
        (
            ["--tol", "nan"],
            "Invalid value for '--tol': must be a finite number > 0, not nan",
        ),
        (["--seed", "-1"], "Invalid value for '--seed'"),
        (["--model", "resnet"], "Invalid value for '--model'"),
        (["--loss", "hinge"], "Invalid value for '--loss'"),
        (
            ["--model", "linear", "--loss", "cross-entropy"],
            (
                "Invalid value for '--loss': cross-entropy needs a softmax output: "
                "use it with the softmax or mlp model (or all)"
            ),
        ),
        (
            ["--model", "softmax", "--hidden", "64"],
            (
                "Invalid value for '--hidden': applies to the mlp or cnn model (or all), "
                "not softmax"
            ),
        ),
        (
            ["--model", "linear", "--activation", "tanh"],
            (
                "Invalid value for '--activation': applies to the mlp model (or all), "
                "not linear"
            ),
        ),
        (["--activation", "softplus"], "Invalid value for '--activation'"),
    ],
)
def test_bad_options_are_usage_errors(args, message):
    result = CliRunner().invoke(gradcheck_command, args)
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output


@pytest.mark.parametrize(
    "bad", ["-3", "2.5", "abc", "64,", "", "0", "4097", "8,0", "1,1,1,1,1"]
)
def test_a_bad_hidden_is_the_usage_error_mnist_train_gives(bad):
    """One parser for --hidden: mnist-gradcheck says what mnist-train says."""
    from mnist_cli.cli import train_command

    checked = CliRunner().invoke(gradcheck_command, ["--hidden", bad])
    trained = CliRunner().invoke(train_command, ["--model", "mlp", "--hidden", bad])
    assert checked.exit_code == trained.exit_code == 2, (checked.output, trained.output)
    error = checked.output.splitlines()[-1]
    assert error.startswith("Error: Invalid value for '--hidden': must be"), error
    assert error == trained.output.splitlines()[-1]


def test_more_samples_than_images_is_a_usage_error(data_args):
    result = CliRunner().invoke(gradcheck_command, ["--samples", "60001", *data_args])
    assert result.exit_code == 2, result.output
    assert (
        "Invalid value for '--samples': must be at most 60,000, the number of training "
        "images, not 60,001"
    ) in result.output, result.output


def test_help_has_example_and_version():
    result = CliRunner().invoke(gradcheck_command, ["-h"])
    assert result.exit_code == 0 and "Example:" in result.output, result.output
    assert "mnist-gradcheck --model softmax" in result.output
    assert "0.1.0" in CliRunner().invoke(gradcheck_command, ["--version"]).output


def test_console_script(mnist_cache, mnist_server_url):
    env = {**os.environ, "MNIST_CACHE_DIR": str(mnist_cache)}
    out = subprocess.run(
        [BIN / "mnist-gradcheck", "--model", "softmax", "--samples", "10"]
        + ["--mirror", mnist_server_url],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].startswith("all 6 blocks agree"), out.stdout


def test_unreachable_mirror_is_one_line_error(tmp_path, http_server):
    server = http_server()  # serves nothing: every file is a 404
    result = CliRunner().invoke(
        gradcheck_command, ["--cache-dir", str(tmp_path), "--mirror", server.url]
    )
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: could not fetch"), result.output
    assert result.output.count("\n") == 1, result.output
