"""Layers with weights refuse an input of another dtype as torch does (no silent promotion of a
float64 or integer batch into a float32 layer), and accept it once cast. Compared with torch
over every weighted layer family (skipped without torch)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")

LAYERS: dict[str, tuple[Callable[[Any], Any], tuple[int, ...]]] = {
    "Linear": (lambda nn: nn.Linear(4, 3), (2, 4)),
    "Linear-no-bias": (lambda nn: nn.Linear(4, 3, bias=False), (2, 4)),
    "Sequential-Linear-ReLU": (lambda nn: nn.Sequential(nn.Linear(4, 3), nn.ReLU()), (2, 4)),
    "LazyLinear": (lambda nn: nn.LazyLinear(3), (2, 4)),
    "Bilinear": (lambda nn: nn.Bilinear(4, 4, 3), (2, 4)),
    "Conv1d": (lambda nn: nn.Conv1d(2, 3, 2), (2, 2, 5)),
    "Conv2d": (lambda nn: nn.Conv2d(2, 3, 2), (2, 2, 5, 5)),
    "ConvTranspose2d": (lambda nn: nn.ConvTranspose2d(2, 3, 2), (2, 2, 5, 5)),
    "BatchNorm1d": (lambda nn: nn.BatchNorm1d(4), (3, 4)),
    "BatchNorm2d-eval": (lambda nn: nn.BatchNorm2d(2).eval(), (3, 2, 4, 4)),
    "LayerNorm": (lambda nn: nn.LayerNorm(4), (3, 4)),
    "GroupNorm": (lambda nn: nn.GroupNorm(2, 4), (3, 4, 5)),
    "InstanceNorm1d-affine": (lambda nn: nn.InstanceNorm1d(4, affine=True), (3, 4, 5)),
    "RMSNorm": (lambda nn: nn.RMSNorm(4), (3, 4)),
    "PReLU": (lambda nn: nn.PReLU(), (3, 4)),
    "RNN": (lambda nn: nn.RNN(4, 3), (5, 2, 4)),
    "LSTM": (lambda nn: nn.LSTM(4, 3, batch_first=True), (2, 5, 4)),
    "GRU": (lambda nn: nn.GRU(4, 3), (5, 2, 4)),
    "MultiheadAttention": (lambda nn: nn.MultiheadAttention(4, 2), (5, 2, 4)),
    "TransformerEncoderLayer":
        (lambda nn: nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0), (5, 2, 4)),
    "Embedding-float-indices": (lambda nn: nn.Embedding(10, 3), (2, 3)),
}


def _call(lib: Any, name: str, dtype: str) -> str:
    """'ok', or the exception's class name (torch's RuntimeError/ValueError/NotImplementedError;
    gradwise's conv raises TypeError where torch raises RuntimeError, listed in PORTING.md)."""
    build, shape = LAYERS[name]
    module = build(lib.nn)
    x = lib.tensor(np.linspace(0, 3, int(np.prod(shape))).reshape(shape).astype(dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LazyLinear's and the encoder's notices
        try:
            if name == "Bilinear":
                module(x, x)
            elif name == "MultiheadAttention":
                module(x, x, x)
            else:
                module(x)
        except (RuntimeError, ValueError, NotImplementedError, TypeError) as err:
            return type(err).__name__
    return "ok"


# TypeError here where torch raises RuntimeError or NotImplementedError (PORTING.md)
CONV_TYPE_ERROR = {"Conv1d", "Conv2d", "ConvTranspose2d"}


@pytest.mark.parametrize("dtype", ["float64", "int64", "float32", "int32"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_a_float32_layer_accepts_or_refuses_an_input_dtype_as_torch(name: str,
                                                                   dtype: str) -> None:
    ours, theirs = _call(gw, name, dtype), _call(torch, name, dtype)
    if name in CONV_TYPE_ERROR and theirs != "ok":
        theirs = "TypeError"
    if name.startswith("Embedding"):  # float indices: torch RuntimeError, gradwise TypeError
        assert (ours == "ok") == (theirs == "ok")
        return
    assert ours == theirs


@pytest.mark.parametrize("name", [n for n in LAYERS if not n.startswith("Embedding")])
def test_a_float64_layer_takes_float64_input(name: str) -> None:
    build, shape = LAYERS[name]
    module = build(gw.nn).double()
    x = gw.tensor(np.ones(shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "Bilinear":
            out = module(x, x)
        elif name == "MultiheadAttention":
            out = module(x, x, x)
        else:
            out = module(x)
    first = out[0] if isinstance(out, tuple) else out
    assert first.dtype == gw.float64


def test_the_error_says_what_to_do() -> None:
    with pytest.raises(RuntimeError, match=r"linear: mat1 and mat2 must have the same dtype, "
                                           r"but got Double and Float \(cast the input"):
        gw.nn.Linear(4, 3)(np.ones((2, 4)))
    with pytest.raises(RuntimeError, match="but got Long and Float"):
        gw.nn.Linear(4, 3)(gw.tensor([[1, 2, 3, 4]]))
    out = gw.nn.Linear(4, 3)(np.ones((2, 4), np.float32))  # a float32 array is fine
    assert out.dtype == gw.float32
