"""The optimizers against their equations: every trajectory equals a float64 reference written
from the rules of torch.optim (not from mnist_cli.optim), on numbers chosen so that each classic
slip (a missing bias correction, Sutskever's momentum, ε inside the square root, ...) is far
outside the tolerance; the schedule's values; exact resumption from state(); strict loading."""

import io
import itertools
import math
import tracemalloc

import numpy as np
import pytest

from mnist_cli.optim import (
    OPTIMIZERS,
    OptimizerSpec,
    learning_rate,
    make_optimizer,
)

SHAPES = [(3, 4), (3,)]  # a weight matrix and a bias
# a changing lr: Sutskever's momentum differs from torch's only then
LRS = [0.1, 0.03, 0.2, 0.05, 0.1]
# weight decay on, so that a missing or misplaced decay shows; with it every gradient is
# ≳ λ|θ| ~ 0.01, so adam's ε is raised to 1e-3 for ε inside √(v̂ + ε) to show
SPECS = {
    name: OptimizerSpec(name=name, momentum=0.8, eps=1e-3, weight_decay=0.1)
    for name in OPTIMIZERS
}
DEFAULTS = {name: OptimizerSpec(name=name) for name in OPTIMIZERS}
BOTH = [*SPECS.values(), *DEFAULTS.values()]
IDS = [f"{s.name}-eps{s.eps:g}-decay{s.weight_decay:g}" for s in BOTH]
# each rule's slips, as the reference computes them (slip=None is the rule itself)
SLIPS = {
    "sgd": ["no weight decay"],  # (after the update is the same for sgd)
    "momentum": ["no weight decay", "decay after the update", "sutskever", "dampening"],
    "nesterov": ["no weight decay", "decay after the update", "as plain momentum"],
    "adam": [
        "no weight decay",
        "decay after the update",
        "no bias correction",
        "eps inside the square root",
        "no bias correction of v",
    ],
}


def problem(seed=0, steps=5):
    """Initial parameters and a gradient sequence, float32. The gradients' sizes spread from
    1e-4 to 1 (log-uniform), so that ε = 1e-8 inside √(v̂ + ε) changes the smallest steps by
    ~40 % where g stays ~1e-4 (the bias's first entry); one entry is always 0 (Adam's 0/(0 + ε)
    must stay 0)."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = []
    for _ in range(steps):
        step = []
        for s in SHAPES:
            size = 10.0 ** rng.uniform(-4, 0, s)
            step.append((rng.choice([-1.0, 1.0], s) * size).astype(np.float32))
        step[0][0, 0] = 0.0
        step[1][0] = rng.choice([-1e-4, 1e-4])
        grads.append(step)
    return params, grads


def reference(spec, params, grads, lrs, slip=None):
    """The parameters after each step, float64, written from the equations of torch.optim.SGD
    and torch.optim.Adam (one parameter group), or with one slip."""
    mu, b1, b2, eps, lam = (
        spec.momentum,
        spec.beta1,
        spec.beta2,
        spec.eps,
        spec.weight_decay,
    )
    theta = [p.astype(np.float64) for p in params]
    v = [np.zeros_like(x) for x in theta]  # momentum's velocity, adam's second moment
    m = [np.zeros_like(x) for x in theta]  # adam's first moment
    for t, (gs, lr) in enumerate(zip(grads, lrs), start=1):
        for i, g in enumerate(gs):
            g = g.astype(np.float64)
            if slip not in ("no weight decay", "decay after the update"):
                g = g + lam * theta[i]
            if spec.name == "sgd":
                update = lr * g
            elif spec.name in ("momentum", "nesterov"):
                if slip == "sutskever":  # v ← μv + lr·g, θ ← θ − v
                    v[i] = mu * v[i] + lr * g
                    update = v[i]
                elif slip == "dampening":  # v ← μv + (1 − μ)g
                    v[i] = mu * v[i] + (1 - mu) * g
                    update = lr * v[i]
                else:
                    v[i] = mu * v[i] + g
                    update = lr * v[i]
                if spec.name == "nesterov" and slip != "as plain momentum":
                    update = lr * (g + mu * v[i])
            else:
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g**2
                m_hat, v_hat = m[i] / (1 - b1**t), v[i] / (1 - b2**t)
                if slip == "no bias correction":
                    m_hat, v_hat = m[i], v[i]
                if slip == "no bias correction of v":
                    v_hat = v[i]
                if slip == "eps inside the square root":
                    update = lr * m_hat / np.sqrt(v_hat + eps)
                else:
                    update = lr * m_hat / (np.sqrt(v_hat) + eps)
            if slip == "decay after the update":
                update = update + lr * lam * theta[i]
            theta[i] = theta[i] - update
    return theta


def run(spec, params, grads, lrs, dtype=np.float32):
    """mnist_cli.optim's trajectory: the parameters after the steps (inputs left unchanged)."""
    optimizer = make_optimizer(spec)
    theta = [p.astype(dtype) for p in params]
    for gs, lr in zip(grads, lrs):
        optimizer.step(theta, [g.astype(dtype) for g in gs], lr)
    return theta


def assert_close(got, expected, rtol, atol, what):
    for i, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(
            a, b, rtol=rtol, atol=atol, err_msg=f"{what}, param {i}"
        )


# float32 keeps ~7 digits: 5 steps of ~10 roundings each on θ of size ~1
F32 = {"rtol": 1e-5, "atol": 1e-6}


@pytest.mark.parametrize("spec", BOTH, ids=IDS)
def test_trajectory_equals_the_float64_reference(spec):
    params, grads = problem()
    expected = reference(spec, params, grads, LRS)
    got = run(spec, params, grads, LRS)
    assert_close(got, expected, **F32, what=f"{spec} in float32")


@pytest.mark.parametrize("spec", BOTH, ids=IDS)
def test_in_float64_the_folded_arithmetic_is_the_equations(spec):
    """Run in float64, the rearrangements (Adam's folded scalars and decayed sums,
    Nesterov's two subtractions) agree with the equations to ~1e-15."""
    params, grads = problem(seed=1)
    expected = reference(spec, params, grads, LRS)
    got = run(spec, params, grads, LRS, dtype=np.float64)
    assert_close(got, expected, rtol=1e-12, atol=1e-13, what=f"{spec} in float64")


@pytest.mark.parametrize(
    ("name", "slip"), [(name, slip) for name, slips in SLIPS.items() for slip in slips]
)
def test_each_slip_is_far_outside_the_tolerance(name, slip):
    """The numbers above tell each slip from the rule: its trajectory differs from the
    reference by ≥ 100× the tolerance the float32 test allows, so code with the slip fails."""
    params, grads = problem()
    right = reference(SPECS[name], params, grads, LRS)
    wrong = reference(SPECS[name], params, grads, LRS, slip=slip)
    gap = max(float(np.max(np.abs(a - b))) for a, b in zip(right, wrong))
    allowed = F32["atol"] + F32["rtol"] * max(float(np.max(np.abs(a))) for a in right)
    assert gap > 100 * allowed, (
        f"{name} with {slip!r}: gap {gap:.2e}, tolerance {allowed:.2e}"
    )


def test_sutskever_momentum_is_the_same_while_lr_is_constant():
    """Why LRS changes: with a constant lr the two conventions give the same trajectory."""
    params, grads = problem()
    spec = SPECS["momentum"]
    constant = [0.1] * len(LRS)
    right = reference(spec, params, grads, constant)
    sutskever = reference(spec, params, grads, constant, slip="sutskever")
    assert_close(sutskever, right, rtol=1e-12, atol=1e-14, what="constant lr")


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov"])
def test_weight_decay_alone_shrinks_every_parameter_by_lr_lambda(name):
    """With zero gradients the first step is θ ← θ − lr·λθ = (1 − lr·λ)θ, biases included
    (momentum's v₁ = λθ, Nesterov's g + μv₁ = (1 + μ)λθ)."""
    lr, lam, mu = 0.1, 0.25, 0.8
    spec = OptimizerSpec(name=name, momentum=mu, weight_decay=lam)
    params, _ = problem()
    zeros = [np.zeros_like(p) for p in params]
    got = run(spec, params, [zeros], [lr])
    factor = 1 - lr * lam * (1 + mu if name == "nesterov" else 1)
    assert_close(got, [factor * p for p in params], rtol=1e-6, atol=0, what=name)


def test_adam_weight_decay_alone_moves_every_parameter_by_about_lr():
    """With zero gradients, Adam's first step normalises λθ: m̂/√v̂ = λθ/|λθ| = sign θ, so each
    parameter (biases too) moves by lr·λ|θ|/(λ|θ| + ε) toward 0, whatever λ."""
    lr, lam = 0.01, 1e-3
    params, _ = problem()
    zeros = [np.zeros_like(p) for p in params]
    got = run(OptimizerSpec(name="adam", weight_decay=lam), params, [zeros], [lr])
    for p, q in zip(params, got):
        moved = lr * lam * np.abs(p) / (lam * np.abs(p) + 1e-8)
        np.testing.assert_allclose(q, p - np.sign(p) * moved, rtol=1e-6, atol=1e-8)
        assert np.all(np.abs(q) < np.abs(p)), "every parameter moves toward 0"


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_no_weight_decay_by_default(name):
    """λ = 0: a zero gradient leaves every parameter where it was, bit for bit."""
    params, _ = problem()
    zeros = [np.zeros_like(p) for p in params]
    got = run(OptimizerSpec(name=name), params, [zeros, zeros], [0.1, 0.1])
    assert all(np.array_equal(a, b) for a, b in zip(got, params))


def test_the_constant_schedule():
    assert [learning_rate("constant", 0.3, t, 10) for t in (0, 5, 9, 10)] == [0.3] * 4


def test_the_cosine_schedule_at_the_start_the_middle_and_the_end():
    T, lr = 600, 0.2
    assert learning_rate("cosine", lr, 0, T) == lr
    assert learning_rate("cosine", lr, T // 2, T) == pytest.approx(lr / 2, rel=1e-15)
    assert learning_rate("cosine", lr, T, T) == pytest.approx(0.0, abs=1e-17)
    rates = [learning_rate("cosine", lr, t, T) for t in range(T)]
    assert all(a > b > 0 for a, b in itertools.pairwise(rates)), "decreasing, positive"
    # Σ_{t<T} cos(πt/T) = 1, so the run's rates sum to lr·(T + 1)/2
    assert sum(rates) == pytest.approx(lr * (T + 1) / 2, rel=1e-12)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("linear", 0.1, 0, 10), "unknown schedule 'linear'"),
        (("cosine", 0.1, 11, 10), "step 11 is outside a run of 10 steps"),
        (("cosine", 0.1, -1, 10), "step -1"),
        (("constant", 0.1, 0, 0), "a run of 0 steps"),
    ],
)
def test_schedule_refusals(args, match):
    with pytest.raises(ValueError, match=match):
        learning_rate(*args)


def save_and_load(state):
    """Through an .npz file, as a checkpoint would be (no pickles)."""
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_resuming_from_state_is_bit_for_bit(name):
    """5 steps in one go equal 2 steps, state saved and loaded into a fresh optimizer, 3 more."""
    params, grads = problem(steps=5)
    whole = make_optimizer(SPECS[name])
    theta = [p.copy() for p in params]
    for gs, lr in zip(grads, LRS):
        whole.step(theta, [g.copy() for g in gs], lr)

    first = make_optimizer(SPECS[name])
    resumed = [p.copy() for p in params]
    for gs, lr in zip(grads[:2], LRS[:2]):
        first.step(resumed, [g.copy() for g in gs], lr)
    second = make_optimizer(SPECS[name])
    second.load_state(save_and_load(first.state()))
    for gs, lr in zip(grads[2:], LRS[2:]):
        second.step(resumed, [g.copy() for g in gs], lr)

    assert all(np.array_equal(a, b) for a, b in zip(theta, resumed)), "parameters"
    state, other = whole.state(), second.state()
    assert state.keys() == other.keys() and int(state["t"]) == 5
    assert all(np.array_equal(state[k], other[k]) for k in state), "state"


def test_state_before_the_first_step_and_its_copies():
    optimizer = make_optimizer(SPECS["adam"])
    assert optimizer.state() == {"t": 0}
    params, grads = problem()
    optimizer.step(params, grads[0], 0.1)
    state = optimizer.state()
    assert sorted(state) == ["m_sum.0", "m_sum.1", "t", "v_sum.0", "v_sum.1"]
    state["m_sum.0"][...] = 7.0  # a copy: the optimizer's own state is untouched
    assert not np.any(optimizer.state()["m_sum.0"] == 7.0)


def stepped(name="adam"):
    optimizer = make_optimizer(SPECS[name])
    params, grads = problem()
    optimizer.step(params, grads[0], 0.1)
    return optimizer


def adam_state_with(**changes):
    state = stepped("adam").state()
    state.update(changes)
    return {k: v for k, v in state.items() if v is not None}


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ({}, 'needs "t"'),
        (adam_state_with(t=np.array(1.0)), 'needs "t"'),
        (adam_state_with(t=np.array([1])), 'needs "t"'),
        (adam_state_with(t=np.array(-1)), "negative step count -1"),
        (adam_state_with(**{"v_sum.1": None}), "must hold m_sum.0, m_sum.1, t"),
        (adam_state_with(**{"w.0": np.zeros(3, np.float32)}), "it holds .*w.0"),
        (stepped("momentum").state(), "adam optimizer state must hold"),
        (adam_state_with(**{"m_sum.1": np.zeros(4, np.float32)}), "'m_sum' has"),
        (adam_state_with(**{"v_sum.0": np.zeros((3, 4))}), "float64"),
        (adam_state_with(**{"v_sum.0": np.zeros((3, 4), int)}), "floating-point"),
        (adam_state_with(**{"v_sum.0": [[0.0] * 4] * 3}), "floating-point"),
    ],
)
def test_load_state_refuses_what_is_not_this_optimizers_state(state, match):
    optimizer = stepped("adam")
    before = optimizer.state()
    with pytest.raises(ValueError, match=match):
        optimizer.load_state(state)
    after = optimizer.state()
    assert all(np.array_equal(before[k], after[k]) for k in before), "left as it was"


def test_a_loaded_state_must_fit_the_parameters_at_the_next_step():
    state = stepped("momentum").state()
    fresh = make_optimizer(SPECS["momentum"])
    fresh.load_state(state)  # the shapes are not known before a step
    params = [np.zeros((4, 3), np.float32), np.zeros(3, np.float32)]
    with pytest.raises(ValueError, match="'v' has"):
        fresh.step(params, [np.zeros_like(p) for p in params], 0.1)


def test_step_refuses_gradients_or_parameters_that_do_not_fit():
    optimizer = stepped("momentum")
    params, grads = problem()
    with pytest.raises(ValueError, match="shape of its parameter"):
        optimizer.step(params, grads[0][:1], 0.1)
    with pytest.raises(ValueError, match="shape of its parameter"):
        optimizer.step(params, [grads[0][0], grads[0][0][0]], 0.1)
    with pytest.raises(ValueError, match="as at step 1"):
        optimizer.step(params[:1], grads[0][:1], 0.1)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        (
            {"name": "rmsprop"},
            "unknown optimizer 'rmsprop': choose one of sgd, momentum",
        ),
        ({"momentum": 1.0}, r"momentum must be in \[0, 1\), got 1.0"),
        ({"momentum": -0.1}, "momentum must be in"),
        ({"momentum": math.nan}, "momentum must be in"),
        ({"beta1": 1}, "beta1 must be in"),
        ({"beta2": 1.5}, "beta2 must be in"),
        ({"eps": 0}, "eps must be a positive number, got 0.0"),
        ({"eps": math.inf}, "eps must be a positive number"),
        ({"weight_decay": -1e-4}, "weight_decay must be 0 or more"),
        ({"weight_decay": "0.1"}, "weight_decay must be a number, got '0.1'"),
        ({"beta1": True}, "beta1 must be a number"),
        ({"name": "nesterov", "momentum": 0}, "nesterov needs a momentum above 0"),
    ],
)
def test_spec_refusals(settings, match):
    with pytest.raises(ValueError, match=match) as error:
        OptimizerSpec(**settings)
    assert "--" not in str(error.value), "no CLI flag text in a library error"


def test_spec_defaults_are_torchs_and_numbers_become_floats():
    spec = OptimizerSpec(momentum=0, weight_decay=1)
    assert (spec.momentum, spec.weight_decay) == (0.0, 1.0)
    assert all(type(getattr(spec, f)) is float for f in ("momentum", "weight_decay"))
    default = OptimizerSpec()
    assert (default.name, default.beta1, default.beta2, default.eps) == (
        "sgd",
        0.9,
        0.999,
        1e-8,
    )
    assert (default.momentum, default.weight_decay) == (0.9, 0.0)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_is_allocated_at_the_first_step_and_nothing_after(name):
    """numpy reports its arrays to tracemalloc: the first step allocates the state (the
    measurement sees it), later steps allocate no array."""
    spec = OptimizerSpec(name=name, weight_decay=0.01)
    params = [np.ones((200, 100), np.float32), np.ones(200, np.float32)]
    grads = [np.ones_like(p) for p in params]
    size = sum(p.nbytes for p in params)
    optimizer = make_optimizer(spec)
    tracemalloc.start()
    try:
        optimizer.step(params, grads, 0.1)
        first = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(3):
            optimizer.step(params, grads, 0.1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    buffers = {"sgd": 0, "momentum": 1, "nesterov": 1, "adam": 2}[
        name
    ] + 1  # + decay scratch
    assert first >= buffers * size, f"first step: {first} bytes traced"
    assert peak - first < 4096, (
        f"later steps: peak {peak - first} bytes above the first's"
    )


def test_same_numbers_as_torch_optim():
    """The same trajectory as torch.optim.SGD / Adam (one parameter group, lr set per step)."""
    torch = pytest.importorskip("torch")
    params, grads = problem()
    for name in OPTIMIZERS:
        spec = SPECS[name]
        tensors = [torch.tensor(p, requires_grad=True) for p in params]
        if name == "adam":
            options = {"betas": (spec.beta1, spec.beta2), "eps": spec.eps}
            optimizer = torch.optim.Adam(
                tensors, lr=LRS[0], **options, weight_decay=0.1
            )
        else:
            momentum = 0.0 if name == "sgd" else spec.momentum
            optimizer = torch.optim.SGD(
                tensors,
                lr=LRS[0],
                momentum=momentum,
                nesterov=name == "nesterov",
                weight_decay=spec.weight_decay,
            )
        for gs, lr in zip(grads, LRS):
            optimizer.param_groups[0]["lr"] = lr
            for x, g in zip(tensors, gs):
                x.grad = torch.tensor(g)
            optimizer.step()
        ours = run(spec, params, grads, LRS)
        theirs = [x.detach().numpy() for x in tensors]
        assert_close(ours, theirs, **F32, what=f"{name} against torch.optim")
