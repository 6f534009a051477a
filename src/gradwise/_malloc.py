"""Allocator tuning for training loops: keep large freed arrays for reuse instead of unmapping them.

Why: every training step allocates and frees the same multi-megabyte temporaries (activations,
im2col rows, gradients). glibc's ``malloc`` serves blocks above its mmap threshold (128 KiB at
first, raised adaptively up to 32 MiB) with a fresh ``mmap`` and hands them back to the kernel on
``free``; it also trims the top of the heap when more than the trim threshold is free. The next
step's arrays then land on fresh pages, and the kernel zero-fills every page on first touch.
For the small CNN of ``benchmarks/cnn_epoch.py`` (batch 128) that page-fault storm was about a
quarter of the training step (77 -> 60 ms on a 2-core machine). Raising both thresholds makes
``free`` keep the memory in the heap, where the next step's identical allocations find it.

This is process-wide tuning of the C allocator, so the library never does it on import: a
program calls it once at start-up (the ``gradwise`` command line and the benchmarks do).

Example:
    >>> from gradwise._malloc import reuse_freed_memory
    >>> reuse_freed_memory()  # True on Linux with glibc, False (and no change) elsewhere
    True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

#: mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: blocks below this size come from the heap, so freed ones are reused (glibc's own cap is 32 MiB
#: for the adaptive threshold; a conv layer's im2col rows at batch 128 are about 29 MB)
MMAP_THRESHOLD_BYTES = 256 << 20
#: the top of the heap is given back to the kernel only when more than this is free there: enough
#: for a training step's temporaries (the CNN's step peaks at ~60 MB), small enough that a data
#: set decoded and dropped before training is returned (with 1 GiB, a process that had loaded
#: Fashion-MNIST kept ~400 MB it no longer used; with 128 MiB, ~35 MB)
TRIM_THRESHOLD_BYTES = 128 << 20

_applied = False


def reuse_freed_memory() -> bool:
    """Make glibc's malloc keep freed large blocks for reuse; return whether the tuning applied.

    Sets ``M_MMAP_THRESHOLD`` to 256 MiB and ``M_TRIM_THRESHOLD`` to 128 MiB with ``mallopt``
    (the same effect as the environment variables ``MALLOC_MMAP_THRESHOLD_=268435456
    MALLOC_TRIM_THRESHOLD_=134217728``). Call it once, early in a program that trains (before
    the loop; the earlier, the fewer arrays were placed by the old rules). Safe to call more
    than once. On other platforms (macOS, Windows, musl) it changes nothing and returns False.

    Measured on the benchmark CNN (batch 128): minor page faults per training step went from
    ~2,000 to 0 for gradwise (and from ~1,900 to 0 for PyTorch in the same process). Cost:
    memory a step frees stays part of the process (its resident size settles at the step's
    peak instead of dropping between steps), and freed blocks below live ones stay resident;
    arrays of 256 MiB and more still go straight back to the kernel.
    """
    global _applied
    if _applied:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on error
    applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
    _applied = applied
    return applied
