"""Argument checks shared by the layers."""

from __future__ import annotations

from typing import Any


def positive_int(layer: str, name: str, value: Any) -> int:
    """``value`` as an int, or a ValueError naming the layer and argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{layer}: {name} must be a positive integer, got {value!r}")
    return int(value)


def pair(layer: str, name: str, value: Any, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints as a pair, each at least ``minimum``."""
    values = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        first, second = (int(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(
            f"{layer}: {name} must be an int or a pair of ints, got {value!r}"
        ) from None
    if first < minimum or second < minimum:
        raise ValueError(f"{layer}: {name} must be at least {minimum}, got {value!r}")
    return first, second
