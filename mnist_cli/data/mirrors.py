"""Mirrors: where the data files of a dataset can be fetched from, checked before any fetch.

A mirror is an http(s) URL, a `file://` URL or a local directory holding the files (`.gz` or
not). Anything else is refused here, when the mirror is given (`--mirror`, MNIST_MIRRORS, a
config file), so a typo is a usage error and never a fetch that fails later.

`MirrorLog` is what one run (one `load_dataset` or `load_split`, all its files) learns about its
mirrors: a mirror that stalled, failed every attempt with 5xx / 429 / Retry-After, or could
not be reached is abandoned for the rest of the run, with one warning saying which and why.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class MirrorLog:
    """Mutable by design, one per run: mirror -> why it was abandoned; whether the fallback to
    a local mirror was announced."""

    abandoned: dict[str, str] = field(default_factory=dict)
    fell_back: bool = False

    def abandon(
        self, mirror: str, reason: str, on_warning: Callable[[str], None] | None
    ) -> None:
        self.abandoned[mirror] = reason
        if on_warning is not None:
            on_warning(f"mirror {mirror} abandoned for the rest of this run: {reason}")

    def used(
        self, mirror: str, failed_before: bool, on_warning: Callable[[str], None] | None
    ) -> None:
        """Say once per run that a local mirror served a file the mirrors before it did not."""
        if not failed_before or is_remote(mirror) or self.fell_back:
            return
        self.fell_back = True
        if on_warning is not None:
            on_warning(f"the mirrors before it failed: using the local copy {mirror}")


def is_remote(mirror: str) -> bool:
    return mirror.startswith(("http://", "https://"))


def parse_mirrors(value: str) -> tuple[str, ...]:
    """Split a comma-separated list (MNIST_MIRRORS) and normalize each mirror.

    Relative directories are resolved against the working directory. Raises ValueError if the
    list is empty or a mirror is not usable.
    """
    mirrors = tuple(normalize_mirror(part) for part in value.split(",") if part.strip())
    if not mirrors:
        raise ValueError(f"expected a comma-separated list of mirrors, got {value!r}")
    return mirrors


def normalize_mirror(mirror: str, base_dir: Path | None = None) -> str:
    """Check a mirror and return it in canonical form.

    http(s)://host/path -> the URL ending in "/"; file:///dir and plain directory paths (relative
    ones resolved against `base_dir`, default the working directory) -> an absolute directory
    path. Raises ValueError for other schemes and for paths that are not existing directories.
    """
    text = mirror.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.netloc:
            raise ValueError(f"mirror {mirror!r} has no host")
        return text if text.endswith("/") else text + "/"
    if scheme == "file":
        directory = file_url_path(text)
    elif "://" in text:
        raise ValueError(
            f"mirror {mirror!r}: unsupported scheme {scheme}://; "
            "use an http(s):// or file:// URL or a local directory"
        )
    elif not text:
        raise ValueError(
            "empty mirror; use an http(s):// or file:// URL or a local directory"
        )
    else:
        directory = Path(text)
        if not directory.is_absolute():
            directory = (base_dir if base_dir is not None else Path.cwd()) / directory
    try:
        is_dir = directory.is_dir()
    except OSError as e:  # a path too long, a folder that cannot be entered
        raise ValueError(f"mirror {mirror!r}: {e.strerror}") from None
    if not is_dir:
        raise ValueError(f"mirror {mirror!r}: {directory} is not an existing directory")
    return str(directory.resolve())


def join(mirror: str, name: str) -> str:
    """The URL or path of `name` on a normalized mirror."""
    if is_remote(mirror):
        return mirror + ("" if mirror.endswith("/") else "/") + name
    if mirror.startswith("file://"):
        return str(file_url_path(mirror) / name)
    return str(Path(mirror) / name)


def file_url_path(url: str) -> Path:
    """The local path of a file:// URL, percent-escapes decoded once."""
    # 25 ms of imports: only when a URL needs it
    from urllib.request import url2pathname

    return Path(url2pathname(urlsplit(url).path))
