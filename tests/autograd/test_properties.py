"""Property-based checks: random shapes and broadcast pairs through gradcheck."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradwise as gw

SETTINGS = settings(max_examples=25, deadline=None)


def _tensor(shape, seed, positive=False):
    rng = np.random.default_rng(seed)
    data = rng.uniform(0.5, 2.0, shape) if positive else rng.standard_normal(shape)
    return gw.tensor(data, requires_grad=True)


@SETTINGS
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    op=st.sampled_from(["add", "sub", "mul", "div", "maximum"]),
    seed=st.integers(0, 1000),
)
def test_broadcasting_binary_ops(shapes, op, seed):
    a = _tensor(shapes.input_shapes[0], seed, positive=True)
    b = _tensor(shapes.input_shapes[1], seed + 1, positive=True)
    fns = {
        "add": lambda x, y: x + y,
        "sub": lambda x, y: x - y,
        "mul": lambda x, y: x * y,
        "div": lambda x, y: x / y,
        "maximum": gw.maximum,
    }
    out = fns[op](a, b)
    assert out.shape == shapes.result_shape
    assert gw.gradcheck(fns[op], a, b)


@SETTINGS
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
    data=st.data(),
    op=st.sampled_from(["sum", "mean", "amax", "logsumexp", "var"]),
)
def test_reductions_over_random_axes(shape, data, op):
    axes = data.draw(st.lists(st.integers(0, len(shape) - 1), unique=True, max_size=len(shape)))
    axis = tuple(axes) if axes else None
    keepdims = data.draw(st.booleans())
    x = _tensor(shape, data.draw(st.integers(0, 1000)))
    extra = {"ddof": 0} if op == "var" else {}  # NumPy's var is the population variance
    fn = lambda t: getattr(t, op)(axis=axis, keepdims=keepdims, **extra)  # noqa: E731
    values = x.numpy()
    expected = getattr(np, op if op != "logsumexp" else "sum")(
        values if op != "logsumexp" else np.exp(values), axis=axis, keepdims=keepdims
    )
    if op == "logsumexp":
        expected = np.log(expected)
    np.testing.assert_allclose(fn(x).data, expected, rtol=1e-10)
    assert gw.gradcheck(fn, x)


@SETTINGS
@given(
    a_shape=st.sampled_from([(3,), (2, 3), (4, 2, 3), (1, 2, 3)]),
    b_shape=st.sampled_from([(3,), (3, 2), (4, 3, 2), (2, 1, 3, 2)]),
    seed=st.integers(0, 1000),
)
def test_matmul_shapes(a_shape, b_shape, seed):
    a, b = _tensor(a_shape, seed), _tensor(b_shape, seed + 1)
    np.testing.assert_allclose((a @ b).data, a.data @ b.data)
    assert gw.gradcheck(lambda x, y: x @ y, a, b)
