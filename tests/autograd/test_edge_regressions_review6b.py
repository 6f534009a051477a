"""The fourth newcomer review's engine reports (issue 12, edges-fix6b), each compared with torch
2.13 on the reported case and a small grid of its family: gradcheck/gradgradcheck on non-leaf
inputs and existing ``.grad``; functional vjp/jvp/vhp/hvp with tuple outputs; create_graph
gradients of pooling, padding, upsampling and fold that require grad where torch's do; the
exception types of the autograd API's argument errors and of anomaly detection."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")


def _input(lib, kind):
    """A float64 input of ``kind`` built the same way in torch and gradwise; returns it and the
    leaf behind it (whose .grad must survive)."""
    values = [0.3, -0.7, 1.1]
    if kind == "float32 leaf .double()":
        leaf = lib.tensor(values, requires_grad=True)
        return leaf.double(), leaf
    leaf = lib.tensor(values, dtype=lib.float64, requires_grad=True)
    if kind == "leaf":
        return leaf, leaf
    if kind == "leaf with .grad":
        (leaf * 5).sum().backward()
        return leaf, leaf
    if kind == "non-leaf a * 1":
        return leaf * 1, leaf
    if kind == "non-leaf with leaf .grad":
        (leaf * 5).sum().backward()
        return leaf * 2, leaf
    assert kind == "detached leaf"
    return leaf.detach().requires_grad_(), leaf


KINDS = ["leaf", "leaf with .grad", "non-leaf a * 1", "non-leaf with leaf .grad",
         "float32 leaf .double()", "detached leaf"]


@pytest.mark.parametrize("check", ["gradcheck", "gradgradcheck"])
@pytest.mark.parametrize("kind", KINDS)
def test_gradchecks_accept_non_leaf_inputs_and_leave_grad_and_graph_alone(check, kind):
    results = {}
    for lib in (torch, gw):
        x, leaf = _input(lib, kind)
        before = None if leaf.grad is None else np.asarray(leaf.grad).copy()
        ok = getattr(lib.autograd, check)(lambda t: t.sin() * t, (x,))
        after = None if leaf.grad is None else np.asarray(leaf.grad).copy()
        assert ok is True
        if before is None:
            assert after is None, f"{lib.__name__}: {check} wrote .grad"
        else:
            np.testing.assert_array_equal(after, before)
        # the caller's graph behind a non-leaf input is still usable afterwards
        if x is not leaf and x.grad_fn is not None:
            (x * x).sum().backward()
            results[lib.__name__] = np.asarray(leaf.grad, dtype=np.float64)
    if results:
        np.testing.assert_allclose(results["gradwise"], results["torch"], rtol=1e-6)


def _flat(value):
    """A (nested) tuple of tensors as a flat list of arrays, with the nesting as a string."""
    if isinstance(value, tuple):
        items = [_flat(v) for v in value]
        return [a for arrays, _ in items for a in arrays], "(" + ",".join(n for _, n in items) + ")"
    return [np.asarray(value.detach() if hasattr(value, "detach") else value)], "T"


def _functional_case(lib, name, out_kind, in_kind, dtype):
    d = getattr(lib, dtype)
    a = lib.tensor([0.3, -0.7, 1.2], dtype=d)
    b = lib.tensor([0.5, 2.0, -1.0], dtype=d)
    xs = a if in_kind == "single" else (a, b)

    def f(*t):
        s = t[0].sin() * t[-1]
        if out_kind == "tensor":
            return s.sum() if name in ("hvp", "vhp") else s
        if out_kind == "tuple of 2":
            return s, (t[0] * t[-1]).exp().sum()
        if out_kind == "tuple of 1":
            return (s.sum(),)
        return [s, t[0] ** 2]  # a list: torch refuses it (TypeError)

    if name == "vjp":
        v = {"tensor": lib.ones(3, dtype=d) * 2,
             "tuple of 2": (lib.ones(3, dtype=d), lib.tensor(3.0, dtype=d)),
             "tuple of 1": (lib.tensor(2.0, dtype=d),),
             "list": (lib.ones(3, dtype=d), lib.ones(3, dtype=d))}[out_kind]
    else:
        v = (lib.tensor([1.0, 2.0, -1.0], dtype=d) if in_kind == "single" else
             (lib.tensor([1.0, 2.0, -1.0], dtype=d), lib.tensor([0.5, 0.1, -2.0], dtype=d)))
    try:
        return "ok", getattr(lib.autograd.functional, name)(f, xs, v)
    except Exception as error:  # noqa: BLE001 - the exception type is what is compared
        return "raises", type(error)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("in_kind", ["single", "tuple"])
@pytest.mark.parametrize("out_kind", ["tensor", "tuple of 2", "tuple of 1", "list"])
@pytest.mark.parametrize("name", ["vjp", "jvp", "hvp", "vhp"])
def test_functional_products_take_tuple_outputs_as_torch(name, out_kind, in_kind, dtype):
    expected = _functional_case(torch, name, out_kind, in_kind, dtype)
    got = _functional_case(gw, name, out_kind, in_kind, dtype)
    assert got[0] == expected[0], (expected, got)
    if expected[0] == "raises":
        assert got[1].__name__ == expected[1].__name__
        return
    for e_part, g_part in zip(expected[1], got[1], strict=True):
        e_arrays, e_nesting = _flat(e_part)
        g_arrays, g_nesting = _flat(g_part)
        assert g_nesting == e_nesting
        for e, g in zip(e_arrays, g_arrays, strict=True):
            assert g.shape == e.shape and g.dtype == e.dtype
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("how", ["backward", "grad", "grad create_graph"])
@pytest.mark.parametrize("case", ["x / x at 0", "sqrt(x - 2)"])
def test_anomaly_errors_are_runtime_errors_as_torch(case, how):
    """torch's anomaly mode raises RuntimeError; ``except RuntimeError`` must catch ours too."""
    for lib in (torch, gw):
        x = lib.tensor([0.0, 1.0], dtype=lib.float64, requires_grad=True)
        with pytest.raises(RuntimeError) as info, lib.autograd.detect_anomaly():
            y = ((x / x) if case == "x / x at 0" else (x - 2).sqrt()).sum()
            if how == "backward":
                y.backward()
            else:
                lib.autograd.grad(y, x, create_graph=how == "grad create_graph")
        if lib is gw:
            assert isinstance(info.value, gw.AnomalyError)
            assert isinstance(info.value, FloatingPointError)


def test_forward_anomaly_check_raises_a_runtime_error():
    x = gw.tensor([0.0, 1.0], dtype=gw.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="Log"), gw.detect_anomaly(check_forward=True):
        (x - 2).log()


def _x(lib, requires_grad=True):
    return lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=requires_grad)


# the autograd API's argument errors, each raised with torch's exception type
ARGUMENT_ERRORS = {
    "grad: grad_outputs of another shape":
        lambda L: L.autograd.grad(_x(L) * 2, _x(L), L.ones(3, dtype=L.float64)),
    "Tensor.backward: gradient of another shape":
        lambda L: (_x(L) * 2).backward(L.ones(3, dtype=L.float64)),
    "autograd.backward: grad_tensors of another shape":
        lambda L: L.autograd.backward([_x(L) * 2], [L.ones(3, dtype=L.float64)]),
    "assigning a .grad of another shape":
        lambda L: setattr(_x(L), "grad", L.ones(3, dtype=L.float64)),
    "tensor(int, requires_grad=True)": lambda L: L.tensor([1, 2], requires_grad=True),
    "tensor(bool, requires_grad=True)": lambda L: L.tensor([True], requires_grad=True),
    "int requires_grad_()": lambda L: L.tensor([1, 2]).requires_grad_(),
    "zeros(int64, requires_grad=True)": lambda L: L.zeros(2, dtype=L.int64, requires_grad=True),
    "ones(int32, requires_grad=True)": lambda L: L.ones(2, dtype=L.int32, requires_grad=True),
    "arange(int, requires_grad=True)": lambda L: L.arange(3, requires_grad=True),
    "full(int, requires_grad=True)": lambda L: L.full((2,), 3, requires_grad=True),
    "randint(requires_grad=True)": lambda L: L.randint(0, 3, (2,), requires_grad=True),
    "zeros_like(int, requires_grad=True)":
        lambda L: L.zeros_like(L.tensor([1, 2]), requires_grad=True),
    "assigning requires_grad = True on an int tensor":
        lambda L: setattr(L.tensor([1, 2]), "requires_grad", True),
    "assigning requires_grad = False on a non-leaf":
        lambda L: setattr(_x(L) * 2, "requires_grad", False),
    "requires_grad_(False) on a non-leaf": lambda L: (_x(L) * 2).requires_grad_(False),
    "grad wrt an input that does not require grad":
        lambda L: L.autograd.grad((_x(L) * 2).sum(), _x(L, False)),
    "grad wrt an unused input": lambda L: L.autograd.grad((_x(L) * 2).sum(), _x(L)),
    "grad of an output without grad": lambda L: L.autograd.grad(_x(L, False).sum(), _x(L)),
    "grad of a non-scalar without grad_outputs": lambda L: L.autograd.grad(_x(L) * 2, _x(L)),
    "grad with empty inputs": lambda L: L.autograd.grad((_x(L) * 2).sum(), []),
    "grad with a float among the inputs": lambda L: L.autograd.grad((_x(L) * 2).sum(), [3.0]),
    "backward with a float among the inputs":
        lambda L: (_x(L) * 2).sum().backward(inputs=[3.0]),
    "jacobian: func returns a list":
        lambda L: L.autograd.functional.jacobian(lambda t: [t * 2], _x(L, False)),
    "backward with empty inputs": lambda L: (_x(L) * 2).sum().backward(inputs=[]),
    "backward of an int tensor": lambda L: L.tensor([1, 2]).sum().backward(),
    "retain_grad without grad": lambda L: _x(L, False).retain_grad(),
    "register_hook without grad": lambda L: _x(L, False).register_hook(lambda g: g),
    "vjp: v of another shape": lambda L: L.autograd.functional.vjp(
        lambda t: t * 2, _x(L, False), L.ones(3, dtype=L.float64)),
    "vjp: v None for a non-scalar":
        lambda L: L.autograd.functional.vjp(lambda t: t * 2, _x(L, False)),
    "vjp: func returns a float":
        lambda L: L.autograd.functional.vjp(lambda t: 3.0, _x(L, False), None),
    "jvp: v of another shape": lambda L: L.autograd.functional.jvp(
        lambda t: t * 2, _x(L, False), L.ones(3, dtype=L.float64)),
    "jvp: v None for a non-scalar input":
        lambda L: L.autograd.functional.jvp(lambda t: t * 2, _x(L, False)),
    "jvp: v of another length": lambda L: L.autograd.functional.jvp(
        lambda t: t * 2, _x(L, False), (L.ones(2, dtype=L.float64),) * 2),
    "hvp: v of another shape": lambda L: L.autograd.functional.hvp(
        lambda t: (t * t).sum(), _x(L, False), L.ones(3, dtype=L.float64)),
    "hvp: non-scalar func": lambda L: L.autograd.functional.hvp(
        lambda t: t * t, _x(L, False), L.ones(2, dtype=L.float64)),
    "hessian: non-scalar func": lambda L: L.autograd.functional.hessian(
        lambda t: t * t, _x(L, False)),
    "hessian: func returns a tuple": lambda L: L.autograd.functional.hessian(
        lambda t: ((t * t).sum(),), _x(L, False)),
    "jacobian: func returns a float":
        lambda L: L.autograd.functional.jacobian(lambda t: 3.0, _x(L, False)),
}


@pytest.mark.parametrize("case", list(ARGUMENT_ERRORS))
def test_autograd_argument_errors_raise_torchs_exception_type(case):
    raised = {}
    for lib in (torch, gw):
        with pytest.raises(Exception) as info:  # noqa: PT011 - the type is compared below
            ARGUMENT_ERRORS[case](lib)
        raised[lib.__name__] = type(info.value)
    # torch's exception type, or a subclass of it (gw.AnomalyError is a RuntimeError too)
    assert issubclass(raised["gradwise"], raised["torch"]), raised


# ---- create_graph gradients of pooling, padding, upsampling and fold require grad where
# torch's do (torch's rule: where the backward node read a tensor that requires grad) ----
def _nn_cases(L):
    F = L.nn.functional
    nn = L.nn
    return {
        # (input shape, fn)
        "avg_pool1d": ((1, 2, 6), lambda x: F.avg_pool1d(x, 2)),
        "avg_pool1d count_include_pad=False":
            ((1, 2, 6), lambda x: F.avg_pool1d(x, 2, padding=1, count_include_pad=False)),
        "avg_pool1d ceil_mode": ((1, 2, 7), lambda x: F.avg_pool1d(x, 2, ceil_mode=True)),
        "avg_pool2d": ((1, 2, 4, 4), lambda x: F.avg_pool2d(x, 2)),
        "avg_pool2d padding": ((1, 2, 4, 4), lambda x: F.avg_pool2d(x, 2, padding=1)),
        "avg_pool2d count_include_pad=False":
            ((1, 2, 4, 4), lambda x: F.avg_pool2d(x, 2, padding=1, count_include_pad=False)),
        "avg_pool2d divisor_override":
            ((1, 2, 4, 4), lambda x: F.avg_pool2d(x, 2, divisor_override=3)),
        "avg_pool3d": ((1, 1, 2, 4, 4), lambda x: F.avg_pool3d(x, 2)),
        "adaptive_avg_pool1d": ((1, 2, 7), lambda x: F.adaptive_avg_pool1d(x, 3)),
        "adaptive_avg_pool2d": ((1, 2, 5, 5), lambda x: F.adaptive_avg_pool2d(x, (2, 3))),
        "adaptive_avg_pool1d to 1": ((1, 2, 7), lambda x: F.adaptive_avg_pool1d(x, 1)),
        "adaptive_avg_pool2d to 1": ((1, 2, 3, 5), lambda x: F.adaptive_avg_pool2d(x, 1)),
        "adaptive_avg_pool2d to (1, 2)": ((1, 2, 3, 4),
                                          lambda x: F.adaptive_avg_pool2d(x, (1, 2))),
        "adaptive_avg_pool3d to 1": ((1, 1, 2, 3, 3), lambda x: F.adaptive_avg_pool3d(x, 1)),
        "adaptive_max_pool2d to 1": ((1, 2, 3, 3), lambda x: F.adaptive_max_pool2d(x, 1)),
        "adaptive_avg_pool3d": ((1, 1, 3, 4, 4), lambda x: F.adaptive_avg_pool3d(x, 2)),
        "max_pool1d": ((1, 2, 6), lambda x: F.max_pool1d(x, 2)),
        "max_pool2d": ((1, 2, 4, 4), lambda x: F.max_pool2d(x, 2)),
        "max_pool2d padding ceil": ((1, 2, 5, 5),
                                    lambda x: F.max_pool2d(x, 2, padding=1, ceil_mode=True)),
        "max_pool3d": ((1, 1, 2, 4, 4), lambda x: F.max_pool3d(x, 2)),
        "adaptive_max_pool1d": ((1, 2, 7), lambda x: F.adaptive_max_pool1d(x, 3)),
        "adaptive_max_pool2d": ((1, 2, 5, 5), lambda x: F.adaptive_max_pool2d(x, 2)),
        "lp_pool2d": ((1, 2, 4, 4), lambda x: F.lp_pool2d(x, 2, 2)),
        "pad constant": ((1, 2, 4), lambda x: F.pad(x, (1, 2))),
        "pad reflect": ((1, 2, 4), lambda x: F.pad(x, (2, 2), mode="reflect")),
        "pad replicate": ((1, 2, 4), lambda x: F.pad(x, (2, 1), mode="replicate")),
        "pad circular": ((1, 2, 4), lambda x: F.pad(x, (2, 1), mode="circular")),
        "pad reflect 2d": ((1, 1, 3, 4), lambda x: F.pad(x, (1, 1, 2, 1), mode="reflect")),
        "pad replicate 2d": ((1, 1, 3, 4), lambda x: F.pad(x, (1, 1, 2, 1), mode="replicate")),
        "interpolate nearest": ((1, 2, 4), lambda x: F.interpolate(x, scale_factor=2)),
        "interpolate linear": ((1, 2, 4), lambda x: F.interpolate(x, scale_factor=2,
                                                                  mode="linear")),
        "interpolate bilinear": ((1, 1, 3, 3), lambda x: F.interpolate(
            x, size=(5, 4), mode="bilinear", align_corners=True)),
        "unfold": ((1, 2, 4, 4), lambda x: F.unfold(x, (2, 2))),
        "fold": ((1, 4, 9), lambda x: F.fold(x, (4, 4), (2, 2))),
        "pixel_shuffle": ((1, 4, 2, 2), lambda x: F.pixel_shuffle(x, 2)),
        "pixel_unshuffle": ((1, 1, 4, 4), lambda x: F.pixel_unshuffle(x, 2)),
        "lp_pool1d": ((1, 2, 6), lambda x: F.lp_pool1d(x, 2, 2)),
        "lp_pool1d p=1": ((1, 2, 6), lambda x: F.lp_pool1d(x, 1, 2)),
        "max_unpool1d": ((1, 2, 6), lambda x: F.max_unpool1d(
            *F.max_pool1d(x, 2, return_indices=True), 2)),
        "max_unpool2d": ((1, 1, 4, 4), lambda x: F.max_unpool2d(
            *F.max_pool2d(x, 2, return_indices=True), 2)),
        "max_pool2d dilation": ((1, 1, 5, 5), lambda x: F.max_pool2d(x, 2, dilation=2)),
        "adaptive_max_pool3d": ((1, 1, 3, 4, 4), lambda x: F.adaptive_max_pool3d(x, 2)),
        "pad reflect 3d": ((1, 1, 3, 3, 3), lambda x: F.pad(x, (1, 1) * 3, mode="reflect")),
        "pad replicate 3d": ((1, 1, 2, 3, 3), lambda x: F.pad(x, (1, 1) * 3, mode="replicate")),
        "pad reflect of a 2-d input": ((2, 4), lambda x: F.pad(x, (2, 1), mode="reflect")),
        "interpolate linear align_corners": ((1, 2, 4), lambda x: F.interpolate(
            x, size=7, mode="linear", align_corners=True)),
        "channel_shuffle": ((1, 4, 2, 2), lambda x: F.channel_shuffle(x, 2)),
        "local_response_norm": ((1, 4, 3, 3), lambda x: F.local_response_norm(x, 2)),
        "AdaptiveAvgPool2d layer": ((1, 2, 5, 5), nn.AdaptiveAvgPool2d(1)),
        "AvgPool1d layer": ((1, 2, 6), nn.AvgPool1d(2, padding=1, count_include_pad=False)),
        "ReflectionPad2d layer": ((1, 1, 3, 3), nn.ReflectionPad2d(1)),
        "ReplicationPad1d layer": ((1, 2, 4), nn.ReplicationPad1d(2)),
        "Upsample layer": ((1, 1, 3, 3), nn.Upsample(scale_factor=2, mode="bilinear")),
    }


NN_STRUCTURE_CASES = list(_nn_cases(gw))


def _nn_structure(lib, name, dtype):
    shape, fn = _nn_cases(lib)[name]
    if isinstance(fn, (torch.nn.Module, gw.nn.Module)):
        fn = fn.to(getattr(lib, dtype))
    values = np.random.default_rng(7).permutation(int(np.prod(shape))).reshape(shape) / 5 - 1
    x = lib.tensor(values, dtype=getattr(lib, dtype), requires_grad=True)
    y = fn(x)
    w = lib.tensor(np.linspace(0.5, 1.5, int(np.prod(tuple(y.shape)))).reshape(tuple(y.shape)),
                   dtype=getattr(lib, dtype))
    (g,) = lib.autograd.grad(y, x, w, create_graph=True)
    if not g.requires_grad:
        return False, None, np.asarray(g.detach())
    (second,) = lib.autograd.grad((g * g).sum(), x, allow_unused=True)
    if second is not None:
        second = np.asarray(second.detach())
        second = np.broadcast_to(second, tuple(x.shape))  # torch may answer a ZeroTensor
    return True, second, np.asarray(g.detach())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NN_STRUCTURE_CASES)
def test_nn_create_graph_gradients_require_grad_where_torchs_do(name, dtype):
    expected = _nn_structure(torch, name, dtype)
    got = _nn_structure(gw, name, dtype)
    tol = {"float32": 1e-5, "float64": 1e-10}[dtype]
    assert got[2].dtype == expected[2].dtype
    np.testing.assert_allclose(got[2], expected[2], rtol=tol, atol=tol)
    assert got[0] == expected[0], f"{name}: requires_grad {got[0]}, torch {expected[0]}"
    assert (got[1] is None) == (expected[1] is None), (got[1], expected[1])
    if expected[1] is not None:
        np.testing.assert_allclose(got[1], expected[1], rtol=tol, atol=tol)


LAYER_STACKS = {
    "Conv2d -> AdaptiveAvgPool2d((3, 2))": (
        lambda nn: nn.Sequential(nn.Conv2d(2, 2, 1), nn.AdaptiveAvgPool2d((3, 2))), (2, 2, 7, 5)),
    "Conv2d -> Tanh -> AdaptiveMaxPool2d((3, 2))": (
        lambda nn: nn.Sequential(nn.Conv2d(2, 2, 1), nn.Tanh(), nn.AdaptiveMaxPool2d((3, 2))),
        (2, 2, 7, 5)),
    "Conv1d -> AvgPool1d(count_include_pad=False)": (
        lambda nn: nn.Sequential(nn.Conv1d(2, 2, 1), nn.AvgPool1d(3, 2, padding=1,
                                                                  count_include_pad=False)),
        (2, 2, 7)),
    "Conv2d(padding_mode='reflect')": (
        lambda nn: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), (1, 2, 5, 5)),
}


@pytest.mark.parametrize("name", list(LAYER_STACKS))
def test_layer_second_derivatives_are_zeros_not_none_as_torch(name):
    """A gradient penalty through pooling/padding layers: each parameter's second derivative is
    torch's (zeros where torch gives zeros, not None)."""
    make, shape = LAYER_STACKS[name]
    torch.manual_seed(0)
    t_model = make(torch.nn).double()
    g_model = make(gw.nn).to(gw.float64)
    g_model.load_state_dict({k: gw.tensor(v.detach().numpy().copy())
                             for k, v in t_model.state_dict().items()})
    values = np.random.default_rng(1).standard_normal(shape)
    results = []
    for lib, model in ((torch, t_model), (gw, g_model)):
        x = lib.tensor(values.copy(), requires_grad=True)
        y = model(x)
        w = lib.tensor(np.cos(np.arange(int(np.prod(tuple(y.shape))))).reshape(tuple(y.shape)))
        params = [p for _, p in model.named_parameters()]
        firsts = lib.autograd.grad((y * w).sum(), [x, *params], create_graph=True)
        penalty = sum((g ** 2).sum() for g in firsts)
        seconds = lib.autograd.grad(penalty, [x, *params], allow_unused=True)
        results.append([None if s is None else np.asarray(s.detach()) for s in seconds])
    for expected, got in zip(*results, strict=True):
        assert (got is None) == (expected is None), (got, expected)
        if expected is not None:
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
