"""A dataset split as two arrays: images (N, 784) uint8 and labels (N,) uint8.

`load_split` fetches the split's two IDX files into the cache (see `fetch.fetch`), maps them
(see `idx.read_idx`) and checks that they are what a classifier expects: 28x28 uint8 images,
one uint8 label per image, each label a class index. The images stay a read-only memmap, so a
warm start reads no pixel until training touches it.
"""

# annotations stay unevaluated: `np.random.Generator` in a signature would import numpy.random
# (several ms) at the start of every command, also those that draw no random numbers
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_cli.data.catalogue import Dataset
from mnist_cli.data.fetch import fetch
from mnist_cli.data.idx import read_idx
from mnist_cli.data.mirrors import MirrorLog
from mnist_cli.data.policy import DEFAULT_POLICY, FetchPolicy, ProgressFactory
from mnist_cli.errors import IdxFormatError

IMAGE_SHAPE = (28, 28)  # rows, columns: 784 pixels per image


@dataclass(frozen=True)
class Split:
    """The images and labels of one split; row i of `images` is the picture of `labels[i]`."""

    images: np.ndarray  # (N, 784) uint8, possibly a read-only memmap
    labels: np.ndarray  # (N,) uint8

    def __len__(self) -> int:
        return len(self.labels)


def holdout(split: Split, n: int, rng: np.random.Generator) -> tuple[Split, Split]:
    """(rest, validation): `n` images chosen by `rng` held out of `split`, for validation.

    The validation images are those at positions rng.permutation(N)[:n]; `run.fit` passes a
    fresh np.random.default_rng(seed), so the same seed always holds out the same images.
    Both parts keep the split's order (N − n and n images, together all of them, once each).
    """
    if not 0 <= n < len(split):
        raise ValueError(f"cannot hold out {n} of {len(split)} images")
    held = np.zeros(len(split), dtype=bool)  # (N,)
    held[rng.permutation(len(split))[:n]] = True
    rest = Split(images=split.images[~held], labels=split.labels[~held])
    return rest, Split(images=split.images[held], labels=split.labels[held])


def load_split(
    dataset: Dataset,
    split: str,
    cache_root: Path,
    mirrors: Sequence[str] | None = None,
    *,
    progress: ProgressFactory | None = None,
    on_warning: Callable[[str], None] | None = None,
    policy: FetchPolicy = DEFAULT_POLICY,
    log: MirrorLog | None = None,
) -> Split:
    """Fetch (or find in `cache_root / dataset.name`) and check split "train" or "test".

    `mirrors` None means the dataset's own mirrors; `policy` sets the retries and timeouts of
    each download; `log` (one per run, made here if None) keeps the mirrors abandoned by
    one file from being tried for the next. Raises DownloadError or CacheError from the fetch, and IdxFormatError naming
    the file if the arrays are not a valid split.
    """
    images_file, labels_file = dataset.split_files(split)
    cache_dir = Path(cache_root) / dataset.name
    mirrors = dataset.mirrors if mirrors is None else tuple(mirrors)
    log = MirrorLog() if log is None else log
    paths = [
        fetch(
            file,
            mirrors,
            cache_dir,
            progress=progress,
            on_warning=on_warning,
            policy=policy,
            log=log,
        )
        for file in (images_file, labels_file)
    ]
    images = _check_images(read_idx(paths[0]), images_file.name)  # (N, 784)
    num_classes = len(dataset.class_names)
    labels = _check_labels(read_idx(paths[1]), labels_file.name, num_classes)  # (N,)
    if len(images) != len(labels):
        raise IdxFormatError(
            f"{images_file.name}, {labels_file.name}: "
            f"{len(images)} images but {len(labels)} labels"
        )
    return Split(images=images, labels=labels)


def load_dataset(
    dataset: Dataset,
    cache_root: Path,
    mirrors: Sequence[str] | None = None,
    *,
    progress: ProgressFactory | None = None,
    on_warning: Callable[[str], None] | None = None,
    policy: FetchPolicy = DEFAULT_POLICY,
) -> tuple[Split, Split]:
    """The (train, test) splits of `dataset`; see `load_split`. One MirrorLog for all four
    files: a mirror abandoned for one is not tried for the others."""
    log = MirrorLog()
    train, test = (
        load_split(
            dataset,
            split,
            cache_root,
            mirrors,
            progress=progress,
            on_warning=on_warning,
            policy=policy,
            log=log,
        )
        for split in ("train", "test")
    )
    return train, test


def _check_images(images: np.ndarray, name: str) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, 784), a view of the same memory (no copy)."""
    if images.dtype != np.uint8:
        raise IdxFormatError(f"{name}: images must be uint8, found {images.dtype}")
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise IdxFormatError(
            f"{name}: images must be (N, 28, 28), found shape {images.shape}"
        )
    return images.reshape(len(images), -1)  # (N, 784)


def _check_labels(labels: np.ndarray, name: str, num_classes: int) -> np.ndarray:
    """(N,) uint8 with every value a class index 0..K-1."""
    if labels.dtype != np.uint8:
        raise IdxFormatError(f"{name}: labels must be uint8, found {labels.dtype}")
    if labels.ndim != 1:
        raise IdxFormatError(
            f"{name}: labels must be 1-dimensional, found shape {labels.shape}"
        )
    if len(labels) and labels.max() >= num_classes:  # uint8, so no label is below 0
        index = int(np.argmax(labels >= num_classes))  # the first offending label
        raise IdxFormatError(
            f"{name}: label {labels[index]} at index {index} is outside 0-{num_classes - 1}"
        )
    return labels
