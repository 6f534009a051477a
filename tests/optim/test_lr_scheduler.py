"""Learning-rate schedules: sequences against PyTorch, closed forms, checkpoints, checks."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import gradwise as gw
from gradwise.optim import lr_scheduler

STEPS = 100
LRS = (0.1, 0.03)  # two param groups with different learning rates

# metrics fed to ReduceLROnPlateau: improving, then plateaus with noise, then a late improvement
METRICS = [1.0 / (1 + t) if t < 20 else 0.05 + 0.01 * ((7 * t) % 5) for t in range(STEPS)]
METRICS[70] = 0.001


def _optimizer(lib: Any, kind: str) -> Any:
    """Two param groups (lr 0.1 and 0.03) of a PyTorch or gradwise optimizer."""
    if lib is gw:
        params = [gw.Tensor(np.zeros(2), requires_grad=True) for _ in LRS]
    else:
        params = [lib.zeros(2, requires_grad=True) for _ in LRS]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, LRS, strict=True)]
    if kind == "Adam":
        return lib.optim.Adam(groups)
    return lib.optim.SGD(groups, momentum=0.9)


def _momenta(opt: Any) -> list[float]:
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


def _run(lib: Any, build: Callable, kind: str, steps: int = STEPS, resume_at: int | None = None
         ) -> tuple[list[list[float]], list[list[float]], Any]:
    """(lr per step, momentum per step, scheduler) for ``steps`` steps of one schedule.

    With ``resume_at``, the optimizer and scheduler are saved through JSON at that step and
    rebuilt from scratch, as after a restart.
    """
    opt = _optimizer(lib, kind)
    sched = build(lib.optim.lr_scheduler, opt)
    lrs, momenta = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in range(steps):
            if step == resume_at:
                arrays, meta = gw.optim.split_state(opt.state_dict())
                saved = json.loads(json.dumps(
                    {"opt": meta, "sched": sched.state_dict()}, allow_nan=False))
                opt = _optimizer(lib, kind)
                sched = build(lib.optim.lr_scheduler, opt)
                opt.load_state_dict(gw.optim.join_state(arrays, saved["opt"]))
                sched.load_state_dict(saved["sched"])
            lrs.append(list(sched.get_last_lr()))
            momenta.append(_momenta(opt))
            opt.step()
            if isinstance(sched, lib.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(METRICS[step])
            else:
                sched.step()
    return lrs, momenta, sched


def _sequential(s: Any, opt: Any) -> Any:
    warmup = s.LinearLR(opt, start_factor=0.1, total_iters=10)
    decay = s.CosineAnnealingLR(opt, T_max=60, eta_min=0.001)
    tail = s.ExponentialLR(opt, gamma=0.95)
    return s.SequentialLR(opt, [warmup, decay, tail], milestones=[10, 70])


SCHEDULES: list[tuple[str, str, Callable]] = [
    ("StepLR", "SGD", lambda s, o: s.StepLR(o, step_size=7, gamma=0.5)),
    ("MultiStepLR", "SGD", lambda s, o: s.MultiStepLR(o, milestones=[60, 10, 30, 30], gamma=0.5)),
    ("ExponentialLR", "SGD", lambda s, o: s.ExponentialLR(o, gamma=0.97)),
    ("CosineAnnealingLR", "SGD", lambda s, o: s.CosineAnnealingLR(o, T_max=100)),
    ("CosineAnnealingLR-periods", "SGD",
     lambda s, o: s.CosineAnnealingLR(o, T_max=30, eta_min=0.001)),
    ("LinearLR-warmup", "SGD", lambda s, o: s.LinearLR(o, start_factor=0.1, total_iters=20)),
    ("LinearLR-decay", "SGD",
     lambda s, o: s.LinearLR(o, start_factor=1.0, end_factor=0.2, total_iters=50)),
    ("OneCycleLR", "SGD", lambda s, o: s.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=100)),
    ("OneCycleLR-linear-adam", "Adam",
     lambda s, o: s.OneCycleLR(o, max_lr=0.01, epochs=10, steps_per_epoch=11, pct_start=0.25,
                               anneal_strategy="linear", div_factor=10.0)),
    ("OneCycleLR-three-phase", "SGD",
     lambda s, o: s.OneCycleLR(o, max_lr=0.5, total_steps=120, three_phase=True,
                               final_div_factor=100.0, base_momentum=0.8)),
    ("OneCycleLR-no-momentum", "SGD",
     lambda s, o: s.OneCycleLR(o, max_lr=0.5, total_steps=100, cycle_momentum=False)),
    ("ReduceLROnPlateau", "SGD",
     lambda s, o: s.ReduceLROnPlateau(o, factor=0.5, patience=3, cooldown=2,
                                      min_lr=[0.01, 0.0])),
    ("ReduceLROnPlateau-abs", "SGD",
     lambda s, o: s.ReduceLROnPlateau(o, patience=0, threshold=0.005, threshold_mode="abs",
                                      min_lr=0.002)),
    ("ReduceLROnPlateau-max", "SGD",
     lambda s, o: s.ReduceLROnPlateau(o, mode="max", factor=0.7, patience=2)),
    ("SequentialLR", "SGD", _sequential),
    # issue 11 part B: the rest of torch's schedules, each against torch
    ("LambdaLR", "SGD", lambda s, o: s.LambdaLR(o, lambda step: 0.97**step)),
    ("LambdaLR-per-group", "Adam",
     lambda s, o: s.LambdaLR(o, [lambda step: 1 / (1 + step), lambda step: 0.9 ** (step // 10)])),
    ("MultiplicativeLR", "SGD",
     lambda s, o: s.MultiplicativeLR(o, lambda step: 0.95 if step % 3 else 1.01)),
    ("ConstantLR", "SGD", lambda s, o: s.ConstantLR(o, factor=0.25, total_iters=12)),
    ("PolynomialLR", "SGD", lambda s, o: s.PolynomialLR(o, total_iters=60, power=2.0)),
    ("CosineAnnealingWarmRestarts", "SGD",
     lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=7, T_mult=2, eta_min=0.001)),
    ("CyclicLR-triangular", "SGD",
     lambda s, o: s.CyclicLR(o, base_lr=0.01, max_lr=[0.1, 0.05], step_size_up=5,
                             step_size_down=8)),
    ("CyclicLR-triangular2", "SGD",
     lambda s, o: s.CyclicLR(o, base_lr=[0.001, 0.002], max_lr=0.1, step_size_up=6,
                             mode="triangular2", base_momentum=0.7, max_momentum=0.95)),
    ("CyclicLR-exp-range-adam", "Adam",
     lambda s, o: s.CyclicLR(o, base_lr=0.01, max_lr=0.2, step_size_up=4, mode="exp_range",
                             gamma=0.97)),
    ("CyclicLR-scale-fn", "SGD",
     lambda s, o: s.CyclicLR(o, 0.01, 0.1, step_size_up=3, scale_fn=lambda x: 0.98**x,
                             scale_mode="iterations", cycle_momentum=False)),
    ("ReduceLROnPlateau-max-abs", "SGD",
     lambda s, o: s.ReduceLROnPlateau(o, mode="max", threshold_mode="abs", threshold=0.01,
                                      factor=0.5, patience=1, cooldown=1, eps=1e-3)),
    ("ReduceLROnPlateau-min-rel-eps", "Adam",
     lambda s, o: s.ReduceLROnPlateau(o, factor=0.3, patience=2, threshold=0.1, eps=0.01)),
]
IDS = [name for name, _, _ in SCHEDULES]

# schedules without a closed form (lr_at): compared with torch and resumed only
CHAINED: list[tuple[str, str, Callable]] = [
    ("ChainedScheduler", "SGD",
     lambda s, o: s.ChainedScheduler([s.ConstantLR(o, factor=0.1, total_iters=5),
                                      s.ExponentialLR(o, gamma=0.97)])),
    ("ChainedScheduler-optimizer-cyclic", "SGD",
     lambda s, o: s.ChainedScheduler([s.StepLR(o, step_size=9, gamma=0.5),
                                      s.LinearLR(o, start_factor=0.2, total_iters=15)],
                                     optimizer=o)),
]
CHAINED_IDS = [name for name, _, _ in CHAINED]


@pytest.mark.parametrize("name, kind, build", SCHEDULES + CHAINED, ids=IDS + CHAINED_IDS)
def test_schedule_matches_pytorch(name: str, kind: str, build: Callable) -> None:
    torch = pytest.importorskip("torch")
    ours, our_momenta, _ = _run(gw, build, kind)
    theirs, their_momenta, _ = _run(torch, build, kind)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(our_momenta, their_momenta, rtol=1e-10)
    assert len({tuple(lrs) for lrs in ours}) > 1, "the schedule should change the lr"


@pytest.mark.parametrize("name, kind, build", SCHEDULES, ids=IDS)
def test_closed_form_gives_the_same_sequence(name: str, kind: str, build: Callable) -> None:
    lrs, momenta, sched = _run(gw, build, kind)
    if isinstance(sched, lr_scheduler.ReduceLROnPlateau):
        with pytest.raises(NotImplementedError, match="ReduceLROnPlateau has no closed form"):
            sched.lr_at(3)
        return
    closed = [sched.lr_at(step) for step in range(STEPS)]
    np.testing.assert_allclose(closed, lrs, rtol=1e-9)
    if isinstance(sched, lr_scheduler.OneCycleLR) and sched.cycle_momentum:
        np.testing.assert_allclose([sched.momentum_at(t) for t in range(STEPS)], momenta)


@pytest.mark.parametrize("name, kind, build", SCHEDULES + CHAINED, ids=IDS + CHAINED_IDS)
def test_state_dict_round_trip_mid_run_continues_identically(name: str, kind: str,
                                                             build: Callable) -> None:
    straight, straight_momenta, _ = _run(gw, build, kind)
    resumed, resumed_momenta, _ = _run(gw, build, kind, resume_at=37)
    assert resumed == straight
    assert resumed_momenta == straight_momenta


@pytest.mark.parametrize(
    "build, error, message",
    [
        (lambda o: lr_scheduler.StepLR(o, step_size=0), ValueError,
         "StepLR: step_size must be a positive int, got 0"),
        (lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=-0.1), ValueError,
         "StepLR: gamma must be > 0, got -0.1"),
        (lambda o: lr_scheduler.MultiStepLR(o, milestones=[3, -1]), ValueError,
         r"MultiStepLR: milestones must be ints >= 0, got \[3, -1\]"),
        (lambda o: lr_scheduler.ExponentialLR(o, gamma=0), ValueError,
         "ExponentialLR: gamma must be > 0"),
        (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=0), ValueError,
         "CosineAnnealingLR: T_max must be a positive int"),
        (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=-1.0), ValueError,
         "CosineAnnealingLR: eta_min must be >= 0"),
        (lambda o: lr_scheduler.LinearLR(o, start_factor=0.0), ValueError,
         r"LinearLR: start_factor must be in \(0, 1\]"),
        (lambda o: lr_scheduler.LinearLR(o, end_factor=1.5), ValueError,
         r"LinearLR: end_factor must be in \[0, 1\]"),
        (lambda o: lr_scheduler.LinearLR(o, total_iters=2.5), ValueError,
         "LinearLR: total_iters must be a positive int"),
        (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1), ValueError,
         "OneCycleLR: give total_steps, or both epochs and steps_per_epoch"),
        (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=-5), ValueError,
         "OneCycleLR: total_steps must be a positive int"),
        (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, epochs=0, steps_per_epoch=3),
         ValueError, "OneCycleLR: epochs must be a positive int"),
        (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=9, pct_start=1.2),
         ValueError, r"OneCycleLR: pct_start must be in \(0, 1\)"),
        (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=9, anneal_strategy="exp"),
         ValueError, "OneCycleLR: anneal_strategy must be 'cos' or 'linear'"),
        (lambda o: lr_scheduler.OneCycleLR(o, max_lr=[0.1], total_steps=9), ValueError,
         "OneCycleLR: max_lr has 1 values, the optimizer has 2 param groups"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="lowest"), ValueError,
         "ReduceLROnPlateau: mode must be 'min' or 'max'"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), ValueError,
         r"ReduceLROnPlateau: factor must be in \[0, 1\), got 1.0"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=-1), ValueError,
         "ReduceLROnPlateau: patience must be an int >= 0"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="pct"), ValueError,
         "ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs'"),
        (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=[0.1, -0.1]), ValueError,
         "ReduceLROnPlateau: min_lr must be >= 0"),
        (lambda o: lr_scheduler.SequentialLR(o, [], milestones=[]), ValueError,
         "SequentialLR: needs at least one scheduler"),
        (lambda o: lr_scheduler.SequentialLR(
            o, [lr_scheduler.StepLR(o, 2), lr_scheduler.StepLR(o, 3)], milestones=[]),
         ValueError, "got 2 schedulers and 0 milestones"),
        (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.ReduceLROnPlateau(o)], []),
         ValueError, "scheduler 0 is a ReduceLROnPlateau"),
        (lambda o: lr_scheduler.SequentialLR(
            o, [lr_scheduler.StepLR(_optimizer(gw, "SGD"), 2)], milestones=[]),
         ValueError, r"scheduler 0 \(StepLR\) drives a different optimizer"),
        (lambda o: lr_scheduler.StepLR("adam", step_size=2), TypeError,
         "StepLR: expected a gradwise Optimizer, got str"),
        (lambda o: lr_scheduler.StepLR(o, step_size=2, last_epoch=5), KeyError,
         "has no 'initial_lr'"),
    ],
)
def test_invalid_arguments_raise_clear_errors(build: Callable, error: type,
                                              message: str) -> None:
    with pytest.raises(error, match=message):
        build(_optimizer(gw, "SGD"))


def test_one_cycle_refuses_to_step_past_its_end_and_needs_momentum() -> None:
    opt = _optimizer(gw, "SGD")
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="stepped 4 times, but total_steps is 3"):
        sched.step()
    adagrad = gw.optim.Adagrad([gw.Tensor(np.zeros(2), requires_grad=True)])
    with pytest.raises(ValueError, match="Adagrad has neither"):
        lr_scheduler.OneCycleLR(adagrad, max_lr=0.1, total_steps=3)


def test_load_state_dict_of_another_schedule_is_refused() -> None:
    step = lr_scheduler.StepLR(_optimizer(gw, "SGD"), step_size=3)
    cosine = lr_scheduler.CosineAnnealingLR(_optimizer(gw, "SGD"), T_max=10)
    with pytest.raises(ValueError, match=r"missing keys \['T_max', 'eta_min'\]"):
        cosine.load_state_dict(step.state_dict())


def test_chained_schedules_compose_like_pytorch() -> None:
    torch = pytest.importorskip("torch")
    sequences = []
    for lib in (gw, torch):
        opt = _optimizer(lib, "SGD")
        first = lib.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
        second = lib.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
        lrs = []
        for _ in range(20):
            opt.step()
            first.step()
            second.step()
            lrs.append([group["lr"] for group in opt.param_groups])
        sequences.append(lrs)
    np.testing.assert_allclose(*sequences, rtol=1e-12)


@pytest.mark.parametrize("build, error, message", [
    (lambda o: lr_scheduler.ChainedScheduler([]), ValueError, "at least one scheduler"),
    (lambda o: lr_scheduler.ChainedScheduler([lr_scheduler.ReduceLROnPlateau(o)]), ValueError,
     "scheduler 0 is a ReduceLROnPlateau"),
    (lambda o: lr_scheduler.ChainedScheduler([lr_scheduler.StepLR(o, 2), "x"]), TypeError,
     "scheduler 1 is a str"),
    (lambda o: lr_scheduler.ChainedScheduler(
        [lr_scheduler.StepLR(o, 2), lr_scheduler.StepLR(_optimizer(gw, "SGD"), 2)]),
     ValueError, r"scheduler 1 \(StepLR\) drives a different optimizer"),
])
def test_chained_scheduler_refuses_what_torch_refuses(build: Callable, error: type,
                                                      message: str) -> None:
    with pytest.raises(error, match=message):
        build(_optimizer(gw, "SGD"))
