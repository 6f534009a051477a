"""Issue 11 part B: LBFGS against PyTorch, torch's constructor signatures and switches, and a
real torch optimizer's state_dict loading into gradwise and continuing identically."""

from __future__ import annotations

import copy
import inspect
import json
from typing import Any

import numpy as np
import pytest
from tests.optim.test_optimizers import _grads, _problem

import gradwise as gw
from gradwise.optim import join_state, split_state

NAMES = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam",
         "Rprop", "ASGD", "LBFGS"]


def _loss(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    w1, b1, w2, b2 = params
    return float(np.mean((np.tanh(x @ w1.T + b1) @ w2.T + b2 - y) ** 2))


def _closure(lib: Any, params: list[Any], x: np.ndarray, y: np.ndarray) -> Any:
    """A closure that sets the hand-computed float64 gradients and returns the loss."""
    def closure() -> float:
        current = [np.array(p.detach().numpy() if lib is not gw else p.numpy()) for p in params]
        for param, grad in zip(params, _grads(current, x, y), strict=True):
            param.grad = grad if lib is gw else lib.from_numpy(grad)
        return _loss(current, x, y)
    return closure


def _run(lib: Any, name: str, options: dict[str, Any], steps: int, start: list[np.ndarray],
         saved: Any = None) -> tuple[list[list[np.ndarray]], Any]:
    """Parameters after each of ``steps`` steps (LBFGS through its closure) and the optimizer;
    ``saved`` is a state_dict loaded before the first step."""
    _, x, y = _problem()
    params = [lib.tensor(p.copy(), requires_grad=True) for p in start]
    opt = getattr(lib.optim, name)(params, **options)
    if saved is not None:
        opt.load_state_dict(saved)
    closure = _closure(lib, params, x, y)
    history = []
    for _ in range(steps):
        if name == "LBFGS":
            opt.step(closure)
        else:
            closure()
            opt.step()
        history.append([np.array(p.detach().numpy()) for p in params])
    return history, opt


# L-BFGS amplifies rounding differences (different dot-product orders) about tenfold per
# iteration on this non-convex problem, so the settings keep 20 steps within 40-60 iterations,
# where the two stay within 1e-6 of each other (many more iterations drift apart chaotically)
LBFGS_CASES = [
    {"max_iter": 4},
    {"lr": 0.5, "max_iter": 2, "history_size": 3},
    {"line_search_fn": "strong_wolfe", "max_iter": 2},
    {"line_search_fn": "strong_wolfe", "history_size": 2, "max_iter": 3, "max_eval": 4,
     "tolerance_change": 1e-6},
    {"max_iter": 3, "tolerance_grad": 1e-3},
]


@pytest.mark.parametrize("options", LBFGS_CASES, ids=[str(c) for c in LBFGS_CASES])
def test_lbfgs_trajectory_matches_pytorch(options: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    start = _problem()[0]
    ours, opt = _run(gw, "LBFGS", options, 20, start)
    theirs, torch_opt = _run(torch, "LBFGS", options, 20, start)
    for step, (mine, ref) in enumerate(zip(ours, theirs, strict=True)):
        for i, (a, b) in enumerate(zip(mine, ref, strict=True)):
            np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-9,
                                       err_msg=f"step {step}, parameter {i}")
    state, torch_state = opt.state_dict()["state"][0], torch_opt.state_dict()["state"][0]
    assert set(state) == set(torch_state)
    assert state["func_evals"] == torch_state["func_evals"]
    assert state["n_iter"] == torch_state["n_iter"]
    assert _loss(ours[-1], *_problem()[1:]) < _loss(start, *_problem()[1:]) / 2


def test_lbfgs_float32_model_matches_pytorch_through_autograd() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = np.tanh(x @ rng.standard_normal((4, 2)) + 0.1 * rng.standard_normal((32, 2)))
    weights = [rng.standard_normal((3, 4)).astype(np.float32) * 0.5,
               np.zeros(3, np.float32), rng.standard_normal((2, 3)).astype(np.float32) * 0.5,
               np.zeros(2, np.float32)]
    losses = []
    for lib in (gw, torch):
        model = lib.nn.Sequential(lib.nn.Linear(4, 3), lib.nn.Tanh(), lib.nn.Linear(3, 2))
        model.load_state_dict({k: lib.tensor(w) for k, w in zip(
            ["0.weight", "0.bias", "2.weight", "2.bias"], weights, strict=True)})
        opt = lib.optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe",
                              history_size=5, max_iter=2)

        def closure(model: Any = model, opt: Any = opt, lib: Any = lib) -> Any:
            opt.zero_grad()
            loss = lib.nn.functional.mse_loss(model(lib.tensor(x)),
                                              lib.tensor(y.astype(np.float32)))
            loss.backward()
            return loss

        losses.append([float(opt.step(closure).detach()) for _ in range(20)])
        assert model[0].weight.dtype == lib.float32
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)
    assert losses[0][-1] < 0.5 * losses[0][0]


def test_lbfgs_refuses_what_torch_refuses() -> None:
    params = [gw.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="LBFGS: parameter groups are not supported"):
        gw.optim.LBFGS([{"params": params}, {"params": [gw.zeros(1, requires_grad=True)]}])
    opt = gw.optim.LBFGS(params)
    with pytest.raises(ValueError, match="parameter groups are not supported"):
        opt.add_param_group({"params": [gw.zeros(1, requires_grad=True)]})
    with pytest.raises(TypeError, match="LBFGS.step needs a closure"):
        opt.step()
    with pytest.raises(ValueError, match="line_search_fn must be None or 'strong_wolfe'"):
        gw.optim.LBFGS(params, line_search_fn="armijo")
    with pytest.raises(ValueError, match="history_size must be an int >= 1"):
        gw.optim.LBFGS(params, history_size=0)
    assert gw.optim.LBFGS(params, max_iter=8).defaults["max_eval"] == 10  # torch: * 5 // 4


# one setting per optimizer, run 8 steps in torch, then 8 more in both after loading
RESUME_CASES = [
    ("SGD", {"lr": 0.05, "momentum": 0.9}), ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("AdamW", {"lr": 0.01}), ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
    ("Adagrad", {"lr": 0.1}), ("Adadelta", {"lr": 0.5}), ("Adamax", {"lr": 0.01}),
    ("NAdam", {"lr": 0.01}), ("RAdam", {"lr": 0.01}), ("Rprop", {"lr": 0.01}),
    ("ASGD", {"lr": 0.05, "t0": 3}),
    ("LBFGS", {"max_iter": 3, "history_size": 4}),
    ("LBFGS", {"max_iter": 3, "line_search_fn": "strong_wolfe"}),
]


@pytest.mark.parametrize(("name", "options"), RESUME_CASES,
                         ids=[f"{n}-{'-'.join(map(str, o.values()))}" for n, o in RESUME_CASES])
def test_a_torch_state_dict_loads_and_continues_identically(name: str,
                                                            options: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    history, torch_opt = _run(torch, name, options, 8, _problem()[0])
    midway = history[-1]
    # torch's state_dict shares its buffers, and loading it keeps them: one copy for each
    theirs, _ = _run(torch, name, options, 8, midway, saved=copy.deepcopy(torch_opt.state_dict()))
    ours, opt = _run(gw, name, options, 8, midway, saved=copy.deepcopy(torch_opt.state_dict()))
    for step, (mine, ref) in enumerate(zip(ours, theirs, strict=True)):
        for a, b in zip(mine, ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9, err_msg=f"step {step}")
    # and gradwise's own state_dict survives JSON + arrays, continuing identically
    arrays, meta = split_state(opt.state_dict())
    meta = json.loads(json.dumps(meta, allow_nan=False))
    start = ours[-1]
    again, _ = _run(gw, name, options, 3, start, saved=join_state(arrays, meta))
    direct, _ = _run(gw, name, options, 3, start, saved=opt.state_dict())
    for a, b in zip(again[-1], direct[-1], strict=True):
        np.testing.assert_array_equal(a, b)


def _signature(cls: type) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self"]


@pytest.mark.parametrize("name", NAMES)
def test_constructor_signature_is_torchs(name: str) -> None:
    torch = pytest.importorskip("torch")
    assert _signature(getattr(gw.optim, name)) == _signature(getattr(torch.optim, name))


@pytest.mark.parametrize("name", [n for n in NAMES if n != "LBFGS"])
def test_param_group_keys_are_torchs(name: str) -> None:
    torch = pytest.importorskip("torch")
    ours = getattr(gw.optim, name)([gw.zeros(2, requires_grad=True)]).param_groups[0]
    theirs = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)]).param_groups[0]
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        if key != "params":
            assert ours[key] == value, key


@pytest.mark.parametrize("name", [n for n in NAMES if n != "LBFGS"])
def test_implementation_switches_are_accepted_or_refused_clearly(name: str) -> None:
    cls = getattr(gw.optim, name)
    accepted = inspect.signature(cls.__init__).parameters
    params = [gw.zeros(2, requires_grad=True)]
    if "foreach" in accepted:
        for value in (None, True, False):
            cls(params, foreach=value)
        with pytest.raises(ValueError, match=f"{name}: foreach must be None, True or False"):
            cls(params, foreach="yes")
    if "fused" in accepted:
        cls(params, fused=True)
    if "capturable" in accepted:
        with pytest.raises(ValueError, match=f"{name}: capturable=True .* needs a GPU"):
            cls(params, capturable=True)
    with pytest.raises(ValueError, match=f"{name}: differentiable=True is not supported"):
        cls(params, differentiable=True)


def test_rprop_and_asgd_refuse_bad_settings() -> None:
    params = [gw.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match=r"Rprop: etas must be \(eta-, eta\+\) with 0 < eta- "):
        gw.optim.Rprop(params, etas=(1.2, 0.5))
    with pytest.raises(ValueError, match="Rprop: step_sizes must be .*s_min <= s_max"):
        gw.optim.Rprop(params, step_sizes=(1.0, 0.1))
    with pytest.raises(ValueError, match="ASGD: lambd must be >= 0"):
        gw.optim.ASGD(params, lambd=-1.0)


def test_zero_grad_and_add_param_group_as_torch() -> None:
    torch = pytest.importorskip("torch")
    results = []
    for lib in (gw, torch):
        first, second = lib.ones(2, requires_grad=True), lib.ones(3, requires_grad=True)
        opt = lib.optim.Rprop([first], lr=0.1)
        opt.add_param_group({"params": [second], "lr": 0.3, "etas": (0.4, 1.3)})
        (first.sum() * 2 + (second * 3).sum()).backward()
        opt.step()
        opt.zero_grad(set_to_none=False)
        zeroed = [np.asarray(first.grad).tolist(), np.asarray(second.grad).tolist()]
        opt.zero_grad()
        results.append((zeroed, first.grad is None, [g["etas"] for g in opt.param_groups],
                        np.asarray(second.detach().numpy()).tolist()))
    assert results[0] == results[1]


def test_named_parameters_are_kept_as_param_names_as_torch() -> None:
    torch = pytest.importorskip("torch")
    groups = []
    for lib in (gw, torch):
        model = lib.nn.Linear(2, 1)
        opt = lib.optim.Adam(model.named_parameters(), lr=0.1)
        saved = opt.state_dict()["param_groups"][0]
        groups.append((opt.param_groups[0]["param_names"], saved["param_names"],
                       saved["params"]))
        with pytest.raises(ValueError, match="with/without names|with or without names"):
            opt.add_param_group({"params": [lib.zeros(1, requires_grad=True)]})
    assert groups[0] == groups[1] == (["weight", "bias"], ["weight", "bias"], [0, 1])
