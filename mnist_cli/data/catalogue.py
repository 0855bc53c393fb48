"""The dataset catalogue: which files make up a dataset, their checksums, and where to get them.

MNIST, Fashion-MNIST and KMNIST: the same IDX format, 60,000 + 10,000 images of 28x28, 10 classes.

Pure data, no I/O. `fetch.py` turns a `DataFile` plus mirrors into a verified file in the cache.
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


def _gz_md5(names_and_digests: tuple[tuple[str, str], ...]) -> tuple[DataFile, ...]:
    """DataFiles pinned, as Fashion-MNIST and KMNIST publish them, by the md5 of the `.gz`."""
    return tuple(
        DataFile(name, digest, algorithm="md5", of_gzip=True)
        for name, digest in names_and_digests
    )


# Zalando's Fashion-MNIST: 28x28 grey photos of clothes, the same sizes and format as MNIST.
FASHION_MNIST = Dataset(
    "fashion-mnist",
    *_gz_md5(
        (
            ("train-images-idx3-ubyte", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            ("train-labels-idx1-ubyte", "25c81989df183df01b3e8a0aad5dffbe"),
            ("t10k-images-idx3-ubyte", "bef4ecab320f06d8554ea6380940ec79"),
            ("t10k-labels-idx1-ubyte", "bb300cfdad3c16e7a12a480ee83cd310"),
        )
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
)

# Kuzushiji-MNIST (CODH): ten cursive hiragana, named by their romanisation
# (お き す つ な は ま や れ を).
KMNIST = Dataset(
    "kmnist",
    *_gz_md5(
        (
            ("train-images-idx3-ubyte", "bdb82020997e1d708af4cf47b453dcf7"),
            ("train-labels-idx1-ubyte", "e144d726b3acfaa3e44228e80efcd344"),
            ("t10k-images-idx3-ubyte", "5c965bf0a639b31b8f53240b1b52f4d7"),
            ("t10k-labels-idx1-ubyte", "7320c461ea6c1c855c0b718fb2a4b134"),
        )
    ),
    mirrors=(
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        "https://storage.googleapis.com/kuzushiji-mnist/",  # linked from rois-codh/kmnist
    ),
    class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (MNIST, FASHION_MNIST, KMNIST)}
"""Every dataset by name. Look names up here at call time (tests replace entries)."""


def get_dataset(name: str) -> Dataset:
    """The catalogue entry `name`; ValueError naming the known datasets if there is none."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(DATASETS)
        raise ValueError(f"unknown dataset {name!r} (known: {known})") from None
