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
at a time**: at any moment either BLAS's threads or gradwise's own share the cores, never both.

* every numba kernel is serial (``parallel=True`` nowhere): bias+activation, losses, norms and
  optimizer updates work on arrays that take micro- to milliseconds, where waking threads costs
  more than it saves, and they run between matrix products, so BLAS keeps the cores for the
  GEMMs; they stay so (measured for issue 14: the ReLU/bias kernels gain nothing from threads);
* convolution and pooling (``ops/conv.py``, ``ops/pool.py``; and linear layers within 0.1 s
  of one, ``ops/linalg.py``) split a big enough batch into
  parts, one per thread, in a **batch-parallel region** (``_threads.py``): part 0 on the calling
  thread, the others on a few gradwise-owned daemon threads, every BLAS library held to **1
  thread** inside the region and restored after it. Their copies, products and (``nogil``)
  kernels then use all cores where only the GEMMs did (the 2-thread CNN step of
  benchmarks/cnn_epoch.py; figures in benchmarks/README.md). Plain Python threads, not a numba
  threading layer: nothing process-wide changes, and a user's own threads, fork and Ctrl-C keep
  working (``_threads.py`` says how);
* importing gradwise changes **no** process-wide numba setting (an earlier version set
  ``numba.config.THREADING_LAYER = "workqueue"`` on import, which made a user's own
  ``@njit(parallel=True)`` function abort with "Concurrent access has been detected" when called
  from two threads; issue 14). A future parallel kernel must choose its layer locally or not at
  all;
* ``gw.set_num_threads(n)`` limits all three (BLAS through threadpoolctl, numba through
  ``numba.set_num_threads``, the regions' thread count), as ``torch.set_num_threads`` does;
  ``gw.set_num_threads(1)`` turns the regions off.

``GRADWISE_JIT`` in the environment (read at import: ``0``/``false``/``off``/``no`` switch the
kernels off, ``1``/``true``/``on``/``yes`` or unset leave them on, case-insensitive; anything
else warns and leaves them on) or a missing numba switches every op to its NumPy reference;
:func:`set_jit_enabled` switches at run time (tests use it to run both).

Which arrays a kernel takes is decided in one place, :func:`kernel_ready`: native-byte-order
float32/float64 arrays of one dtype, C-contiguous. Everything else (float16, big-endian data,
strided views, integers) runs the NumPy reference, which is the definition of the result anyway.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

try:  # numba is a regular dependency, but the NumPy path must work without it
    import numba as _numba
except ImportError:  # pragma: no cover - exercised by the GRADWISE_JIT=0 runs
    _numba = None  # type: ignore[assignment]

_OFF = frozenset({"0", "false", "off", "no"})
_ON = frozenset({"1", "true", "on", "yes", ""})


def _parse_env(value: str | None) -> bool:
    """``GRADWISE_JIT``'s value -> kernels on?  Unknown values warn (naming them) and mean on."""
    if value is None:
        return True
    word = value.strip().lower()
    if word in _OFF:
        return False
    if word not in _ON:
        warnings.warn(f"GRADWISE_JIT={value!r} is not one of 0/false/off/no or 1/true/on/yes; "
                      "the numba kernels stay on", RuntimeWarning, stacklevel=2)
    return True


_enabled = [_numba is not None and _parse_env(os.environ.get("GRADWISE_JIT"))]

#: the dtypes every kernel is compiled for (numba has no float16 arithmetic)
KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def kernel_ready(*arrays: np.ndarray | None, ndim: int | None = None,
                 writeable: bool = False) -> bool:
    """Whether the numba kernels may run on ``arrays`` (the one dispatch rule every op uses).

    True when the kernels are on (:func:`jit_enabled`) and every array that is not None is an
    ``np.ndarray`` of native byte order, float32 or float64 (all the same dtype), C-contiguous,
    of ``ndim`` dimensions when given, and writeable when ``writeable``. Otherwise the op runs
    its NumPy reference: float16 (numba raises ``NotImplementedError: float16``), big-endian
    arrays (numba raises a TypingError) and strided views are all correct there (issue 14).
    """
    if not _enabled[0]:
        return False
    dtype = None
    for array in arrays:
        if array is None:
            continue
        if not isinstance(array, np.ndarray):
            return False
        if dtype is None:
            dtype = array.dtype
            if dtype not in KERNEL_DTYPES or not dtype.isnative:
                return False
        elif array.dtype != dtype:
            return False
        if not array.flags.c_contiguous or (ndim is not None and array.ndim != ndim):
            return False
        if writeable and not array.flags.writeable:
            return False
    return dtype is not None


def index_ready(labels: np.ndarray) -> bool:
    """Whether an integer index array (class labels) may go to a kernel: native-order ints."""
    return (isinstance(labels, np.ndarray) and labels.dtype.kind in "iu"
            and labels.dtype.isnative)


def jit_enabled() -> bool:
    """True when ops should call their numba kernels (numba importable and not switched off)."""
    return _enabled[0]


def set_jit_enabled(enabled: bool) -> bool:
    """Switch the numba kernels on or off for this process; returns the previous setting.

    Overrides ``GRADWISE_JIT``; results are the same either way (the kernels compute what the
    NumPy references define, within float rounding of sums), only the speed differs. Also
    exported as ``gradwise.set_jit_enabled`` / ``gradwise.jit_enabled``.

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
