"""Shuffled mini-batches, made ready ahead of time by a background thread.

Each batch's rows must be gathered from the (N, D) uint8 images in shuffled order and cast to
float32: memory-bound work that costs about as much as the batch's two matrix products.
A background thread does it for the next chunk of batches while the training step works on
the current one (numpy releases the GIL in the gather, the cast and the products), so on a
machine with a core to spare the step hardly waits for its data. The thread runs through all
the epochs of a training run, with buffers allocated once: it starts on the next epoch's first
chunk while the current epoch ends. The batches, and so the weights, are the same whatever the
timing: the thread only copies, and draws each epoch's permutation from the run's generator in
epoch order.

A batch is Ũ = [U, 255] (B, D + 1) float32 (the raw pixels, cast, then the constant column of
fast/dense.py) and Yᵀ (K, B) float32 (one-hot targets, transposed), both views into the
chunk's buffers.
A batch larger than a chunk (CHUNK_ROWS) is streamed: it arrives as consecutive pieces of
piece_rows() rows (the last fewer), each gathered while the step works on the one before, and
fast.dense.gradients sums their gradients. So every batch size, up to the whole training
set, needs two chunks of memory, not a float32 copy of its batch (188 MB at 60,000), and the
gather of a large batch overlaps its step as a small batch's does.
"""

import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from mnist_cli.fast.dense import BLOCK_ROWS, PIXEL
from mnist_cli.nn import D

CHUNK_ROWS = 2048  # rows gathered per hand-over: a few batches, 6.4 MB of float32
# above this a chunk is filled while the step waits, to bound the memory
DOUBLE_BUFFER_BYTES = 64 << 20


def piece_rows() -> int:
    """Rows per piece of a streamed batch: CHUNK_ROWS rounded down to whole blocks of the
    step (fast.dense.BLOCK_ROWS), so that its blocks are those of the batch in one piece."""
    return max(BLOCK_ROWS, CHUNK_ROWS // BLOCK_ROWS * BLOCK_ROWS)


def pieces_per_batch(B: int, batch_size: int) -> int:
    """How many items of shuffled_batches(..., batch_size, ...) make up a batch of B rows
    (B = batch_size, or fewer for an epoch's last batch): 1 unless batches are streamed."""
    return 1 if batch_size <= CHUNK_ROWS else math.ceil(B / piece_rows())


def shuffled_batches(
    images: np.ndarray,
    Yt_all: np.ndarray,
    batch_size: int,
    epochs: int,
    rng: np.random.Generator,
    on_draw: Callable[[dict], None] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The batches of `epochs` epochs, one epoch after the other: (Ũ (B, D + 1), Yᵀ (K, B))
    for the images (N, D) uint8 and targets Yᵀ (K, N), each epoch in the order of a fresh
    rng.permutation(N), batch_size at a time; an epoch's last batch is smaller if batch_size
    does not divide N. With batch_size > CHUNK_ROWS each batch comes as pieces_per_batch
    consecutive pieces instead. Each item is valid until the next one is asked for.

    The thread draws the permutations, so `rng` is not to be used elsewhere until the
    generator is exhausted or closed (close it to stop the thread early). It draws an epoch's
    permutation ahead, while the epoch before ends: `on_draw(state)` hears, from the thread,
    `rng`'s state right after each draw, the state the next epoch's draw starts from (what a
    checkpoint keeps: a generator restored to it shuffles the epochs after as this one would).
    """
    N = len(images)
    if Yt_all.shape[1] != N:
        raise ValueError(f"{Yt_all.shape[1]} targets for {N} images")
    if batch_size <= CHUNK_ROWS:  # a chunk holds whole batches
        per_chunk, item = max(1, CHUNK_ROWS // batch_size) * batch_size, batch_size
        spans = [(start, min(start + per_chunk, N)) for start in range(0, N, per_chunk)]
    else:  # a chunk is a piece of a batch, never past the batch's end
        per_chunk = item = piece_rows()
        spans = [
            (start, min(start + per_chunk, batch + batch_size, N))
            for batch in range(0, N, batch_size)
            for start in range(batch, min(batch + batch_size, N), per_chunk)
        ]
    # the chunks of one epoch, epoch after epoch: repeated as needed, so that nothing grows
    # with `epochs` (10¹² epochs once took 5.9 GB before the first batch)
    all_spans = (span for _ in range(epochs) for span in spans)
    rows = min(per_chunk, N)
    two = rows * (D + 1) * 4 <= DOUBLE_BUFFER_BYTES
    buffers = [_buffers(rows, len(Yt_all)) for _ in range(2 if two else 1)]
    gathered = np.empty((rows, D), np.uint8)
    order = np.empty(0, np.intp)  # the current epoch's permutation, drawn by fill

    def fill(span: tuple[int, int], buffer: tuple[np.ndarray, np.ndarray]) -> int:
        nonlocal order
        start, stop = span
        if start == 0:  # a new epoch
            order = rng.permutation(N)
            if on_draw:
                on_draw(rng.bit_generator.state)
        X, Yt = buffer
        idx = order[start:stop]
        n = len(idx)
        # mode="clip": a permutation's indices are in range, and without a bounds check
        # numpy writes straight into `out` instead of through a temporary copy (2x faster)
        np.take(images, idx, axis=0, out=gathered[:n], mode="clip")  # (n, D) uint8
        X[:n, :D] = gathered[:n]  # (n, D) cast to float32
        np.take(Yt_all, idx, axis=1, out=Yt[:, :n], mode="clip")  # (K, n)
        return n

    for (X, Yt), n in _prefetched(fill, all_spans, buffers):
        for j in range(0, n, item):
            yield X[j : min(j + item, n)], Yt[:, j : min(j + item, n)]


def _buffers(rows: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    X = np.empty((rows, D + 1), np.float32)
    X[:, D] = PIXEL  # the constant column of Ũ, written once
    return X, np.empty((classes, rows), np.float32)


def _prefetched(fill, starts: Iterable, buffers) -> Iterator:
    """(buffer, fill(start, buffer)) for each start in turn, the buffers taken in rotation and
    filled by one worker thread ahead of the caller; `starts` is read as it goes.

    A buffer is refilled once the caller has asked for the next one, so with two buffers the
    next fill is submitted before the current buffer is yielded, and with one it waits for the
    caller. result() raises a fill's error in the caller. Leaving early (an exception, Ctrl-C,
    close()) cancels the queued fill and waits for the running one: no thread outlives this.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mnist-cli batches")
    pending: deque[Future] = deque()  # fills submitted, in order
    starts = iter(starts)
    submitted = 0
    try:
        for i in itertools.count():
            # buffers up to i - 1 are back from the caller: fill up to i + len(buffers) - 1
            while (
                submitted < i + len(buffers)
                and (start := next(starts, None)) is not None
            ):
                buffer = buffers[submitted % len(buffers)]
                pending.append(pool.submit(fill, start, buffer))
                submitted += 1
            if not pending:
                return
            yield buffers[i % len(buffers)], pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
