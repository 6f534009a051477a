"""Fused kernels for the hot paths that are not matrix products.

Each family lives in its own file (``elementwise.py``, ``pool.py``, ``conv.py``, ``optim.py``...)
and holds two implementations side by side:

* a *reference* in NumPy, the definition of what the kernel computes, which tests compare
  against and which runs when numba is absent or ``GRADWISE_JIT=0``;
* a *kernel*: readable Python loops compiled by numba (:func:`kernel`).

Ops call :func:`jit_enabled` once per call and pick one. See ``_jit.py`` for the compile settings
(and why each one is there).
"""

from gradwise.autograd.kernels._jit import (
    KERNEL_DTYPES,
    index_ready,
    jit_enabled,
    kernel,
    kernel_ready,
    set_jit_enabled,
)

__all__ = ["KERNEL_DTYPES", "index_ready", "jit_enabled", "kernel", "kernel_ready",
           "set_jit_enabled"]
