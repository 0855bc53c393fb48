"""The dataset catalogue: which files make up a dataset, their checksums, and where to get them.

Pure data, no I/O. `download.py` turns a `DataFile` plus mirrors into a verified file in the cache.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class DataFile:
    """One IDX file of a dataset, as published.

    `name` is the file name without `.gz` (e.g. "train-images-idx3-ubyte"). The checksum is a
    hex digest by `algorithm`; `of_gzip` says whether it covers the published `.gz` bytes
    (as Fashion-MNIST and KMNIST publish them) or the decompressed content (as we pin MNIST,
    so that any faithful re-compression of the file passes). `size`, if known, is the byte
    count of the decompressed file: downloads and decompression are bounded by it.
    """

    name: str
    checksum: str
    algorithm: str = "sha256"
    of_gzip: bool = False
    size: int | None = None


@dataclass(frozen=True)
class Dataset:
    """A dataset in the MNIST IDX format: four files, default mirrors, class names."""

    name: str
    train_images: DataFile
    train_labels: DataFile
    test_images: DataFile
    test_labels: DataFile
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...] = tuple(str(digit) for digit in range(10))

    @property
    def files(self) -> tuple[DataFile, ...]:
        return (
            self.train_images,
            self.train_labels,
            self.test_images,
            self.test_labels,
        )

    def split_files(self, split: str) -> tuple[DataFile, DataFile]:
        """The (images, labels) files of split "train" or "test"."""
        if split == "train":
            return self.train_images, self.train_labels
        if split == "test":
            return self.test_images, self.test_labels
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")


MNIST = Dataset(
    name="mnist",
    train_images=DataFile(
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        size=47040016,
    ),
    train_labels=DataFile(
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        size=60008,
    ),
    test_images=DataFile(
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        size=7840016,
    ),
    test_labels=DataFile(
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        size=10008,
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
)

DATASETS: dict[str, Dataset] = {MNIST.name: MNIST}
