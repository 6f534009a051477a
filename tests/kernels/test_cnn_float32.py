"""A float32 CNN training step stays float32: every op's forward output and every gradient its
backward returns, on the kernel path and on the NumPy path (issue 14: no float64 leaks)."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.function import Function
from gradwise.autograd.kernels import _jit


def _all_functions(cls=Function):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_functions(sub)


@pytest.fixture
def dtype_log(monkeypatch):
    """Wrap every op's forward and backward to record (op, where, dtype) of what they return."""
    log: list[tuple[str, str, np.dtype]] = []

    def wrap(fn_cls, name):
        original = fn_cls.__dict__[name].__func__

        def recorded(ctx, *args, **kwargs):
            result = original(ctx, *args, **kwargs)
            values = result if isinstance(result, tuple) else (result,)
            for value in values:
                if isinstance(value, np.ndarray):
                    log.append((fn_cls.op_name, name, value.dtype))
            return result

        monkeypatch.setattr(fn_cls, name, staticmethod(recorded))

    for fn_cls in set(_all_functions()):
        for name in ("forward", "backward"):
            if isinstance(fn_cls.__dict__.get(name), staticmethod):
                wrap(fn_cls, name)
    return log


@pytest.mark.parametrize("enabled", [True, False], ids=["jit", "numpy"])
def test_cnn_training_step_keeps_float32_everywhere(dtype_log, enabled):
    if enabled and _jit._numba is None:
        pytest.skip("numba is not installed")
    nn = gw.nn
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=1, padding=1, rng=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(6 * 2 * 2, 5, rng=2),
    )
    optimizer = gw.optim.Adam(model.parameters(), lr=1e-3)
    x = gw.tensor(np.random.default_rng(0).standard_normal((3, 3, 8, 8)).astype(np.float32))
    previous = _jit.set_jit_enabled(enabled)
    try:
        loss = gw.nn.functional.cross_entropy(model(x), np.array([0, 1, 4]))
        loss.backward()
        optimizer.step()
    finally:
        _jit.set_jit_enabled(previous)
    ops = {op for op, _, _ in dtype_log}
    assert {"Conv2d", "MaxPool2d", "AvgPool2d"} <= ops
    leaks = [entry for entry in dtype_log if entry[2] != np.float32]
    assert not leaks, leaks
    assert all(p._data.dtype == np.float32 for p in model.parameters())
