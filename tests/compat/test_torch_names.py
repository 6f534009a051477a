"""Every layer in torch.nn and every function in torch.nn.functional exists in gradwise under
the same name, or docs/PORTING.md names it as not supported (so a missing name is documented,
never a surprise). Runs against the installed torch (skipped without it)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import gradwise.nn as gnn
import gradwise.nn.functional as gF

torch = pytest.importorskip("torch")

PORTING = (Path(__file__).parents[2] / "docs" / "PORTING.md").read_text()

# torch.nn.functional's helpers for its own dispatch, not functions a program calls
INTERNAL = {"assert_int_or_pair", "boolean_dispatch", "handle_torch_function",
            "has_torch_function", "has_torch_function_unary", "has_torch_function_variadic"}


def _missing_layers() -> list[str]:
    return sorted(name for name, value in vars(torch.nn).items()
                  if inspect.isclass(value) and name[0].isupper() and not hasattr(gnn, name))


def _missing_functions() -> list[str]:
    functional = torch.nn.functional
    return sorted(name for name in dir(functional)
                  if not name.startswith("_") and name[0].islower() and name not in INTERNAL
                  and callable(getattr(functional, name))
                  and not inspect.isclass(getattr(functional, name))
                  and not inspect.ismodule(getattr(functional, name))
                  and not hasattr(gF, name))


@pytest.mark.parametrize("kind", ["layers", "functions"])
def test_every_missing_torch_name_is_listed_in_porting(kind):
    missing = _missing_layers() if kind == "layers" else _missing_functions()
    undocumented = [name for name in missing if f"`{name}`" not in PORTING]
    assert not undocumented, f"torch.nn names gradwise lacks, not in PORTING.md: {undocumented}"


def test_the_common_layers_exist():
    # a floor, so the test above cannot pass by documenting everything away
    for name in ("Conv1d", "ConvTranspose2d", "LSTM", "GRU", "RNN", "MultiheadAttention",
                 "TransformerEncoderLayer", "GroupNorm", "Upsample", "EmbeddingBag",
                 "AdaptiveAvgPool2d", "PixelShuffle", "Bilinear", "PReLU", "KLDivLoss"):
        assert hasattr(gnn, name), name
    assert len(_missing_layers()) < 60
