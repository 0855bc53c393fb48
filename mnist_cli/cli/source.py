"""Where a command's data comes from: the cache, the mirrors and the fetch policy the command
line chose (DataOptions), and the hint to the bundled copy when every mirror failed."""

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from mnist_cli import data as datasets
from mnist_cli.cli.common import warn
from mnist_cli.cli.progress import download_bar, show_bars
from mnist_cli.data import Dataset
from mnist_cli.errors import CacheError, DownloadError


def env_mirrors() -> tuple[str, ...]:
    """MNIST_MIRRORS (comma-separated), checked like --mirror; () when unset."""
    value = os.environ.get("MNIST_MIRRORS", "").strip()
    if not value:
        return ()
    try:
        return datasets.parse_mirrors(value)
    except ValueError as e:
        raise click.UsageError(f"MNIST_MIRRORS: {e}") from None


def fetch_policy(timeout: float | None) -> "datasets.FetchPolicy":
    """The default retries and timeouts, with --timeout as the read (and at most the connect)
    timeout."""
    if timeout is None:
        return datasets.FetchPolicy()
    default = datasets.FetchPolicy()
    return datasets.FetchPolicy(
        connect_timeout=min(default.connect_timeout, timeout), read_timeout=timeout
    )


@dataclass(frozen=True)
class DataOptions:
    """--cache-dir, --mirror and --timeout as given: where and how a command fetches data."""

    cache_dir: Path | None
    mirrors: tuple[str, ...]  # normalized; () when --mirror is not given
    timeout: float | None

    def chosen_mirrors(self) -> tuple[str, ...]:
        """--mirror, else MNIST_MIRRORS (read only then), else () for none chosen."""
        return self.mirrors or env_mirrors()

    def load(self, loader: Callable, *args, mirrors: Sequence[str] | None, quiet: bool):
        """`loader(*args)` (data.load_split or data.load_dataset) from `mirrors`, with the
        cache, download bars (unless quiet), warnings and fetch policy of the command line."""
        try:
            return loader(
                *args,
                cache_root=self.cache_dir or datasets.default_cache_dir(os.environ),
                mirrors=mirrors,
                progress=download_bar if show_bars(quiet) else None,
                on_warning=warn,
                policy=fetch_policy(self.timeout),
            )
        # the library says what failed; the CLI, which options choose it
        except DownloadError as e:
            hint = bundled_copy_hint(args[0], mirrors)
            raise DownloadError(
                f"{e}. Check --mirror / MNIST_MIRRORS or your network.{hint}"
            ) from None
        except CacheError as e:
            raise CacheError(f"{e} (--cache-dir or MNIST_CACHE_DIR)") from None


# the MNIST copy bundled with the repository, as a command run from its top folder sees it
BUNDLED = Path("data") / "mnist"


def bundled_copy_hint(dataset: Dataset, mirrors: Sequence[str] | None) -> str:
    """When every mirror failed for MNIST and the command runs from the repository, where the
    bundled copy is: " From this repository ...", else ""."""
    bundled = BUNDLED.resolve()
    first = dataset.files[0].name
    if dataset.name != "mnist" or not (bundled / f"{first}.gz").is_file():
        return ""
    if any(Path(m).resolve() == bundled for m in mirrors or () if "://" not in m):
        return ""  # it was tried, and failed too
    return (
        f" From this repository, the bundled copy works offline: --mirror {BUNDLED} "
        "(or --config configs/default.toml)."
    )
