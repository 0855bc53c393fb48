"""Scoring during training: metrics.evaluate's numbers, with the pixels cast once per chunk.

metrics.evaluate casts each chunk of pixels to float32, divides it by 255, and runs the network.
Here a chunk is cast once into a reused buffer as Ũ = [U, 255] (n, D + 1), in fast/dense.py's
layout, and the first dense layer held as Θ₁ = [W₁, b₁] gives its logits with their bias by one
product, the division by 255 done on the (n, n₁) result rather than on the n × D pixels:

    (Ũ Θ₁ᵀ) / 255 = U W₁ᵀ/255 + 1 b₁ᵀ = X W₁ᵀ + 1 b₁ᵀ = Z₁                   (n, n₁)

then the network's other layers (nn/) run on Z₁ (a cnn: fast/conv.py's forward pass). Prediction needs only the logits (softmax is
increasing); with a loss, the summed loss comes from the same logits, each sample's max logit
subtracted first. Why not cast a split once and keep it: the float32 copy is four times the
pixels' bytes, and memory, not the product, is the bottleneck (bench/README.md).

The chunks are shared out among threads, one per ROWS_PER_THREAD rows and at most one per core
(numpy releases the GIL in the cast and the product); each thread takes the next chunk no
thread has taken, and the chunks' losses are added in chunk order, so the numbers are the same
whatever the number of threads. tests/test_scoring.py checks them against
metrics.evaluate.
"""

import os
import queue
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from mnist_cli.fast.conv import FastCNN
from mnist_cli.fast.dense import INV_PIXEL, PIXEL, to_thetas
from mnist_cli.metrics import Evaluation, evaluation_of
from mnist_cli.nn import D
from mnist_cli.nn.layers import Dense
from mnist_cli.nn.losses import Loss, Output, batch_loss, check_pairing, one_hot
from mnist_cli.nn.network import Network

SCORE_ROWS = 1_000  # rows cast at a time: 3 MB of float32, in the cache for the product
ROWS_PER_THREAD = 5_000  # a thread per this many rows: the test split gets two


def score(
    network: Network,
    images: np.ndarray,
    labels: np.ndarray,
    loss: Loss | None = None,
    threads: int | None = None,
) -> Evaluation:
    """metrics.evaluate(network, images, labels, loss) for images (N, D) uint8 with true
    labels (N,): accuracy, per-class accuracy, the confusion matrix, and with `loss` the mean
    loss, (1/N) Σᵢ ‖ŷᵢ − yᵢ‖² or −(1/N) Σᵢ log Sᵢ,yᵢ; by `threads` threads at once, by default
    scoring_threads(N)."""
    if loss is not None:
        check_pairing(network.output, loss)
    images = np.asarray(images)  # a plain view of a memmap: its slices are cheaper
    N = len(labels)
    predicted = np.empty(N, np.int64)  # (N,)
    losses = [0.0] * -(-N // SCORE_ROWS)  # each chunk's summed loss

    def score_chunks(chunks: Iterator[int]) -> None:
        U1 = np.empty((min(SCORE_ROWS, N), D + 1), np.float32)  # Ũ of a chunk
        U1[:, D] = PIXEL  # Ũ's constant column, written once
        logits = chunk_logits(network)  # a thread's own (it may keep buffers)
        for i in chunks:
            rows = slice(i * SCORE_ROWS, (i + 1) * SCORE_ROWS)
            n = len(labels[rows])
            U1[:n, :D] = images[rows]  # (n, D) cast to float32
            Z = logits(U1[:n])  # (n, K)
            predicted[rows] = Z.argmax(axis=1)
            if loss is not None:
                losses[i] = summed_loss(network.output, loss, Z, labels[rows])

    in_parallel(score_chunks, len(losses), threads or scoring_threads(N))
    loss_sum = 0.0
    for chunk_loss in losses:  # in chunk order, as one thread adds them
        loss_sum += chunk_loss
    mean = None if loss is None else loss_sum / max(N, 1)
    return evaluation_of(labels, predicted, mean)


def chunk_logits(network: Network) -> Callable[[np.ndarray], np.ndarray]:
    """The logits Z (n, K) of a chunk given as Ũ = [U, 255] (n, D + 1) float32: for a first
    dense layer Z₁ = Ũ (Θ₁/255)ᵀ and the layers above it; for a cnn fast/conv.py's forward
    pass on X = U / 255 (its own buffers: one function per thread)."""
    if isinstance(network.layers[0], Dense):
        (theta1,) = to_thetas([network.params[0]])  # (n₁, D + 1) Θ₁ = [W₁, b₁]
        above = replace(network, layers=network.layers[1:], params=network.params[1:])
        return lambda U1: above.logits((U1 @ theta1.T) * INV_PIXEL)  # Z₁ = Ũ Θ₁ᵀ / 255
    fast = FastCNN.of(network)
    params = [np.asarray(p, np.float32) for layer in network.params for p in layer]
    return lambda U1: fast.logits(params, U1[:, :D] / np.float32(PIXEL))  # (n, K)


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


def summed_loss(output: Output, loss: Loss, Z: np.ndarray, labels: np.ndarray) -> float:
    """Σᵢ ‖ŷᵢ − yᵢ‖² or −Σᵢ log Sᵢ,yᵢ over the rows of Z (n, K): B ℒ (losses.batch_loss)."""
    return batch_loss(output, loss, Z, one_hot(labels, Z.dtype)) * len(labels)
