"""Inputs torch refuses are refused here too, with torch's exception type and message (issue 11,
second newcomer review): class-index targets of the wrong dtype for cross_entropy, nll_loss and
multi_margin_loss, an integer target shaped as class probabilities, and histc on an integer or
bool input. Swept over every dtype, each result compared with torch's."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")

DTYPES = ["int64", "int32", "int16", "int8", "uint8", "bool", "float32", "float64"]
LOGITS = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)


def _outcome(call):
    """(value rounded, dtype) or (exception type, torch's message without gradwise's prefix)."""
    try:
        result = call()
    except (RuntimeError, NotImplementedError) as error:
        op, _, rest = str(error).partition(": ")  # gradwise names the op first
        return type(error).__name__, rest if rest and op.isidentifier() else str(error)
    return round(float(result.sum()), 4), str(result.dtype).replace("torch.", "")


def _both(build):
    expected = _outcome(lambda: build(torch))
    actual = _outcome(lambda: build(gw))
    assert actual == expected


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss", "multi_margin_loss"])
def test_class_index_target_dtype_as_torch(loss, dtype):
    labels = np.array([0, 2, 1, 0]).astype(dtype)
    _both(lambda m: getattr(m.nn.functional, loss)(m.tensor(LOGITS), m.tensor(labels)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_target_shaped_as_input_must_be_floating(dtype):
    target = np.abs(LOGITS).round().astype(dtype)
    _both(lambda m: m.nn.functional.cross_entropy(
        m.tensor(LOGITS), m.tensor(target).to(m.float32) if dtype == "float64" else
        m.tensor(target)))


@pytest.mark.parametrize("dtype", DTYPES + ["float16"])
def test_histc_refuses_integer_input_as_torch(dtype):
    values = np.array([0, 1, 2, 3, 3]).astype(dtype)
    _both(lambda m: m.histc(m.tensor(values), bins=4))
