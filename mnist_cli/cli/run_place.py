"""The option that named a run directory, in the errors about it.

The library (rundir/) says what is wrong with a directory and which remedy applies
(RunDirectoryError's `place` and `remedy`); the command that named the directory words the
remedy with its own option: `--out` for a new run, `--resume` for one going on.
"""

import contextlib
from collections.abc import Iterator

from mnist_cli.errors import RunDirectoryError
from mnist_cli.rundir.claim import RUN_FILES

# what to do about the place itself, and the way out through another place ({o}: the option)
REMEDIES = {
    "": ("", ""),
    "another": ("", "choose another {o}"),
    "shorter": ("", "choose a shorter {o}"),
    "force": ("use --force to replace it", "choose another {o}"),
    "not-a-run": (
        "",
        (
            f"--force replaces only a run directory ({', '.join(RUN_FILES)}, pictures): "
            "choose another {o}"
        ),
    ),
    "wait": ("wait for it to end", "choose another {o}"),
    "space": ("free some space", ""),
    "space-or-another": ("free some space", "choose another {o}"),
    "utf-8": ("", "choose a name that is"),
    "unlink": ("give a directory that is not a link, such as the link's target", ""),
    "directory": ("give a directory", ""),
}


@contextlib.contextmanager
def named_by(option: str, elsewhere: bool = True) -> Iterator[None]:
    """For the block: a RunDirectoryError about a run directory is said as `option` gave it,
    "--out runs/x exists and is not empty; use --force to replace it or choose another --out".
    Without `elsewhere` (--resume: the run is where it is) no other place is suggested."""
    try:
        yield
    except RunDirectoryError as e:
        if e.place is None:  # not about the directory the option named (a picture)
            raise
        fix, other = REMEDIES.get(e.remedy, ("", ""))
        remedy = " or ".join(filter(None, (fix, other.format(o=option) * elsewhere)))
        raise RunDirectoryError(
            f"{option} {e}{'; ' + remedy if remedy else ''}", e.place
        ) from None
