"""Splits as arrays: real MNIST through the local server, and the checks on malformed files."""

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
from helpers import write_idx

from mnist_cli.data import Split, load_dataset, load_split
from mnist_cli.data.catalogue import MNIST, DataFile, Dataset
from mnist_cli.errors import IdxFormatError


@pytest.mark.parametrize(("split", "count"), [("train", 60000), ("test", 10000)])
def test_real_mnist_split(mnist_cache, mnist_server_url, split, count):
    data = load_split(MNIST, split, mnist_cache, mirrors=[mnist_server_url])

    assert len(data) == count, f"expected {count} examples, got {len(data)}"
    expected_shapes = ((count, 784), (count,))
    actual_shapes = (data.images.shape, data.labels.shape)
    assert actual_shapes == expected_shapes, (
        f"expected {expected_shapes}, got {actual_shapes}"
    )
    dtypes = (data.images.dtype, data.labels.dtype)
    assert dtypes == (np.uint8, np.uint8), f"expected uint8 arrays, got {dtypes}"
    assert not data.images.flags.writeable, "expected read-only (memmapped) images"
    counts = np.bincount(data.labels, minlength=10)
    assert len(counts) == 10, f"expected labels 0..9, got bincount length {len(counts)}"
    assert counts.sum() == count, (
        f"expected label counts to sum to {count}, got {counts.sum()}"
    )
    assert counts.min() > count // 20, (
        f"expected every digit well represented, got {counts}"
    )


def test_real_mnist_known_facts(mnist_cache, mnist_server_url):
    train, test = load_dataset(MNIST, mnist_cache, mirrors=[mnist_server_url])
    assert train.labels[0] == 5, (
        f"expected the first training label 5, got {train.labels[0]}"
    )
    assert test.labels[0] == 7, f"expected the first test label 7, got {test.labels[0]}"
    # the first training image is a 5 drawn in the middle of the frame; its border is blank
    first = np.asarray(train.images[0]).reshape(28, 28)
    assert first[0].sum() == 0 and first[:, 0].sum() == 0, (
        "expected a blank top row and left column"
    )
    assert first.max() == 255, f"expected saturated ink (255), got max {first.max()}"


def test_split_is_frozen_and_sized():
    split = Split(images=np.zeros((3, 784), np.uint8), labels=np.zeros(3, np.uint8))
    assert len(split) == 3, f"expected 3, got {len(split)}"
    with pytest.raises(AttributeError):
        split.labels = np.zeros(2, np.uint8)  # type: ignore[misc]


def tiny_dataset(mirror: Path, images: np.ndarray, labels: np.ndarray) -> Dataset:
    """A Dataset whose test split is the given arrays, written as .gz into `mirror`."""
    files = []
    for name, array in (
        ("tiny-images-idx3-ubyte", images),
        ("tiny-labels-idx1-ubyte", labels),
    ):
        write_idx(mirror / name, array)
        content = (mirror / name).read_bytes()
        (mirror / name).unlink()
        (mirror / f"{name}.gz").write_bytes(gzip.compress(content))
        files.append(DataFile(name, hashlib.sha256(content).hexdigest()))
    unused = DataFile("unused", "0" * 64)
    return Dataset("tiny", unused, unused, files[0], files[1], mirrors=(str(mirror),))


def test_small_split_from_dataset_mirrors(tmp_path):
    images = np.arange(4 * 28 * 28, dtype=np.uint32).reshape(4, 28, 28).astype(np.uint8)
    labels = np.array([0, 9, 3, 3], dtype=np.uint8)
    dataset = tiny_dataset(tmp_path, images, labels)

    split = load_split(
        dataset, "test", tmp_path / "cache"
    )  # mirrors None -> dataset.mirrors

    np.testing.assert_array_equal(split.images, images.reshape(4, 784))
    np.testing.assert_array_equal(split.labels, labels)
    assert (tmp_path / "cache" / "tiny" / "tiny-labels-idx1-ubyte").exists(), (
        "expected cache/tiny/"
    )


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (
            np.zeros((6, 28, 28), np.uint8),
            np.array([1, 2, 3, 4, 5, 11], np.uint8),
            "tiny-labels-idx1-ubyte: label 11 at index 5 is outside 0-9",
        ),
        (
            np.zeros((3, 28, 28), np.uint8),
            np.zeros(2, np.uint8),
            "tiny-images-idx3-ubyte, tiny-labels-idx1-ubyte: 3 images but 2 labels",
        ),
        (
            np.zeros((3, 28, 27), np.uint8),
            np.zeros(3, np.uint8),
            "tiny-images-idx3-ubyte: images must be (N, 28, 28), found shape (3, 28, 27)",
        ),
        (
            np.zeros((3, 28, 28), np.float32),
            np.zeros(3, np.uint8),
            "tiny-images-idx3-ubyte: images must be uint8, found >f4",
        ),
        (
            np.zeros((3, 28, 28), np.uint8),
            np.zeros((3, 1), np.uint8),
            "tiny-labels-idx1-ubyte: labels must be 1-dimensional, found shape (3, 1)",
        ),
        (
            np.zeros((3, 28, 28), np.uint8),
            np.zeros(3, np.int32),
            "tiny-labels-idx1-ubyte: labels must be uint8, found >i4",
        ),
    ],
    ids=[
        "label-11",
        "count-mismatch",
        "image-shape",
        "image-dtype",
        "label-ndim",
        "label-dtype",
    ],
)
def test_malformed_split(tmp_path, images, labels, message):
    dataset = tiny_dataset(tmp_path, images, labels)
    with pytest.raises(IdxFormatError) as info:
        load_split(dataset, "test", tmp_path / "cache")
    assert str(info.value) == message, f"expected {message!r}, got {str(info.value)!r}"


def test_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="unknown split 'val'"):
        load_split(MNIST, "val", tmp_path)
