"""The same model trained with PyTorch on the CPU, for comparison (torch is not a dependency).

    python bench/peers.py dataloader|memory --cache DIR [--epochs N] [--model softmax|linear|mlp]

dataloader  the idiomatic way: TensorDataset + DataLoader(shuffle=True) + nn.Linear (+ Softmax)
            + MSELoss + optim.SGD
memory      the same model, loss and optimizer, with the whole float32 training set as one tensor
            and each shuffled batch taken by indexing it (no DataLoader)

Same loss as ours, L = (1/B) Σᵢ ‖ŷᵢ − yᵢ‖² = MSELoss(reduction="sum") / B, same zero init, same
learning rate and batch size, so the accuracies are comparable. --model mlp is the bench's mlp
(workers.HIDDEN, relu, He-normal weights, zero biases) with cross-entropy, nn.CrossEntropyLoss
(the batch mean of −log Sᵢ,yᵢ, as ours), plain SGD at the lr of workers.MLP_ROWS's row. Our
trainer runs in the same process, one PyTorch epoch after each of its epochs, so the speed ratio
compares epochs measured under the same load. Prints one JSON object.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from workers import HIDDEN, MLP_ROWS, train_mlp, zeros

from mnist_cli.data import MNIST, load_dataset
from mnist_cli.nn.layers import inputs
from mnist_cli.training.loop import train

LR = {"softmax": 0.5, "linear": 0.005}
BATCH = 100
MLP = "mlp cross-entropy"  # our row the PyTorch mlp is compared with: plain SGD


def make_mlp() -> nn.Module:
    """784-HIDDEN-10 relu: W ~ N(0, 2/fan_in) (He, as nn/layers.Dense), b = 0."""
    layers = [nn.Linear(784, HIDDEN), nn.Linear(HIDDEN, 10)]
    for linear in layers:
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        nn.init.zeros_(linear.bias)
    return nn.Sequential(layers[0], nn.ReLU(), layers[1])


def make_model(kind: str) -> nn.Module:
    linear = nn.Linear(784, 10)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    return nn.Sequential(linear, nn.Softmax(dim=1)) if kind == "softmax" else linear


def run(mode: str, cache: Path, epochs: int, kind: str) -> dict:
    mirror = Path(__file__).resolve().parents[1] / "data" / "mnist"
    train_split, test_split = load_dataset(MNIST, cache, [str(mirror)])
    X = torch.from_numpy(inputs(train_split.images))  # (N, D) float32, pixels / 255
    Y = nn.functional.one_hot(torch.from_numpy(train_split.labels.astype(np.int64)), 10)
    Y = Y.float()  # (N, K)
    if kind == "mlp":  # cross-entropy takes the class indices
        Y = torch.from_numpy(train_split.labels.astype(np.int64))  # (N,)
    X_test = torch.from_numpy(inputs(test_split.images))
    y_test = torch.from_numpy(test_split.labels.astype(np.int64))
    torch.manual_seed(0)
    model = make_mlp() if kind == "mlp" else make_model(kind)
    if kind == "mlp":
        lr = MLP_ROWS[MLP][2]
        loss_fn = nn.CrossEntropyLoss()  # the batch mean of −log S_{i,yᵢ}
    else:
        lr, mse = LR[kind], nn.MSELoss(reduction="sum")

        def loss_fn(out, yb):  # the mean over the batch of ‖ŷ − y‖²
            return mse(out, yb) / len(yb)

    optimizer = torch.optim.SGD(model.parameters(), lr=lr)

    def step(xb: torch.Tensor, yb: torch.Tensor) -> None:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()

    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, Y), batch_size=BATCH, shuffle=True
    )

    def epoch() -> float:
        start = time.perf_counter()
        if mode == "dataloader":
            for xb, yb in loader:
                step(xb, yb)
        else:
            order = torch.randperm(len(X))
            for first in range(0, len(X), BATCH):
                idx = order[first : first + BATCH]
                step(X[idx], Y[idx])
        return time.perf_counter() - start

    # Our trainer runs its epochs in one train() run, as mnist-train does, with one PyTorch
    # epoch between two of its epochs (train's on_epoch, outside our epoch's clock), so the
    # speed ratio compares epochs measured under the same load.
    seconds: list[float] = []
    if kind == "mlp":
        _, ours_seconds = train_mlp(
            MLP, train_split.images, train_split.labels, epochs=epochs,
            rng=np.random.default_rng(0), on_epoch=lambda _: seconds.append(epoch()),
        )  # fmt: skip
    else:
        _, history = train(
            zeros(kind), train_split.images, train_split.labels,
            epochs=epochs, batch_size=BATCH, lr=LR[kind], rng=np.random.default_rng(0),
            on_epoch=lambda _: seconds.append(epoch()),
        )  # fmt: skip
        ours_seconds = [r.seconds for r in history]
    with torch.no_grad():
        accuracy = (model(X_test).argmax(dim=1) == y_test).float().mean().item()
    return {
        f"torch {'mlp ' if kind == 'mlp' else ''}{mode}": {
            "epoch_seconds": seconds,
            "ours_epoch_seconds": ours_seconds,
            "test_accuracy": accuracy,
            "epochs": epochs,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["dataloader", "memory"])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--model", choices=["softmax", "linear", "mlp"], default="softmax"
    )
    args = parser.parse_args()
    print(json.dumps(run(args.mode, args.cache, args.epochs, args.model)))


if __name__ == "__main__":
    main()
