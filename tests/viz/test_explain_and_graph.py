"""The chain-rule explainer's numbers (computed by the engine) and draw_graph's DOT output."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import gradwise as gw
from gradwise.viz.explain import explain_mlp, explain_neuron, mlp_walkthrough, neuron_walkthrough
from gradwise.viz.graph import draw_graph


def test_neuron_numbers():
    v = neuron_walkthrough()
    assert v["z"] == pytest.approx(1.2)
    assert v["a"] == pytest.approx(0.768525, abs=1e-6)
    assert v["loss"] == pytest.approx(0.263282, abs=1e-6)
    assert v["dL_dz"] == pytest.approx(v["a"] - 1.0)
    assert v["dL_dz"] == pytest.approx(-0.231475, abs=1e-6)
    np.testing.assert_allclose(v["dL_dw"], (v["a"] - 1.0) * np.array([1.0, 2.0]))
    assert v["dL_db"] == pytest.approx(v["a"] - 1.0)
    assert v["da_dz"] == pytest.approx(v["a"] * (1 - v["a"]))
    assert v["dL_da"] == pytest.approx(-1.0 / v["a"])
    # hand-chained products, the engine's backward and finite differences all agree
    np.testing.assert_allclose(v["engine_dw"], v["dL_dw"], rtol=1e-12)
    np.testing.assert_allclose(v["fd_dw"], v["dL_dw"], atol=1e-8)
    assert v["fd_db"] == pytest.approx(v["dL_db"], abs=1e-8)
    np.testing.assert_allclose(v["new_w"], np.array([0.5, 0.3]) - 0.1 * v["dL_dw"])
    assert v["new_loss"] < v["loss"]


def test_neuron_text_shows_every_step():
    text = explain_neuron()
    for line in ("z = w.x + b = 0.5*1 + 0.3*2 + 0.1 = 1.2000", "a = sigmoid(z)", "= 0.7685",
                 "= 0.2633", "dL/da = -y/a + (1 - y)/(1 - a) = -1.3012",
                 "da/dz = a (1 - a) = 0.1779", "dL/dz = dL/da * da/dz = -1.3012 * 0.1779 = -0.2315",
                 "dL/dw2 = dL/dz * x2 = -0.2315 * 2 = -0.4630", "dL/db = dL/dz * 1 = -0.2315",
                 "learning rate 0.1", "w1 = 0.5000 - 0.1 * -0.2315 = 0.5231",
                 "Finite-difference check", "loss: 0.2633 -> 0.2328"):
        assert line in text, line


def test_neuron_second_derivative_by_create_graph_matches_formula_and_finite_differences():
    for args in ({}, {"x": (2.0, -1.0, 0.5), "w": (0.1, 0.2, 0.3), "b": -0.3, "y": 0.0}):
        v = neuron_walkthrough(**args)
        x = np.asarray(args.get("x", (1.0, 2.0)))
        a = v["a"]
        np.testing.assert_allclose(v["hand_d2w"], a * (1 - a) * np.outer(x, x), rtol=1e-12)
        np.testing.assert_allclose(v["engine_d2w"], v["hand_d2w"], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(v["fd_d2w"], v["engine_d2w"], atol=1e-7)
    text = explain_neuron()
    for line in ("7. Second derivative: differentiate the gradient again",
                 "d2L/dz2 = da/dz = a (1 - a) = 0.1779",
                 "d2L/dw1dw2 = 0.1779 * 1 * 2 = 0.3558",
                 "d2L/dw2dw2 = 0.1779 * 2 * 2 = 0.7116",
                 "gw.autograd.grad(L, w, create_graph=True)",
                 "d2L/dw2 = [[0.1779, 0.3558], [0.3558, 0.7116]]",
                 "d2L/dw2dw2: create_graph 0.711578, numerical 0.711578"):
        assert line in text, line


def test_neuron_follows_its_arguments():
    v = neuron_walkthrough(x=(2.0, -1.0, 0.5), w=(0.1, 0.2, 0.3), b=-0.3, y=0.0, lr=1.0)
    assert v["z"] == pytest.approx(0.2 - 0.2 + 0.15 - 0.3)
    assert v["dL_dz"] == pytest.approx(v["a"] - 0.0)
    np.testing.assert_allclose(v["fd_dw"], v["dL_dw"], atol=1e-8)


def test_mlp_backprop_order_and_gradients():
    r = mlp_walkthrough()
    order = r["order"]
    assert order[:3] == ["L", "a", "z2"]
    # each gradient is visited after the ones it is computed from
    assert order.index("h") < order.index("z1") < order.index("W1")
    assert order.index("z2") < order.index("W2")
    assert set(order) == {"L", "a", "z2", "W2", "b2", "h", "z1", "W1", "b1"}
    for name in order:
        np.testing.assert_allclose(r["hand"][name], r["engine"][name], rtol=1e-12, atol=1e-15)
    for name in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(r["fd"][name], r["engine"][name], atol=1e-8)
    assert r["new_loss"] < r["loss"]
    text = explain_mlp()
    assert "dL/dz1 = dL/dh * h (1 - h)" in text and "loss: " in text
    assert text.index("dL/dz2") < text.index("dL/dz1")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: explain_neuron(lr=0), "lr must be a positive number"),
        (lambda: explain_neuron(y=2), "label y must be 0 or 1"),
        (lambda: explain_neuron(x=(1.0,), w=(1.0, 2.0)), "same length"),
        (lambda: explain_mlp(x=(1.0, 2.0, 3.0)), "x must hold 2 numbers"),
        (lambda: explain_mlp(params={"W1": [[1.0]]}), "params must be W1"),
    ],
)
def test_explainer_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _neuron_graph():
    w = gw.tensor([0.5, 0.3], requires_grad=True)
    w.name = "w"
    b = gw.tensor(0.1, requires_grad=True)
    b.name = "b"
    z = (w * gw.tensor([1.0, 2.0])).sum() + b
    loss = gw.nn.functional.binary_cross_entropy(z.sigmoid(), gw.tensor(1.0))
    return w, b, loss


def test_draw_graph_shows_ops_shapes_values_and_gradients():
    w, b, loss = _neuron_graph()
    dot = draw_graph(loss)
    assert dot.startswith("digraph gradwise {") and dot.rstrip().endswith("}")
    for op in ("Mul", "Sum", "Add", "Sigmoid", "BCE"):
        assert f'label="{op}"' in dot
    assert 'label="w\\nshape (2,)\\nvalue [0.5, 0.3]\\ngrad [-0.2315, -0.463]"' in dot
    assert "grad -0.2315" in dot  # dL/db, and dL/dz on the Add node
    # edges in + out: Mul (w, x) 2+1, Sum 1+1, Add (sum, b) 2+1, Sigmoid 1+1, BCE (prediction
    # and target: BCE differentiates its target, as PyTorch, so a constant target is an input
    # too) 2+1
    assert dot.count("->") == 13
    # drawing ran backward on its own: the caller's .grad are untouched and backward still works
    assert w.grad is None and b.grad is None
    loss.backward()
    np.testing.assert_allclose(w.grad, [-0.231475, -0.46295], atol=1e-5)


def test_draw_graph_writes_dot_and_renders_svg_and_png(tmp_path):
    if not shutil.which("dot"):
        pytest.skip("Graphviz's dot is not installed (.ci/run installs it)")
    _, _, loss = _neuron_graph()
    text = draw_graph(loss, tmp_path / "graph.dot")
    assert (tmp_path / "graph.dot").read_text() == text
    draw_graph(loss, tmp_path / "graph.svg")
    svg = (tmp_path / "graph.svg").read_text()
    assert svg.lstrip().startswith(("<?xml", "<svg")) and "Sigmoid" in svg
    draw_graph(loss, tmp_path / "graph.png")
    assert (tmp_path / "graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_draw_graph_without_dot_writes_the_dot_file_and_warns(tmp_path, monkeypatch):
    monkeypatch.setattr("gradwise.viz.graph.shutil.which", lambda name: None)
    _, _, loss = _neuron_graph()
    with pytest.warns(RuntimeWarning, match="'dot' program was not found"):
        draw_graph(loss, tmp_path / "graph.svg")
    assert (tmp_path / "graph.dot").exists() and not (tmp_path / "graph.svg").exists()


def test_draw_graph_errors():
    _, _, loss = _neuron_graph()
    with pytest.raises(ValueError, match="format must be one of"):
        draw_graph(loss, format="pdf")
    with pytest.raises(TypeError, match="expected a Tensor"):
        draw_graph(np.zeros(3))
    loss.backward()
    with pytest.raises(RuntimeError, match="draw_graph: .*freed by backward"):
        draw_graph(loss)
