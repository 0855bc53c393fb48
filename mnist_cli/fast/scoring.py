"""Scoring in the fused layout: metrics.evaluate's numbers, from Θ and raw pixels.

Training scores its monitored split after every epoch and the training split at the end.
metrics.evaluate turns Θ back into (W, b), casts each chunk of pixels to float32, divides it by
255, multiplies and adds the bias: three passes over the chunk besides the product. Here a
chunk is cast once into a reused buffer, as fused.py's Ũ = [U, 255] (n, D + 1) float32, and one
product gives the logits with their bias:

    Z = Ũ Θᵀ = X Wᵀ + 1 bᵀ                                          (n, K)
    predicted = argmax over k of Z, along each row                  (n,)

Prediction needs only the logits (softmax is increasing). With a loss, the mean loss comes
from the same logits, the squared L = (1/N) Σᵢ ‖ŷᵢ − yᵢ‖² or the cross-entropy
L = −(1/N) Σᵢ log Sᵢ,yᵢ, with each sample's max logit subtracted first (exp cannot overflow).
The mlp is scored by metrics.evaluate.

Why not cast a split once and keep it (the monitored split is scored ten times)? Measured on
10,000 test images: the product reading a kept float32 copy (31 MB, from memory) took 6.1 ms,
the cast and product of 1,000-row chunks (4 MB, in the cache) 4.3 ms: the copy is four times
the pixels' bytes, and memory is the bottleneck. tests/test_fused_scores.py checks these
numbers against metrics.evaluate.

The product is at its floor on one core, so the chunks are shared out among threads, one per
5,000 rows and at most one per core (numpy releases the GIL in the cast and the product): the
monitor runs while the batches thread (batches.py) has only the next epoch's first chunks to
gather, and the final scores after it has stopped, so a second core is mostly idle then. Each
thread takes the next chunk no thread has taken, so a thread the OS holds back delays the
others by one chunk, not by a fixed share. Measured on 2 cores, 15 alternating runs of
`mnist-train --epochs 10 -q`: the scoring went from 93 to 69 ms (the ten monitors of 10,000
test images 62 -> 48 ms, the batches thread gathering beside them; the final 60,000 training
images 31 -> 21 ms); with the other core busy with another job the threads take turns, and
the scoring took 5-20 % longer than with one thread (2-6 ms a run).
"""

import os
import queue
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mnist_cli.fused import PIXEL, to_theta
from mnist_cli.metrics import Evaluation, evaluate, summarize
from mnist_cli.mlp import Loss
from mnist_cli.models import D, ModelKind
from mnist_cli.network import Network

CHUNK_ROWS = 1_000  # rows cast at a time: 3 MB of float32, in the cache for the product
ROWS_PER_THREAD = 5_000  # a thread per this many rows: the test split gets two


def score(
    theta: np.ndarray,
    images: np.ndarray,
    labels: np.ndarray,
    kind: ModelKind | None = None,
    loss: Loss | None = None,
    threads: int | None = None,
) -> Evaluation:
    """metrics.evaluate of the model `kind` with Θ = [W, b] / 255 (K, D + 1) on images (N, D)
    uint8 with true labels (N,): accuracy, per-class accuracy, the confusion matrix, and with
    `loss` the mean loss, (1/N) Σᵢ ‖ŷᵢ − yᵢ‖² or −(1/N) Σᵢ log Sᵢ,yᵢ.

    The chunks are scored by `threads` threads at once, by default scoring_threads(N) (numpy
    releases the GIL in the cast and the product); each chunk's loss is kept apart and they
    are added in chunk order, so the numbers are the same whatever the number of threads."""
    if loss is not None and kind is None:
        raise ValueError("the loss needs the model kind")
    images = np.asarray(images)  # a plain view of a memmap: its slices are cheaper
    N = len(labels)
    predicted = np.empty(N, np.int64)  # (N,)
    losses = [0.0] * -(-N // CHUNK_ROWS)  # each chunk's summed loss

    def score_chunks(chunks: Iterator[int]) -> None:
        U1 = np.empty((min(CHUNK_ROWS, N), D + 1), np.float32)  # Ũ of a chunk
        U1[:, D] = PIXEL  # Ũ's constant column, written once
        for i in chunks:
            rows = slice(i * CHUNK_ROWS, (i + 1) * CHUNK_ROWS)
            n = len(labels[rows])
            U1[:n, :D] = images[rows]  # (n, D) cast to float32
            Z = U1[:n] @ theta.T  # (n, K) Z = Ũ Θᵀ
            predicted[rows] = Z.argmax(axis=1)
            if loss is not None:
                losses[i] = summed_loss(kind, loss, Z, labels[rows])

    in_parallel(score_chunks, len(losses), threads or scoring_threads(N))
    loss_sum = 0.0
    for chunk_loss in losses:  # in chunk order, as one thread adds them
        loss_sum += chunk_loss
    mean = None if loss is None else loss_sum / max(N, 1)
    return summarize(labels, predicted, mean)


def scoring_threads(N: int) -> int:
    """How many threads score N rows: one per ROWS_PER_THREAD rows, at most one per core
    this process may run on."""
    try:
        cores = len(os.sched_getaffinity(0))  # the cores this process may use (Linux)
    except AttributeError:  # not on every platform
        cores = os.cpu_count() or 1
    return max(1, min(cores, N // ROWS_PER_THREAD))


def in_parallel(
    work: Callable[[Iterator[int]], None], items: int, threads: int
) -> None:
    """work(handed) on `threads` threads at once, this one and threads − 1 more, where each
    `handed` iterates over the items 0..items − 1 that no thread has taken yet: a thread that
    the OS holds back takes fewer, and no thread waits on a fixed share of a slow one. Returns
    when every item is done; raises a thread's error."""
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()  # thread-safe
    for item in range(items):
        todo.put(item)

    def handed() -> Iterator[int]:
        while True:
            try:
                yield todo.get_nowait()
            except queue.Empty:
                return

    if threads <= 1:
        work(handed())
        return
    with ThreadPoolExecutor(threads - 1, thread_name_prefix="mnist-cli score") as pool:
        others = [pool.submit(work, handed()) for _ in range(threads - 1)]
        work(handed())
        for other in others:
            other.result()


def evaluate_network(
    network: Network, images: np.ndarray, labels: np.ndarray, loss: Loss | None = None
) -> Evaluation:
    """metrics.evaluate(network, images, labels, loss), from Θ for linear and softmax."""
    if network.kind == "mlp":
        return evaluate(network, images, labels, loss)
    theta = to_theta(network.params)
    return score(theta, images, labels, network.kind, loss)


def summed_loss(
    kind: ModelKind, loss: Loss, Z: np.ndarray, labels: np.ndarray
) -> float:
    """Σᵢ ‖ŷᵢ − yᵢ‖² (ŷ = z for linear, softmax(z)) or −Σᵢ log Sᵢ,yᵢ over the rows of Z (n, K)."""
    n = len(labels)
    # transposed, as fused.py holds it: a sum or max over a sample's K classes is then K
    # vectorised passes over n numbers, not n short loops of K (3 times faster here)
    Zt = np.ascontiguousarray(Z.T)  # (K, n)
    if kind == "softmax":
        # the column max subtracted: every exponent ≤ 0, exp cannot overflow
        Zt -= np.maximum.reduce(Zt, axis=0)  # (K, n)
        if loss == "cross-entropy":  # −log Sᵢ,yᵢ = log Σₖ exp(zₖ − max) − (zᵢ,yᵢ − max)
            picked = float(Zt[labels, np.arange(n)].sum())
            return float(np.log(np.ones(len(Zt), Zt.dtype) @ np.exp(Zt)).sum()) - picked
        np.exp(Zt, out=Zt)
        Zt /= np.ones(len(Zt), Zt.dtype) @ Zt  # (K, n) Ŝᵀ, columns sum to 1
    Zt[labels, np.arange(n)] -= 1  # (K, n) (Ŷ − Y)ᵀ
    return float(np.vdot(Zt, Zt))
