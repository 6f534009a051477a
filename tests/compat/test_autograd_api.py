"""Issue 11 part B: autograd API gaps against torch: ``backward(inputs=...)``,
``autograd.backward``, ``view(dtype)``, ``retain_grad``/``register_hook`` and the module
backward hooks (values, shapes, errors). Skipped without torch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")

A0, B0, C0 = np.array([0.5, -1.5, 2.0]), np.array([1.0, 2.0, -0.5]), np.array([0.3, 0.7, 1.1])


def _leaves(lib: Any) -> tuple[Any, Any, Any]:
    return tuple(lib.tensor(v.copy(), requires_grad=True) for v in (A0, B0, C0))


def _grad(t: Any) -> Any:
    return None if t.grad is None else np.asarray(t.grad.detach().numpy()
                                                  if hasattr(t.grad, "detach") else t.grad)


# graph builders: (leaves a, b, c) -> (outputs, {name: tensor} candidates for inputs=)
def _chain(lib: Any, a: Any, b: Any, c: Any) -> tuple[list[Any], dict[str, Any]]:
    h = a * 2 + b
    return [(h * h * c).sum()], {"a": a, "b": b, "c": c, "h": h}


def _two_outputs(lib: Any, a: Any, b: Any, c: Any) -> tuple[list[Any], dict[str, Any]]:
    h = lib.tanh(a * b)
    return [(h * c).sum(), (h.exp() * 0.5).sum()], {"a": a, "b": b, "c": c, "h": h}


def _unused(lib: Any, a: Any, b: Any, c: Any) -> tuple[list[Any], dict[str, Any]]:
    h = a * b
    return [h.sum()], {"a": a, "b": b, "c": c, "h": h}


GRAPHS = {"chain": _chain, "two-outputs": _two_outputs, "unused": _unused}
INPUT_SETS = [["a"], ["a", "b"], ["h"], ["c"], ["a", "h", "c"]]


def _run_backward(lib: Any, graph: str, names: list[str], how: str) -> dict[str, Any]:
    a, b, c = _leaves(lib)
    for _repeat in range(2):  # twice: gradients accumulate
        outputs, candidates = GRAPHS[graph](lib, a, b, c)
        chosen = [candidates[n] for n in names]
        if how == "method":
            for out in outputs:
                out.backward(inputs=chosen, retain_graph=True)
        else:
            lib.autograd.backward(outputs, grad_tensors=[None] * len(outputs), inputs=chosen)
    return {"a": _grad(a), "b": _grad(b), "c": _grad(c),
            **{n: _grad(t) for n, t in zip(names, chosen, strict=True) if n == "h"}}


@pytest.mark.parametrize("how", ["method", "function"])
@pytest.mark.parametrize("names", INPUT_SETS, ids=["-".join(n) for n in INPUT_SETS])
@pytest.mark.parametrize("graph", list(GRAPHS))
def test_backward_with_inputs_accumulates_only_there_as_torch(graph: str, names: list[str],
                                                              how: str) -> None:
    ours, theirs = _run_backward(gw, graph, names, how), _run_backward(torch, graph, names, how)
    assert ours.keys() == theirs.keys()
    for key in ours:
        if theirs[key] is None:
            assert ours[key] is None, key
        else:
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-6, err_msg=key)


def test_autograd_backward_weights_several_tensors_as_torch() -> None:
    results = []
    for lib in (gw, torch):
        a, b, _ = _leaves(lib)
        y = a * b
        z = (a * a).sum()
        lib.autograd.backward([y, z], grad_tensors=[lib.tensor([1.0, -2.0, 0.5]), None])
        results.append((_grad(a), _grad(b)))
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_backward_with_inputs_and_create_graph_differentiates_again() -> None:
    results = []
    for lib in (gw, torch):
        a, b, _ = _leaves(lib)
        (a * a * b).sum().backward(inputs=[a], create_graph=True)
        first = _grad(a).copy()
        a.grad.sum().backward(inputs=[b])
        results.append((first, _grad(b), b.grad.requires_grad))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-6)


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda lib, a: (a * 2).sum().backward(inputs=[]), RuntimeError, "cannot be empty"),
    (lambda lib, a: (a * 2).sum().backward(inputs=[lib.ones(2)]), RuntimeError,
     "does not require grad|retain_grad on Tensor that has requires_grad=False"),
    (lambda lib, a: lib.autograd.backward([(a * 2)], inputs=[a]), RuntimeError,
     "implicitly|scalar outputs"),
    (lambda lib, a: lib.ones(2).retain_grad(), RuntimeError,
     "can't retain_grad on Tensor that has requires_grad=False"),
])
def test_backward_and_retain_grad_errors_as_torch(call: Callable, error: type,
                                                  message: str) -> None:
    for lib in (gw, torch):
        with pytest.raises(error, match=message):
            call(lib, lib.ones(2, requires_grad=True))


# ---- view(dtype) --------------------------------------------------------------------------
VIEW_DTYPES = ["float32", "float64", "int32", "int64", "int16", "uint8", "int8", "float16",
               "bool"]
LAYOUTS: dict[str, Callable[[Any], Any]] = {
    "2x4": lambda t: t.reshape(2, 4),
    "column-slice": lambda t: t.reshape(2, 4)[:, 1:3],
    "transposed": lambda t: t.reshape(2, 4).t(),
    "row-slice": lambda t: t.reshape(2, 4)[1:],
    "0-d": lambda t: t[3],
    "last-dim-1": lambda t: t.reshape(8, 1),
}
SOURCE = np.array([1.5, -2.0, 0.0, 3.25, 7.0, -0.5, 100.0, 1e-3], dtype=np.float64)


def _source(lib: Any, dtype: str) -> Any:
    values = SOURCE.astype(dtype) if dtype != "bool" else SOURCE != 0
    return lib.tensor(values.copy())


def _view(lib: Any, source: str, layout: str, target: str) -> Any:
    viewed = LAYOUTS[layout](_source(lib, source))
    try:
        out = viewed.view(getattr(lib, target))
    except RuntimeError as err:
        return ("error", str(err).split(" to view")[0].replace("view: ", ""))
    return ("ok", tuple(out.shape), np.asarray(out.numpy()).tobytes())


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("source", ["float32", "int64", "uint8", "float16"])
def test_view_dtype_reinterprets_bits_as_torch(source: str, layout: str) -> None:
    for target in VIEW_DTYPES:
        ours, theirs = _view(gw, source, layout, target), _view(torch, source, layout, target)
        assert ours == theirs, (source, layout, target)


def test_view_dtype_shares_memory_and_is_outside_the_graph() -> None:
    x = gw.tensor([1.0, 2.0], requires_grad=True) * 1
    bits = x.view(gw.int32)
    assert not bits.requires_grad and bits.grad_fn is None
    raw = gw.zeros(2)
    raw.view(gw.int32)[0] = 1065353216  # the bits of 1.0f
    assert raw.tolist() == [1.0, 0.0]


# ---- tensor hooks and retain_grad ---------------------------------------------------------
def _hooked(lib: Any) -> dict[str, Any]:
    x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
    seen: list[Any] = []
    z = x * 2
    z.retain_grad()
    z.register_hook(lambda g: seen.append(np.array(g.numpy())))
    z.register_hook(lambda g: g * 10)
    w = z * z
    w.retain_grad()
    handle = w.register_hook(lambda g: g + 1)
    handle.remove()
    x.register_hook(lambda g: g - 0.5)
    (w * x).sum().backward()
    return {"x": _grad(x), "z": _grad(z), "w": _grad(w), "seen": seen[0]}


def test_register_hook_and_retain_grad_as_torch() -> None:
    ours, theirs = _hooked(gw), _hooked(torch)
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-6, err_msg=key)


# ---- module backward hooks ----------------------------------------------------------------
def _module_hooks(lib: Any, replace: bool) -> dict[str, Any]:
    lib.manual_seed(0)
    first, second = lib.nn.Linear(3, 4), lib.nn.Linear(4, 2)
    weights = [np.arange(12.0).reshape(4, 3) / 10 - 0.5, np.linspace(-1, 1, 4),
               np.arange(8.0).reshape(2, 4) / 7 - 0.4, np.array([0.1, -0.2])]
    with lib.no_grad():
        for param, value in zip([first.weight, first.bias, second.weight, second.bias], weights,
                                strict=True):
            param.copy_(lib.tensor(value.astype(np.float32)))
    model = lib.nn.Sequential(first, lib.nn.Tanh(), second)
    record: dict[str, Any] = {}

    def full_hook(module: Any, grad_input: Any, grad_output: Any) -> Any:
        record["grad_input"] = [None if g is None else np.array(g.numpy()) for g in grad_input]
        record["grad_output"] = [np.array(g.numpy()) for g in grad_output]
        return (grad_input[0] * 3,) if replace else None

    def pre_hook(module: Any, grad_output: Any) -> Any:
        record["pre"] = np.array(grad_output[0].numpy())
        return (grad_output[0] * 2,) if replace else None

    second.register_full_backward_hook(full_hook)
    second.register_full_backward_pre_hook(pre_hook)
    first_seen: list[Any] = []
    first.register_full_backward_hook(
        lambda m, gi, go: first_seen.append((gi[0] is None, np.array(go[0].numpy()))))
    x = lib.tensor(np.linspace(-1, 1, 6).reshape(2, 3).astype(np.float32))
    model(x).pow(2).sum().backward()
    record["first"] = first_seen[0]
    record["weight_grad"] = _grad(first.weight)
    return record


@pytest.mark.parametrize("replace", [False, True], ids=["observe", "replace"])
def test_module_full_backward_hooks_as_torch(replace: bool) -> None:
    ours, theirs = _module_hooks(gw, replace), _module_hooks(torch, replace)
    close = {"rtol": 1e-5, "atol": 1e-6}  # float32
    np.testing.assert_allclose(ours["pre"], theirs["pre"], **close)
    np.testing.assert_allclose(ours["grad_output"][0], theirs["grad_output"][0], **close)
    np.testing.assert_allclose(ours["grad_input"][0], theirs["grad_input"][0], **close)
    assert ours["first"][0] == theirs["first"][0] is True  # the data batch: None
    np.testing.assert_allclose(ours["first"][1], theirs["first"][1], **close)
    np.testing.assert_allclose(ours["weight_grad"], theirs["weight_grad"], **close)
