"""Learning-rate schedules with PyTorch's behaviour, each also a pure function of the step.

``scheduler.step()`` behaves like PyTorch's: it updates ``group["lr"]`` from the current value
(the "chainable" form), so two schedulers on one optimizer compose, and the numbers match
PyTorch's step for step. ``scheduler.lr_at(step)`` is the closed form: the learning rates the
schedule gives after ``step`` calls to ``step()``, computed from ``base_lrs`` alone, with no side
effects (nanoGPT's habit: a schedule is a function of the step number).

Typical loop::

    opt = gw.optim.SGD(params, lr=0.1, momentum=0.9)
    sched = gw.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    for epoch in range(100):
        train_one_epoch(opt)            # calls opt.step()
        sched.step()

``state_dict()`` returns plain JSON types (no arrays), ready for ``json.dump``.
"""

from __future__ import annotations

import collections
import copy
import math
import numbers
from bisect import bisect_right
from typing import Any

from gradwise.optim.optimizer import Optimizer


def _check(owner: str, ok: bool, name: str, constraint: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"{owner}: {name} must be {constraint}, got {value!r}")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _per_group(owner: str, name: str, optimizer: Optimizer, value: Any) -> list[float]:
    """One value per param group: a scalar is repeated, a list must have one per group."""
    if isinstance(value, list | tuple):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(f"{owner}: {name} has {len(value)} values, the optimizer has "
                             f"{len(optimizer.param_groups)} param groups")
        return [float(v) for v in value]
    return [float(value)] * len(optimizer.param_groups)


class LRScheduler:
    """Base class of the schedules: sets ``group["lr"]`` of an optimizer's param groups.

    Args:
        optimizer: the optimizer whose learning rates this schedule drives.
        last_epoch: index of the last step taken; -1 (default) starts from the beginning and
            records each group's current lr as ``group["initial_lr"]``.

    Attributes:
        base_lrs: the initial learning rate of each param group.
        last_epoch: how many times ``step()`` has been called (0 right after construction).

    Subclasses implement ``get_lr()`` (PyTorch's chainable update, reading ``group["lr"]``) and
    ``lr_at(step)`` (the closed form from ``base_lrs``).
    """

    # attributes that are not part of state_dict()
    _not_saved: tuple[str, ...] = ("optimizer", "_is_initial")
    # True only during the step the constructor takes (PyTorch's "initial mode")
    _is_initial = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{self._name}: expected a gradwise Optimizer, got "
                            f"{type(optimizer).__name__}")
        _check(self._name, _is_int(last_epoch) and last_epoch >= -1, "last_epoch",
               "an int >= -1", last_epoch)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{self._name}: param_groups[{i}] has no 'initial_lr'; "
                                   "resuming with last_epoch >= 0 needs the optimizer state "
                                   "loaded first")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    @property
    def _name(self) -> str:
        return type(self).__name__

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The next learning rates, from the current ``group["lr"]`` (PyTorch's chainable form)."""
        raise NotImplementedError(f"{self._name} does not implement get_lr")

    def lr_at(self, step: int) -> list[float]:
        """The learning rate of each param group after ``step`` calls to ``step()``.

        A pure function of ``step`` and ``base_lrs``: reads and changes nothing else.
        """
        raise NotImplementedError(f"{self._name} has no closed form")

    def get_last_lr(self) -> list[float]:
        """The learning rates the last ``step()`` set, one per param group."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance the schedule by one step and write the new lr into every param group."""
        self._step_count += 1
        self._update_lr(None)

    def _update_lr(self, epoch: int | None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            values = self.lr_at(epoch)
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume the schedule, as plain JSON types (not the optimizer).

        It also holds the private keys torch's ``load_state_dict`` reads (``lr_lambdas`` as
        torch saves plain functions, ``_scale_fn_custom``; ``_is_initial`` and
        ``_get_lr_called_within_step``), so the dict loads into the torch scheduler too.
        """
        state = {key: copy.deepcopy(value) for key, value in vars(self).items()
                 if key not in self._not_saved}
        state.setdefault("_is_initial", False)
        state.setdefault("_get_lr_called_within_step", False)
        if self._name in ("LambdaLR", "MultiplicativeLR"):
            state.setdefault("lr_lambdas", [None] * len(self.optimizer.param_groups))
        if self._name == "CyclicLR":
            state.setdefault("_scale_fn_custom", None)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`, or by the torch scheduler of the same
        name: torch's private keys (``_get_lr_called_within_step``, ``_is_initial``,
        ``_scale_fn_custom``, ``lr_lambdas`` of plain functions, ReduceLROnPlateau's
        ``default_min_lr``/``mode_worse``) are accepted, and OneCycleLR's
        ``_anneal_func_type``/``_schedule_phases`` give ``anneal_strategy``/``three_phase``.

        Raises:
            ValueError: keys are missing or unexpected (a state of a different schedule).
        """
        expected = {key for key in vars(self) if key not in self._not_saved}
        state_dict = _from_torch_state(dict(state_dict), expected)
        missing, unexpected = expected - set(state_dict), set(state_dict) - expected
        if missing or unexpected:
            raise ValueError(f"{self._name}.load_state_dict: missing keys {sorted(missing)}, "
                             f"unexpected keys {sorted(unexpected)}")
        self.__dict__.update(copy.deepcopy(state_dict))


# torch's private scheduler keys that carry nothing gradwise's schedules need
_TORCH_PRIVATE = ("_get_lr_called_within_step", "_is_initial", "_scale_fn_custom",
                  "lr_lambdas", "default_min_lr", "mode_worse", "_anneal_func_type",
                  "_schedule_phases")


def _from_torch_state(state: dict[str, Any], expected: set[str]) -> dict[str, Any]:
    """A torch scheduler's state dict in gradwise's keys (a gradwise one passes unchanged):
    OneCycleLR's ``_anneal_func_type`` and ``_schedule_phases`` become ``anneal_strategy`` and
    ``three_phase``; torch's other private keys are dropped when gradwise has no such field.

    Raises:
        ValueError: a ``lr_lambdas`` entry that is not None (torch saved a callable object's
            state, which gradwise does not restore: pass the same functions again).
    """
    if "anneal_strategy" in expected and "_anneal_func_type" in state:
        state.setdefault("anneal_strategy", state["_anneal_func_type"])
    if "three_phase" in expected and "_schedule_phases" in state:
        state.setdefault("three_phase", len(state["_schedule_phases"]) == 3)
    milestones = state.get("milestones")
    if isinstance(milestones, collections.Counter):  # torch's MultiStepLR keeps a Counter
        state["milestones"] = sorted(milestones.elements())
    lambdas = state.get("lr_lambdas")
    if "lr_lambdas" not in expected and lambdas and any(v is not None for v in lambdas):
        raise ValueError("load_state_dict: lr_lambdas holds the saved state of callable "
                         "objects, which gradwise does not restore; pass the same functions "
                         "to the schedule again")
    return {key: value for key, value in state.items()
            if key in expected or key not in _TORCH_PRIVATE}


class LambdaLR(LRScheduler):
    """The learning rate is the base rate times a user function of the step.

    ``lr(t) = base_lr * lr_lambda(t)``, one function for every param group or one per group.
    The functions are not part of ``state_dict()`` (PyTorch saves only callable objects'
    ``__dict__``; gradwise saves neither: pass the same functions again when resuming).

    Args:
        optimizer: the optimizer to schedule.
        lr_lambda: a function of the step count (an int) returning a factor, or a list of them,
            one per param group.
        last_epoch: see :class:`LRScheduler`.

    Raises:
        TypeError: ``lr_lambda`` is not callable (or a list of callables).
        ValueError: the list's length differs from the number of param groups.

    Example:
        >>> sched = LambdaLR(opt, lambda step: 0.95 ** step)
    """

    _not_saved = (*LRScheduler._not_saved, "lr_lambdas")

    def __init__(self, optimizer: Optimizer, lr_lambda: Any, last_epoch: int = -1) -> None:
        groups = len(optimizer.param_groups)
        if isinstance(lr_lambda, list | tuple):
            if len(lr_lambda) != groups:
                raise ValueError(f"LambdaLR: expected {groups} lr_lambdas (one per param group), "
                                 f"got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * groups
        for function in self.lr_lambdas:
            if not callable(function):
                raise TypeError(f"LambdaLR: lr_lambda must be callable, got {function!r}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return self.lr_at(self.last_epoch)

    def lr_at(self, step: int) -> list[float]:
        return [base_lr * function(step)
                for base_lr, function in zip(self.base_lrs, self.lr_lambdas, strict=True)]


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps.

    ``lr(t) = base_lr * gamma ** (t // step_size)``

    Args:
        optimizer: the optimizer to schedule.
        step_size: period of the decay, a positive int.
        gamma: multiplicative factor, > 0.
        last_epoch: see :class:`LRScheduler`.

    Example:
        >>> sched = StepLR(opt, step_size=30, gamma=0.1)  # 0.1 for 30 steps, 0.01 for 30, ...
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        _check("StepLR", _is_int(step_size) and step_size > 0, "step_size", "a positive int",
               step_size)
        _check("StepLR", _is_real(gamma) and gamma > 0, "gamma", "> 0", gamma)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def lr_at(self, step: int) -> list[float]:
        return [base_lr * self.gamma ** (step // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each milestone step.

    ``lr(t) = base_lr * gamma ** (number of milestones <= t)``; a milestone listed twice
    counts twice.

    Args:
        optimizer: the optimizer to schedule.
        milestones: step indices, ints >= 0 (kept sorted).
        gamma: multiplicative factor, > 0.
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, milestones: list[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        milestones = list(milestones)
        _check("MultiStepLR", all(_is_int(m) and m >= 0 for m in milestones), "milestones",
               "ints >= 0", milestones)
        milestones = sorted(milestones)
        _check("MultiStepLR", _is_real(gamma) and gamma > 0, "gamma", "> 0", gamma)
        self.milestones = milestones
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        times = self.milestones.count(self.last_epoch)
        if times == 0:
            return self._current_lrs()
        return [group["lr"] * self.gamma**times for group in self.optimizer.param_groups]

    def lr_at(self, step: int) -> list[float]:
        passed = bisect_right(self.milestones, step)
        return [base_lr * self.gamma**passed for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every step: ``lr(t) = base_lr * gamma ** t``.

    Args:
        optimizer: the optimizer to schedule.
        gamma: multiplicative factor, > 0.
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        _check("ExponentialLR", _is_real(gamma) and gamma > 0, "gamma", "> 0", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def lr_at(self, step: int) -> list[float]:
        return [base_lr * self.gamma**step for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Anneal the learning rate along a half cosine from ``base_lr`` to ``eta_min``.

    ``lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``

    ``step()`` uses PyTorch's recursive form, which gives the same numbers (to rounding) and
    composes with other changes to the lr. Past ``T_max`` the cosine rises again (no restarts).

    Args:
        optimizer: the optimizer to schedule.
        T_max: number of steps of the half period, a positive int.
        eta_min: the lowest learning rate, >= 0.
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        _check("CosineAnnealingLR", _is_int(T_max) and T_max > 0, "T_max", "a positive int",
               T_max)
        _check("CosineAnnealingLR", _is_real(eta_min) and eta_min >= 0, "eta_min", ">= 0",
               eta_min)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        t, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if (t - 1 - t_max) % (2 * t_max) == 0:
            # at the trough the recursion would divide by 1 + cos(pi) = 0
            return [group["lr"] + (base_lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                    for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups,
                                              strict=True)]
        ratio = (1 + math.cos(math.pi * t / t_max)) / (1 + math.cos(math.pi * (t - 1) / t_max))
        return [ratio * (group["lr"] - eta_min) + eta_min
                for group in self.optimizer.param_groups]

    def lr_at(self, step: int) -> list[float]:
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * step / self.T_max)) / 2 for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the learning rate by a factor that moves linearly (a warm-up, usually).

    ``lr(t) = base_lr * (start_factor + (end_factor - start_factor) * min(t, total_iters)
    / total_iters)``

    Args:
        optimizer: the optimizer to schedule.
        start_factor: factor at step 0, in (0, 1].
        end_factor: factor from step ``total_iters`` on, in [0, 1].
        total_iters: number of steps of the ramp, a positive int.
        last_epoch: see :class:`LRScheduler`.

    Example:
        >>> warmup = LinearLR(opt, start_factor=0.01, total_iters=500)
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1) -> None:
        _check("LinearLR", _is_real(start_factor) and 0 < start_factor <= 1, "start_factor",
               "in (0, 1]", start_factor)
        _check("LinearLR", _is_real(end_factor) and 0 <= end_factor <= 1, "end_factor",
               "in [0, 1]", end_factor)
        _check("LinearLR", _is_int(total_iters) and total_iters > 0, "total_iters",
               "a positive int", total_iters)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        delta = self.end_factor - self.start_factor
        scale = 1.0 + delta / (self.total_iters * self.start_factor
                               + (self.last_epoch - 1) * delta)
        return [group["lr"] * scale for group in self.optimizer.param_groups]

    def lr_at(self, step: int) -> list[float]:
        factor = (self.start_factor + (self.end_factor - self.start_factor)
                  * min(self.total_iters, step) / self.total_iters)
        return [base_lr * factor for base_lr in self.base_lrs]


class OneCycleLR(LRScheduler):
    """The 1cycle policy: warm up to ``max_lr``, then anneal far below the start.

    The lr goes from ``max_lr / div_factor`` up to ``max_lr`` over the first ``pct_start`` of
    ``total_steps``, then down to ``max_lr / div_factor / final_div_factor`` (with
    ``three_phase``: back down to the start over an equal span, then to the minimum). Momentum
    (SGD's ``momentum`` or Adam's ``beta1``) moves the opposite way between ``max_momentum`` and
    ``base_momentum`` when ``cycle_momentum`` is on. Call ``step()`` after every batch.

    Args:
        optimizer: the optimizer to schedule.
        max_lr: peak learning rate, one value or one per param group.
        total_steps: length of the cycle; or give ``epochs`` and ``steps_per_epoch``.
        epochs: number of epochs (with ``steps_per_epoch``).
        steps_per_epoch: batches per epoch (with ``epochs``).
        pct_start: fraction of the cycle spent warming up, in (0, 1).
        anneal_strategy: ``"cos"`` or ``"linear"``.
        cycle_momentum: cycle momentum inversely to the lr.
        base_momentum: momentum at the peak lr (one value or one per group).
        max_momentum: momentum at the start and end (one value or one per group).
        div_factor: ``initial_lr = max_lr / div_factor``, > 0.
        final_div_factor: ``min_lr = initial_lr / final_div_factor``, > 0.
        three_phase: use the symmetric three-phase schedule of the original paper.
        last_epoch: see :class:`LRScheduler`.

    Example:
        >>> sched = OneCycleLR(opt, max_lr=0.1, epochs=10, steps_per_epoch=len(loader))
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | list[float],
                 total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.85,
                 max_momentum: float | list[float] = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        owner = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{owner}: expected a gradwise Optimizer, got "
                            f"{type(optimizer).__name__}")
        if total_steps is not None:
            _check(owner, _is_int(total_steps) and total_steps > 0, "total_steps",
                   "a positive int", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            _check(owner, _is_int(epochs) and epochs > 0, "epochs", "a positive int", epochs)
            _check(owner, _is_int(steps_per_epoch) and steps_per_epoch > 0, "steps_per_epoch",
                   "a positive int", steps_per_epoch)
            total_steps = epochs * steps_per_epoch
        else:
            raise ValueError(f"{owner}: give total_steps, or both epochs and steps_per_epoch")
        _check(owner, _is_real(pct_start) and 0 < pct_start < 1, "pct_start", "in (0, 1)",
               pct_start)
        _check(owner, anneal_strategy in ("cos", "linear"), "anneal_strategy",
               "'cos' or 'linear'", anneal_strategy)
        _check(owner, _is_real(div_factor) and div_factor > 0, "div_factor", "> 0", div_factor)
        _check(owner, _is_real(final_div_factor) and final_div_factor > 0, "final_div_factor",
               "> 0", final_div_factor)
        self.total_steps = int(total_steps)
        self.anneal_strategy = anneal_strategy
        self.three_phase = bool(three_phase)
        warm_end = float(pct_start * self.total_steps) - 1
        self._schedule_phases: list[dict[str, Any]]
        if three_phase:
            self._schedule_phases = [
                {"end_step": warm_end, "start_lr": "initial_lr", "end_lr": "max_lr",
                 "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": float(2 * pct_start * self.total_steps) - 2,
                 "start_lr": "max_lr", "end_lr": "initial_lr",
                 "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
                {"end_step": self.total_steps - 1, "start_lr": "initial_lr",
                 "end_lr": "min_lr", "start_momentum": "max_momentum",
                 "end_momentum": "max_momentum"},
            ]
        else:
            self._schedule_phases = [
                {"end_step": warm_end, "start_lr": "initial_lr", "end_lr": "max_lr",
                 "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": self.total_steps - 1, "start_lr": "max_lr", "end_lr": "min_lr",
                 "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
            ]

        max_lrs = _per_group(owner, "max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for lr, group in zip(max_lrs, optimizer.param_groups, strict=True):
                group["initial_lr"] = lr / div_factor
                group["max_lr"] = lr
                group["min_lr"] = group["initial_lr"] / final_div_factor

        self.cycle_momentum = bool(cycle_momentum)
        self.use_beta1 = False
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"{owner}: cycle_momentum=True needs an optimizer with "
                                 f"'momentum' or 'betas'; {type(optimizer).__name__} has "
                                 "neither (pass cycle_momentum=False)")
            self.use_beta1 = "betas" in optimizer.defaults
            max_momentums = _per_group(owner, "max_momentum", optimizer, max_momentum)
            base_momentums = _per_group(owner, "base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for high, low, group in zip(max_momentums, base_momentums,
                                            optimizer.param_groups, strict=True):
                    self._set_momentum(group, high)
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict[str, Any], momentum: float) -> None:
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _at(self, group: dict[str, Any], step: int) -> tuple[float, float | None]:
        """(lr, momentum) of one group at ``step``, from the group's fixed cycle bounds."""
        start_step = 0.0
        for i, phase in enumerate(self._schedule_phases):
            end_step = phase["end_step"]
            if step <= end_step or i == len(self._schedule_phases) - 1:
                pct = (step - start_step) / (end_step - start_step)
                lr = self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct)
                momentum = None
                if self.cycle_momentum:
                    momentum = self._anneal(group[phase["start_momentum"]],
                                            group[phase["end_momentum"]], pct)
                return lr, momentum
            start_step = end_step
        raise AssertionError("unreachable: the last phase always matches")

    def _check_step(self, step: int) -> None:
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {step} times, but total_steps is "
                             f"{self.total_steps}")

    def get_lr(self) -> list[float]:
        self._check_step(self.last_epoch)
        lrs = []
        for group in self.optimizer.param_groups:
            lr, momentum = self._at(group, self.last_epoch)
            lrs.append(lr)
            if momentum is not None:
                self._set_momentum(group, momentum)
        return lrs

    def lr_at(self, step: int) -> list[float]:
        self._check_step(step)
        return [self._at(group, step)[0] for group in self.optimizer.param_groups]

    def momentum_at(self, step: int) -> list[float | None]:
        """The momentum (or beta1) of each group at ``step``; None without cycle_momentum."""
        self._check_step(step)
        return [self._at(group, step)[1] for group in self.optimizer.param_groups]


class ReduceLROnPlateau(LRScheduler):
    """Multiply the learning rate by ``factor`` when a metric stops improving.

    Call ``step(metric)`` once per evaluation. A metric counts as better than the best so far
    when it beats ``best * (1 - threshold)`` (mode ``"min"``, threshold_mode ``"rel"``),
    ``best - threshold`` (``"abs"``), or the mirror images in mode ``"max"``. After more than
    ``patience`` evaluations without improvement the lr is reduced (never below ``min_lr``,
    and not at all if the change would be under ``eps``), then ``cooldown`` evaluations pass
    before bad ones count again.

    Args:
        optimizer: the optimizer to schedule.
        mode: ``"min"`` (lower is better, e.g. a loss) or ``"max"`` (e.g. an accuracy).
        factor: multiplier of the lr on a reduction, in [0, 1).
        patience: bad evaluations tolerated before reducing, an int >= 0.
        threshold: the least change that counts as an improvement, >= 0.
        threshold_mode: ``"rel"`` or ``"abs"``.
        cooldown: evaluations to wait after a reduction, an int >= 0.
        min_lr: lower bound of the lr, one value or one per param group, >= 0.
        eps: reductions smaller than this are skipped, >= 0.

    Example:
        >>> sched = ReduceLROnPlateau(opt, factor=0.5, patience=3)
        >>> sched.step(val_loss)
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float | list[float] = 0.0,
                 eps: float = 1e-8) -> None:
        owner = "ReduceLROnPlateau"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{owner}: expected a gradwise Optimizer, got "
                            f"{type(optimizer).__name__}")
        _check(owner, mode in ("min", "max"), "mode", "'min' or 'max'", mode)
        _check(owner, threshold_mode in ("rel", "abs"), "threshold_mode", "'rel' or 'abs'",
               threshold_mode)
        _check(owner, _is_real(factor) and 0 <= factor < 1, "factor", "in [0, 1)", factor)
        _check(owner, _is_int(patience) and patience >= 0, "patience", "an int >= 0", patience)
        _check(owner, _is_real(threshold) and threshold >= 0, "threshold", ">= 0", threshold)
        _check(owner, _is_int(cooldown) and cooldown >= 0, "cooldown", "an int >= 0", cooldown)
        _check(owner, _is_real(eps) and eps >= 0, "eps", ">= 0", eps)
        self.optimizer = optimizer
        self.min_lrs = _per_group(owner, "min_lr", optimizer, min_lr)
        _check(owner, all(v >= 0 for v in self.min_lrs), "min_lr", ">= 0", min_lr)
        self.mode = mode
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self.best: float | None = None  # None: nothing seen yet (JSON has no infinity)
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _is_better(self, value: float) -> bool:
        best = self.best
        if best is None:
            best = math.inf if self.mode == "min" else -math.inf
        if self.mode == "min":
            bound = best * (1 - self.threshold) if self.threshold_mode == "rel" else (
                best - self.threshold)
            return value < bound
        bound = best * (1 + self.threshold) if self.threshold_mode == "rel" else (
            best + self.threshold)
        return value > bound

    def step(self, metrics: Any) -> None:  # type: ignore[override]
        """Record one evaluation of the monitored metric; reduce the lr if it has plateaued."""
        current = float(metrics.item() if hasattr(metrics, "item") else metrics)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad evaluations during cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        if len(self.min_lrs) != len(self.optimizer.param_groups):
            raise RuntimeError(f"ReduceLROnPlateau: the optimizer has "
                               f"{len(self.optimizer.param_groups)} param groups, min_lrs has "
                               f"{len(self.min_lrs)}; set .min_lrs to one value per group")
        for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs, strict=True):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    @property
    def in_cooldown(self) -> bool:
        """True while the scheduler waits ``cooldown`` epochs after a reduction before watching
        again.
        """
        return self.cooldown_counter > 0


class _ComposedScheduler(LRScheduler):
    """A schedule made of other schedules (``_schedulers``): its state dict holds theirs under
    ``"_schedulers"``, as torch's SequentialLR and ChainedScheduler do."""

    _schedulers: list[Any]

    @staticmethod
    def _check_schedulers(owner: str, schedulers: list[Any], optimizer: Any, why: str) -> None:
        """Each inner schedule must be an LRScheduler (not ReduceLROnPlateau: ``why``) driving
        ``optimizer``, as torch checks.

        Raises:
            ValueError: a ReduceLROnPlateau, or a schedule of another optimizer.
            TypeError: not an LRScheduler.
        """
        for i, scheduler in enumerate(schedulers):
            if isinstance(scheduler, ReduceLROnPlateau):
                raise ValueError(f"{owner}: scheduler {i} is a ReduceLROnPlateau, whose step() "
                                 f"needs a metric; {why}")
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(f"{owner}: scheduler {i} is a {type(scheduler).__name__}, "
                                "not an LRScheduler")
            if scheduler.optimizer is not optimizer:
                raise ValueError(f"{owner}: scheduler {i} ({type(scheduler).__name__}) drives "
                                 "a different optimizer")

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["_schedulers"] = [scheduler.state_dict() for scheduler in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore every inner schedule, then this one.

        Raises:
            ValueError: the saved state holds another number of schedules.
        """
        saved = state_dict.get("_schedulers")
        if not isinstance(saved, list) or len(saved) != len(self._schedulers):
            count = len(saved) if isinstance(saved, list) else 0
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved state holds "
                             f"{count} schedulers, this one has {len(self._schedulers)}")
        for scheduler, scheduler_state in zip(self._schedulers, saved, strict=True):
            scheduler.load_state_dict(scheduler_state)
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "_schedulers"})


class SequentialLR(_ComposedScheduler):
    """Run schedules one after another, switching at the given milestone steps.

    The i-th schedule runs from ``milestones[i - 1]`` on, restarted at its step 0.

    Args:
        optimizer: the optimizer all the schedules drive.
        schedulers: the schedules, each built on ``optimizer``.
        milestones: increasing non-negative step indices, one fewer than schedules (0: the
            next schedule takes over at once, as in PyTorch).
        last_epoch: see :class:`LRScheduler`.

    Example:
        >>> warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
        >>> decay = CosineAnnealingLR(opt, T_max=95)
        >>> sched = SequentialLR(opt, [warmup, decay], milestones=[5])
    """

    _not_saved = ("optimizer", "_is_initial", "_schedulers")

    def __init__(self, optimizer: Optimizer, schedulers: list[LRScheduler],
                 milestones: list[int], last_epoch: int = -1) -> None:
        owner = "SequentialLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{owner}: expected a gradwise Optimizer, got "
                            f"{type(optimizer).__name__}")
        schedulers = list(schedulers)
        milestones = list(milestones)
        if not schedulers:
            raise ValueError(f"{owner}: needs at least one scheduler")
        self._check_schedulers(owner, schedulers, optimizer, "it cannot run inside SequentialLR")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"{owner}: got {len(schedulers)} schedulers and "
                             f"{len(milestones)} milestones; need one milestone fewer than "
                             "schedulers")
        _check(owner, all(_is_int(m) and m >= 0 for m in milestones)
               and milestones == sorted(set(milestones)), "milestones",
               "increasing non-negative ints", milestones)
        self._schedulers = schedulers
        self._milestones = milestones
        self.optimizer = optimizer
        self.last_epoch = last_epoch + 1
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self._step_count = 0
        # undo the initial step each schedule took when it was built, then start the first one
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in schedulers:
            scheduler.last_epoch -= 1
        self._schedulers[bisect_right(milestones, 0)]._initial_step()
        self._last_lr = self._schedulers[bisect_right(milestones, 0)].get_last_lr()

    def _index(self, step: int) -> int:
        return bisect_right(self._milestones, step)

    def step(self) -> None:
        self._step_count += 1
        self.last_epoch += 1
        idx = self._index(self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def lr_at(self, step: int) -> list[float]:
        idx = self._index(step)
        offset = self._milestones[idx - 1] if idx > 0 else 0
        return self._schedulers[idx].lr_at(step - offset)


class ChainedScheduler(_ComposedScheduler):
    """Step several schedules together: each ``step()`` calls every schedule's ``step()`` in
    order, so their chainable updates compose (PyTorch's ``ChainedScheduler``).

    Args:
        schedulers: the schedules, all driving one optimizer; none may be a
            ReduceLROnPlateau (its ``step`` needs a metric).
        optimizer: that optimizer (default: the first schedule's).

    Raises:
        ValueError: no schedules, a ReduceLROnPlateau, or schedules of different optimizers.
        TypeError: an entry that is not a schedule.

    Example:
        >>> sched = ChainedScheduler([ConstantLR(opt, factor=0.1, total_iters=2),
        ...                           ExponentialLR(opt, gamma=0.9)])
    """

    _not_saved = ("optimizer", "_is_initial", "_schedulers")

    def __init__(self, schedulers: list[LRScheduler], optimizer: Optimizer | None = None) -> None:
        owner = "ChainedScheduler"
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError(f"{owner}: expects at least one scheduler to be chained")
        optimizer = optimizer or getattr(schedulers[0], "optimizer", None)
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{owner}: scheduler 0 is a {type(schedulers[0]).__name__} with "
                            "no optimizer; pass LRSchedulers")
        self._check_schedulers(owner, schedulers, optimizer, "it cannot be chained")
        self._schedulers = schedulers
        self.optimizer = optimizer
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def step(self) -> None:
        """Step every chained schedule once, in order."""
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


class MultiplicativeLR(LRScheduler):
    """Multiply the learning rate by ``lr_lambda(step)`` at every step, as PyTorch's
    ``MultiplicativeLR``: ``lr(t) = base_lr * prod_{k=1..t} lr_lambda(k)``.

    Args:
        optimizer: the optimizer to schedule.
        lr_lambda: a function of the step count returning a factor, or one per param group
            (not saved by ``state_dict()``, as :class:`LambdaLR`).
        last_epoch: see :class:`LRScheduler`.

    Raises:
        TypeError: ``lr_lambda`` is not callable. ValueError: a list of the wrong length.
    """

    _not_saved = (*LRScheduler._not_saved, "lr_lambdas")

    def __init__(self, optimizer: Optimizer, lr_lambda: Any, last_epoch: int = -1) -> None:
        groups = len(optimizer.param_groups)
        functions = list(lr_lambda) if isinstance(lr_lambda, list | tuple) else (
            [lr_lambda] * groups)
        if len(functions) != groups:
            raise ValueError(f"MultiplicativeLR: expected {groups} lr_lambdas (one per param "
                             f"group), got {len(functions)}")
        for function in functions:
            if not callable(function):
                raise TypeError(f"MultiplicativeLR: lr_lambda must be callable, got "
                                f"{function!r}")
        self.lr_lambdas = functions
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch <= 0:
            return self._current_lrs()
        return [group["lr"] * function(self.last_epoch) for group, function in
                zip(self.optimizer.param_groups, self.lr_lambdas, strict=True)]

    def lr_at(self, step: int) -> list[float]:
        out = []
        for base_lr, function in zip(self.base_lrs, self.lr_lambdas, strict=True):
            for k in range(1, step + 1):
                base_lr *= function(k)
            out.append(base_lr)
        return out


class ConstantLR(LRScheduler):
    """The learning rate times ``factor`` for the first ``total_iters`` steps, then the base
    rate, as PyTorch's ``ConstantLR``.

    Raises:
        ValueError: ``factor`` outside [0, 1] or ``total_iters`` not a non-negative int.
    """

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1) -> None:
        _check("ConstantLR", _is_real(factor) and 0 <= factor <= 1, "factor", "in [0, 1]",
               factor)
        _check("ConstantLR", _is_int(total_iters) and total_iters >= 0, "total_iters",
               "an int >= 0", total_iters)
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [group["lr"] * self.factor for group in self.optimizer.param_groups]
        if self.last_epoch != self.total_iters:
            return self._current_lrs()
        return [group["lr"] / self.factor for group in self.optimizer.param_groups]

    def lr_at(self, step: int) -> list[float]:
        scale = self.factor if step < self.total_iters else 1.0
        return [base_lr * scale for base_lr in self.base_lrs]


class PolynomialLR(LRScheduler):
    """Decay the learning rate to 0 over ``total_iters`` steps along a polynomial, as
    PyTorch's ``PolynomialLR``: ``lr(t) = base_lr * (1 - min(t, total_iters) / total_iters)
    ** power``.

    Raises:
        ValueError: ``total_iters`` not a positive int, ``power`` not a finite number.
    """

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0,
                 last_epoch: int = -1) -> None:
        _check("PolynomialLR", _is_int(total_iters) and total_iters > 0, "total_iters",
               "a positive int", total_iters)
        _check("PolynomialLR", _is_real(power), "power", "a finite number", power)
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, total = self.last_epoch, self.total_iters
        if t == 0 or t > total:
            return self._current_lrs()
        factor = ((1.0 - t / total) / (1.0 - (t - 1) / total)) ** self.power
        return [group["lr"] * factor for group in self.optimizer.param_groups]

    def lr_at(self, step: int) -> list[float]:
        factor = (1.0 - min(step, self.total_iters) / self.total_iters) ** self.power
        return [base_lr * factor for base_lr in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""Cosine annealing from ``base_lr`` to ``eta_min`` over ``T_i`` steps, then a restart,
    with ``T_i`` growing by ``T_mult`` after each restart (SGDR: Loshchilov and Hutter, 2017),
    as PyTorch's ``CosineAnnealingWarmRestarts``:
    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2``.

    ``step()`` advances one step; ``step(epoch)`` (a float allowed) jumps to that point, as
    PyTorch's.

    Raises:
        ValueError: ``T_0`` not a positive int, ``T_mult`` not an int >= 1, ``eta_min`` < 0.
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1,  # noqa: N803
                 eta_min: float = 0.0, last_epoch: int = -1) -> None:
        owner = "CosineAnnealingWarmRestarts"
        _check(owner, _is_int(T_0) and T_0 > 0, "T_0", "a positive int", T_0)
        _check(owner, _is_int(T_mult) and T_mult >= 1, "T_mult", "an int >= 1", T_mult)
        _check(owner, _is_real(eta_min) and eta_min >= 0, "eta_min", ">= 0", eta_min)
        self.T_0, self.T_mult, self.eta_min = T_0, T_mult, eta_min
        self.T_i: float = T_0
        self.T_cur: float = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base_lr in self.base_lrs]

    def _position(self, epoch: float) -> tuple[float, float]:
        """(T_cur, T_i) at ``epoch`` steps from the start."""
        if epoch < self.T_0:
            return epoch, self.T_0
        if self.T_mult == 1:
            return epoch % self.T_0, self.T_0
        n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
        return (epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1),
                self.T_0 * self.T_mult**n)

    def step(self, epoch: float | None = None) -> None:
        """One step on, or (``epoch`` given) to the point ``epoch`` of the schedule.

        Raises:
            ValueError: a negative ``epoch``.
        """
        self._step_count += 1
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur -= self.T_i
                self.T_i *= self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"CosineAnnealingWarmRestarts: epoch must be >= 0, got "
                                 f"{epoch!r}")
            self.T_cur, self.T_i = self._position(epoch)
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = self._current_lrs()

    def lr_at(self, step: int) -> list[float]:
        t_cur, t_i = self._position(step)
        return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * t_cur / t_i))
                / 2 for base_lr in self.base_lrs]


class CyclicLR(LRScheduler):
    """Cycle the learning rate between ``base_lr`` and ``max_lr`` (Smith, "Cyclical Learning
    Rates for Training Neural Networks", 2017), as PyTorch's ``CyclicLR``; call ``step()``
    after every batch. Momentum cycles the opposite way between ``max_momentum`` and
    ``base_momentum`` when ``cycle_momentum`` (SGD's momentum or Adam's beta1).

    Args:
        base_lr, max_lr: the bounds, one value or one per param group.
        step_size_up, step_size_down: steps of the rising and falling halves (down defaults
            to up).
        mode: "triangular", "triangular2" (amplitude halves each cycle) or "exp_range"
            (amplitude times ``gamma ** step``); or ``scale_fn`` with ``scale_mode``.

    Raises:
        ValueError: an unknown mode, non-positive step sizes, or ``cycle_momentum`` with an
            optimizer that has no momentum.
    """

    _not_saved = (*LRScheduler._not_saved, "_scale_fn_custom")

    def __init__(self, optimizer: Optimizer, base_lr: Any, max_lr: Any,
                 step_size_up: int = 2000, step_size_down: int | None = None,
                 mode: str = "triangular", gamma: float = 1.0, scale_fn: Any = None,
                 scale_mode: str = "cycle", cycle_momentum: bool = True,
                 base_momentum: Any = 0.8, max_momentum: Any = 0.9,
                 last_epoch: int = -1) -> None:
        owner = "CyclicLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{owner}: expected a gradwise Optimizer, got "
                            f"{type(optimizer).__name__}")
        _check(owner, _is_int(step_size_up) and step_size_up > 0, "step_size_up",
               "a positive int", step_size_up)
        down = step_size_up if step_size_down is None else step_size_down
        _check(owner, _is_int(down) and down > 0, "step_size_down", "a positive int", down)
        if scale_fn is None:
            _check(owner, mode in ("triangular", "triangular2", "exp_range"), "mode",
                   "'triangular', 'triangular2' or 'exp_range'", mode)
        _check(owner, scale_mode in ("cycle", "iterations"), "scale_mode",
               "'cycle' or 'iterations'", scale_mode)
        base_lrs = _per_group(owner, "base_lr", optimizer, base_lr)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups, strict=True):
                group["lr"] = lr
        self.max_lrs = _per_group(owner, "max_lr", optimizer, max_lr)
        self.total_size = float(step_size_up + down)
        self.step_ratio = step_size_up / self.total_size
        self.mode, self.gamma = mode, gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode if scale_fn is not None else (
            "iterations" if mode == "exp_range" else "cycle")
        self.cycle_momentum = bool(cycle_momentum)
        self.use_beta1 = False
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"{owner}: cycle_momentum=True needs an optimizer with "
                                 f"'momentum' or 'betas'; {type(optimizer).__name__} has "
                                 "neither (pass cycle_momentum=False)")
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = _per_group(owner, "base_momentum", optimizer, base_momentum)
            self.max_momentums = _per_group(owner, "max_momentum", optimizer, max_momentum)
            if last_epoch == -1:
                for momentum, group in zip(self.max_momentums, optimizer.param_groups,
                                           strict=True):
                    self._set_momentum(group, momentum)
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _set_momentum(self, group: dict[str, Any], momentum: float) -> None:
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum

    def _scale(self, x: float) -> float:
        if self._scale_fn_custom is not None:
            return float(self._scale_fn_custom(x))
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x

    def _factors(self, step: int) -> tuple[float, float]:
        """(height factor in [0, 1], amplitude scale) at ``step``."""
        cycle = math.floor(1 + step / self.total_size)
        x = 1.0 + step / self.total_size - cycle
        factor = x / self.step_ratio if x <= self.step_ratio else (x - 1) / (
            self.step_ratio - 1)
        return factor, self._scale(cycle if self.scale_mode == "cycle" else step)

    def get_lr(self) -> list[float]:
        factor, scale = self._factors(self.last_epoch)
        if self.cycle_momentum:
            for group, low, high in zip(self.optimizer.param_groups, self.base_momentums,
                                        self.max_momentums, strict=True):
                self._set_momentum(group, high - (high - low) * factor * scale)
        return self.lr_at(self.last_epoch)

    def lr_at(self, step: int) -> list[float]:
        factor, scale = self._factors(step)
        base_lrs = getattr(self, "base_lrs", None) or [
            group["initial_lr"] for group in self.optimizer.param_groups]
        return [low + (high - low) * factor * scale
                for low, high in zip(base_lrs, self.max_lrs, strict=True)]
