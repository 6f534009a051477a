"""The one-call-per-group kernel path (Optimizer._plan_group / _planned_grads, issue 14).

After one step, SGD, Adam, AdamW, RMSprop and Adagrad remember each group's arrays and, while
they stay the same objects, update the whole group with one kernel call per 8 parameters. Every
way a user can change what the optimizer sees (replace ``p.data``, ``model.to(dtype)``,
``zero_grad``, ``load_state_dict``, change a step count, add a group, share a parameter, hand in
a strided gradient ...) must give the bits the NumPy reference gives: each scenario runs with the
kernels on and off and must land on the same bits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.kernels import optim as optim_kernels
from gradwise.autograd.kernels._jit import _numba, set_jit_enabled

# 11 parameters: two chunks of the group kernel, sizes from 0 to 60
SHAPES = [(4, 3), (3,), (0,), (5, 4), (5,), (1,), (6, 10), (7,), (2, 2, 2), (9,), (3, 1)]
SETTINGS = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05, maximize=True),
]
# (optimizer, settings) for the other optimizers with a group kernel: every branch of their
# kernels (weight decay coupled and decoupled, amsgrad, maximize, centered, momentum, lr decay)
OTHER_SETTINGS = [
    (gw.optim.Adam, dict(lr=0.01)),
    (gw.optim.Adam, dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True)),
    (gw.optim.AdamW, dict(lr=0.01, weight_decay=0.1, betas=(0.8, 0.99))),
    (gw.optim.AdamW, dict(lr=0.01, amsgrad=True)),
    (gw.optim.RMSprop, dict(lr=0.01)),
    (gw.optim.RMSprop, dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.1)),
    (gw.optim.RMSprop, dict(lr=0.01, momentum=0.5, maximize=True)),
    (gw.optim.Adagrad, dict(lr=0.1)),
    (gw.optim.Adagrad, dict(lr=0.1, lr_decay=0.1, weight_decay=0.1,
                            initial_accumulator_value=0.5, maximize=True)),
]
ALL_SETTINGS = [(gw.optim.SGD, settings) for settings in SETTINGS] + OTHER_SETTINGS


def _settings_id(case: tuple[type, dict]) -> str:
    cls, settings = case
    return "-".join([cls.__name__] + [f"{k}={v}" for k, v in settings.items()])


Scenario = Callable[[gw.optim.Optimizer, list[gw.Tensor], int], None]


def _grad(step: int, index: int, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return np.random.default_rng(100 * step + index).standard_normal(shape).astype(dtype)


def _run(case: tuple[type, dict], scenario: Scenario | None, jit: bool,
         dtype: type = np.float32, steps: int = 5) -> tuple[list[np.ndarray], dict, int]:
    """Params and state after ``steps`` steps, and how many steps took the planned path."""
    previous = set_jit_enabled(jit)
    planned = [0]
    original = gw.optim.Optimizer._planned_grads

    def counting(self, group, keys):
        result = original(self, group, keys)
        planned[0] += result is not None
        return result

    try:
        gw.optim.Optimizer._planned_grads = counting
        rng = np.random.default_rng(0)
        params = [gw.nn.Parameter(gw.tensor(rng.standard_normal(s).astype(dtype)))
                  for s in SHAPES]
        cls, settings = case
        opt = cls(params, **settings)
        for step in range(steps):
            for index, param in enumerate(params):
                param.grad = gw.tensor(_grad(step, index, param.shape, param._data.dtype))
            if scenario is not None:
                scenario(opt, params, step)
            opt.step()
        state = {f"{i}.{k}": np.array(v) for i, p in enumerate(params)
                 for k, v in opt.state.get(p, {}).items()}
        return [np.array(p._data) for p in params], state, planned[0]
    finally:
        gw.optim.Optimizer._planned_grads = original
        set_jit_enabled(previous)


def _assert_same_bits(case: tuple[type, dict], scenario: Scenario | None,
                      dtype: type = np.float32, min_planned: int = 1) -> None:
    fused, fused_state, planned = _run(case, scenario, True, dtype)
    reference, reference_state, _ = _run(case, scenario, False, dtype)
    for i, (got, want) in enumerate(zip(fused, reference, strict=True)):
        assert got.dtype == want.dtype, i
        np.testing.assert_array_equal(got, want, err_msg=f"parameter {i}")
    assert fused_state.keys() == reference_state.keys()
    for key, want in reference_state.items():
        np.testing.assert_array_equal(fused_state[key], want, err_msg=key)
    assert planned >= min_planned, "the planned (one call per group) path never ran"


def _replace_data(opt, params, step):
    if step == 2:
        params[3].data = gw.tensor(np.full((5, 4), 0.5, dtype=np.float32))


def _to_float64(opt, params, step):
    if step == 2:  # as model.to(gw.float64): new arrays, new dtype, gradients cast too
        for param in params:
            param._data = param._data.astype(np.float64)
            param._grad = param._grad.astype(np.float64)


def _drop_some_grads(opt, params, step):
    if step in (2, 3):  # as zero_grad(set_to_none=True) with parameters the loss did not reach
        params[1].grad = None
        params[7].grad = None


def _load_other_state(opt, params, step):
    if step == 3:
        saved = opt.state_dict()
        for values in saved["state"].values():
            values["step"] = values.get("step", 0) + 1  # per-parameter step counts differ
            for key, value in values.items():
                if key != "step":
                    values[key] = value * 0.5
        opt.load_state_dict(saved)


def _replace_buffer(opt, params, step):
    state = opt.state.get(params[0], {})
    for key in [k for k, v in state.items() if isinstance(v, np.ndarray)][:1]:
        if step == 2:
            state[key] = np.full((4, 3), 0.5, dtype=np.float32)


def _step_count_changed(opt, params, step):
    state = opt.state.get(params[2], {})
    if step == 2 and "step" in state:
        state["step"] += 3  # changed in place: the planned path reads it every step


def _strided_grad(opt, params, step):
    if step == 2:  # a transposed (F-ordered) gradient of the right shape
        params[6]._grad = np.ascontiguousarray(params[6]._grad.T).T


def _strided_data(opt, params, step):
    if step == 2:  # a parameter that became a strided view
        base = np.zeros((10, 6), dtype=np.float32)
        base[...] = params[6]._data.T
        params[6]._data = base.T


def _change_lr(opt, params, step):
    opt.param_groups[0]["lr"] *= 0.5  # as a scheduler does


def _add_group(opt, params, step):
    if step == 2:
        extra = gw.nn.Parameter(gw.tensor(np.arange(6, dtype=np.float32)))
        extra.grad = gw.tensor(np.ones(6, dtype=np.float32))
        opt.add_param_group({"params": [extra], "lr": 0.3})


def _mixed_dtypes(opt, params, step):
    if step == 1:
        params[4]._data = params[4]._data.astype(np.float64)
        params[4]._grad = params[4]._grad.astype(np.float64)


def _read_only_grad(opt, params, step):
    params[2]._grad.flags.writeable = False  # the kernel only reads gradients


SCENARIOS = {
    "plain": None,
    "p.data replaced": _replace_data,
    "to float64": _to_float64,
    "gradients set to None": _drop_some_grads,
    "load_state_dict": _load_other_state,
    "state buffer replaced": _replace_buffer,
    "step count changed": _step_count_changed,
    "strided gradient": _strided_grad,
    "strided parameter": _strided_data,
    "lr changed every step": _change_lr,
    "add_param_group": _add_group,
    "float32 and float64 in one group": _mixed_dtypes,
    "read-only gradient": _read_only_grad,
}


@pytest.mark.skipif(_numba is None, reason="numba is not installed")
@pytest.mark.parametrize("case", ALL_SETTINGS, ids=_settings_id)
@pytest.mark.parametrize("scenario", list(SCENARIOS), ids=list(SCENARIOS))
def test_group_kernel_lands_on_the_reference_bits(case, scenario):
    # mixed dtypes and a read-only gradient make the group unplannable (the general path,
    # which gives those parameters the NumPy reference, runs every step)
    unplannable = {"float32 and float64 in one group", "read-only gradient"}
    min_planned = 0 if scenario in unplannable else 1
    _assert_same_bits(case, SCENARIOS[scenario], min_planned=min_planned)


@pytest.mark.skipif(_numba is None, reason="numba is not installed")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls", [gw.optim.SGD, gw.optim.Adam, gw.optim.RMSprop,
                                 gw.optim.Adagrad], ids=lambda cls: cls.__name__)
def test_group_kernel_in_both_dtypes(cls, dtype):
    settings = dict(lr=0.1, momentum=0.9) if cls in (gw.optim.SGD, gw.optim.RMSprop) else {}
    _assert_same_bits((cls, settings), None, dtype)


@pytest.mark.skipif(_numba is None, reason="numba is not installed")
@pytest.mark.parametrize("cls", [gw.optim.SGD, gw.optim.Adam, gw.optim.RMSprop,
                                 gw.optim.Adagrad], ids=lambda cls: cls.__name__)
def test_planned_step_is_one_kernel_call_per_chunk(cls, monkeypatch):
    """11 parameters are two chunks: two group kernel calls, no per-parameter call."""
    name = {gw.optim.SGD: "sgd", gw.optim.Adam: "adam", gw.optim.RMSprop: "rmsprop",
            gw.optim.Adagrad: "adagrad"}[cls]
    calls = {"group": 0, "single": 0}
    for key, attribute in (("group", f"{name}_group_kernel"), ("single", f"{name}_kernel")):
        original = getattr(optim_kernels, attribute)

        def counted(*args, _original=original, _key=key):
            calls[_key] += 1
            return _original(*args)

        monkeypatch.setattr(optim_kernels, attribute, counted)
    previous = set_jit_enabled(True)  # also under GRADWISE_JIT=0 (CI runs this file both ways)
    try:
        rng = np.random.default_rng(0)
        params = [gw.nn.Parameter(gw.tensor(rng.standard_normal(s).astype(np.float32)))
                  for s in SHAPES]
        opt = cls(params, lr=0.1)
        for step in range(3):
            for index, param in enumerate(params):
                param.grad = gw.tensor(_grad(step, index, param.shape, np.float32))
            before = dict(calls)
            opt.step()
            if step > 0:  # the first step plans; every later one runs the group kernel only
                assert calls["group"] - before["group"] == 2, step
                assert calls["single"] == before["single"], step
        # switched off after planning: no kernel of either kind runs (the NumPy reference does)
        set_jit_enabled(False)
        before = dict(calls)
        opt.step()
        assert calls == before
    finally:
        set_jit_enabled(previous)


def test_planned_step_bumps_each_version_once_and_state_stays_the_users(jit_path):
    params = [gw.nn.Parameter(gw.ones(3)), gw.nn.Parameter(gw.ones(2, 2))]
    opt = gw.optim.SGD(params, lr=0.1, momentum=0.9)
    for step in range(3):
        versions = [p._version[0] for p in params]
        for p in params:
            p.grad = gw.ones(*p.shape)
        opt.step()
        assert [p._version[0] for p in params] == [v + 1 for v in versions], step
    # the buffers the step updates are the ones opt.state and state_dict show
    buffer = opt.state[params[0]]["momentum_buffer"]
    before = buffer.copy()
    params[0].grad, params[1].grad = gw.ones(3), gw.ones(2, 2)
    opt.step()
    assert not np.array_equal(buffer, before)
    np.testing.assert_array_equal(np.asarray(opt.state_dict()["state"][0]["momentum_buffer"]),
                                  buffer)


def test_parameter_shared_by_two_optimizers_gets_both_updates(jit_path):
    shared = gw.nn.Parameter(gw.tensor(np.zeros(4, dtype=np.float32)))
    first = gw.optim.SGD([shared], lr=1.0, momentum=0.5)
    second = gw.optim.SGD([shared], lr=0.5)
    for _ in range(3):
        shared.grad = gw.ones(4)
        first.step()
        second.step()
    # first: buffers 1, 1.5, 1.75 (lr 1); second: 0.5 per step
    np.testing.assert_array_equal(np.asarray(shared.data),
                                  np.full(4, -(1 + 1.5 + 1.75) - 1.5, dtype=np.float32))


@pytest.mark.skipif(_numba is None, reason="numba is not installed")
@pytest.mark.parametrize("case", OTHER_SETTINGS[::2], ids=_settings_id)
def test_parameter_shared_by_two_optimizers_lands_on_the_reference_bits(case):
    """Two optimizers of a kind over one parameter (each with its own state and plan): the
    parameter gets both updates, in order, as the per-parameter reference gives them."""
    cls, settings = case

    def run(jit: bool) -> np.ndarray:
        previous = set_jit_enabled(jit)
        try:
            shared = gw.nn.Parameter(gw.tensor(np.linspace(-1, 1, 12, dtype=np.float32)))
            own = gw.nn.Parameter(gw.tensor(np.ones(5, dtype=np.float32)))
            first, second = cls([shared, own], **settings), cls([shared], **settings)
            for step in range(4):
                shared.grad = gw.tensor(_grad(step, 0, (12,), np.float32))
                own.grad = gw.tensor(_grad(step, 1, (5,), np.float32))
                first.step()
                second.step()
            return np.concatenate([np.array(shared._data), np.array(own._data)])
        finally:
            set_jit_enabled(previous)

    np.testing.assert_array_equal(run(True), run(False))


def test_a_deep_copy_steps_its_own_parameters(jit_path):
    import copy

    params = [gw.nn.Parameter(gw.ones(3)), gw.nn.Parameter(gw.ones(2))]
    opt = gw.optim.SGD(params, lr=0.1, momentum=0.9)
    for _ in range(2):
        for p in params:
            p.grad = gw.ones(*p.shape)
        opt.step()
    copied_params, copied_opt = copy.deepcopy((params, opt))
    before = [np.array(p._data) for p in params]
    for p in copied_params:
        p.grad = gw.ones(*p.shape)
    copied_opt.step()
    for p, original in zip(params, before, strict=True):
        np.testing.assert_array_equal(p._data, original)  # the originals did not move
    for p, original in zip(copied_params, before, strict=True):
        # the copy's third step: buffer 0.9 * 1.9 + 1 = 2.71, times lr 0.1
        np.testing.assert_allclose(p._data, original - np.float32(0.271), rtol=1e-6)


def test_the_plan_does_not_keep_gradients_alive():
    params = [gw.nn.Parameter(gw.ones(1000)) for _ in range(3)]
    opt = gw.optim.SGD(params, lr=0.1, momentum=0.9)
    for _ in range(3):
        for p in params:
            p.grad = gw.ones(1000)
        opt.step()
    grad = params[0]._grad
    opt.zero_grad()
    import sys
    assert sys.getrefcount(grad) == 2  # this name and getrefcount's argument only


def test_chunked_pads_to_the_group_size():
    arrays = [np.arange(3.0, dtype=np.float32).reshape(3, 1) for _ in range(9)]
    chunks = list(optim_kernels.chunked([arrays, [True] * 9, [0.5] * 9], np.dtype(np.float32)))
    assert len(chunks) == 2
    data, flags, numbers = chunks[1]
    assert len(data) == len(flags) == optim_kernels.GROUP_CHUNK
    assert data[0].shape == (3,) and all(a.size == 0 for a in data[1:])
    assert flags == (True,) + (False,) * (optim_kernels.GROUP_CHUNK - 1)
    np.testing.assert_array_equal(numbers, [0.5] + [0.0] * (optim_kernels.GROUP_CHUNK - 1))


@pytest.mark.parametrize("case", ALL_SETTINGS[1:], ids=_settings_id)
def test_twenty_steps_match_pytorch_in_float32(case, jit_path):
    torch = pytest.importorskip("torch")
    cls, settings = case
    rng = np.random.default_rng(3)
    start = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    ours = [gw.nn.Parameter(gw.tensor(a.copy())) for a in start]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in start]
    opt = cls(ours, **settings)
    torch_opt = getattr(torch.optim, cls.__name__)(theirs, **settings)
    for step in range(20):
        for index, (mine, ref) in enumerate(zip(ours, theirs, strict=True)):
            grad = _grad(step, index, mine.shape, np.float32)
            mine.grad = gw.tensor(grad)
            ref.grad = torch.from_numpy(grad.copy())
        opt.step()
        torch_opt.step()
        for index, (mine, ref) in enumerate(zip(ours, theirs, strict=True)):
            np.testing.assert_allclose(np.asarray(mine.data), ref.detach().numpy(), rtol=1e-5,
                                       atol=1e-6, err_msg=f"step {step}, parameter {index}")
