"""gw.viz: the computational graph (draw_graph), plots of a run, the chain-rule explainer and the
HTML training report.

``draw_graph`` needs nothing beyond NumPy; ``plots`` and ``report`` import matplotlib when first
used, so ``import gradwise`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from gradwise.viz.graph import draw_graph

__all__ = ["draw_graph", "explain", "graph", "plots", "report", "write_report"]


def __getattr__(name: str) -> Any:
    if name in ("explain", "graph", "plots", "report"):
        return importlib.import_module(f"gradwise.viz.{name}")
    if name == "write_report":
        return importlib.import_module("gradwise.viz.report").write_report
    raise AttributeError(f"module 'gradwise.viz' has no attribute {name!r}")
