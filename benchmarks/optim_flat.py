"""Would one flat buffer per param group make the optimizer step faster? (issue 14, kernels-flat)

Times SGD with momentum (lr 1e-6, momentum 0.9) on the six parameters of the 784-256-128-10 MLP
(235k float32 values), 1 thread, process CPU time, contenders interleaved, medians of rounds of
``--steps`` steps each:

- ``per-parameter calls``: the step before branch kernels-flat (``PerParameterSGD`` below): one
  fused kernel call per parameter (autograd/kernels/optim.py ``sgd_kernel``), with the base
  class's checks and version bumps.
- ``group kernel (tuples)``: ``gw.optim.SGD`` now: identity checks against the group's cached
  plan (``Optimizer._planned_grads``), then one ``sgd_group_kernel`` call per 8 parameters over
  tuples of the parameters' own arrays (no flat layout, so nothing users see changes).
- ``flat, grads in place``: the best case of the flat design: data, gradient and momentum of
  every parameter are views into three flat buffers, and one ``sgd_kernel`` call updates them
  all, after a cheap per-step check that every ``p._data``/``p._grad`` still is its view (and
  the version bumps). Only reachable if the engine writes each leaf's gradient into its flat
  view; today it stores a fresh array (``zero_grad(set_to_none=True)``, the default, makes the
  next backward assign a new one; with ``set_to_none=False`` it computes ``old + new`` into a
  new array too).
- ``flat, grads gathered``: the same with gradients as the engine leaves them today: each step
  copies the six gradients into the flat gradient buffer first.
- ``kernel only (flat)``: the bare ``sgd_kernel`` call over the flat buffers, no Python around
  it: the floor any layout reaches.

Then Adam, RMSprop and Adagrad over the same parameters: their group kernel (one call per 8
parameters, since issue 14's kernels-mlp branch) against one kernel call per parameter (the same
optimizer with its group plan switched off), checked bitwise first.

Then the whole MLP training step (forward, backward, step, zero_grad) with ``gw.optim.SGD``
against ``PerParameterSGD``, and the time inside ``opt.step()`` in that step (cold caches after the
backward). Before timing, the contenders are checked to land on the same bits.
Results and the decision: benchmarks/README.md, "Flat-buffer optimizer updates".

Run: python benchmarks/optim_flat.py [--rounds 9] [--steps 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import load_line, machine_description, setup_threads

import gradwise as gw
from gradwise.autograd.kernels import optim as optim_kernels
from gradwise.autograd.kernels._jit import jit_enabled

SHAPES = [(256, 784), (256,), (128, 256), (128,), (10, 128), (10,)]
LR, MOMENTUM = 1e-6, 0.9


def make_params(rng: np.random.Generator) -> list[gw.Tensor]:
    params = []
    for shape in SHAPES:
        p = gw.nn.Parameter(gw.tensor(rng.standard_normal(shape, dtype=np.float32)))
        p._grad = rng.standard_normal(shape, dtype=np.float32)
        params.append(p)
    return params


class FlatSGD:
    """SGD momentum over flat buffers, as the flat design would run it (benchmark prototype)."""

    def __init__(self, params: list[gw.Tensor], gather: bool, lr: float = LR) -> None:
        total = sum(p._data.size for p in params)
        self.params, self.gather = params, gather
        self.data = np.empty(total, np.float32)
        self.grad = np.empty(total, np.float32)
        self.buf = np.zeros(total, np.float32)
        self.views = []
        start = 0
        for p in params:
            stop = start + p._data.size
            data_view = self.data[start:stop].reshape(p._data.shape)
            grad_view = self.grad[start:stop].reshape(p._data.shape)
            data_view[...] = p._data
            grad_view[...] = p._grad
            p._data = data_view
            if not gather:
                p._grad = grad_view
            self.views.append((data_view, grad_view, start, stop))
            start = stop
        self.first = True
        scalar = np.float32
        self.neg_lr, self.zero, self.momentum, self.one = (
            scalar(-lr), scalar(0), scalar(MOMENTUM), scalar(1))

    def step(self) -> None:
        """Check the layout, bump the versions, one kernel call (momentum without dampening)."""
        for p, (data_view, grad_view, start, stop) in zip(self.params, self.views, strict=True):
            if p._data is not data_view:
                raise RuntimeError("layout changed (the real thing would fall back)")
            grad = p._grad
            if self.gather:
                self.grad[start:stop] = grad.reshape(-1)
            elif grad is not grad_view:
                raise RuntimeError("gradient not in its flat view (would fall back)")
            p._version[0] += 1
        self.kernel()

    def kernel(self) -> None:
        optim_kernels.sgd_kernel(self.data, self.grad, self.buf, self.neg_lr, self.zero, False,
                                 False, self.momentum, True, self.one, False, False, self.first)
        self.first = False


class PerParameterSGD(gw.optim.SGD):
    """The step before this branch: one ``sgd_kernel`` call per parameter (momentum only)."""

    def _step_group(self, group):
        scalar = np.float32
        for param, grad, state in self._params_with_grad(group):
            data = param._data
            buf = state.get("momentum_buffer")
            if optim_kernels.usable(data, grad, buf):
                first = buf is None
                if first:
                    buf = state["momentum_buffer"] = np.empty_like(data)
                optim_kernels.sgd_kernel(
                    data.reshape(-1), grad.reshape(-1), buf.reshape(-1), scalar(-group["lr"]),
                    scalar(0), False, False, scalar(group["momentum"]), True, scalar(1), False,
                    False, first)


def check_bitwise(rng: np.random.Generator) -> None:
    """The contenders must land on the same bits (else the timing means nothing)."""
    runs = {}
    for name in ("SGD", "PerParameterSGD", "FlatSGD"):
        params = make_params(np.random.default_rng(1))
        if name == "FlatSGD":
            flat = FlatSGD(params, gather=True, lr=0.1)
            flat.first, step = True, flat.step
        else:
            cls = gw.optim.SGD if name == "SGD" else PerParameterSGD
            step = cls(params, lr=0.1, momentum=MOMENTUM).step
        for k in range(4):
            grads = np.random.default_rng(10 + k)
            for p in params:
                p._grad = grads.standard_normal(p._data.shape, dtype=np.float32)
            step()
        runs[name] = [p._data.copy() for p in params]
    for name in ("PerParameterSGD", "FlatSGD"):
        for ours, reference in zip(runs[name], runs["SGD"], strict=True):
            np.testing.assert_array_equal(ours, reference, err_msg=name)


def _without_plan(opt: gw.optim.Optimizer) -> gw.optim.Optimizer:
    """``opt`` with its group plan off: every step takes the per-parameter kernel calls."""
    opt._planned_grads = lambda group, keys: None  # type: ignore[method-assign]
    return opt


OTHER_OPTIMIZERS = {
    "Adam": (gw.optim.Adam, dict(lr=LR)),
    "RMSprop (momentum)": (gw.optim.RMSprop, dict(lr=LR, momentum=MOMENTUM)),
    "Adagrad": (gw.optim.Adagrad, dict(lr=LR)),
}


def other_optimizers(rng: np.random.Generator, rounds: int, steps: int) -> None:
    """Group kernel vs one call per parameter for the other kernelised optimizers."""
    for name, (cls, settings) in OTHER_OPTIMIZERS.items():
        finals = []
        for planned in (True, False):
            params = make_params(np.random.default_rng(1))
            opt = cls(params, **settings)
            if not planned:
                _without_plan(opt)
            for _ in range(4):
                opt.step()
            finals.append([p._data.copy() for p in params])
        for ours, reference in zip(*finals, strict=True):
            np.testing.assert_array_equal(ours, reference, err_msg=name)
        contenders = {
            "per-parameter calls": _without_plan(cls(make_params(rng), **settings)).step,
            "group kernel (tuples)": cls(make_params(rng), **settings).step,
        }
        report(f"{name} over the MLP's 6 parameters, 1 thread, CPU time, median of {rounds} "
               f"rounds x {steps} steps", interleaved(contenders, rounds, steps),
               "per-parameter calls")


def optimizer_step(cls, rng: np.random.Generator):
    return cls(make_params(rng), lr=LR, momentum=MOMENTUM).step


def mlp_step(cls, rng: np.random.Generator):
    """One whole training step of the MLP at batch 128 (forward, backward, step, zero_grad)."""
    gw.manual_seed(0)
    nn = gw.nn
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                          nn.Linear(128, 10))
    opt = cls(model.parameters(), lr=0.01, momentum=MOMENTUM)
    x = gw.tensor(rng.random((128, 784), dtype=np.float32))
    y = gw.tensor(rng.integers(0, 10, 128))

    inside: list[float] = []  # CPU seconds of each opt.step() call

    def step() -> None:
        loss = gw.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        start = time.process_time()
        opt.step()
        inside.append(time.process_time() - start)
        opt.zero_grad()

    step.inside = inside  # type: ignore[attr-defined]
    return step


def interleaved(contenders: dict, rounds: int, steps: int) -> dict[str, list[float]]:
    """Per-step CPU seconds of each round of each contender, contenders taking turns."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # compile and warm the caches
        for _ in range(20):
            fn()
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.process_time()
            for _ in range(steps):
                fn()
            times[name].append((time.process_time() - start) / steps)
    return times


def report(title: str, times: dict[str, list[float]], base_name: str) -> None:
    base = statistics.median(times[base_name])
    print(title)
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:26s} {median * 1e6:8.1f} us  ({median / base:.3f}x; rounds "
              f"{min(values) * 1e6:.1f}-{max(values) * 1e6:.1f} us)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    setup_threads(1)
    print(machine_description())
    print(load_line("start"))
    if not jit_enabled():
        print("numba kernels are off (GRADWISE_JIT=0 or numba missing): nothing to compare")
        return
    rng = np.random.default_rng(0)
    check_bitwise(rng)
    contenders = {
        "per-parameter calls": optimizer_step(PerParameterSGD, rng),
        "group kernel (tuples)": optimizer_step(gw.optim.SGD, rng),
        "flat, grads in place": FlatSGD(make_params(rng), gather=False).step,
        "flat, grads gathered": FlatSGD(make_params(rng), gather=True).step,
        "kernel only (flat)": FlatSGD(make_params(rng), gather=False).kernel,
    }
    report(f"SGD momentum over the MLP's 6 parameters (235k float32), 1 thread, CPU time, "
           f"median of {args.rounds} rounds x {args.steps} steps",
           interleaved(contenders, args.rounds, args.steps), "per-parameter calls")
    other_optimizers(rng, args.rounds, args.steps)
    steps = max(args.steps // 10, 5)
    whole = {"per-parameter calls": mlp_step(PerParameterSGD, rng),
             "group kernel (tuples)": mlp_step(gw.optim.SGD, rng)}
    report(f"whole MLP training step, batch 128, 1 thread, CPU time, median of "
           f"{args.rounds} rounds x {steps} steps",
           interleaved(whole, args.rounds, steps), "per-parameter calls")
    for name, step in whole.items():
        inside = step.inside[20:]  # after the warm-up steps
        print(f"  inside that step, opt.step() of {name}: median "
              f"{statistics.median(inside) * 1e6:.1f} us, 10th percentile "
              f"{np.percentile(inside, 10) * 1e6:.1f} us")
    print(load_line("end"))


if __name__ == "__main__":
    main()
