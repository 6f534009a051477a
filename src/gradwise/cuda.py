"""``gw.cuda``: PyTorch's CUDA queries, answered for a CPU-only library (no GPU is available).

Tutorials write ``device = "cuda" if torch.cuda.is_available() else "cpu"``; here that picks the
CPU, so the program runs unchanged.
"""

from __future__ import annotations

from typing import Any

from gradwise.autograd import random as _random


def is_available() -> bool:
    """False: gradwise has no CUDA backend."""
    return False


def device_count() -> int:
    """0 CUDA devices."""
    return 0


def manual_seed(seed: int) -> None:
    """Accepted and ignored (there is no CUDA generator), as PyTorch does without a GPU."""
    _random.Generator().manual_seed(seed)  # validates the seed the same way


def manual_seed_all(seed: int) -> None:
    """Accepted and ignored, as :func:`manual_seed`."""
    manual_seed(seed)


def synchronize(device: Any = None) -> None:
    """Nothing to wait for on the CPU."""


def empty_cache() -> None:
    """Release cached accelerator memory: nothing to do, gradwise allocates through NumPy on the
    CPU.
    """
