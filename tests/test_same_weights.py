"""Files and weights of the code before the layers rewrite (tests/fixtures/README.md).

Formats 1 and 2 stay readable and score what they scored; plain SGD from the same seed trains
the same weights. Not bit for bit: the batches now arrive as X = U / 255 (the division moved
into the batches thread) instead of raw pixels against Θ = [W, b] / 255, which changes
float32's rounding, so the weights agree within 1e-4 of the largest weight after an epoch
and the test accuracy within 0.1 %.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from mnist_cli.metrics import evaluate
from mnist_cli.nn.architecture import activation_of, build, dense_params, hidden_of
from mnist_cli.rundir.weights import load_weights
from mnist_cli.training.loop import train

FIXTURES = Path(__file__).parent / "fixtures"
ACCURACIES = json.loads((FIXTURES / "accuracies.json").read_text())
LR = {"linear": 0.005, "softmax": 0.5, "mlp": 0.5}


@pytest.mark.parametrize("name", sorted(ACCURACIES))
def test_old_weights_train_again_the_same_and_score_the_same(name, mnist_splits):
    train_split, test_split = mnist_splits
    old = load_weights(FIXTURES / f"{name}.npz")
    assert old.format_version == (2 if old.kind == "mlp" else 1)
    accuracy = evaluate(old.network, test_split.images, test_split.labels).accuracy
    assert accuracy == ACCURACIES[name], (name, accuracy, ACCURACIES[name])
    kind, loss = old.kind, name.split("-", 1)[1]
    rng = np.random.default_rng(0)
    hidden, activation = hidden_of(old.network), activation_of(old.network)
    start = build(kind, "normal", rng, hidden, activation)
    images, labels = train_split.images[:10000], train_split.labels[:10000]
    new, _ = train(
        start, images, labels, epochs=1, batch_size=100, lr=LR[kind], rng=rng, loss=loss
    )
    for l, (a, b) in enumerate(zip(dense_params(new), dense_params(old.network)), 1):
        largest = max(np.abs(b.W).max(), np.abs(b.b).max())
        for what, x, y in (("W", a.W, b.W), ("b", a.b, b.b)):
            gap = np.abs(x - y).max() / largest
            assert gap < 1e-4, f"{name} {what}{l}: {gap:.1e} of the largest weight"
    now = evaluate(new, test_split.images, test_split.labels).accuracy
    assert abs(now - ACCURACIES[name]) <= 0.001, (name, now, ACCURACIES[name])
