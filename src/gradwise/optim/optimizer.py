"""Optimizer base: parameter groups, per-parameter state, state_dict, and argument checks.

An optimizer holds ``param_groups``: a list of dicts, each with a ``"params"`` list of Tensors and
that group's hyperparameters (``lr``, ``weight_decay``, ...). ``state[p]`` holds the buffers one
parameter needs between steps (momentum, moment estimates, step counts). Updates run on
``p.data`` with in-place NumPy operations: they build no graph, and bump each updated
parameter's version counter as torch's in-place updates do (a graph that saved the old weights
then refuses its backward instead of using the new ones).

Writing a new optimizer: subclass ``Optimizer``, pass the defaults to ``super().__init__``,
implement ``_validate_group(group)`` (raise with :meth:`Optimizer._check`) and
``_step_group(group)``, which walks ``self._params_with_grad(group)``. Scratch arrays for the
update come from ``self._scratch(like, slot)``, so a step allocates nothing large.

One kernel call per group (SGD, Adam/AdamW, RMSprop, Adagrad; issue 14): after a step,
``_plan_group`` remembers the group's arrays; while ``_planned_grads`` finds every parameter with
the same ``_data`` array and state buffers (identity checks: ``p.data = ...``, ``model.to``,
``load_state_dict`` and replaced buffers all fall back) and a kernel-ready gradient, the
optimizer runs one kernel call per chunk of 8 parameters. Parameters, gradients and state keep
their own arrays (no flat buffer: measured, it pays only when backward writes every gradient
into its flat view, see benchmarks/README.md), so everything users see is unchanged.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from gradwise.autograd.grad_mode import enable_grad
from gradwise.autograd.kernels import optim as _kernels
from gradwise.autograd.kernels._jit import jit_enabled
from gradwise.autograd.tensor import Tensor

ParamsArg = Iterable[Tensor] | Iterable[dict[str, Any]]
StateDict = dict[str, Any]

_ARRAY_MARK = "__array__"


class Optimizer:
    """Base class of all optimizers: param groups, per-parameter state, checkpoints.

    Args:
        params: an iterable of Tensors (one group), or of dicts, each with a ``"params"`` entry
            and any hyperparameters that should differ from ``defaults`` for that group.
        defaults: the hyperparameters every group gets unless it sets its own.

    Attributes:
        param_groups: list of dicts, each with ``"params"`` (list of Tensors) and the group's
            hyperparameters. Schedulers change ``group["lr"]`` here.
        state: dict from parameter (Tensor) to a dict of its buffers (``np.ndarray``) and counters.
        defaults: the hyperparameters given to the constructor.

    Example:
        >>> opt = gw.optim.SGD([{"params": body}, {"params": head, "lr": 1e-2}], lr=1e-3)
        >>> loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(self, params: ParamsArg, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self._validate(self.defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        # flat scratch arrays per (dtype, slot), sized to the largest parameter seen
        self._scratch_buffers: dict[tuple[np.dtype, int], np.ndarray] = {}
        # per param group (by id): the arrays its group kernel ran on last step (_plan_group)
        self._plans: dict[int, _GroupPlan] = {}

        if isinstance(params, Tensor | np.ndarray | dict):
            raise TypeError(
                f"{self._name}: params must be an iterable of Tensors or of dicts, "
                f"got a single {type(params).__name__}"
            )
        if isinstance(params, set | frozenset):
            raise TypeError(f"{self._name}: params must be an ordered sequence (a list), not a "
                            "set, so that state_dict indices are reproducible")
        groups: list[Any] = list(params)
        if not groups:
            raise ValueError(f"{self._name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ---- names and checks ---------------------------------------------------------------------
    @property
    def _name(self) -> str:
        return type(self).__name__

    def _validate_group(self, group: dict[str, Any]) -> None:
        """Raise ValueError for any hyperparameter of ``group`` outside its valid range."""

    def _validate(self, group: dict[str, Any]) -> None:
        """torch's implementation switches, then the optimizer's own checks.

        ``foreach`` (None or a bool) and ``fused`` (None or a bool) choose how torch batches
        the same update over its tensors; gradwise runs one update (a fused numba loop where
        there is one), so they are accepted, kept in the group as torch keeps them, and change
        nothing. ``capturable=True`` makes torch's step safe for CUDA graph capture and is
        refused (torch's own step refuses it for CPU tensors: "If capturable=True, params and
        state_steps must be on supported devices"). ``differentiable=True`` (recording the
        step itself for autograd) is refused: gradwise updates parameters outside the graph.

        Raises:
            ValueError: a switch of the wrong type, ``capturable=True`` or
                ``differentiable=True``.
        """
        for name in ("foreach", "fused"):
            if name in group:
                value = group[name]
                self._check(value is None or isinstance(value, bool | np.bool_), name,
                            "None, True or False", value)
        if "capturable" in group:
            self._check_bool(group, "capturable")
            if group["capturable"]:
                raise ValueError(f"{self._name}: capturable=True (CUDA graph capture) needs a "
                                 "GPU; gradwise runs on the CPU, where torch refuses it too")
        if "differentiable" in group:
            self._check_bool(group, "differentiable")
            if group["differentiable"]:
                raise ValueError(f"{self._name}: differentiable=True is not supported: gradwise "
                                 "updates parameters outside the autograd graph, so a step "
                                 "cannot be differentiated (docs/PORTING.md)")
        self._validate_group(group)

    def _check(self, ok: bool, name: str, constraint: str, value: Any) -> None:
        """Raise ``ValueError("<Optimizer>: <name> must be <constraint>, got <value>")``."""
        if not ok:
            raise ValueError(f"{self._name}: {name} must be {constraint}, got {value!r}")

    def _check_number(self, group: dict[str, Any], name: str, low: float = 0.0,
                      low_inclusive: bool = True, high: float = math.inf,
                      high_inclusive: bool = True) -> None:
        """Check that ``group[name]`` is a finite real number in the given interval.

        Infinite and NaN values are refused for every hyperparameter (``lr=inf`` used to be
        accepted and turned every weight into NaN at the first step). ``lr`` may also be a
        1-element Tensor, as torch accepts (issue 14); its value is stored as a float (the
        group does not follow later changes to that Tensor: set ``group["lr"]`` instead).
        """
        value = group[name]
        if name == "lr" and isinstance(value, Tensor):
            if value.numel() != 1 or value._data.dtype.kind not in "iuf":
                raise ValueError(f"{self._name}: a Tensor lr must be one real number, got "
                                 f"shape {tuple(value.shape)} dtype {value._data.dtype}")
            value = group[name] = float(value._data.reshape(-1)[0])
        is_real = (isinstance(value, numbers.Real) and not isinstance(value, bool)
                   and math.isfinite(value))
        above = is_real and (value >= low if low_inclusive else value > low)
        below = is_real and (value <= high if high_inclusive else value < high)
        if math.isinf(high):
            constraint = f"{'>=' if low_inclusive else '>'} {low:g}"
        else:
            left, right = "[" if low_inclusive else "(", "]" if high_inclusive else ")"
            constraint = f"in {left}{low:g}, {high:g}{right}"
        self._check(above and below, name, constraint, value)

    def _check_bool(self, group: dict[str, Any], name: str) -> None:
        value = group[name]
        self._check(isinstance(value, bool | np.bool_), name, "True or False", value)

    # ---- param groups -------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters, with hyperparameters that default to ``self.defaults``.

        Raises:
            TypeError: the group is not a dict, or holds something other than float Tensors.
            ValueError: a hyperparameter is out of range, a parameter is already optimized, or
                named and unnamed groups are mixed.

        ``(name, tensor)`` pairs (``model.named_parameters()``) are accepted as torch accepts
        them: the names go to the group's ``"param_names"``.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"{self._name}: a param group must be a dict, got "
                            f"{type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{self._name}: a param group needs a 'params' entry")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set | frozenset):
            raise TypeError(f"{self._name}: params must be an ordered sequence (a list), "
                            "not a set, so that state_dict indices are reproducible")
        else:
            params = list(params)
        param_group = dict(param_group)
        if params and all(isinstance(item, tuple) and len(item) == 2
                          and isinstance(item[0], str) for item in params):
            # named parameters (model.named_parameters()), as torch >= 2.6: the names are kept
            # in the group as "param_names"
            param_group["param_names"] = [name for name, _ in params]
            params = [param for _, param in params]
        if self.param_groups and (("param_names" in self.param_groups[0])
                                  != ("param_names" in param_group)):
            raise ValueError(f"{self._name}: all param groups should be with or without names "
                             "(torch: \"all optimizer param groups should be with/without "
                             "names\")")

        group_index = len(self.param_groups)
        seen: set[int] = {id(p) for group in self.param_groups for p in group["params"]}
        for i, param in enumerate(params):
            where = f"param group {group_index}, parameter {i}"
            if not isinstance(param, Tensor):
                raise TypeError(f"{self._name}: {where} is a {type(param).__name__}; "
                                "optimizers update gradwise Tensors")
            if param._data.dtype.kind != "f":
                raise TypeError(f"{self._name}: {where} ({_label(param)}) has dtype "
                                f"{param._data.dtype}; only floating-point parameters "
                                "can be optimized")
            if not param.is_leaf:
                raise ValueError(f"{self._name}: {where} ({_label(param)}) is not a leaf "
                                 "tensor; optimize the leaves it was computed from")
            if id(param) in seen:
                raise ValueError(f"{self._name}: {where} ({_label(param)}) appears more than "
                                 "once; each parameter may belong to one group only")
            seen.add(id(param))

        group = {**self.defaults, **param_group, "params": params}
        self._validate(group)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters.

        Args:
            set_to_none: True (default) drops the arrays (``p.grad = None``), which saves memory
                and makes the next backward write fresh arrays; False fills them with 0 in place.
        """
        for group in self.param_groups:
            for param in group["params"]:
                if set_to_none:
                    param._grad = None
                elif param._grad is not None:
                    param._grad.fill(0)

    # ---- stepping -----------------------------------------------------------------------------
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()``'s loss, if given.

        Args:
            closure: optional function that recomputes the loss (and calls backward); it runs
                with gradient recording on, before the update.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        # a non-finite gradient gives NaN/inf parameters silently, as torch's updates do (NumPy
        # would warn "invalid value encountered in divide" on the reference path only)
        with np.errstate(all="ignore"):
            for group in self.param_groups:
                self._step_group(group)
        return loss

    def _step_group(self, group: dict[str, Any]) -> None:
        raise NotImplementedError(f"{self._name} does not implement _step_group")

    def _params_with_grad(self, group: dict[str, Any]) -> Iterable[tuple[Tensor, np.ndarray,
                                                                          dict[str, Any]]]:
        """Yield (parameter, gradient, state) for each parameter of ``group`` that has a grad."""
        state_of = self.state
        for param in group["params"]:
            grad = param._grad
            if grad is None:
                continue
            if grad.shape != param._data.shape:
                raise ValueError(f"{self._name}.step: gradient of {_label(param)} has shape "
                                 f"{grad.shape}, the parameter has shape {param._data.shape}")
            param._version[0] += 1  # updated in place, as torch's optimizers bump the version
            state = state_of.get(param)
            if state is None:
                state = state_of[param] = {}
            yield param, grad, state

    def _scratch(self, like: np.ndarray, slot: int) -> np.ndarray:
        """An uninitialised array shaped and typed like ``like``, reused across steps.

        Parameters are updated one after another, so one flat buffer per (dtype, slot) serves
        them all; views of it cost no allocation.
        """
        key = (like.dtype, slot)
        flat = self._scratch_buffers.get(key)
        if flat is None or flat.size < like.size:
            flat = self._scratch_buffers[key] = np.empty(like.size, dtype=like.dtype)
        return flat[: like.size].reshape(like.shape)

    def _effective_grad(self, data: np.ndarray, grad: np.ndarray, weight_decay: float,
                        maximize: bool) -> np.ndarray:
        """``(-grad if maximize else grad) + weight_decay * data``, in scratch slot 0."""
        if weight_decay != 0:
            out = self._scratch(data, 0)
            np.multiply(data, weight_decay, out=out)
            if maximize:
                out -= grad
            else:
                out += grad
            return out
        if maximize:
            return np.negative(grad, out=self._scratch(data, 0))
        return grad

    def __getstate__(self) -> dict[str, Any]:
        """The attributes for ``copy.copy``/``copy.deepcopy``, without the group plans: a deep
        copy would turn the plans' flattened views into separate arrays, and the copy's kernel
        calls would update those instead of its parameters (the copy plans again)."""
        attributes = self.__dict__.copy()
        attributes["_plans"] = {}
        return attributes

    # ---- one kernel call per group -------------------------------------------------------------
    def _plan_group(self, group: dict[str, Any], keys: tuple[str, ...]) -> None:
        """Remember the arrays of ``group`` for :meth:`_planned_grads`, after a step.

        A plan is kept only when every parameter of the group has a gradient and the state
        buffers ``keys``, all kernel-ready (one float dtype, C-contiguous, writeable); otherwise
        the group keeps taking the general path, which checks every parameter every step.
        """
        self._plans.pop(id(group), None)
        params = tuple(group["params"])
        if not params:
            return
        states, buffers = [], []
        for param in params:
            state = self.state.get(param)
            if state is None or any(not isinstance(state.get(key), np.ndarray) for key in keys):
                return
            arrays = tuple(state[key] for key in keys)
            if not _kernels.usable(param._data, param._grad, *arrays):
                return
            states.append(state)
            buffers.append(arrays)
        dtype = params[0]._data.dtype
        if any(param._data.dtype != dtype for param in params):
            return
        datas = tuple(param._data for param in params)
        columns = [list(datas)] + [[arrays[i] for arrays in buffers] for i in range(len(keys))]
        self._plans[id(group)] = _GroupPlan(
            group, params, datas, tuple(states), tuple(buffers), keys, dtype,
            list(_kernels.chunked(columns, dtype)))

    def _planned_grads(self, group: dict[str, Any], keys: tuple[str, ...]
                       ) -> tuple[_GroupPlan, list[tuple[np.ndarray, ...]]] | None:
        """The group's plan and this step's gradients (one padded tuple per chunk), if it holds.

        It holds while the group lists the same parameters, each still has the ``_data`` array
        and state buffers it had when planned (``p.data = ...``, ``model.to(dtype)`` and
        ``load_state_dict`` replace them, so the identity check sees them), still writeable, and
        a C-contiguous gradient of its dtype and shape. Then every parameter's version is bumped
        (as :meth:`_params_with_grad` does) and the caller runs one kernel call per chunk;
        otherwise (None) it takes the general path, which plans again.
        """
        plan = self._plans.get(id(group))
        if plan is None or plan.group is not group or plan.keys != keys or not jit_enabled():
            return None  # (kernels switched off since the plan: the NumPy reference runs)
        params = group["params"]
        if len(params) != len(plan.params):
            return None
        dtype, state_of, grads = plan.dtype, self.state, []
        for param, known, data, state, buffers in zip(params, plan.params, plan.datas,
                                                      plan.states, plan.buffers, strict=True):
            grad = param._grad
            if (param is not known or param._data is not data or grad is None
                    or type(grad) is not np.ndarray or grad.dtype != dtype
                    or grad.shape != data.shape or not grad.flags.c_contiguous
                    or not data.flags.writeable or state_of.get(param) is not state):
                return None
            for key, buffer in zip(keys, buffers, strict=True):
                if state.get(key) is not buffer:
                    return None
            grads.append(grad)
        for param in params:
            param._version[0] += 1  # updated in place, as in _params_with_grad
        return plan, [arguments[0] for arguments in _kernels.chunked([grads], dtype)]

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> StateDict:
        """The optimizer's state in PyTorch's layout, with parameters replaced by indices.

        Returns:
            ``{"state": {index: {name: value}}, "param_groups": [{..., "params": [indices]}]}``,
            where indices count parameters across groups in order. State arrays are Tensors,
            as in PyTorch, but copies (PyTorch shares them), so the dict does not change as
            training continues; ``step`` counters stay Python numbers (docs/PORTING.md). Use
            :func:`split_state` to separate the arrays from the JSON-serialisable rest.
        """
        index_of: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = []
            for param in group["params"]:
                index_of[id(param)] = len(index_of)
                packed["params"].append(index_of[id(param)])
            groups.append(packed)
        state = {}
        for param, values in self.state.items():
            if values and id(param) in index_of:
                state[index_of[id(param)]] = {k: _saved_value(v) for k, v in values.items()}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: StateDict) -> None:
        """Restore state saved by :meth:`state_dict` (checked completely before anything changes).

        Group hyperparameters come from the saved dict; the parameters stay this optimizer's.
        State tensors (or NumPy arrays, a gradwise extension; or torch tensors) are copied and
        cast to their parameter's dtype.

        Raises:
            ValueError: the group count, a group's parameter count, a state index, or an array's
                shape does not match this optimizer; a saved hyperparameter is out of range.
        """
        where = f"{self._name}.load_state_dict"
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict)
            raise ValueError(f"{where}: expected a dict with keys 'state' and 'param_groups', "
                             f"got {keys}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{where}: the saved state has {len(saved_groups)} parameter "
                             f"group(s), this optimizer has {len(self.param_groups)}")
        param_of: dict[int, Tensor] = {}
        new_groups = []
        for g, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{where}: saved parameter group {g} has "
                                 f"{len(saved['params'])} parameters, this optimizer's has "
                                 f"{len(group['params'])}")
            for index, param in zip(saved["params"], group["params"], strict=True):
                param_of[int(index)] = param
            new_group = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            for key, value in new_group.items():
                # JSON turns tuples (betas) into lists; give them back their shape
                if isinstance(group.get(key), tuple) and isinstance(value, list):
                    new_group[key] = tuple(value)
            new_group["params"] = group["params"]
            self._validate({**self.defaults, **new_group})
            new_groups.append(new_group)

        new_state: dict[Tensor, dict[str, Any]] = {}
        for index, values in state_dict["state"].items():
            param = param_of.get(int(index))
            if param is None:
                raise ValueError(f"{where}: the saved state has an entry for parameter {index}, "
                                 f"which no saved group lists")
            new_state[param] = {
                name: self._restored_value(value, param, f"{where}: state '{name}' of "
                                                        f"parameter {index}")
                for name, value in values.items()}

        self.param_groups = new_groups
        self.state = new_state
        self._plans.clear()

    def _restored_value(self, value: Any, param: Tensor, where: str) -> Any:
        """A saved state entry as this optimizer keeps it: arrays (from Tensors, torch tensors
        or ndarrays, also inside lists) copied in the parameter's dtype, after checking their
        shape with :meth:`_state_shape`; other values deep-copied.

        Raises:
            ValueError: an array's shape is not the one this optimizer keeps.
        """
        if isinstance(value, list | tuple):
            return [self._restored_value(v, param, where) for v in value]
        value = _state_array(value)
        if not isinstance(value, np.ndarray):
            return copy.deepcopy(value)
        expected = self._state_shape(param)
        if value.shape != expected:
            raise ValueError(f"{where} has shape {value.shape}, the parameter "
                             f"({_label(param)}) has shape {param._data.shape}")
        return value.astype(param._data.dtype, copy=True)

    def _state_shape(self, param: Tensor) -> tuple[int, ...]:
        """The shape of the state arrays kept for ``param`` (its own shape here)."""
        return param._data.shape

    def __repr__(self) -> str:
        lines = [f"{self._name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


class _GroupPlan:
    """What one param group's kernel call ran on (see :meth:`Optimizer._plan_group`).

    ``chunks`` holds, per chunk of :data:`~gradwise.autograd.kernels.optim.GROUP_CHUNK`
    parameters, the kernel's array arguments (flattened, padded): data, then one per state key.
    Gradients are not kept (a plan must not keep them alive after ``zero_grad``).
    """

    __slots__ = ("group", "params", "datas", "states", "buffers", "keys", "dtype", "chunks")

    def __init__(self, group: dict[str, Any], params: tuple[Tensor, ...],
                 datas: tuple[np.ndarray, ...], states: tuple[dict[str, Any], ...],
                 buffers: tuple[tuple[np.ndarray, ...], ...], keys: tuple[str, ...],
                 dtype: np.dtype, chunks: list[list[Any]]) -> None:
        self.group, self.params, self.datas, self.states = group, params, datas, states
        self.buffers, self.keys, self.dtype, self.chunks = buffers, keys, dtype, chunks


def _state_array(value: Any) -> Any:
    """A state entry's array when it is a Tensor, a torch tensor or an ndarray; else itself.

    A 0-d torch tensor (PyTorch's ``step``) becomes a Python number, gradwise's form.
    """
    if isinstance(value, Tensor):
        return value._data
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        array = value.detach().cpu().numpy()
        return array.item() if array.ndim == 0 else array
    return value


def _saved_value(value: Any) -> Any:
    """A state entry for ``state_dict()``: arrays as Tensors (copies), also inside lists."""
    if isinstance(value, np.ndarray):
        return Tensor._make(value.copy(), False, None)
    if isinstance(value, list | tuple):
        return [_saved_value(v) for v in value]
    return copy.deepcopy(value)


def _label(param: Tensor) -> str:
    return param.name if param.name else f"shape {param._data.shape}"


# ---- splitting a state_dict into arrays and JSON ----------------------------------------------
def split_state(state_dict: StateDict) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Split an optimizer ``state_dict()`` into arrays and a JSON-serialisable rest.

    Tensors and arrays go to a flat ``{"state.<index>.<name>": array}`` dict of ndarrays (ready
    for safetensors); in the
    rest each one is replaced by ``{"__array__": "<key>"}``, integer keys become strings, tuples
    become lists and NumPy scalars become Python numbers.

    Returns:
        ``(arrays, meta)``; :func:`join_state` turns them back into the state_dict.

    Example:
        >>> arrays, meta = split_state(opt.state_dict())
        >>> safetensors.numpy.save_file(arrays, "opt.safetensors"); json.dump(meta, f)
        >>> opt.load_state_dict(join_state(arrays, meta))
    """
    arrays: dict[str, np.ndarray] = {}
    meta_state: dict[str, Any] = {}
    for index, values in state_dict["state"].items():
        entry: dict[str, Any] = {}
        for name, value in values.items():
            entry[name] = _split_value(value, f"state.{index}.{name}", arrays,
                                       f"state[{index}][{name!r}]")
        meta_state[str(index)] = entry
    groups = [
        {k: _to_json(v, f"param_groups[{g}][{k!r}]") for k, v in group.items()}
        for g, group in enumerate(state_dict["param_groups"])
    ]
    return arrays, {"state": meta_state, "param_groups": groups}


def join_state(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> StateDict:
    """Rebuild an optimizer state_dict from :func:`split_state`'s ``(arrays, meta)``, with the
    arrays as Tensors, as :meth:`Optimizer.state_dict` gives them.

    Raises:
        KeyError: ``meta`` refers to an array that ``arrays`` does not hold.
    """
    state: dict[int, dict[str, Any]] = {}
    for index, values in meta["state"].items():
        entry = {}
        for name, value in values.items():
            entry[name] = _join_value(value, arrays)
        state[int(index)] = entry
    return {"state": state, "param_groups": copy.deepcopy(meta["param_groups"])}


def _split_value(value: Any, key: str, arrays: dict[str, np.ndarray], where: str) -> Any:
    """One state entry for :func:`split_state`: an array goes to ``arrays[key]`` (a list's
    items to ``key.0``, ``key.1``, ...) and is replaced by its mark; the rest becomes JSON."""
    if isinstance(value, list | tuple):
        return [_split_value(v, f"{key}.{i}", arrays, where) for i, v in enumerate(value)]
    value = _state_array(value)
    if isinstance(value, np.ndarray):
        arrays[key] = value
        return {_ARRAY_MARK: key}
    return _to_json(value, where)


def _join_value(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The inverse of :func:`_split_value`: marks become Tensors again."""
    if isinstance(value, list):
        return [_join_value(v, arrays) for v in value]
    if isinstance(value, dict) and set(value) == {_ARRAY_MARK}:
        key = value[_ARRAY_MARK]
        if key not in arrays:
            raise KeyError(f"join_state: meta refers to array {key!r}, which is missing")
        return Tensor._make(np.asarray(arrays[key]), False, None)
    return copy.deepcopy(value)


def _to_json(value: Any, where: str) -> Any:
    """Convert ``value`` to plain JSON types, or raise TypeError naming where it was found."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic) and value.ndim == 0:
        return value.item()
    if isinstance(value, list | tuple):
        return [_to_json(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v, where) for k, v in value.items()}
    raise TypeError(f"split_state: {where} is a {type(value).__name__}, which JSON cannot hold")
