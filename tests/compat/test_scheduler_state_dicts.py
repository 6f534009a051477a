"""LR scheduler state dicts cross between torch and gradwise (issue 11, review 3): a torch
scheduler's state_dict (with its private keys) loads into the gradwise scheduler and the
schedule continues as torch's does, and the other way round."""

from __future__ import annotations

import pytest

import gradwise as gw

torch = pytest.importorskip("torch")


def _schedules(m):
    lr = m.optim.lr_scheduler
    return {
        "StepLR": lambda o: lr.StepLR(o, 3), "MultiStepLR": lambda o: lr.MultiStepLR(o, [2, 4]),
        "ExponentialLR": lambda o: lr.ExponentialLR(o, 0.9),
        "CosineAnnealingLR": lambda o: lr.CosineAnnealingLR(o, 5),
        "LinearLR": lambda o: lr.LinearLR(o),
        "OneCycleLR": lambda o: lr.OneCycleLR(o, 1.0, total_steps=10),
        "OneCycleLR-3phase": lambda o: lr.OneCycleLR(o, 1.0, total_steps=10, three_phase=True,
                                                     anneal_strategy="linear"),
        "ReduceLROnPlateau": lambda o: lr.ReduceLROnPlateau(o, patience=1),
        "ConstantLR": lambda o: lr.ConstantLR(o), "PolynomialLR": lambda o: lr.PolynomialLR(o, 5),
        "CosineAnnealingWarmRestarts": lambda o: lr.CosineAnnealingWarmRestarts(o, 3),
        "CyclicLR": lambda o: lr.CyclicLR(o, 0.01, 0.1, step_size_up=3),
        "MultiplicativeLR": lambda o: lr.MultiplicativeLR(o, lambda e: 0.9),
        "LambdaLR": lambda o: lr.LambdaLR(o, lambda e: 0.9 ** e),
    }


def _build(m, name, steps):
    w = [m.nn.Parameter(m.ones(1))]
    opt = m.optim.SGD(w, lr=0.1, momentum=0.9)
    sched = _schedules(m)[name](opt)
    for _ in range(steps):
        _step(opt, sched, name)
    return opt, sched


def _step(opt, sched, name):
    opt.step()
    if "Plateau" in name:
        sched.step(1.0)
    else:
        sched.step()


def _continue(opt, sched, name):
    out = []
    for _ in range(5):
        _step(opt, sched, name)
        out.append(round(opt.param_groups[0]["lr"], 10))
    return out


@pytest.mark.parametrize("direction", ["torch-to-gradwise", "gradwise-to-torch"])
@pytest.mark.parametrize("name", sorted(_schedules(torch)))
def test_scheduler_state_dict_crosses_libraries(name, direction):
    if direction == "gradwise-to-torch" and name == "MultiStepLR":
        pytest.skip("torch keeps milestones in a Counter; gradwise's list does not load there "
                    "(docs/PORTING.md)")
    source_lib, target_lib = (torch, gw) if direction == "torch-to-gradwise" else (gw, torch)
    source_opt, source = _build(source_lib, name, 3)
    target_opt, target = _build(target_lib, name, 0)
    target.load_state_dict(source.state_dict())
    target_opt.param_groups[0]["lr"] = source_opt.param_groups[0]["lr"]
    target_opt.param_groups[0]["momentum"] = source_opt.param_groups[0]["momentum"]
    reference_opt, reference = _build(target_lib, name, 3)
    assert _continue(target_opt, target, name) == _continue(reference_opt, reference, name)
