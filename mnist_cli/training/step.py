"""One training step: the fast path's gradients, handed to the optimizer.

    ℒ, g = gradients of the batch (fast/dense.py, in the layout Θ_l = [W_l, b_l])
    θ ← optimizer(θ, g, lr_t)                                   (optim.py, lr_t its schedule's)

Plain SGD without weight decay, θ ← θ − lr g, is linear in g: the fast path then multiplies
the small (K, B) array dZ by −lr instead (its `scale`), every product it makes is directly
the layer's update, and the step is one add per layer; every other optimizer gets g itself.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from mnist_cli.fast.dense import DenseWork, from_thetas, gradients, to_thetas
from mnist_cli.fast.scoring import score
from mnist_cli.metrics import Evaluation
from mnist_cli.nn.conv import Conv2d
from mnist_cli.nn.layers import Act, Dense
from mnist_cli.nn.losses import Loss, check_pairing
from mnist_cli.nn.network import Network
from mnist_cli.optim import Optimizer, OptimizerSpec, make_optimizer

# (images (N, D) uint8, labels (N,), threads or None for scoring's choice) -> the Evaluation
# of the weights the scorer was made from
Scorer = Callable[[np.ndarray, np.ndarray, int | None], Evaluation]
Pieces = Iterable[
    tuple[np.ndarray, np.ndarray]
]  # a batch: (Ũ (m, D + 1), Yᵀ (K, m)) each


@dataclass
class DenseTrainer:
    """A dense network's weights as float32 Θ_l, updated in place by `step`, and the state
    of its optimizer. Made by `trainer_for`."""

    network: Network  # the layers and output; its params are the starting ones
    thetas: tuple[np.ndarray, ...]  # Θ_l = [W_l, b_l] (n_l, n_{l−1} + 1)
    work: DenseWork
    optimizer: Optimizer
    folded: bool  # plain SGD: the fast path scales by −lr, the step adds

    def step(self, pieces: Pieces, B: int, lr: float) -> float:
        """One step on a batch of B rows at learning rate `lr`; returns ℒ before it."""
        if self.folded:
            loss = gradients(self.thetas, pieces, B, -lr, self.work)
            for theta, update in zip(self.thetas, self.work.totals):
                np.add(theta, update, out=theta)  # Θ_l ← Θ_l − lr g_l
            return loss
        loss = gradients(self.thetas, pieces, B, 1.0, self.work)
        self.optimizer.step(self.thetas, self.work.totals, lr)
        return loss

    def current(self) -> Network:
        """The network of the weights as they are now (new arrays: a copy)."""
        dense = iter(from_thetas(self.thetas))
        return self.network.with_params(
            tuple(next(dense) if p else () for p in self.network.params)
        )

    def state(self) -> dict[str, np.ndarray]:
        """The optimizer's state per parameter, as checkpoints name it: "t", and each buffer
        "<buffer>/<i>" for parameter i of W1, b1, W2, b2, ... (Θ_l's columns split: a copy)."""
        state = self.optimizer.state()
        named = {"t": state.pop("t")}
        for key, theta in state.items():  # "v.0": (n_1, D + 1), Θ_1's layout
            buffer, l = key.rsplit(".", 1)
            named[f"{buffer}/{2 * int(l)}"] = np.ascontiguousarray(theta[:, :-1])  # W_l
            named[f"{buffer}/{2 * int(l) + 1}"] = theta[:, -1].copy()  # b_l
        return named

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Resume from a `state()` dict: the W, b buffers joined into Θ_l's layout again;
        ValueError (from the optimizer's strict check) if they are not its rule's."""
        joined = {"t": state["t"]} if "t" in state else {}
        for key, W in state.items():
            buffer, _, i = key.partition("/")
            if not i or int(i) % 2:
                continue  # W_l and b_l → Θ_l = [W_l, b_l] (n_l, n_{l−1} + 1)
            b = state.get(f"{buffer}/{int(i) + 1}")
            if b is None or W.ndim != 2 or b.shape != W.shape[:1]:
                raise ValueError(f"optimizer state {key} has no bias of its rows")
            joined[f"{buffer}.{int(i) // 2}"] = np.hstack([W, b[:, None]])
        self.optimizer.load_state(joined)

    def frozen(self) -> Scorer:
        """A Scorer of a copy of the weights as they are now, which training may go on beside."""
        now = self.current()
        return lambda X, y, threads=None: score(now, X, y, threads=threads)


def trainer_for(network: Network, loss: Loss, spec: OptimizerSpec):
    """The trainer of `network`: a cnn's (training/cnn_step.py) when it has convolutions,
    else a network of dense layers' (with one activation between them)."""
    check_pairing(network.output, loss)
    if any(isinstance(la, Conv2d) for la in network.layers):
        from mnist_cli.training.cnn_step import cnn_trainer

        return cnn_trainer(network, loss, make_optimizer(spec))
    acts = {layer.name for layer in network.layers if isinstance(layer, Act)}
    if len(acts) > 1 or not all(isinstance(la, Dense | Act) for la in network.layers):
        raise ValueError("the fast path trains dense layers with one activation")
    thetas = to_thetas(p for p in network.params if p)
    activation = acts.pop() if acts else None
    work = DenseWork.for_thetas(thetas, activation, network.output, loss)
    folded = spec.name == "sgd" and spec.weight_decay == 0
    return DenseTrainer(network, thetas, work, make_optimizer(spec), folded)
