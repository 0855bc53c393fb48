"""How many threads numpy's BLAS multiplies with, chosen for each phase of a run.

numpy's BLAS (OpenBLAS, in numpy's wheels) starts one thread per core and splits every product
it judges large enough among them. Most of our products are too small to gain from that, and a
second BLAS thread takes the core the batches thread (batches.py) gathers on: on 2 cores,
`mnist-train --epochs 10` took 1.20 s of wall and 2.17 s of CPU with the default threads, and
0.97 s and 1.25 s with one (bench/README.md has the measurements). So each phase says how many
threads its products get:

    phase     threads    its products
    "sgd"     1          each step's Θ Ũᵀ and dZᵀ Ũ, 10 × 100 × 785 multiply-adds a row: each
                         fits OpenBLAS's small-matrix kernels, and the batches thread needs the
                         other core
    "score"   1          Ũ Θᵀ over chunks of 1,000 rows, (1000, 785) × (785, 10): too small to
                         split; scoring.py shares the chunks out among threads instead
    "solve"   all cores  the exact solver's Gram matrix ŨᵀŨ, 60000 × 785 × 785: large enough
                         to split across every core

The user's choice wins: when OPENBLAS_NUM_THREADS, OMP_NUM_THREADS or MKL_NUM_THREADS is set,
no thread count is changed here. The counts are set through threadpoolctl, which finds the BLAS
numpy loaded (OpenBLAS, MKL or BLIS) and sets its thread count for the duration of a `with`;
when the count is known to be the phase's already (the CLI starts the BLAS with one thread,
one_thread_start), nothing is called, and threadpoolctl is not even imported. The BLAS thread
pool is process-wide state: this module is the one place that changes it, and it remembers the
count it set.
"""

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Literal

Phase = Literal["sgd", "score", "solve"]

# threads per phase; None: one per core
PHASE_THREADS: dict[str, int | None] = {"sgd": 1, "score": 1, "solve": None}

# the environment variables through which a user chooses the BLAS's threads
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

# the BLAS's thread count as this module last set it; None: not known (numpy's own default)
_current: int | None = None


def user_chose(environ: Mapping[str, str]) -> bool:
    """Whether `environ` sets the BLAS's thread count (then we leave it as it is)."""
    return any(environ.get(name, "").strip() for name in THREAD_VARIABLES)


def phase_threads(phase: Phase) -> int:
    """The number of BLAS threads the products of `phase` get (PHASE_THREADS)."""
    return PHASE_THREADS[phase] or os.cpu_count() or 1


def _started_threads() -> int | None:
    """1 if the BLAS numpy loaded is OpenBLAS (which read OPENBLAS_NUM_THREADS as it loaded),
    else None (another BLAS ignores that variable: its count is not known)."""
    import numpy

    config = getattr(numpy, "__config__", None)
    blas = getattr(config, "CONFIG", {}).get("Build Dependencies", {}).get("blas", {})
    return 1 if "openblas" in str(blas.get("name", "")).lower() else None


@cache
def _controller():
    import numpy  # noqa: F401  (the BLAS must be loaded for threadpoolctl to find it)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def blas_threads(phase: Phase) -> Iterator[None]:
    """Run the body with the BLAS threads of `phase`, then restore the count it had; a no-op
    when the user set the count in the environment (THREAD_VARIABLES)."""
    global _current
    wanted, before = phase_threads(phase), _current
    if user_chose(os.environ) or wanted == before:
        yield
        return
    with _controller().limit(limits=wanted, user_api="blas"):
        _current = wanted
        try:
            yield
        finally:
            _current = before


@contextmanager
def one_thread_start() -> Iterator[None]:
    """Around the first `import numpy`: the BLAS starts with one thread instead of one per core.

    OpenBLAS starts its threads as it loads, and they spin while they wait for work: on a busy
    2-core machine that made `import numpy` twice as slow (55 ms against 110 ms), for threads
    that most commands never use. blas_threads adds threads later where a phase wants them.
    The variable is set only for the import and removed after it (OpenBLAS reads it once, as it
    loads), so no child process inherits it; nothing is set when the user chose a count.
    """
    global _current
    if (
        user_chose(os.environ) or "numpy" in sys.modules
    ):  # too late once numpy is loaded
        yield
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        yield
    finally:
        os.environ.pop("OPENBLAS_NUM_THREADS", None)
    if "numpy" in sys.modules:
        _current = _started_threads()
