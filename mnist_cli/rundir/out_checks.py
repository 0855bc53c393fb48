"""What a run directory must be before a run claims it (claim.py): a valid UTF-8 path, not a
symbolic link, not a file nor under one; its missing parent directories are created."""

import errno
import os
from pathlib import Path

from mnist_cli.errors import RunDirectoryError, shown


def check_out_path(out_dir: Path, target: Path) -> None:
    """`out_dir` must be valid UTF-8, not a symbolic link, a file or the root, and usable."""
    if shown(out_dir) != str(out_dir):  # not valid UTF-8: it holds surrogates
        raise RunDirectoryError(
            f"{shown(out_dir)} is not valid UTF-8", out_dir, "utf-8"
        )
    try:
        check_out_kind(out_dir, target)
    except OSError as e:  # a name or path too long, a folder that cannot be entered
        remedy = "shorter" if e.errno == errno.ENAMETOOLONG else "another"
        raise RunDirectoryError(
            f"{out_dir}: cannot use it ({e.strerror})", out_dir, remedy
        ) from None


def check_out_kind(out_dir: Path, target: Path) -> None:
    """`out_dir` must not be a symbolic link, the root, or a file (OSError if it cannot be
    looked at)."""
    if target.is_symlink():
        raise RunDirectoryError(
            f"{out_dir} is a symbolic link (to {os.readlink(target)})",
            out_dir,
            "unlink",
        )
    if target == target.parent:
        raise RunDirectoryError(f"{out_dir} cannot be a run directory", out_dir)
    if target.exists() and not target.is_dir():
        raise RunDirectoryError(f"{out_dir} is an existing file", out_dir, "directory")


def create_parents(out_dir: Path, parent: Path) -> None:
    """`out_dir`'s parent directories, created; RunDirectoryError if one of them is a file."""
    for ancestor in (parent, *parent.parents):
        if ancestor.exists() or ancestor.is_symlink():
            if not ancestor.is_dir():
                raise RunDirectoryError(
                    f"{out_dir}: {ancestor} is a file, not a directory",
                    out_dir,
                    "another",
                )
            break
    parent.mkdir(parents=True, exist_ok=True)
