"""Regressions from a newcomer review of issue 12 (API faults, fix7b), each checked vs torch."""

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")

_DTYPES = [
    ("float32", "float64"), ("float32", "int64"), ("float64", "float32"), ("float32", "float16"),
]


@pytest.mark.parametrize(("leaf", "given"), _DTYPES)
def test_grad_setter_rejects_another_dtype_like_torch(leaf, given):
    x = gw.ones(3, dtype=getattr(gw, leaf), requires_grad=True)
    tx = torch.ones(3, dtype=getattr(torch, leaf), requires_grad=True)
    with pytest.raises(RuntimeError, match="attempting to assign a gradient with dtype"):
        tx.grad = torch.ones(3, dtype=getattr(torch, given))
    for value in (gw.ones(3, dtype=getattr(gw, given)), np.ones(3, dtype=given)):
        with pytest.raises(RuntimeError, match="attempting to assign a gradient with dtype"):
            x.grad = value
        assert x.grad is None  # nothing half-assigned


def test_grad_setter_list_takes_tensor_dtype_and_backward_keeps_it():
    x = gw.ones(3, requires_grad=True)
    x.grad = [1, 2, 3]
    assert x.grad.dtype == gw.float32
    (x * 2).sum().backward()
    assert x.grad.dtype == gw.float32
    np.testing.assert_array_equal(np.asarray(x.grad), [3.0, 4.0, 5.0])


@pytest.mark.parametrize("shape", [(4,), (2, 3), ()])
@pytest.mark.parametrize(("size", "step"), [(5, 1), (2, 0), (-1, 1), (2, -1), (7, 0), (1, 1)])
def test_unfold_argument_errors_match_torch(shape, size, step):
    data = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    try:
        want = torch.from_numpy(data).unfold(0, size, step)
    except RuntimeError as err:
        message = str(err)
        with pytest.raises(RuntimeError) as caught:
            gw.tensor(data).unfold(0, size, step)
        assert message in str(caught.value)
    else:
        np.testing.assert_array_equal(np.asarray(gw.tensor(data).unfold(0, size, step)),
                                      want.numpy())


def _ported_function(lib):
    """A torch Function using save_for_backward, written once for both libraries."""

    class Mul(lib.autograd.Function):
        tensor_args = None  # gradwise: every positional argument is an input (docs/PORTING.md)

        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x * y

        @staticmethod
        def backward(ctx, grad):
            x, y = ctx.saved_tensors
            return grad * y, grad * x

    return Mul


def test_function_save_for_backward_and_saved_tensors_like_torch():
    a, b = np.array([1.0, -2.0, 3.0]), np.array([0.5, 4.0, -1.0])
    grads = {}
    for lib in (gw, torch):
        x = lib.tensor(a, requires_grad=True)
        y = lib.tensor(b, requires_grad=True)
        out = _ported_function(lib).apply(x, y)
        (out * out).sum().backward()
        grads[lib.__name__] = (np.asarray(x.grad), np.asarray(y.grad), np.asarray(out.detach()))
    for mine, want in zip(grads["gradwise"], grads["torch"], strict=True):
        np.testing.assert_allclose(mine, want)


def test_function_saved_tensors_empty_when_nothing_saved():
    assert gw.autograd.Function.__new__(gw.autograd.Function).saved_tensors == ()


_TUPLE_FNS = {
    "two": lambda t: (t.sin(), t**3),
    "list": lambda t: [t * 2, (t * t).sum()],
    "one_constant": lambda t: (t.exp(), t.detach() * 2),
    "two_inputs": lambda a, b: ((a * b).exp(), a - b),
}


@pytest.mark.parametrize("name", list(_TUPLE_FNS))
@pytest.mark.parametrize("check", ["gradcheck", "gradgradcheck"])
def test_gradchecks_accept_tuple_outputs_like_torch(name, check):
    fn = _TUPLE_FNS[name]
    arity = fn.__code__.co_argcount
    data = [np.linspace(-1.0, 1.0, 3) + k for k in range(arity)]
    for lib in (torch, gw):
        xs = tuple(lib.tensor(d, dtype=lib.float64, requires_grad=True) for d in data)
        assert getattr(lib.autograd, check)(fn, xs) is True


class _WrongSquare(gw.autograd.Function):
    """x**2 with a wrong backward (3x instead of 2x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return (grad * 3 * x,)


def test_gradcheck_names_the_wrong_output_of_a_tuple():
    x = gw.tensor([0.5, -1.0, 2.0], dtype=gw.float64, requires_grad=True)
    with pytest.raises(gw.autograd.GradcheckError, match="output 1, input 0"):
        gw.autograd.gradcheck(lambda t: (t.sin(), _WrongSquare.apply(t)), (x,))


def test_gradcheck_float32_warns_and_raises_gradcheck_error_like_torch():
    data = np.array([0.3, -1.2, 2.5], dtype=np.float32)
    for lib in (torch, gw):
        x = lib.tensor(data, requires_grad=True)
        with pytest.warns(UserWarning), pytest.raises(RuntimeError) as caught:
            lib.autograd.gradcheck(lambda t: t.sin(), (x,))
        assert type(caught.value).__name__ == "GradcheckError"


def test_gradcheck_non_tensor_output_is_a_type_error():
    x = gw.tensor([1.0, 2.0], dtype=gw.float64, requires_grad=True)
    with pytest.raises(TypeError, match="output 1, expected a Tensor"):
        gw.autograd.gradcheck(lambda t: (t.sin(), 3), (x,))


def _functional_cases(lib):
    F = lib.autograd.functional
    x = lib.tensor([1.0, 2.0], dtype=lib.float64)
    s = lib.tensor([3.0], dtype=lib.float64)
    one = lib.ones(2, dtype=lib.float64)
    return {
        "hvp_no_v_one_element": lambda: F.hvp(lambda a: (a**3).sum(), s),
        "hvp_no_v_two_elements": lambda: F.hvp(lambda a: (a**3).sum(), x),
        "vhp_no_v_one_element": lambda: F.vhp(lambda a: (a**3).sum(), s),
        "vhp_no_v_two_elements": lambda: F.vhp(lambda a: (a**3).sum(), x),
        "vjp_list_v": lambda: F.vjp(lambda a: a * 2, x, [one]),
        "vjp_list_inputs": lambda: F.vjp(lambda a: a * 2, [x], one),
        "jvp_list_v": lambda: F.jvp(lambda a: a * 2, x, [one]),
        "jacobian_list": lambda: F.jacobian(lambda a: a * 2, [x]),
        "hessian_list": lambda: F.hessian(lambda a: (a**3).sum(), [x]),
        "hvp_list_v": lambda: F.hvp(lambda a: (a**3).sum(), (x,), [one]),
        "vjp_strict_ok": lambda: F.vjp(lambda a: a * a, x, one, strict=True),
        "vjp_strict_detached": lambda: F.vjp(lambda a: a.detach() * 2, x, one, strict=True),
        "vjp_strict_constant": lambda: F.vjp(lambda a: lib.ones(2), x, one, strict=True),
        "vjp_strict_unused_input": lambda: F.vjp(lambda a, b: a * 2, (x, x * 1), one,
                                                 strict=True),
        "vjp_strict_linear_create_graph": lambda: F.vjp(lambda a: a * 2, x, one, strict=True,
                                                        create_graph=True),
        "jvp_strict_ok": lambda: F.jvp(lambda a: a * a, x, one, strict=True),
        "jvp_strict_detached": lambda: F.jvp(lambda a: a.detach() * 2, x, one, strict=True),
        "jvp_strict_unused_input": lambda: F.jvp(lambda a, b: a * 2, (x, x * 1), (one, one),
                                                 strict=True),
        "hvp_strict_ok": lambda: F.hvp(lambda a: (a**3).sum(), x, one, strict=True),
        "hvp_strict_linear": lambda: F.hvp(lambda a: (a * 2).sum(), x, one, strict=True),
        "hvp_strict_detached": lambda: F.hvp(lambda a: (a.detach()**2).sum(), x, one,
                                             strict=True),
        "vhp_strict_ok": lambda: F.vhp(lambda a: (a**3).sum(), x, one, strict=True),
        "vhp_strict_linear": lambda: F.vhp(lambda a: (a * 2).sum(), x, one, strict=True),
        "hvp_strict_one_linear_input": lambda: F.hvp(
            lambda a, b: (a**3).sum() + (b * 2).sum(), (x, x * 1), (one, one), strict=True),
    }


def _flat(result):
    if isinstance(result, tuple | list):
        return [v for r in result for v in _flat(r)]
    return [np.asarray(result.detach())]


@pytest.mark.parametrize("name", list(_functional_cases(torch)))
def test_autograd_functional_v_none_strict_and_lists_like_torch(name):
    try:
        want = _functional_cases(torch)[name]()
    except (RuntimeError, TypeError) as err:
        with pytest.raises(type(err)) as caught:
            _functional_cases(gw)[name]()
        assert str(err).split(".")[0] in str(caught.value)
    else:
        got = _functional_cases(gw)[name]()
        for mine, theirs in zip(_flat(got), _flat(want), strict=True):
            np.testing.assert_allclose(mine, theirs)
