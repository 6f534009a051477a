"""Argument checks shared by the layers."""

from __future__ import annotations

from typing import Any

from gradwise.autograd.ops._spatial import pair

__all__ = ["pair", "positive_int"]


def positive_int(layer: str, name: str, value: Any) -> int:
    """``value`` as an int, or a ValueError naming the layer and argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{layer}: {name} must be a positive integer, got {value!r}")
    return int(value)
