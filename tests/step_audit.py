"""Audit one training step: the dtype of every array the engine makes (op outputs in forward,
gradients in backward) and the NumPy memory the step allocates on top of what it started with.

Shared by the MLP and CNN cases (tests/kernels/test_step_audit.py): a float64 leak shows up as a
float64 dtype, a hidden copy as bytes above the step's budget.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradwise.autograd.function import Function


def _function_classes() -> list[type]:
    classes, stack = [], [Function]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            classes.append(sub)
            stack.append(sub)
    return classes


@dataclass
class StepAudit:
    """What :func:`audit_step` saw: ``(op, "forward"|"backward", dtype)`` of every array and the
    peak bytes the step held at once (allocated during it, still alive at the peak)."""

    dtypes: list[tuple[str, str, np.dtype]] = field(default_factory=list)
    peak_bytes: int = 0

    def non_float32(self) -> list[tuple[str, str, np.dtype]]:
        """The entries whose floating dtype is not float32 (integer labels are fine)."""
        return [entry for entry in self.dtypes
                if entry[2].kind in "fc" and entry[2] != np.float32]


def audit_step(step: Callable[[], Any], monkeypatch: Any) -> StepAudit:
    """Run ``step()`` once with every Function's forward and backward wrapped to record dtypes,
    and with tracemalloc measuring the peak memory the step allocates.

    Call it after a few warm-up steps so optimizer state and scratch buffers already exist.
    """
    audit = StepAudit()
    for cls in _function_classes():
        for kind in ("forward", "backward"):
            original = cls.__dict__.get(kind)
            if original is None:
                continue
            function = original.__func__ if isinstance(original, staticmethod) else original

            def wrapped(*args, _function=function, _name=cls.op_name, _kind=kind, **kwargs):
                result = _function(*args, **kwargs)
                arrays = result if isinstance(result, tuple) else (result,)
                for array in arrays:
                    if isinstance(array, np.ndarray):
                        audit.dtypes.append((_name, _kind, array.dtype))
                return result

            monkeypatch.setattr(cls, kind, staticmethod(wrapped))
    # tracemalloc traces only what is allocated after start(): its peak is the most memory the
    # step itself held at once (NumPy's buffers and, a few KB, the graph's Python objects)
    tracemalloc.start()
    try:
        step()
        audit.peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        monkeypatch.undo()
    return audit
