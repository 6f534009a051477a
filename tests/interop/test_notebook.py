"""Jupyter: what gradwise objects display, through IPython's own formatter, and the examples/
notebook executed end to end with nbclient."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import gradwise as gw
from gradwise.doctor import Doctor
from gradwise.doctor.diagnoses import Finding
from gradwise.nn import functional as F
from gradwise.train import History
from gradwise.viz import graph as graph_module

formatters = pytest.importorskip("IPython.core.formatters")
NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "learn_backprop.ipynb"


def displayed(obj):
    """The MIME bundle IPython would send to the notebook for ``obj``."""
    data, _ = formatters.DisplayFormatter().format(obj)
    return data


def _neuron_loss():
    w = gw.tensor([0.5, 0.3], requires_grad=True)
    return F.sigmoid((w * gw.tensor([1.0, 2.0])).sum() + 0.1)


def test_draw_graph_is_still_the_dot_text():
    drawing = gw.viz.draw_graph(_neuron_loss())
    assert isinstance(drawing, str) and drawing.startswith("digraph gradwise {")
    loss = _neuron_loss()
    assert drawing == gw.viz.draw_graph(loss) and type(str(drawing)) is str


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_draw_graph_displays_as_svg_with_graphviz():
    data = displayed(gw.viz.draw_graph(_neuron_loss()))
    assert "<svg" in data["image/svg+xml"] and "Sigmoid" in data["image/svg+xml"]
    assert "text/html" not in data


def test_draw_graph_without_graphviz_shows_the_dot_text(monkeypatch):
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)
    drawing = gw.viz.draw_graph(_neuron_loss())
    data = displayed(drawing)
    assert "image/svg+xml" not in data
    assert "install graphviz" in data["text/html"]
    assert "digraph gradwise {" in data["text/html"] and "&quot;" in data["text/html"]
    bundle = drawing._repr_mimebundle_()
    assert bundle["text/plain"] == "<computational graph: 7 tensors; str() gives the DOT text>"
    with pytest.raises(FileNotFoundError, match="install graphviz"):
        drawing.svg()


def test_history_displays_as_a_table():
    history = History([{"epoch": 1, "loss": 0.69314718, "val_accuracy": None},
                       {"epoch": 2, "loss": 0.5, "val_accuracy": 0.75}],
                      stop_reason="early stopping: <val_loss> did not improve")
    page = displayed(history)["text/html"]
    assert re.findall(r"<th>(\w+)</th>", page) == ["epoch", "loss", "val_accuracy"]
    assert "<td>1</td><td>0.6931</td><td></td>" in page
    assert "<td>2</td><td>0.5</td><td>0.75</td>" in page
    assert "&lt;val_loss&gt;" in page and "<val_loss>" not in page


def test_doctor_findings_display_as_html():
    doctor = Doctor()
    doctor.findings = [
        Finding("lr_too_low", "warning", "learning rate <too> low",
                evidence={"max_update_ratio": 3.3631e-06, "layer": "4.weight", "series": [1]},
                remedies=["multiply the learning rate by 10-100"], step=62, layer="4.weight"),
        Finding("note", "info", "a note"),
    ]
    page = displayed(doctor)["text/html"]
    assert "gradwise doctor: 1 problem found" in page
    assert "[warning]</b> <b>lr_too_low</b> <small>(step 62, layer 4.weight)</small>" in page
    assert "learning rate &lt;too&gt; low" in page
    assert "max_update_ratio=3.363e-06, layer=4.weight" in page and "series" not in page
    assert "<li>multiply the learning rate by 10-100</li>" in page
    assert "[info]</b> <b>note</b>" in page
    assert displayed(doctor.findings[1])["text/html"].count("<div") == 1


def test_tensors_display_compactly():
    big = gw.tensor(np.arange(64 * 28 * 28, dtype=np.float32).reshape(64, 1, 28, 28))
    page = displayed(big)["text/html"]
    assert "tensor (64, 1, 28, 28) float32" in page
    assert "mean 2.509e+04, std 1.448e+04, min 0, max 5.018e+04" in page
    assert page.count("\n") < 40  # the 50,176 values summarised to a few edge rows
    small = gw.tensor([1.0, 2.0], requires_grad=True)
    assert "tensor (2,) float32 requires_grad" in displayed(small)["text/html"]
    assert "[1., 2.]" in displayed(small)["text/html"]
    nan = (small * gw.tensor([np.nan] * 2)).sum()
    assert "grad_fn=Sum" in displayed(nan)["text/html"]
    bad = gw.tensor(np.r_[np.full(200, np.inf, np.float32), np.ones(1, np.float32)])
    assert "| 200 non-finite" in displayed(bad)["text/html"]


def test_the_learners_notebook_runs_without_errors():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "examples/ notebooks are committed without outputs"
    )
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    html = "\n".join(out.get("data", {}).get("text/html", "") for out in outputs)
    assert "lr_too_low" in html  # the doctor's findings, displayed as HTML
    assert "<th>loss</th>" in html  # the History table
    assert any("image/png" in out.get("data", {}) for out in outputs)  # the lr sweep plot
