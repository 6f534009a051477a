"""``autograd.functional.jacobian``/``hessian`` with torch's options and nesting (issue 11,
review 3): tuple outputs and inputs, ``vectorize``, ``strategy``, ``create_graph``,
``strict``; compared with torch."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")

X = [0.5, -1.25, 2.0]
Y = [[1.5, -0.5], [0.25, 2.0]]


FUNCS = {
    "one-one": (lambda m, x: (x.exp() * x[0]), 1),
    "tuple-out": (lambda m, x: (x, x * 2, x.sum()), 1),
    "tuple-in": (lambda m, x, y: (x[:2] * y.sum(1)), 2),
    "tuple-both": (lambda m, x, y: (x.sin(), (y * x[:2]).sum(0), y.t()), 2),
    "unused-input": (lambda m, x, y: x * 3, 2),
}


def _inputs(m, count):
    x = m.tensor(X, dtype=m.float64)
    return x if count == 1 else (x, m.tensor(Y, dtype=m.float64))


@pytest.mark.parametrize("options", [{}, {"vectorize": True}, {"create_graph": True},
                                     {"vectorize": True, "strategy": "forward-mode"},
                                     {"vectorize": False, "strategy": "reverse-mode"}])
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_jacobian_matches_torch(name, options):
    fn, count = FUNCS[name]
    expected = torch.autograd.functional.jacobian(lambda *a: fn(torch, *a), _inputs(torch, count),
                                                  **options)
    actual = gw.autograd.functional.jacobian(lambda *a: fn(gw, *a), _inputs(gw, count),
                                             **options)
    assert _close(actual, expected)


def _close(actual, expected):
    # torch's forward-mode nests in lists where reverse-mode uses tuples; gradwise: tuples
    if isinstance(expected, tuple | list):
        return isinstance(actual, tuple) and len(actual) == len(expected) and all(
            _close(a, e) for a, e in zip(actual, expected, strict=True))
    assert isinstance(actual, gw.Tensor)
    np.testing.assert_allclose(np.asarray(actual.detach()), expected.detach().numpy(),
                               rtol=1e-10)
    return tuple(actual.shape) == tuple(expected.shape)


def test_jacobian_strict_refuses_an_independent_output_as_torch():
    fn, count = FUNCS["unused-input"]
    for m, module in ((torch, torch.autograd.functional), (gw, gw.autograd.functional)):
        with pytest.raises(RuntimeError, match="Output 0 of the user-provided function is "
                                               "independent of input 1"):
            module.jacobian(lambda *a, m=m: fn(m, *a), _inputs(m, count), strict=True)


@pytest.mark.parametrize("call", [
    lambda module, x: module.jacobian(lambda t: t * 2, x, strategy="forward-mode"),
    lambda module, x: module.jacobian(lambda t: t * 2, x, strategy="sideways"),
])
def test_jacobian_strategy_errors_match_torch(call):
    errors = []
    for m, module in ((torch, torch.autograd.functional), (gw, gw.autograd.functional)):
        with pytest.raises((ValueError, NotImplementedError, AssertionError)) as caught:
            call(module, m.ones(2))
        errors.append(str(caught.value)[-70:])
    assert errors[0] == errors[1]  # torch raises AssertionError for an unknown strategy


@pytest.mark.parametrize("options", [{}, {"vectorize": True},
                                     {"outer_jacobian_strategy": "forward-mode",
                                      "vectorize": True}, {"create_graph": True}])
def test_hessian_options_match_torch(options):
    def fn(m, x, y):
        return (x[:2].exp() * y.sum(0)).sum() + (y ** 2).prod()

    expected = torch.autograd.functional.hessian(lambda *a: fn(torch, *a), _inputs(torch, 2),
                                                 **options)
    actual = gw.autograd.functional.hessian(lambda *a: fn(gw, *a), _inputs(gw, 2), **options)
    assert _close(actual, expected)
