"""``gw.backends.jit``: the switch for gradwise's numba kernels (no PyTorch counterpart).

The kernels (``gradwise/autograd/kernels``) compute what their NumPy references define; this
module only chooses which runs. The environment variable ``GRADWISE_JIT`` sets the start value
(``0``/``false``/``off``/``no`` = off, ``1``/``true``/``on``/``yes`` = on, case-insensitive;
anything else warns and leaves them on); :func:`set_enabled` changes it at run time.

Example:
    >>> import gradwise as gw
    >>> previous = gw.backends.jit.set_enabled(False)   # NumPy references from now on
    >>> _ = gw.backends.jit.set_enabled(previous)
"""

from __future__ import annotations

from gradwise.autograd.kernels._jit import _numba, jit_enabled, set_jit_enabled

__all__ = ["is_available", "is_enabled", "set_enabled"]


def is_available() -> bool:
    """Whether numba is importable (without it every op runs its NumPy reference)."""
    return _numba is not None


def is_enabled() -> bool:
    """Whether ops call their numba kernels now (numba present and not switched off)."""
    return jit_enabled()


def set_enabled(enabled: bool) -> bool:
    """Switch the numba kernels on (True) or off (False) for this process; returns the previous
    setting. Same as ``gradwise.autograd.kernels.set_jit_enabled``.

    Raises:
        RuntimeError: ``enabled`` is True but numba is not installed.
    """
    return set_jit_enabled(enabled)
