"""mnist-gradcheck: the analytic gradient against central differences, on real MNIST images.

A gradient check is only worth running if it catches wrong gradients, so most tests here break
one step of the derivation on purpose (the way a student might) and expect it to be caught.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_cli import models
from mnist_cli.cli import gradcheck_command
from mnist_cli.gradcheck import (
    H,
    central_difference,
    check_gradients,
    random_params,
    relative_error,
    sample_batch,
)
from mnist_cli.models import MODEL_KINDS, D, K, Params

BIN = Path(sys.executable).parent
BLOCKS = ("∂L/∂b", "∂L/∂W", "∂L/∂W·V")


# Deliberately wrong steps of the derivation, each one a plausible slip.
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
    "loss_grad_output": loss_grad_output_over_B_twice,
    "param_grads": param_grads_with_mean_bias,
}
# which (model, block) each bug breaks; every other block must still pass
BROKEN = {
    "softmax_backward": {("softmax", b) for b in BLOCKS},
    "loss_grad_output": {(m, b) for m in MODEL_KINDS for b in BLOCKS},
    "param_grads": {(m, "∂L/∂b") for m in MODEL_KINDS},
}


@pytest.fixture(scope="module")
def train_split(mnist_splits):
    return mnist_splits[0]


def batch(train_split, n=100, seed=0):
    rng = np.random.default_rng(seed)
    X, Y = sample_batch(train_split.images, train_split.labels, n, rng)
    return X, Y, random_params(rng), rng


def gradient_with(bug: str):
    """models.loss_and_gradients with one step of it replaced by BUGS[bug]."""

    def gradient(kind, params, X, Y):
        saved = getattr(models, bug)
        setattr(models, bug, BUGS[bug])
        try:
            return models.loss_and_gradients(kind, params, X, Y)
        finally:
            setattr(models, bug, saved)

    return gradient


# --- the pure check ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_right_gradient_agrees_to_about_1e_9(train_split, kind):
    X, Y, params, rng = batch(train_split)
    checks = check_gradients(kind, X, Y, params, rng, coords=100)
    assert [c.block for c in checks] == list(BLOCKS)
    assert [c.checked for c in checks] == [K, 100, 1]
    for c in checks:
        assert c.max_rel_error < 1e-7, (
            f"{kind} {c.block}: max relative error {c.max_rel_error:.1e} at {c.worst} "
            f"(analytic {c.analytic}, numerical {c.numeric}), expected < 1e-7"
        )


@pytest.mark.parametrize("bug", BUGS)
@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_wrong_gradient_is_caught_in_the_blocks_it_breaks(train_split, kind, bug):
    X, Y, params, rng = batch(train_split)
    checks = check_gradients(kind, X, Y, params, rng, gradient=gradient_with(bug))
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


def test_near_uniform_softmax_would_hide_a_dropped_term(train_split):
    """Why the random weights are not tiny: with S ≈ 1/K, ⟨g, S⟩ ≈ 0 for every sample, so
    forgetting it barely changes the gradient; random_params' logits expose it."""
    X, Y, params, _ = batch(train_split)
    wrong = gradient_with("softmax_backward")
    tiny_weights = Params(W=1e-4 * params.W, b=0 * params.b)

    def error(p):
        return check_gradients(
            "softmax", X, Y, p, np.random.default_rng(0), gradient=wrong
        )[2]

    hidden, shown = error(tiny_weights).max_rel_error, error(params).max_rel_error
    assert hidden < 1e-3 and shown > 1e-1, (
        f"dropped term: relative error {hidden:.1e} at near-uniform softmax (expected < 1e-3), "
        f"{shown:.1e} at random_params (expected > 1e-1)"
    )
    S = models.softmax(models.logits(params, X))
    assert 0.2 < S.max(axis=1).mean() < 0.8, (
        f"mean largest softmax output {S.max(axis=1).mean():.2f}, expected in (0.2, 0.8): "
        "neither uniform (0.1) nor saturated (1)"
    )


def test_w_coordinates_are_drawn_among_lit_pixels(train_split):
    """One image lights only some pixels; asking for more coordinates than they offer checks
    every coordinate of those pixels, and no other."""
    X, Y, params, rng = batch(train_split, n=1)
    lit = int((X[0] != 0).sum())
    W_block = check_gradients("softmax", X, Y, params, rng, coords=K * D)[1]
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
    r"^(linear|softmax)\s+(\S+)\s+.*?\s(\d\.\de[-+]\d\d)\s+(\S.*?)\s+(ok|FAIL)$"
)


def rows(output: str) -> dict[tuple[str, str], tuple[float, str]]:
    """{(model, block): (max rel error, status)} from the printed table."""
    found = {}
    for line in output.splitlines():
        m = ROW.match(line)
        if m:
            found[(m[1], m[2])] = (float(m[3]), m[5])
    return found


def test_command_passes_for_both_models(data_args):
    result = CliRunner().invoke(gradcheck_command, data_args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        f"100 mnist training images, random weights (seed 0), float64, h = {H:.1e}"
    ), lines[0]
    table = rows(result.output)
    assert set(table) == {(m, b) for m in MODEL_KINDS for b in BLOCKS}, result.output
    assert all(status == "ok" and err < 1e-7 for err, status in table.values()), (
        result.output
    )
    worst = max(err for err, _ in table.values())
    assert lines[-1] == (
        f"all 6 blocks agree with central differences: max relative error {worst:.1e} "
        "<= --tol 1e-06"
    ), lines[-1]


def test_same_seed_same_report_and_one_model(data_args):
    args = ["--model", "softmax", "--samples", "20", "--coords", "30", "--seed", "7"]
    first = CliRunner().invoke(gradcheck_command, [*args, *data_args])
    again = CliRunner().invoke(gradcheck_command, [*args, *data_args])
    assert first.exit_code == 0 and first.output == again.output, first.output
    assert set(rows(first.output)) == {("softmax", b) for b in BLOCKS}
    assert "30 random coordinates" in first.output


@pytest.mark.parametrize("bug", BUGS)
def test_command_catches_an_injected_wrong_gradient(data_args, monkeypatch, bug):
    monkeypatch.setattr(models, bug, BUGS[bug])
    result = CliRunner().invoke(gradcheck_command, data_args)
    assert result.exit_code == 1, result.output
    table = rows(result.output)
    failed = {key for key, (_, status) in table.items() if status == "FAIL"}
    assert failed == BROKEN[bug], (
        f"FAIL rows {sorted(failed)}, expected {sorted(BROKEN[bug])}"
    )
    first = next(key for key in table if key in BROKEN[bug])  # in table order
    last = result.output.splitlines()[-1]
    assert last.startswith(
        f"Error: {first[0]} {first[1]}: the analytic gradient disagrees with central "
        "differences at "
    ), last
    assert re.search(r"relative error \d\.\de[-+]\d\d > --tol 1e-06", last), last
    more = len(BROKEN[bug]) - 1
    assert last.endswith(f"(and {more} more blocks)" if more else "1e-06"), last
    assert "Traceback" not in result.output


def test_tolerance_below_float64_resolution_fails(data_args):
    result = CliRunner().invoke(
        gradcheck_command, ["--model", "linear", "--tol", "1e-15", *data_args]
    )
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1].startswith("Error: linear ∂L/∂b: "), (
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
        (["--model", "cnn"], "Invalid value for '--model'"),
    ],
)
def test_bad_options_are_usage_errors(args, message):
    result = CliRunner().invoke(gradcheck_command, args)
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output


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
        [BIN / "mnist-gradcheck", "--samples", "10", "--mirror", mnist_server_url],
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
