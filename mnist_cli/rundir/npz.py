"""A strict reader of .npz archives: only the arrays the caller names, each checked before it is read.

An .npz file is a zip archive of .npy files, one per array (`W.npy`, ...). numpy.load trusts
it: every member is decompressed whole when asked for, whatever its size (a 4 MB file can
declare 4 GiB of zeros), and a header may declare any shape (the allocation fails with a
traceback). Here the archive is inspected before any data is read:

1. the zip listing: each member must be `<name>.npy` with `name` allowed by the caller's
   `spec` (unknown members are refused, never read), once, unencrypted, stored or deflated,
   and its declared uncompressed size within the bound its spec allows;
2. each member's .npy header (numpy.lib.format, versions 1.0 and 2.0): its dtype (no Python
   objects, so nothing is ever unpickled), its shape (number of dimensions, element count)
   and the declared size, which must be exactly header + elements × itemsize;
3. only then the data, exactly that many bytes (zipfile checks the CRC at the end).

Every refusal is a WeightsError naming the file and the member: one line from the CLI.
"""

import math
import os
import stat
import zipfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npy

from mnist_cli.errors import WeightsError

MAX_HEADER = 10_000  # bytes of a .npy header: numpy's own bound (max_header_size)
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Expect:
    """What one member may hold, checked from its header before its data is read."""

    what: str  # the dtype in words, for the error: "float32", "a string", ...
    accepts: Callable[[np.dtype], bool]  # the dtypes allowed
    itemsize: int  # the largest itemsize `accepts` allows, in bytes
    max_elements: int  # the most elements its shape may hold
    ndim: int | None = None  # the number of dimensions required; None: any

    @property
    def max_bytes(self) -> int:
        """The largest declared size of the member, header and data: room for 8-byte items
        at least, so that a float64 array is refused by its dtype, a clearer reason."""
        return MAX_HEADER + 16 + self.max_elements * max(self.itemsize, 8)


def float32(max_elements: int, ndim: int) -> Expect:
    return Expect(
        "float32", lambda dt: dt == np.dtype(np.float32), 4, max_elements, ndim
    )


def integer_scalar() -> Expect:
    return Expect(
        "an integer scalar", lambda dt: dt.kind in "iu" and dt.itemsize <= 8, 8, 1, 0
    )


def string(max_chars: int = 64) -> Expect:
    return Expect(
        f"a string of at most {max_chars} characters",
        lambda dt: dt.kind == "U" and dt.itemsize <= 4 * max_chars,
        4 * max_chars,
        1,
        0,
    )


Spec = Callable[
    [str], Expect | None
]  # an array's name -> what it must hold; None: refused


def read_npz(
    file: Path,
    spec: Spec,
    what: str = "an mnist-cli weights file",
    max_total: int | None = None,
    only: Collection[str] | None = None,
) -> dict:
    """The arrays of the .npz `file`, as {name: array}, every member allowed by `spec` and
    checked against it before its data is read, and their declared sizes summing to at most
    `max_total` bytes if given; with `only`, just those members (the others are neither
    checked nor read: a first look at what says how to check the rest). `what` names the
    kind of file in errors. Raises WeightsError (naming `file`) on anything else."""
    check_archive_file(file)
    with open(file, "rb") as f:
        magic = f.read(len(NPY_MAGIC))
        if magic == NPY_MAGIC:
            raise WeightsError(f"{file}: a single .npy array, not a weights .npz file")
        if not magic.startswith(ZIP_MAGIC[:2]):
            raise not_npz(file, what, "not a zip archive")
        try:
            with zipfile.ZipFile(f) as archive:
                members = check_listing(file, archive, spec, what, only)
                total = sum(info.file_size for info, _ in members.values())
                if max_total is not None and total > max_total:
                    raise WeightsError(
                        f"{file}: declares {total:,} bytes in all, more than the "
                        f"{max_total:,} {what} may hold; refused unread"
                    )
                headers = {
                    name: read_header(file, archive, info, expect)
                    for name, (info, expect) in members.items()
                }
                return {
                    name: read_data(file, archive, members[name][0], *header)
                    for name, header in headers.items()
                }
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
            raise not_npz(file, what, f"a broken zip archive: {e}") from None
        except (OSError, NotImplementedError, RuntimeError) as e:
            raise WeightsError(f"{file}: cannot be read ({e})") from None


def not_npz(file: Path, what: str, why: str) -> WeightsError:
    return WeightsError(
        f"{file}: not {what} ({why}); give a run directory written by mnist-train "
        "or the weights.npz inside one"
    )


def check_archive_file(file: Path) -> None:
    """Refuse a FIFO (reading would wait for a writer), a device, a directory."""
    try:
        mode = os.stat(file).st_mode
    except OSError as e:
        raise WeightsError(f"{file}: cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(mode):
        raise WeightsError(f"{file}: not a regular file; give a weights.npz file")


def check_listing(
    file: Path,
    archive: zipfile.ZipFile,
    spec: Spec,
    what: str,
    only: Collection[str] | None = None,
) -> dict[str, tuple[zipfile.ZipInfo, Expect]]:
    """{name: (its zip entry, what it must hold)} for every member, from the zip's listing
    alone: names allowed, once each, declared sizes within their bounds."""
    members: dict[str, tuple[zipfile.ZipInfo, Expect]] = {}
    for info in archive.infolist():
        name = info.filename.removesuffix(".npy")
        if only is not None and name not in only:
            continue
        expect = spec(name) if info.filename.endswith(".npy") else None
        if expect is None:
            raise not_npz(file, what, f"unexpected member {info.filename!r}")
        if name in members:
            raise not_npz(file, what, f"{name} appears twice")
        if info.flag_bits & 0x1:
            raise not_npz(file, what, f"{name} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise not_npz(file, what, f"{name} uses an unsupported compression")
        if info.file_size > expect.max_bytes:
            raise WeightsError(
                f"{file}: {name} declares {info.file_size:,} bytes, more than the "
                f"{expect.max_bytes:,} it may hold; refused unread"
            )
        members[name] = (info, expect)
    return members


def read_header(
    file: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, expect: Expect
) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """(dtype, shape, fortran_order, offset of the data) of a member's .npy header, checked
    against `expect` and the member's declared size; reads the header only."""
    name = info.filename.removesuffix(".npy")
    with archive.open(info) as f:
        try:
            version = npy.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = npy.read_array_header_1_0(f, MAX_HEADER)
            elif version == (2, 0):
                shape, fortran, dtype = npy.read_array_header_2_0(f, MAX_HEADER)
            else:
                raise ValueError(f".npy format version {version} is not supported")
        except ValueError as e:
            raise WeightsError(f"{file}: {name} is not a .npy array ({e})") from None
        offset = f.tell()
    if dtype.hasobject:
        raise WeightsError(
            f"{file}: {name} holds Python objects (a pickle), which mnist-cli never loads"
        )
    if not expect.accepts(dtype):
        raise WeightsError(f"{file}: {name} has dtype {dtype}, expected {expect.what}")
    if expect.ndim is not None and len(shape) != expect.ndim:
        wanted = "a scalar" if expect.ndim == 0 else f"{expect.ndim} dimensions"
        raise WeightsError(f"{file}: {name} has shape {shape}, expected {wanted}")
    elements = math.prod(shape)
    if elements > expect.max_elements:
        raise WeightsError(
            f"{file}: {name} has shape {shape}, more than the "
            f"{expect.max_elements:,} elements it may hold"
        )
    if info.file_size != offset + elements * dtype.itemsize:
        raise WeightsError(
            f"{file}: {name}'s declared size does not match its shape (a broken file)"
        )
    return dtype, shape, fortran, offset


def read_data(
    file: Path,
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    dtype: np.dtype,
    shape: tuple[int, ...],
    fortran: bool,
    offset: int,
) -> np.ndarray:
    """The array of a member whose header read_header checked: exactly its declared bytes."""
    nbytes = info.file_size - offset
    with archive.open(info) as f:
        f.read(offset)
        data = f.read(nbytes)
        f.read(1)  # at the end: zipfile checks the CRC
    if len(data) != nbytes:
        name = info.filename.removesuffix(".npy")
        raise WeightsError(f"{file}: {name} is cut short (a broken file)")
    flat = np.frombuffer(data, dtype=dtype, count=math.prod(shape)).copy()
    return flat.reshape(shape, order="F" if fortran else "C")
