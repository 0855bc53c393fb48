"""The data: MNIST-format datasets fetched, verified, cached and read, behind one door.

    load_dataset(dataset, cache_root, mirrors)  -> (train, test), two `Split`s
    load_split(dataset, "test", cache_root)     -> one Split
    holdout(split, n, rng)                      -> (rest, validation)

`Split` holds images (N, 784) uint8 and labels (N,) uint8. Around them: the catalogue
(`DATASETS`, `get_dataset`), the cache folder (`default_cache_dir`), mirror values
(`parse_mirrors`, `normalize_mirror`) and how hard to try each download (`FetchPolicy`).

Inside, data flows one way:

    catalogue.py   which files make up a dataset, their checksums, their mirrors (pure data)
    mirrors.py     mirror values checked and joined with file names; the mirrors a run abandoned
    policy.py      FetchPolicy, Failure, the back-off, the byte bounds on every write
    http.py        one HTTP GET into a file (resume, redirects, errors in a few words)
    transport.py   one URL into a file: a local copy, or HTTP attempts with retries
    manifest.py    the verification record beside each cached file
    cache.py       the cache folder: its location, the per-file lock, discarding a bad copy,
                   removing temp files a killed process left
    fetch.py       mirrors -> a verified, decompressed file in the cache
    idx.py         the IDX file format, read into a read-only memmap
    splits.py      two IDX files -> a checked Split; load_dataset; holdout
"""

from importlib import import_module
from typing import TYPE_CHECKING

from mnist_cli.data.catalogue import DATASETS, MNIST, DataFile, Dataset, get_dataset

if TYPE_CHECKING:
    from mnist_cli.data.cache import default_cache_dir
    from mnist_cli.data.mirrors import normalize_mirror, parse_mirrors
    from mnist_cli.data.policy import DEFAULT_POLICY, FetchPolicy, ProgressFactory
    from mnist_cli.data.splits import Split, holdout, load_dataset, load_split

# the door's other names, imported from their modules when first asked for: a command that
# only needs the catalogue (mnist-predict, for class names) does not import the cache, the
# manifest's hashing or the fetching code at start-up
LAZY = {
    "default_cache_dir": "cache",
    "normalize_mirror": "mirrors",
    "parse_mirrors": "mirrors",
    "DEFAULT_POLICY": "policy",
    "FetchPolicy": "policy",
    "ProgressFactory": "policy",
    "Split": "splits",
    "holdout": "splits",
    "load_dataset": "splits",
    "load_split": "splits",
}


def __getattr__(name: str):
    if name not in LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{LAZY[name]}", __name__), name)
    globals()[name] = value  # asked once
    return value


__all__ = [
    "DATASETS",
    "DEFAULT_POLICY",
    "MNIST",
    "DataFile",
    "Dataset",
    "FetchPolicy",
    "ProgressFactory",
    "Split",
    "default_cache_dir",
    "get_dataset",
    "holdout",
    "load_dataset",
    "load_split",
    "normalize_mirror",
    "parse_mirrors",
]
