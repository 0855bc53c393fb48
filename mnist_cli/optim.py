"""Optimizers: the step from gradients to new parameters, apart from how gradients are computed.

Four rules with PyTorch's conventions (torch.optim.SGD and Adam with one parameter group), each
class with its rule, for every parameter array θ (any shape) and its gradient g (θ's shape).
Steps work in place with ufuncs and out=: the state is allocated at the first step, and no
array after it; gradients are overwritten as scratch. docs/derivations.md (sections 16 to 23) derives the rules.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from mnist_cli.config.choices import OPTIMIZERS, SCHEDULES

Arrays = Sequence[np.ndarray]
Layout = list[tuple[tuple[int, ...], np.dtype]]  # each parameter's (shape, dtype)


@dataclass(frozen=True)
class OptimizerSpec:
    """The optimizer's settings, validated; numbers are stored as floats."""

    name: str = "sgd"  # one of OPTIMIZERS
    momentum: float = 0.9  # μ, momentum and nesterov
    beta1: float = 0.9  # β₁, adam's first-moment decay
    beta2: float = 0.999  # β₂, adam's second-moment decay
    eps: float = 1e-8  # ε, adam: added to √v̂ (a step stays finite where g was always 0)
    weight_decay: float = 0.0  # λ, every rule: g ← g + λθ

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {self.name!r}: choose one of {', '.join(OPTIMIZERS)}"
            )
        for f in fields(self)[1:]:
            value = getattr(self, f.name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number:  # a ValueError like every other bad setting
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            object.__setattr__(self, f.name, float(value))
        for key in ("momentum", "beta1", "beta2"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ValueError(f"{key} must be in [0, 1), got {getattr(self, key)}")
        if self.name == "nesterov" and self.momentum == 0.0:
            raise ValueError("nesterov needs a momentum above 0 (with 0 it is sgd)")
        if not 0.0 < self.eps < math.inf:
            raise ValueError(f"eps must be a positive number, got {self.eps}")
        if not 0.0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be 0 or more, got {self.weight_decay}")


class Optimizer:
    """What every rule shares: weight decay first (g ← g + λθ, biases included, as torch's),
    the step count t, the state. A rule names the arrays it keeps per parameter (`buffers`)
    and writes `update(params, grads, lr)`, given the decayed gradients to overwrite."""

    buffers: tuple[str, ...] = ()

    def __init__(self, spec: OptimizerSpec) -> None:
        self.spec = spec
        self.t = 0  # steps taken
        self.slots: dict[str, list[np.ndarray]] = {}  # buffer -> an array per parameter
        self.layout: Layout | None = None  # the parameters' (shape, dtype), from step 1
        self.decayed: list[np.ndarray] = []  # scratch for λθ, with weight decay only

    def step(self, params: Arrays, grads: Arrays, lr: float) -> None:
        """One step: params updated in place, grads overwritten."""
        layout = _layout(params)
        if layout != self.layout:
            self._start(params, layout)
        if [g.shape for g in grads] != [shape for shape, _ in layout]:
            raise ValueError("each gradient must have the shape of its parameter")
        self.t += 1
        if lam := self.spec.weight_decay:
            for p, g, s in zip(params, grads, self.decayed):
                np.multiply(p, lam, out=s)
                np.add(g, s, out=g)  # g ← g + λθ
        self.update(params, grads, float(lr))

    def _start(self, params: Arrays, layout: Layout) -> None:
        """At the first step: allocate the state, or check the loaded one against params."""
        if self.layout is not None:
            raise ValueError(f"parameters {layout}, not {self.layout} as at step 1")
        if not self.slots:
            self.slots = {b: [np.zeros_like(p) for p in params] for b in self.buffers}
        _check(self.slots, layout)
        self.decayed = [np.empty_like(p) for p in params if self.spec.weight_decay]
        self.layout = layout

    def state(self) -> dict[str, np.ndarray]:
        """Everything needed to resume exactly: "t" (0-d int64) and a copy of each buffer,
        named "<buffer>.<parameter index>" (e.g. "v.0"); {"t": 0} before the first step."""
        state = {"t": np.array(self.t, np.int64)}
        for name, arrays in self.slots.items():
            state.update({f"{name}.{i}": a.copy() for i, a in enumerate(arrays)})
        return state

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Resume from a state() dict. Strict: "t" and exactly this rule's buffers, float
        arrays shaped like the parameters (checked at the next step if none was taken yet)."""
        t = state.get("t")
        if not (isinstance(t, np.ndarray) and t.shape == () and t.dtype.kind in "iu"):
            raise ValueError('optimizer state needs "t": a 0-d integer array')
        if t < 0:
            raise ValueError(f"optimizer state has a negative step count {t}")
        others = len(state) - 1  # arrays: n parameters × len(self.buffers)
        n = len(self.layout) if self.layout else others // max(1, len(self.buffers))
        n = n if t > 0 else 0  # no buffers before the first step
        expected = {"t"} | {f"{b}.{i}" for b in self.buffers for i in range(n)}
        if set(state) != expected:
            raise ValueError(
                f"{self.spec.name} optimizer state must hold {', '.join(sorted(expected))}; "
                f"it holds {', '.join(sorted(map(str, state)))}"
            )
        slots = {b: [state[f"{b}.{i}"] for i in range(n)] for b in self.buffers if n}
        arrays = [a for listed in slots.values() for a in listed]
        if not all(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in arrays):
            raise ValueError("optimizer state buffers must be floating-point arrays")
        if slots:
            _check(slots, self.layout or _layout(slots[self.buffers[0]]))
        self.t = int(t)
        self.slots = {b: [a.copy() for a in listed] for b, listed in slots.items()}
        if self.t == 0:
            self.layout = None  # as new: the state is allocated at the next step


def _layout(arrays: Arrays) -> Layout:
    """(shape, dtype) of each array."""
    return [(a.shape, a.dtype) for a in arrays]


def _check(slots: dict[str, list[np.ndarray]], layout: Layout) -> None:
    """Each buffer's arrays must match the parameters' (shape, dtype), one by one."""
    for name, arrays in slots.items():
        if _layout(arrays) != layout:
            raise ValueError(
                f"optimizer state {name!r} has (shape, dtype) {_layout(arrays)}, "
                f"the parameters {layout}"
            )


class SGD(Optimizer):
    """Plain gradient descent, torch.optim.SGD(momentum=0):  θ ← θ − lr·g  (θ, g: any shape)."""

    def update(self, params: Arrays, grads: Arrays, lr: float) -> None:
        for p, g in zip(params, grads):
            np.multiply(g, lr, out=g)  # lr·g
            np.subtract(p, g, out=p)  # θ ← θ − lr·g


class Momentum(Optimizer):
    """Heavy-ball momentum, torch.optim.SGD(momentum=μ) (dampening 0):

        v ← μv + g                                     v: θ's shape, 0 before step 1
        θ ← θ − lr·v

    The velocity sums raw gradients and lr multiplies the whole of it at each step; Sutskever's
    form (v ← μv + lr·g, θ ← θ − v) is the same only while lr stays constant.
    """

    buffers = ("v",)

    def update(self, params: Arrays, grads: Arrays, lr: float) -> None:
        mu = self.spec.momentum
        for p, g, v in zip(params, grads, self.slots["v"]):
            np.multiply(v, mu, out=v)
            np.add(v, g, out=v)  # v ← μv + g
            np.multiply(v, lr, out=g)  # lr·v
            np.subtract(p, g, out=p)  # θ ← θ − lr·v


class Nesterov(Momentum):
    """Nesterov momentum, torch.optim.SGD(momentum=μ, nesterov=True):

        v ← μv + g                                     v: θ's shape, 0 before step 1
        θ ← θ − lr·(g + μv)                            (the new v: a look ahead along it)

    computed as θ ← θ − lr·g − lr·μ·v, two subtractions, which needs no scratch array.
    """

    def update(self, params: Arrays, grads: Arrays, lr: float) -> None:
        mu = self.spec.momentum
        for p, g, v in zip(params, grads, self.slots["v"]):
            np.multiply(v, mu, out=v)
            np.add(v, g, out=v)  # v ← μv + g
            np.multiply(g, lr, out=g)
            np.subtract(p, g, out=p)  # θ ← θ − lr·g
            np.multiply(v, lr * mu, out=g)
            np.subtract(p, g, out=p)  # θ ← θ − lr·μ·v


class Adam(Optimizer):
    """Adam, torch.optim.Adam (Kingma & Ba, 2015):

        m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²        m, v: θ's shape, 0 before step 1
        m̂ = m/(1−β₁ᵗ),  v̂ = v/(1−β₂ᵗ)                  (the bias corrections)
        θ ← θ − lr·m̂/(√v̂ + ε)

    Computed with the decayed sums m̃ = m/(1−β₁) = Σₛ β₁ᵗ⁻ˢgₛ and ṽ = v/(1−β₂) = Σₛ β₂ᵗ⁻ˢgₛ²
    (two passes over the arrays fewer; torch's exp_avg, exp_avg_sq are (1−β₁)m̃, (1−β₂)ṽ) and
    the constants folded into two scalars, as torch folds its own; with c = √((1−β₂)/(1−β₂ᵗ)),
    √v̂ = c√ṽ and the update is, up to rounding,
        m̃ ← β₁m̃ + g,  ṽ ← β₂ṽ + g²,  θ ← θ − step·m̃/(√ṽ + ε/c),  step = lr(1−β₁)/((1−β₁ᵗ)c)
    """

    buffers = ("m_sum", "v_sum")

    def update(self, params: Arrays, grads: Arrays, lr: float) -> None:
        b1, b2, t = self.spec.beta1, self.spec.beta2, self.t
        c = math.sqrt((1.0 - b2) / (1.0 - b2**t))
        step = lr * (1.0 - b1) / ((1.0 - b1**t) * c)
        eps = self.spec.eps / c
        ms, vs = self.slots["m_sum"], self.slots["v_sum"]
        for p, g, m, v in zip(params, grads, ms, vs):
            np.multiply(m, b1, out=m)
            np.add(m, g, out=m)  # m̃ ← β₁m̃ + g
            np.multiply(g, g, out=g)  # g²
            np.multiply(v, b2, out=v)
            np.add(v, g, out=v)  # ṽ ← β₂ṽ + g²
            np.sqrt(v, out=g)
            np.add(g, eps, out=g)  # √ṽ + ε/c
            np.divide(m, g, out=g)
            np.multiply(g, step, out=g)
            np.subtract(p, g, out=p)  # θ ← θ − step·m̃/(√ṽ + ε/c)


def make_optimizer(spec: OptimizerSpec) -> Optimizer:
    """A fresh optimizer for the spec (its state is allocated at the first step)."""
    rules = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "adam": Adam}
    return rules[spec.name](spec)


def learning_rate(schedule: str, lr: float, t: int, T: int) -> float:
    """The learning rate of step t = 0 … T−1 of a run of T steps (t = T allowed: the end):

    constant:  lr
    cosine:    lr·½(1 + cos(π t/T))     (lr at t = 0, lr/2 at t = T/2, 0 at t = T)
    """
    if schedule not in SCHEDULES:
        raise ValueError(
            f"unknown schedule {schedule!r}: choose one of {', '.join(SCHEDULES)}"
        )
    if not 0 <= t <= T or T < 1:
        raise ValueError(f"step {t} is outside a run of {T} steps")
    if schedule == "constant":
        return float(lr)
    return lr * 0.5 * (1.0 + math.cos(math.pi * t / T))
