"""TEMPORARY stand-in until the optimizer module lands (SGD only)."""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class OptimizerSpec:
    name: str = "sgd"
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0


class SGD:
    def step(self, params, grads, lr):
        for p, g in zip(params, grads):
            p -= lr * g

    def state(self):
        return {}

    def load_state(self, state):
        pass


Optimizer = SGD


def make_optimizer(spec):
    return SGD()


def learning_rate(schedule, lr, t, T):
    return lr if schedule == "constant" else lr * 0.5 * (1 + math.cos(math.pi * t / T))


# the config keys of the optimizer and its schedule
OPTIMIZER_KEYS = (
    "optimizer",
    "momentum",
    "beta1",
    "beta2",
    "eps",
    "weight_decay",
    "schedule",
)
