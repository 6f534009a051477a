"""Optimizers: trajectories against PyTorch, checkpoints, argument checks, zero_grad."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import gradwise as gw
from gradwise.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, join_state, split_state

SHAPES = [(5, 3), (5,), (2, 5), (2,)]  # a 3-5-2 tanh network
STEPS = 50


def _problem(seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(shape) * 0.5 for shape in SHAPES]
    x = rng.standard_normal((16, 3))
    y = rng.standard_normal((16, 2))
    return params, x, y


def _grads(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Gradients of mean((tanh(x W1^T + b1) W2^T + b2 - y)^2) by hand, in float64."""
    w1, b1, w2, b2 = params
    hidden = np.tanh(x @ w1.T + b1)  # (N, 5)
    d_out = 2 * (hidden @ w2.T + b2 - y) / y.size  # (N, 2)
    d_pre = (d_out @ w2) * (1 - hidden**2)  # (N, 5)
    return [d_pre.T @ x, d_pre.sum(0), d_out.T @ hidden, d_out.sum(0)]


def _groups(params: list[Any], group_options: list[dict[str, Any]] | None) -> list[Any]:
    """All parameters in one group, or layer 1 and layer 2 as two groups with their options."""
    if group_options is None:
        return list(params)
    return [{"params": params[:2], **group_options[0]},
            {"params": params[2:], **group_options[1]}]


def _gw_trajectory(name: str, options: dict[str, Any], group_options: Any, steps: int,
                   seed: int = 0) -> list[list[np.ndarray]]:
    start, x, y = _problem(seed)
    params = [gw.Tensor(p.copy(), requires_grad=True) for p in start]
    opt = getattr(gw.optim, name)(_groups(params, group_options), **options)
    history = []
    for _ in range(steps):
        for param, grad in zip(params, _grads([p.data for p in params], x, y), strict=True):
            param.grad = grad
        opt.step()
        history.append([p.numpy().copy() for p in params])
    return history


def _torch_trajectory(name: str, options: dict[str, Any], group_options: Any,
                      steps: int) -> list[list[np.ndarray]]:
    torch = pytest.importorskip("torch")
    start, x, y = _problem()
    params = [torch.tensor(p.copy(), requires_grad=True) for p in start]
    opt = getattr(torch.optim, name)(_groups(params, group_options), **options)
    history = []
    for _ in range(steps):
        current = [p.detach().numpy() for p in params]
        for param, grad in zip(params, _grads(current, x, y), strict=True):
            param.grad = torch.from_numpy(grad)
        opt.step()
        history.append([p.detach().numpy().copy() for p in params])
    return history


CASES = [
    ("SGD", {"lr": 0.1}, None),
    ("SGD", {"lr": 0.05, "momentum": 0.9}, None),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}, None),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}, None),
    ("SGD", {"lr": 0.01, "momentum": 0.5, "maximize": True}, None),
    ("SGD", {"lr": 0.05, "momentum": 0.9}, [{}, {"lr": 0.2, "momentum": 0.5}]),
    ("Adam", {"lr": 0.01}, None),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}, None),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "maximize": True}, None),
    ("Adam", {"lr": 0.01}, [{"lr": 0.03, "amsgrad": True}, {"weight_decay": 0.05}]),
    ("AdamW", {"lr": 0.01}, None),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True, "maximize": True}, None),
    ("RMSprop", {"lr": 0.01}, None),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.01}, None),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "centered": True, "momentum": 0.5}, None),
    ("RMSprop", {"lr": 0.01, "maximize": True}, [{"centered": True}, {"lr": 0.001}]),
    ("Adagrad", {"lr": 0.1}, None),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01,
                 "initial_accumulator_value": 0.5}, None),
    ("Adagrad", {"lr": 0.1, "maximize": True}, [{}, {"lr": 0.3, "eps": 1e-6}]),
    # issue 11: Adam's relatives
    ("Adamax", {"lr": 0.01}, None),
    ("Adamax", {"lr": 0.02, "betas": (0.8, 0.99), "weight_decay": 0.1, "maximize": True}, None),
    ("Adamax", {"lr": 0.01}, [{"eps": 1e-4}, {"lr": 0.05}]),
    ("NAdam", {"lr": 0.01}, None),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "momentum_decay": 0.01}, None),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.2, "decoupled_weight_decay": True,
               "maximize": True}, None),
    ("NAdam", {"lr": 0.01}, [{"betas": (0.85, 0.99)}, {"lr": 0.03}]),
    ("RAdam", {"lr": 0.01}, None),
    ("RAdam", {"lr": 0.01, "weight_decay": 0.1, "betas": (0.9, 0.9)}, None),
    ("RAdam", {"lr": 0.01, "weight_decay": 0.2, "decoupled_weight_decay": True,
               "maximize": True}, None),
    # issue 11 part B: Rprop and ASGD
    ("Rprop", {"lr": 0.01}, None),
    ("Rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2), "maximize": True},
     None),
    ("Rprop", {"lr": 0.01}, [{"etas": (0.6, 1.1)}, {"lr": 0.002}]),
    ("ASGD", {"lr": 0.05}, None),
    ("ASGD", {"lr": 0.05, "lambd": 0.01, "alpha": 0.5, "t0": 10, "weight_decay": 0.1}, None),
    ("ASGD", {"lr": 0.02, "t0": 5, "maximize": True}, [{}, {"lr": 0.1, "lambd": 0.1}]),
    # torch's implementation switches are accepted (and change nothing)
    ("Adam", {"lr": 0.01, "foreach": True, "fused": False, "capturable": False}, None),
    ("AdamW", {"lr": 0.01, "fused": True}, None),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "foreach": False, "fused": None}, None),
]


def _case_id(case: tuple[str, dict[str, Any], Any]) -> str:
    name, options, groups = case
    parts = [name] + [f"{k}={v}" for k, v in options.items()]
    return "-".join(parts) + ("-groups" if groups else "")


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_trajectory_matches_pytorch(case: tuple[str, dict[str, Any], Any]) -> None:
    ours = _gw_trajectory(*case, steps=STEPS)
    theirs = _torch_trajectory(*case, steps=STEPS)
    for step, (mine, ref) in enumerate(zip(ours, theirs, strict=True)):
        for i, (a, b) in enumerate(zip(mine, ref, strict=True)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12,
                                       err_msg=f"step {step}, parameter {i}")
    assert not np.allclose(ours[-1][0], _problem()[0][0]), "the parameters should have moved"


def _make(name: str, options: dict[str, Any], groups: Any, params: list[gw.Tensor]) -> Optimizer:
    return getattr(gw.optim, name)(_groups(params, groups), **options)


@pytest.mark.parametrize("case", CASES[1::3], ids=[_case_id(c) for c in CASES[1::3]])
def test_state_dict_round_trip_through_json_continues_identically(case: Any) -> None:
    start, x, y = _problem()
    runs = []
    for resume in (False, True):
        params = [gw.Tensor(p.copy(), requires_grad=True) for p in start]
        opt = _make(*case, params)
        for step in range(30):
            if resume and step == 15:
                arrays, meta = split_state(opt.state_dict())
                meta = json.loads(json.dumps(meta, allow_nan=False))
                opt = _make(*case, params)  # a fresh optimizer, as after a restart
                opt.load_state_dict(join_state({k: v.copy() for k, v in arrays.items()}, meta))
            for param, grad in zip(params, _grads([p.data for p in params], x, y), strict=True):
                param.grad = grad
            opt.step()
        runs.append([p.data for p in params])
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", CASES[::4], ids=[_case_id(c) for c in CASES[::4]])
def test_state_dict_layout_matches_pytorch(case: Any) -> None:
    torch = pytest.importorskip("torch")
    start, x, y = _problem()
    params = [gw.Tensor(p.copy(), requires_grad=True) for p in start]
    torch_params = [torch.tensor(p.copy(), requires_grad=True) for p in start]
    opt = _make(*case, params)
    torch_opt = getattr(torch.optim, case[0])(_groups(torch_params, case[2]), **case[1])
    for param, torch_param, grad in zip(params, torch_params, _grads(start, x, y), strict=True):
        param.grad, torch_param.grad = grad, torch.from_numpy(grad)
    opt.step()
    torch_opt.step()
    ours, theirs = opt.state_dict(), torch_opt.state_dict()
    assert [g["params"] for g in ours["param_groups"]] == [
        g["params"] for g in theirs["param_groups"]]
    assert set(ours["state"]) == set(theirs["state"])
    for index, state in ours["state"].items():
        assert set(state) == set(theirs["state"][index])
        for key, value in state.items():
            np.testing.assert_allclose(value, np.asarray(theirs["state"][index][key]), rtol=1e-7)


def test_state_dict_is_a_snapshot_and_arrays_keep_param_dtype() -> None:
    param = gw.Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    opt = Adam([param], lr=0.1)
    param.grad = np.ones(3, dtype=np.float32)
    opt.step()
    saved = opt.state_dict()
    assert isinstance(saved["state"][0]["exp_avg"], gw.Tensor)  # as torch's state_dict
    exp_avg = np.array(saved["state"][0]["exp_avg"], copy=True)
    opt.step()
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"], exp_avg)
    saved["state"][0]["exp_avg"] = exp_avg.astype(np.float64)  # an ndarray loads too
    opt.load_state_dict(saved)
    assert opt.state[param]["exp_avg"].dtype == np.float32
    assert opt.state[param]["step"] == 1


def test_split_state_rejects_values_json_cannot_hold() -> None:
    param = gw.Tensor(np.ones(2), requires_grad=True)
    opt = SGD([param], lr=0.1)
    opt.param_groups[0]["callback"] = print
    with pytest.raises(TypeError, match=r"param_groups\[0\]\['callback'\] is a builtin"):
        split_state(opt.state_dict())
    with pytest.raises(KeyError, match="state.0.exp_avg"):
        join_state({}, {"state": {"0": {"exp_avg": {"__array__": "state.0.exp_avg"}}},
                        "param_groups": []})


def _tensors(*shapes: tuple[int, ...]) -> list[gw.Tensor]:
    return [gw.Tensor(np.zeros(shape), requires_grad=True) for shape in shapes]


def _saved(shapes: list[tuple[int, ...]], groups: list[list[int]] | None = None) -> dict:
    """A state_dict of an Adam over parameters of these shapes after one step."""
    params = _tensors(*shapes)
    split = groups or [list(range(len(params)))]
    opt = Adam([{"params": [params[i] for i in g]} for g in split])
    for param in params:
        param.grad = np.ones(param.shape)
    opt.step()
    return opt.state_dict()


@pytest.mark.parametrize(
    "saved, message",
    [
        (_saved([(2,), (3,)], [[0], [1]]),
         "saved state has 2 parameter group.*this optimizer has 1"),
        (_saved([(2,)]), "saved parameter group 0 has 1 parameters, this optimizer's has 2"),
        (_saved([(3,), (2,)]), r"state 'exp_avg' of parameter 0 has shape \(3,\), the parameter "
                               r"\(shape \(2,\)\) has shape \(2,\)"),
        ({"state": {}}, "expected a dict with keys 'state' and 'param_groups'"),
        ({"state": {5: {}}, "param_groups": [{"params": [0, 1], "lr": 0.1}]},
         "entry for parameter 5"),
        ({"state": {}, "param_groups": [{"params": [0, 1], "lr": -1.0}]},
         "lr must be >= 0, got -1.0"),
    ],
    ids=["groups", "params", "shape", "keys", "index", "hyperparameter"],
)
def test_load_state_dict_rejects_mismatches(saved: dict, message: str) -> None:
    params = _tensors((2,), (3,))
    opt = Adam(params)
    before = opt.state_dict()
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(saved)
    assert opt.state_dict()["param_groups"] == before["param_groups"]


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda p: SGD(p, lr=-0.1), ValueError, "SGD: lr must be >= 0, got -0.1"),
        (lambda p: SGD(p, momentum=-0.5), ValueError,
         r"SGD: momentum must be in \[0, 1\), got -0.5"),
        # issue 13 item 12: accepted before, and every weight became NaN or diverged
        (lambda p: SGD(p, momentum=1.5), ValueError, r"SGD: momentum must be in \[0, 1\), got 1.5"),
        (lambda p: AdamW(p, lr=float("inf")), ValueError, "AdamW: lr must be >= 0, got inf"),
        (lambda p: SGD(p, lr=float("nan")), ValueError, "SGD: lr must be >= 0, got nan"),
        (lambda p: Adam(p, eps=float("inf")), ValueError, "Adam: eps must be > 0, got inf"),
        (lambda p: RMSprop(p, momentum=1.0), ValueError, r"RMSprop: momentum must be in \[0, 1\)"),
        (lambda p: SGD(p, dampening=2.0), ValueError, r"SGD: dampening must be in \[0, 1\]"),
        (lambda p: SGD(p, weight_decay=-1), ValueError, "SGD: weight_decay must be >= 0"),
        (lambda p: SGD(p, nesterov=True), ValueError,
         "SGD: nesterov=True needs momentum > 0 and dampening == 0"),
        (lambda p: SGD(p, momentum=0.9, dampening=0.1, nesterov=True), ValueError,
         "nesterov=True needs momentum > 0 and dampening == 0, got momentum=0.9, dampening=0.1"),
        (lambda p: SGD(p, lr="fast"), ValueError, "SGD: lr must be >= 0, got 'fast'"),
        (lambda p: SGD(p, maximize=1), ValueError, "SGD: maximize must be True or False"),
        (lambda p: Adam(p, betas=(1.0, 0.999)), ValueError,
         r"Adam: betas\[0\] must be in \[0, 1\), got 1.0"),
        (lambda p: Adam(p, betas=(0.9, -0.1)), ValueError, r"Adam: betas\[1\] must be in \[0, 1\)"),
        (lambda p: Adam(p, betas=0.9), ValueError, r"Adam: betas must be a pair"),
        (lambda p: Adam(p, eps=0.0), ValueError, "Adam: eps must be > 0, got 0.0"),
        (lambda p: AdamW(p, weight_decay=-0.01), ValueError, "AdamW: weight_decay must be >= 0"),
        (lambda p: Adam(p, amsgrad="yes"), ValueError, "Adam: amsgrad must be True or False"),
        (lambda p: RMSprop(p, alpha=1.5), ValueError, r"RMSprop: alpha must be in \[0, 1\]"),
        (lambda p: RMSprop(p, eps=-1e-8), ValueError, "RMSprop: eps must be > 0"),
        (lambda p: RMSprop(p, momentum=-0.9), ValueError, r"RMSprop: momentum must be in \[0, 1\)"),
        (lambda p: Adagrad(p, lr_decay=-1.0), ValueError, "Adagrad: lr_decay must be >= 0"),
        (lambda p: Adagrad(p, initial_accumulator_value=-1.0), ValueError,
         "Adagrad: initial_accumulator_value must be >= 0"),
        (lambda p: Adagrad(p, eps=0), ValueError, "Adagrad: eps must be > 0"),
        (lambda p: SGD([{"params": p[:1]}, {"params": p[1:], "lr": -2.0}]), ValueError,
         "SGD: lr must be >= 0, got -2.0"),
        (lambda p: SGD([{"params": p}, {"params": p[:1]}]), ValueError,
         "param group 1, parameter 0 .* appears more than once"),
        (lambda p: SGD([p[0], p[0]]), ValueError, "appears more than once"),
        (lambda p: SGD([]), ValueError, "SGD: got an empty parameter list"),
        (lambda p: SGD(p[0]), TypeError, "iterable of Tensors or of dicts, got a single Tensor"),
        (lambda p: SGD([np.zeros(3)]), TypeError, "parameter 0 is a ndarray"),
        (lambda p: SGD([gw.Tensor(np.zeros(3, dtype=np.int64))]), TypeError,
         "has dtype int64; only floating-point parameters"),
        (lambda p: SGD([p[0] * 2]), ValueError, "is not a leaf tensor"),
        (lambda p: SGD({p[0]}), TypeError, "not a set"),
        (lambda p: SGD([{"lr": 0.1}]), ValueError, "a param group needs a 'params' entry"),
    ],
)
def test_invalid_arguments_raise_clear_errors(make: Callable, error: type, message: str) -> None:
    params = _tensors((2, 2), (2,))
    params[0].name = "fc.weight"
    with pytest.raises(error, match=message):
        make(params)


def test_errors_name_the_parameter() -> None:
    params = _tensors((2, 2), (2,))
    params[0].name = "fc.weight"
    with pytest.raises(ValueError, match=re.escape("appears more than once")) as info:
        SGD([params[0], params[0]])
    assert "fc.weight" in str(info.value)
    opt = SGD(params, lr=0.1)
    params[0]._grad = np.zeros((2, 3))  # past the setter's own check
    with pytest.raises(ValueError, match=r"SGD.step: gradient of fc.weight has shape \(2, 3\), "
                                         r"the parameter has shape \(2, 2\)"):
        opt.step()


def test_zero_grad_sets_none_or_zeros_in_place() -> None:
    params = _tensors((2, 2), (2,))
    opt = SGD(params, lr=0.1)
    for param in params:
        param.grad = np.ones(param.shape)
    arrays = [param._grad for param in params]
    opt.zero_grad(set_to_none=False)
    for param, array in zip(params, arrays, strict=True):
        assert param._grad is array
        np.testing.assert_array_equal(param.grad, 0)
    opt.zero_grad()
    assert all(param.grad is None for param in params)
    opt.zero_grad(set_to_none=False)  # no gradients at all: nothing to do
    assert all(param.grad is None for param in params)


def test_parameters_without_grad_are_skipped_and_get_no_state() -> None:
    params = _tensors((2,), (3,))
    opt = Adam(params, lr=0.1)
    params[0].grad = np.ones(2)
    opt.step()
    np.testing.assert_array_equal(params[1].data, 0)
    assert params[1] not in opt.state
    assert list(opt.state_dict()["state"]) == [0]


def test_float32_updates_stay_float32_in_place_and_closure_loss_is_returned() -> None:
    rng = np.random.default_rng(0)
    weight = gw.Tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    storage = weight._data
    target = gw.tensor(rng.standard_normal((4, 3)).astype(np.float32))
    for opt in (SGD([weight], lr=0.1, momentum=0.9, nesterov=True), Adam([weight]),
                AdamW([weight], amsgrad=True), RMSprop([weight], centered=True, momentum=0.9),
                Adagrad([weight])):
        def closure(opt: Optimizer = opt) -> gw.Tensor:
            opt.zero_grad()
            loss = ((weight - target) ** 2).sum()
            loss.backward()
            return loss

        loss = opt.step(closure)
        assert isinstance(loss, gw.Tensor)
        assert weight._data is storage and weight._data.dtype == np.float32
        assert all(v.dtype == np.float32 for v in opt.state[weight].values()
                   if isinstance(v, np.ndarray))


def test_add_param_group_and_repr() -> None:
    first, second = _tensors((2,), (3,))
    opt = SGD([first], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": second, "lr": 0.01})
    assert opt.param_groups[1]["params"] == [second]
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.9
    assert "Parameter Group 1" in repr(opt) and "lr: 0.01" in repr(opt)
    with pytest.raises(ValueError, match="appears more than once"):
        opt.add_param_group({"params": [first]})


@pytest.mark.parametrize(("name", "options", "field"), [
    ("Adamax", {"lr": -1.0}, "lr"), ("Adamax", {"betas": (1.0, 0.9)}, "betas"),
    ("NAdam", {"eps": 0.0}, "eps"), ("NAdam", {"momentum_decay": -0.1}, "momentum_decay"),
    ("RAdam", {"weight_decay": -1.0}, "weight_decay"),
    ("RAdam", {"decoupled_weight_decay": "yes"}, "decoupled_weight_decay"),
])
def test_adam_variants_refuse_bad_hyperparameters(name: str, options: dict[str, Any],
                                                  field: str) -> None:
    with pytest.raises(ValueError, match=f"{name}: {field}"):
        getattr(gw.optim, name)([gw.zeros(2, requires_grad=True)], **options)
