"""Shuffled mini-batches, made ready ahead of time by a background thread.

Each batch's rows must be gathered from the (N, D) uint8 images in shuffled order and cast to
float32: memory-bound work that costs about half as much as the batch's two matrix products.
A background thread does it for the next chunk of batches while the training step works on
the current one (numpy releases the GIL in the gather, the cast and the products), so on a
machine with a core to spare the step hardly waits for its data. The batches, and so the
weights, are the same whatever the timing: the thread only copies.

A batch is X̃ = [U, 255] (B, D + 1) float32 (raw pixels, then the constant column of step.py)
and Yᵀ (K, B) float32 (one-hot targets, transposed), both views into the chunk's buffers.
"""

import queue
import threading
from collections.abc import Iterator

import numpy as np

from .models import D
from .step import PIXEL

CHUNK_ROWS = 2048  # rows gathered per hand-over: a few batches, 6.4 MB of float32
# above this a chunk is filled while the step waits, to bound the memory
DOUBLE_BUFFER_BYTES = 64 << 20


def shuffled_batches(
    images: np.ndarray, Yt_all: np.ndarray, order: np.ndarray, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(X̃ (B, D + 1), Yᵀ (K, B)) for the images (N, D) uint8 and targets Yᵀ (K, N) in the
    order of `order`, batch_size at a time; the last batch is smaller if batch_size does not
    divide N. Each batch is valid until the next one is asked for."""
    per_chunk = max(1, CHUNK_ROWS // batch_size) * batch_size
    starts = range(0, len(order), per_chunk)
    rows = min(per_chunk, len(order))
    two = rows * (D + 1) * 4 <= DOUBLE_BUFFER_BYTES
    buffers = [_buffers(rows, len(Yt_all)) for _ in range(2 if two else 1)]
    gathered = np.empty((rows, D), np.uint8)

    def fill(start: int, buffer: tuple[np.ndarray, np.ndarray]) -> int:
        X, Yt = buffer
        idx = order[start : start + per_chunk]
        n = len(idx)
        np.take(images, idx, axis=0, out=gathered[:n])  # (n, D) uint8 rows
        X[:n, :D] = gathered[:n]  # (n, D) cast to float32
        Yt[:, :n] = Yt_all[:, idx]  # (K, n)
        return n

    for (X, Yt), n in _prefetched(fill, starts, buffers):
        for j in range(0, n, batch_size):
            yield X[j : min(j + batch_size, n)], Yt[:, j : min(j + batch_size, n)]


def _buffers(rows: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    X = np.empty((rows, D + 1), np.float32)
    X[:, D] = PIXEL  # the constant column of X̃, written once
    return X, np.empty((classes, rows), np.float32)


def _prefetched(fill, starts, buffers) -> Iterator:
    """(buffer, fill(start, buffer)) for each start, filled by a thread one buffer ahead.

    Two queues pass the buffers back and forth: `free` to the thread, `ready` to the caller.
    Leaving early (an exception, Ctrl-C) stops the thread before the buffers are dropped.
    """
    free: queue.Queue = queue.Queue()
    ready: queue.Queue = queue.Queue()
    for buffer in buffers:
        free.put(buffer)
    stop = threading.Event()

    def work() -> None:
        try:
            for start in starts:
                buffer = free.get()
                if stop.is_set():
                    return
                ready.put((buffer, fill(start, buffer)))
        except Exception as e:  # noqa: BLE001 -- not swallowed: raised in the caller
            ready.put(e)

    thread = threading.Thread(target=work, name="mnist-cli batches", daemon=True)
    thread.start()
    try:
        for _ in starts:
            item = ready.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            free.put(item[0])
    finally:
        stop.set()
        free.put(None)  # wakes the thread if it waits for a buffer
        thread.join()
