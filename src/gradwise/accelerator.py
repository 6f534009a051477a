"""``gw.accelerator``: PyTorch's device-agnostic accelerator queries; gradwise has none."""

from __future__ import annotations

from typing import Any


def is_available() -> bool:
    """False: gradwise runs on the CPU only."""
    return False


def current_accelerator(check_available: bool = False) -> Any:
    """None: there is no accelerator (``torch.accelerator.current_accelerator``)."""
    return None


def device_count() -> int:
    """Number of accelerators gradwise can use: always 0 (it computes on the CPU with NumPy)."""
    return 0
