"""Argument spellings shared by every op: PyTorch's ``dim``/``keepdim`` with NumPy's aliases.

PyTorch names the axis argument ``dim`` and the keep-the-reduced-axis flag ``keepdim``; NumPy says
``axis`` and ``keepdims``. Every reduction and shape op accepts both spellings through these two
helpers, so the rule (either spelling, never both) lives in one place.
"""

from __future__ import annotations

from typing import Any


def dim_arg(op: str, dim: Any, axis: Any, default: Any = None) -> Any:
    """The axis argument from ``dim`` or its NumPy alias ``axis``; ``default`` when neither.

    Raises:
        TypeError: both were given (naming ``op``).
    """
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: give dim or its NumPy alias axis, not both")
        dim = axis
    if dim is None:
        return default
    if isinstance(dim, list):
        return tuple(dim)
    return dim


def keepdim_arg(op: str, keepdim: bool | None, keepdims: bool | None) -> bool:
    """The keep-reduced-axis flag from ``keepdim`` or its NumPy alias ``keepdims`` (default False).

    Raises:
        TypeError: both were given (naming ``op``).
    """
    if keepdims is not None:
        if keepdim is not None:
            raise TypeError(f"{op}: give keepdim or its NumPy alias keepdims, not both")
        return bool(keepdims)
    return bool(keepdim) if keepdim is not None else False
