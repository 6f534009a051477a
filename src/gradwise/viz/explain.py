"""The chain-rule explainer: backpropagation through a tiny network, one printed step at a time.

Every number is computed by the gradwise engine in float64: the forward values, each local
derivative (the op's own backward, run on that op alone), the chain-rule products, and the
gradients of a full ``loss.backward()``, which the hand-chained products must match. A central
finite difference checks every gradient once more, and one gradient-descent step shows the loss
going down.

Example:
    >>> print(gw.viz.explain.explain_neuron())   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradwise.autograd.grad_mode import no_grad
from gradwise.autograd.graph import topological_order
from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F

__all__ = ["explain_mlp", "explain_neuron", "mlp_walkthrough", "neuron_walkthrough"]

_FD_STEP = 1e-6


def _t(values: Any, requires_grad: bool = False) -> Tensor:
    return Tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def _fmt(value: Any) -> str:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return f"{float(array):.4f}"
    if array.ndim == 1:
        return "[" + ", ".join(f"{v:.4f}" for v in array) + "]"
    return "[" + ", ".join(_fmt(row) for row in array) + "]"


def _local_derivative(fn: Callable[[Tensor], Tensor], at: Any) -> np.ndarray:
    """d fn / d input at ``at``, by the engine's backward of that one op."""
    leaf = _t(at, requires_grad=True)
    fn(leaf).sum().backward()
    return _recorded_grad(leaf)


def _recorded_grad(tensor: Tensor) -> np.ndarray:
    """The gradient backward left on ``tensor`` (a leaf or one that retains its grad).

    Raises:
        RuntimeError: none reached it (it does not feed the loss).
    """
    if tensor._grad is None:
        raise RuntimeError(f"explain: no gradient reached {tensor.name or 'a tensor'}")
    return tensor._grad


def _finite_difference(loss_of: Callable[..., float], params: dict[str, np.ndarray],
                       name: str) -> np.ndarray:
    """Central differences of the loss with respect to one parameter, element by element."""
    base = params[name]
    grad = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        shifted = {k: v.copy() for k, v in params.items()}
        shifted[name][index] += _FD_STEP
        up = loss_of(**shifted)
        shifted[name][index] -= 2 * _FD_STEP
        down = loss_of(**shifted)
        grad[index] = (up - down) / (2 * _FD_STEP)
    return grad


def _check_lr(lr: float) -> None:
    if not (isinstance(lr, int | float) and lr > 0):
        raise ValueError(f"explain: lr must be a positive number, got {lr!r}")


def _check_label(y: float) -> None:
    if y not in (0, 1):
        raise ValueError(f"explain: the label y must be 0 or 1, got {y!r}")


# ---- one neuron --------------------------------------------------------------------------------
def _neuron_loss(x: np.ndarray, w: np.ndarray, b: np.ndarray, y: float) -> Tensor:
    return _neuron_loss_of(x, _t(w), b, y)


def neuron_walkthrough(x: Sequence[float] = (1.0, 2.0), w: Sequence[float] = (0.5, 0.3),
                       b: float = 0.1, y: float = 1.0, lr: float = 0.1) -> dict[str, Any]:
    """Every quantity of one step of a sigmoid neuron with binary cross-entropy, as numbers.

    Returns a dict with ``z, a, loss`` (forward), ``dL_da, da_dz, dz_dw, dz_db`` (local
    derivatives), ``dL_dz, dL_dw, dL_db`` (chain rule), ``engine_dw, engine_db`` (backward),
    ``fd_dw, fd_db`` (finite differences), ``new_w, new_b, new_loss`` (after one update), and
    the second derivative: ``d2L_dz2`` (a (1 - a)), ``hand_d2w`` (a (1 - a) x x^T, shape
    (n, n)), ``engine_d2w`` (the engine differentiating its own gradient, create_graph) and
    ``fd_d2w`` (central differences of the engine's first gradient).
    """
    _check_lr(lr)
    _check_label(y)
    x_arr, w_arr = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    if x_arr.shape != w_arr.shape or x_arr.ndim != 1:
        raise ValueError(
            f"explain_neuron: x and w must be 1-D of the same length, got shapes {x_arr.shape} "
            f"and {w_arr.shape}"
        )
    b_arr = np.asarray(b, dtype=np.float64)
    # forward, keeping the intermediate gradients
    w_t, b_t, x_t = _t(w_arr, True), _t(b_arr, True), _t(x_arr)
    z = (w_t * x_t).sum() + b_t
    z.retain_grad()
    a = z.sigmoid()
    a.retain_grad()
    loss = F.binary_cross_entropy(a, _t(y))
    loss.backward()
    out: dict[str, Any] = {"x": x_arr, "w": w_arr, "b": float(b_arr), "y": float(y), "lr": lr}
    out.update(z=float(z._data), a=float(a._data), loss=float(loss._data))
    # local derivatives: each op's backward on its own
    out["dL_da"] = float(_local_derivative(lambda t: F.binary_cross_entropy(t, _t(y)), a._data))
    out["da_dz"] = float(_local_derivative(lambda t: t.sigmoid(), z._data))
    out["dz_dw"] = _local_derivative(lambda t: (t * x_t).sum() + _t(b_arr), w_arr)
    out["dz_db"] = float(_local_derivative(lambda t: (_t(w_arr) * x_t).sum() + t, b_arr))
    # the chain rule, multiplied out by hand
    out["dL_dz"] = out["dL_da"] * out["da_dz"]
    out["dL_dw"] = out["dL_dz"] * out["dz_dw"]
    out["dL_db"] = out["dL_dz"] * out["dz_db"]
    # what the engine's full backward computed
    out.update(engine_dL_da=float(_recorded_grad(a)), engine_dL_dz=float(_recorded_grad(z)),
               engine_dw=_recorded_grad(w_t).copy(), engine_db=float(_recorded_grad(b_t)))

    def loss_of(w: np.ndarray, b: np.ndarray) -> float:
        with no_grad():
            return float(_neuron_loss(x_arr, w, b, y)._data)

    params = {"w": w_arr.copy(), "b": b_arr.copy()}
    out["fd_dw"] = _finite_difference(loss_of, params, "w")
    out["fd_db"] = float(_finite_difference(loss_of, params, "b"))
    out["new_w"] = w_arr - lr * out["engine_dw"]
    out["new_b"] = float(b_arr - lr * out["engine_db"])
    out["new_loss"] = loss_of(out["new_w"], np.asarray(out["new_b"]))
    out.update(_neuron_second_derivative(x_arr, w_arr, b_arr, y, out["a"]))
    return out


def _neuron_second_derivative(x: np.ndarray, w: np.ndarray, b: np.ndarray, y: float,
                              a: float) -> dict[str, Any]:
    """d2L/dw2 three ways: the formula a (1 - a) x x^T, the engine differentiating its own
    gradient (``grad(..., create_graph=True)``, then one ``grad`` per row), and central
    differences of the engine's first gradient."""
    from gradwise.autograd.higher_order import grad

    def gradient(w_values: np.ndarray, create_graph: bool = False) -> tuple[Tensor, Tensor]:
        w_t = _t(w_values, True)
        (g,) = grad(_neuron_loss_of(x, w_t, b, y), w_t, create_graph=create_graph)
        assert g is not None  # grad raises for an unused input unless allow_unused
        return w_t, g

    w_t, g = gradient(w, create_graph=True)
    rows = [_row(grad(g[i], w_t, retain_graph=True)) for i in range(len(w))]
    engine = np.stack(rows)  # (n, n): row i is d/dw of dL/dw_i
    fd = np.zeros_like(engine)
    for j in range(len(w)):
        step = np.zeros_like(w)
        step[j] = _FD_STEP
        up, down = gradient(w + step)[1]._data, gradient(w - step)[1]._data
        fd[:, j] = (up - down) / (2 * _FD_STEP)
    return {"d2L_dz2": a * (1 - a), "hand_d2w": a * (1 - a) * np.outer(x, x),
            "engine_d2w": engine, "fd_d2w": fd}


def _row(grads: tuple[Tensor | None, ...]) -> np.ndarray:
    (row,) = grads
    assert row is not None  # grad raises for an unused input unless allow_unused
    return row._data


def _neuron_loss_of(x: np.ndarray, w: Tensor, b: np.ndarray, y: float) -> Tensor:
    """The neuron's loss as a function of a weight tensor that may require grad."""
    return F.binary_cross_entropy(((w * _t(x)).sum() + _t(b)).sigmoid(), _t(y))


def explain_neuron(x: Sequence[float] = (1.0, 2.0), w: Sequence[float] = (0.5, 0.3),
                   b: float = 0.1, y: float = 1.0, lr: float = 0.1) -> str:
    """Backpropagation through one sigmoid neuron with binary cross-entropy, step by step.

    The defaults are the classic example: x = [1, 2], w = [0.5, 0.3], b = 0.1, y = 1, which
    gives z = 1.2, a = 0.7685, loss = 0.2633 and dL/dz = a - y = -0.2315.
    """
    v = neuron_walkthrough(x, w, b, y, lr)
    n = len(v["x"])
    terms = " + ".join(f"{v['w'][i]:g}*{v['x'][i]:g}" for i in range(n))
    lines = [
        "One sigmoid neuron with binary cross-entropy",
        f"  inputs x = {_fmt(v['x'])}, weights w = {_fmt(v['w'])}, bias b = {v['b']:.4f}, "
        f"label y = {v['y']:g}",
        "",
        "1. Forward pass",
        f"  z = w.x + b = {terms} + {v['b']:g} = {v['z']:.4f}",
        f"  a = sigmoid(z) = 1 / (1 + exp(-z)) = {v['a']:.4f}",
        f"  L = -[y log(a) + (1 - y) log(1 - a)] = {v['loss']:.4f}",
        "",
        "2. Local derivatives (each op on its own)",
        f"  dL/da = -y/a + (1 - y)/(1 - a) = {v['dL_da']:.4f}",
        f"  da/dz = a (1 - a) = {v['da_dz']:.4f}",
        f"  dz/dw = x = {_fmt(v['dz_dw'])}",
        f"  dz/db = 1 = {v['dz_db']:.4f}",
        "",
        "3. Chain rule, from the loss back to the weights",
        f"  dL/dz = dL/da * da/dz = {v['dL_da']:.4f} * {v['da_dz']:.4f} = {v['dL_dz']:.4f}"
        f"   (= a - y = {v['a'] - v['y']:.4f})",
    ]
    for i in range(n):
        lines.append(f"  dL/dw{i + 1} = dL/dz * x{i + 1} = {v['dL_dz']:.4f} * {v['x'][i]:g} = "
                     f"{v['dL_dw'][i]:.4f}")
    lines.append(f"  dL/db = dL/dz * 1 = {v['dL_db']:.4f}")
    lines += [
        "",
        "4. The engine's loss.backward() agrees",
        f"  w.grad = {_fmt(v['engine_dw'])}, b.grad = {v['engine_db']:.4f}"
        f"   (max difference from step 3: "
        f"{max(np.abs(v['engine_dw'] - v['dL_dw']).max(), abs(v['engine_db'] - v['dL_db'])):.1e})",
        "",
        f"5. Finite-difference check: (L(p + h) - L(p - h)) / 2h with h = {_FD_STEP:g}",
    ]
    for i in range(n):
        backprop, numerical = v["engine_dw"][i], v["fd_dw"][i]
        lines.append(f"  dL/dw{i + 1}: backprop {backprop:.6f}, numerical {numerical:.6f}, "
                     f"difference {abs(backprop - numerical):.1e}")
    lines.append(f"  dL/db:  backprop {v['engine_db']:.6f}, numerical {v['fd_db']:.6f}, "
                 f"difference {abs(v['engine_db'] - v['fd_db']):.1e}")
    lines += [
        "",
        f"6. Gradient-descent update with learning rate {v['lr']:g}: p <- p - lr * dL/dp",
    ]
    for i in range(n):
        lines.append(f"  w{i + 1} = {v['w'][i]:.4f} - {v['lr']:g} * {v['engine_dw'][i]:.4f} = "
                     f"{v['new_w'][i]:.4f}")
    lines.append(f"  b  = {v['b']:.4f} - {v['lr']:g} * {v['engine_db']:.4f} = {v['new_b']:.4f}")
    lines.append(f"  loss: {v['loss']:.4f} -> {v['new_loss']:.4f}")
    lines += [
        "",
        "7. Second derivative: differentiate the gradient again",
        f"  dL/dz = a - y, and a depends on z, so d2L/dz2 = da/dz = a (1 - a) = "
        f"{v['d2L_dz2']:.4f}",
        "  z is linear in w, so d2L/dwi dwj = d2L/dz2 * xi * xj:",
    ]
    for i in range(n):
        for j in range(n):
            lines.append(f"  d2L/dw{i + 1}dw{j + 1} = {v['d2L_dz2']:.4f} * {v['x'][i]:g} * "
                         f"{v['x'][j]:g} = {v['hand_d2w'][i, j]:.4f}")
    difference = np.abs(v["engine_d2w"] - v["hand_d2w"]).max()
    lines += [
        "  The engine: (g,) = gw.autograd.grad(L, w, create_graph=True) records the backward",
        "  pass, so each dL/dwi in g can be differentiated: gw.autograd.grad(g[i], w) is row i.",
        f"  d2L/dw2 = {_fmt(v['engine_d2w'])}   (max difference from the formula: "
        f"{difference:.1e})",
        f"  Finite-difference check: (dL/dw(w + h ej) - dL/dw(w - h ej)) / 2h with h = "
        f"{_FD_STEP:g}",
    ]
    for i in range(n):
        for j in range(n):
            engine, numerical = v["engine_d2w"][i, j], v["fd_d2w"][i, j]
            lines.append(f"  d2L/dw{i + 1}dw{j + 1}: create_graph {engine:.6f}, numerical "
                         f"{numerical:.6f}, difference {abs(engine - numerical):.1e}")
    return "\n".join(lines)


# ---- a 2-2-1 network ---------------------------------------------------------------------------
_MLP_DEFAULTS = {
    "W1": [[0.15, -0.20], [0.25, 0.30]],  # (out, in), as nn.Linear stores it
    "b1": [0.10, -0.10],
    "W2": [[0.40, -0.45]],
    "b2": [0.05],
}


def _mlp_forward(x: Tensor, params: dict[str, Tensor], y: float) -> dict[str, Tensor]:
    z1 = F.linear(x, params["W1"], params["b1"])
    h = z1.sigmoid()
    z2 = F.linear(h, params["W2"], params["b2"])
    a = z2.sigmoid()
    loss = F.binary_cross_entropy(a, _t([[y]]))
    return {"z1": z1, "h": h, "z2": z2, "a": a, "L": loss}


# name -> (formula, hand computation from forward values v and gradients g found so far)
_MLP_STEPS: dict[str, tuple[str, Callable[[dict, dict], np.ndarray]]] = {
    "L": ("dL/dL = 1", lambda v, g: np.ones_like(v["L"])),
    "a": ("dL/da = dL/dL * (-y/a + (1 - y)/(1 - a))",
          lambda v, g: g["L"] * (-v["y"] / v["a"] + (1 - v["y"]) / (1 - v["a"]))),
    "z2": ("dL/dz2 = dL/da * a (1 - a)", lambda v, g: g["a"] * v["a"] * (1 - v["a"])),
    "W2": ("dL/dW2 = dL/dz2^T h", lambda v, g: g["z2"].T @ v["h"]),
    "b2": ("dL/db2 = dL/dz2 (summed over the batch)", lambda v, g: g["z2"].sum(axis=0)),
    "h": ("dL/dh = dL/dz2 W2", lambda v, g: g["z2"] @ v["W2"]),
    "z1": ("dL/dz1 = dL/dh * h (1 - h)", lambda v, g: g["h"] * v["h"] * (1 - v["h"])),
    "W1": ("dL/dW1 = dL/dz1^T x", lambda v, g: g["z1"].T @ v["x"]),
    "b1": ("dL/db1 = dL/dz1 (summed over the batch)", lambda v, g: g["z1"].sum(axis=0)),
}


def mlp_walkthrough(x: Sequence[float] = (1.0, 2.0), y: float = 1.0, lr: float = 0.5,
                    params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every quantity of one step of a 2-2-1 sigmoid network with binary cross-entropy.

    Returns a dict with ``forward`` (name -> value), ``order`` (the names in the order the
    engine's backward visits them), ``hand`` and ``engine`` (name -> dL/d(name)), ``fd``
    (parameter -> finite-difference gradient), ``updated`` (parameter -> value after one step)
    and ``loss``, ``new_loss``.
    """
    _check_lr(lr)
    _check_label(y)
    values = {k: np.asarray(v, dtype=np.float64) for k, v in (params or _MLP_DEFAULTS).items()}
    expected = {k: np.asarray(v).shape for k, v in _MLP_DEFAULTS.items()}
    if set(values) != set(expected) or any(values[k].shape != s for k, s in expected.items()):
        raise ValueError(
            f"explain_mlp: params must be W1 {expected['W1']}, b1 {expected['b1']}, "
            f"W2 {expected['W2']}, b2 {expected['b2']}"
        )
    x_arr = np.asarray(x, dtype=np.float64).reshape(1, -1)
    if x_arr.shape != (1, 2):
        raise ValueError(f"explain_mlp: x must hold 2 numbers, got {np.asarray(x).shape}")
    tensors = {name: _t(value, True) for name, value in values.items()}
    for name, tensor in tensors.items():
        tensor.name = name
    x_t = _t(x_arr)
    forward = _mlp_forward(x_t, tensors, y)
    for name, tensor in forward.items():
        tensor.name = name
        tensor.retain_grad()
    # the order backward visits the tensors: reversed topological order, as in _run_backward
    order = [t.name for t in reversed(topological_order(forward["L"])) if t.name in _MLP_STEPS]
    forward["L"].backward()

    v: dict[str, Any] = {"x": x_arr, "y": float(y)}
    v.update({name: t._data for name, t in forward.items()})
    v.update(values)
    hand: dict[str, np.ndarray] = {}
    for name in order:
        hand[name] = np.asarray(_MLP_STEPS[name][1](v, hand))
    engine = {name: _recorded_grad((forward | tensors)[name]) for name in order}

    def loss_of(**p: np.ndarray) -> float:
        with no_grad():
            return float(_mlp_forward(x_t, {k: _t(a) for k, a in p.items()}, y)["L"]._data)

    fd = {name: _finite_difference(loss_of, values, name) for name in values}
    updated = {name: values[name] - lr * engine[name] for name in values}
    return {
        "forward": {name: t._data for name, t in forward.items()}, "order": order,
        "hand": hand, "engine": engine, "fd": fd, "updated": updated, "params": values,
        "x": x_arr, "y": float(y), "lr": lr,
        "loss": float(forward["L"]._data), "new_loss": loss_of(**updated),
    }


def explain_mlp(x: Sequence[float] = (1.0, 2.0), y: float = 1.0, lr: float = 0.5,
                params: dict[str, Any] | None = None) -> str:
    """Backpropagation through a 2-2-1 sigmoid network, layer by layer, in the order the
    engine's backward pass visits the nodes."""
    r = mlp_walkthrough(x, y, lr, params)
    f, p = r["forward"], r["params"]
    lines = [
        "A 2-2-1 network: x -> Linear(2, 2) -> sigmoid -> Linear(2, 1) -> sigmoid -> BCE",
        f"  x = {_fmt(r['x'][0])}, label y = {r['y']:g}",
        f"  W1 = {_fmt(p['W1'])}, b1 = {_fmt(p['b1'])}   (W is (out, in))",
        f"  W2 = {_fmt(p['W2'])}, b2 = {_fmt(p['b2'])}",
        "",
        "1. Forward pass, layer by layer",
        f"  z1 = x W1^T + b1 = {_fmt(f['z1'][0])}",
        f"  h  = sigmoid(z1) = {_fmt(f['h'][0])}",
        f"  z2 = h W2^T + b2 = {_fmt(f['z2'][0])}",
        f"  a  = sigmoid(z2) = {_fmt(f['a'][0])}",
        f"  L  = -[y log(a) + (1 - y) log(1 - a)] = {r['loss']:.4f}",
        "",
        "2. Backward pass, in the order backpropagation visits the nodes",
        "   (each gradient = the one before it times a local derivative; "
        "checked against loss.backward())",
    ]
    for name in r["order"]:
        formula = _MLP_STEPS[name][0]
        hand, engine = r["hand"][name], r["engine"][name]
        value = hand[0] if hand.ndim == 2 and hand.shape[0] == 1 and name not in ("W1", "W2") \
            else hand
        lines.append(f"  {formula:44s} = {_fmt(value)}"
                     f"   (engine: {np.abs(hand - engine).max():.0e} off)")
    lines += ["", f"3. Finite-difference check of every weight (h = {_FD_STEP:g})"]
    for name in ("W2", "b2", "W1", "b1"):
        difference = np.abs(r["engine"][name] - r["fd"][name]).max()
        lines.append(f"  dL/d{name}: backprop {_fmt(r['engine'][name])}, numerical "
                     f"{_fmt(r['fd'][name])}, max difference {difference:.1e}")
    lines += ["", f"4. Gradient-descent update with learning rate {r['lr']:g}"]
    for name in ("W2", "b2", "W1", "b1"):
        lines.append(f"  {name} <- {name} - {r['lr']:g} * dL/d{name} = {_fmt(r['updated'][name])}")
    lines.append(f"  loss: {r['loss']:.4f} -> {r['new_loss']:.4f}")
    return "\n".join(lines)
