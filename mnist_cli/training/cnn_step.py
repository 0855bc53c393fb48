"""One training step of a cnn: fast/conv.py's gradients, handed to the optimizer.

    ℒ, g = FastCNN.loss_and_grads(θ, X, y)      every parameter's gradient, in its own shape
    θ ← optimizer(θ, g, lr_t)                   (optim.py; the parameters are the user's W, b)

The parameters are held as one flat list in the network's order (W, b of each convolution,
then of each dense layer), which is the order of its layers' params, of the optimizer's state
and of the checkpoint's names.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mnist_cli.fast.conv import FastCNN
from mnist_cli.fast.dense import INV_PIXEL
from mnist_cli.fast.scoring import score
from mnist_cli.fast.shared import SharedCNN
from mnist_cli.nn import D
from mnist_cli.nn.losses import Loss
from mnist_cli.nn.network import Network
from mnist_cli.optim import Optimizer

Pieces = Iterable[
    tuple[np.ndarray, np.ndarray]
]  # a batch: (Ũ (m, D + 1), Yᵀ (K, m)) each


@dataclass
class CNNTrainer:
    """A cnn's weights as float32 arrays, updated in place by `step`, and the state of its
    optimizer. Made by training.step.trainer_for."""

    network: Network  # the layers and output; its params are the starting ones
    params: list[np.ndarray]  # W₁, b₁, … in the network's order, float32
    shared: SharedCNN  # the batch's gradients, on one thread or shared among several
    optimizer: Optimizer

    def step(self, pieces: Pieces, B: int, lr: float) -> float:
        """One step on a batch of B rows at learning rate `lr`; returns ℒ before it. A batch in
        several pieces: ℒ and g are the pieces' own, weighted by their sizes m/B."""
        loss, total = 0.0, None
        for U1, Yt in pieces:
            X = np.multiply(U1[:, :D], INV_PIXEL)  # (m, D) X = U / 255
            y = Yt.argmax(axis=0)  # (m,) labels
            piece_loss, grads = self.shared.loss_and_grads(self.params, X, y)
            w = len(y) / B
            loss += w * piece_loss
            if len(y) == B:
                total = grads
            elif total is None:
                total = [np.float32(w) * g for g in grads]
            else:
                for t, g in zip(total, grads):
                    t += np.float32(w) * g
        self.optimizer.step(self.params, total, lr)
        return loss

    def current(self) -> Network:
        """The network of the weights as they are now (new arrays: a copy)."""
        flat = iter(self.params)
        return self.network.with_params(
            tuple(tuple(next(flat).copy() for _ in p) for p in self.network.params)
        )

    def state(self) -> dict[str, np.ndarray]:
        """The optimizer's state as checkpoints name it: "t" and "<buffer>/<i>"."""
        return {k.replace(".", "/"): v for k, v in self.optimizer.state().items()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Resume from a `state()` dict (ValueError from the optimizer's strict check)."""
        self.optimizer.load_state({k.replace("/", "."): v for k, v in state.items()})

    def frozen(self):
        """A Scorer of a copy of the weights as they are now, which training may go on beside."""
        now = self.current()
        return lambda X, y, threads=None: score(now, X, y, threads=threads)


# a batch's gradients are computed in this many slices, each on a thread of its own (numpy
# releases the GIL in its products and loops): a fixed count, not the machine's, so that the
# same seed gives the same weights bit for bit on any machine (fast/shared.py)
THREADS = 2


def cnn_trainer(
    network: Network, loss: Loss, optimizer: Optimizer, threads: int = THREADS
) -> CNNTrainer:
    """The trainer of a cnn (convolution blocks, then dense layers, a softmax output)."""
    params = [np.array(p, np.float32) for layer in network.params for p in layer]
    shared = SharedCNN(FastCNN.of(network, loss), threads)
    return CNNTrainer(network, params, shared, optimizer)
