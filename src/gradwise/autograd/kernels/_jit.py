"""The one place that decides whether and how numba compiles gradwise's kernels.

Settings and why (measured on a 2-core Xeon, numba 0.68, OpenBLAS 0.3.31; issue 14):

* ``cache=True``: compiled machine code is kept on disk (numba's cache: ``__pycache__`` beside
  the source when writable, else numba's per-user cache directory, or ``NUMBA_CACHE_DIR``), so
  only the first run of a machine pays the compile time.
* ``error_model="numpy"``: a division by zero gives inf/NaN as in NumPy instead of raising;
  numba's default ("python") checks every division, which stops the loop from vectorising
  (an Adam update went from 0.20x to 0.81x of NumPy's time with the default).
* one variant per Python function: numba's on-disk cache does not key on the ``parallel`` flag,
  so compiling one function both ways would silently share machine code. Decide per kernel.
* ``nogil=True``: kernels release the GIL (data loading threads keep running).

Threads (issue 14's measured pitfall: numba's OpenMP layer running beside OpenBLAS's own
threads made the MLP step 5x and the CNN step 14x slower on 2 cores). The rule is **one pool
at a time**:

* the threading layer of ``parallel=True`` kernels is numba's own ``workqueue`` (no OpenMP, no
  TBB), chosen here before any parallel kernel runs, unless ``NUMBA_THREADING_LAYER`` is set in the
  environment (the user's choice wins);
* the MLP-path kernels (bias+activation, losses, norms, optimizer updates) are **serial**: they
  work on arrays of ~10^4-10^5 elements that take microseconds, where waking threads costs more
  than it saves, and they run between matrix products, so BLAS keeps both cores for the GEMMs;
* a parallel kernel (the convolution side) splits over chunks of the batch and does not call BLAS
  inside its parallel region;
* ``gw.set_num_threads(n)`` sets both pools (BLAS through threadpoolctl, numba through
  ``numba.set_num_threads``), as ``torch.set_num_threads`` does.

``GRADWISE_JIT=0`` in the environment (read at import) or a missing numba switches every op to
its NumPy reference; :func:`set_jit_enabled` switches at run time (tests use it to run both).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])

try:  # numba is a regular dependency, but the NumPy path must work without it
    import numba as _numba
except ImportError:  # pragma: no cover - exercised by the GRADWISE_JIT=0 runs
    _numba = None  # type: ignore[assignment]

if _numba is not None and "NUMBA_THREADING_LAYER" not in os.environ:
    # must happen before the first parallel kernel launches (numba reads it then); workqueue
    # needs no OpenMP runtime, so it never competes with OpenBLAS's OpenMP threads
    _numba.config.THREADING_LAYER = "workqueue"  # type: ignore[attr-defined]  # set at runtime

_enabled = [_numba is not None and os.environ.get("GRADWISE_JIT", "1").strip() != "0"]


def jit_enabled() -> bool:
    """True when ops should call their numba kernels (numba importable and not switched off)."""
    return _enabled[0]


def set_jit_enabled(enabled: bool) -> bool:
    """Switch the numba kernels on or off for this process; returns the previous setting.

    Raises:
        RuntimeError: ``enabled`` is True but numba is not installed.
    """
    previous = _enabled[0]
    if enabled and _numba is None:
        raise RuntimeError("set_jit_enabled(True): numba is not installed (pip install numba)")
    _enabled[0] = bool(enabled)
    return previous


def kernel(*, parallel: bool = False, fastmath: bool | set[str] = False) -> Callable[[F], F]:
    """Decorator: compile a loop function with numba using gradwise's settings (module docstring).

    ``fastmath`` may also be a set of LLVM flags: ``{"reassoc"}`` lets a row sum be split over
    SIMD lanes (a sum loop otherwise waits on each addition: LayerNorm's forward measured 2.4x
    slower than NumPy's pairwise einsum without it) while NaN/inf keep their meaning.

    Without numba the function is returned unchanged (plain Python loops: correct, slow; ops use
    their NumPy reference instead whenever :func:`jit_enabled` is False). Inside a
    ``parallel=True`` kernel use ``numba.prange`` through :data:`prange` from this module.
    """
    def wrap(fn: F) -> F:
        if _numba is None:
            return fn
        # a numba Dispatcher is called like the function it compiles
        return cast(F, _numba.njit(cache=True, error_model="numpy", nogil=True,
                                   parallel=parallel, fastmath=fastmath)(fn))
    return wrap


prange = _numba.prange if _numba is not None else range
