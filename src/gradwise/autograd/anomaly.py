"""NaN/Inf provenance: find the first op whose backward (or, on request, forward) produced a
non-finite value.

``with gw.detect_anomaly():`` checks every recorded op's backward, as torch's ``detect_anomaly``
does (a forward may hold NaN or inf that a later ``where`` masks out: ``where(x > 0, x.log(),
0)``); ``detect_anomaly(check_forward=True)`` also checks every forward result, to find the op
that first made a non-finite value (``gradwise train --detect-anomaly`` does). At the first
non-finite value it raises :class:`AnomalyError` naming the op, the line of user code that
called it, the shapes and ranges of its inputs and, for a backward anomaly, the parameters the
bad gradient was about to reach.
"""

from __future__ import annotations

import contextvars
import os
import traceback
from typing import Any

import numpy as np

from gradwise.autograd.tensor import Tensor

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class AnomalyError(RuntimeError, FloatingPointError):
    """A forward or backward computation produced NaN (or Inf, when checked).

    A RuntimeError, as torch's anomaly mode raises ("Function 'DivBackward0' returned nan values
    in its 0th output."), so code written for torch that catches ``RuntimeError`` catches it;
    still a FloatingPointError (which is an ArithmeticError) for code that catches that.
    """


def _is_bad(array: Any, check_inf: bool) -> bool:
    """True when ``array`` holds NaN (or +-Inf when ``check_inf``); fast path through one sum."""
    array = np.asarray(array)
    if array.dtype.kind not in "fc" or array.size == 0:
        return False
    with np.errstate(all="ignore"):
        total = array.sum()
    if np.isfinite(total):
        return False
    # the sum can overflow or see inf - inf; look at the elements before accusing anyone
    if check_inf:
        return not bool(np.isfinite(array).all())
    return bool(np.isnan(array).any())


def describe_array(array: np.ndarray) -> str:
    """Shape, dtype, range and count of non-finite values, for error messages."""
    array = np.asarray(array)
    text = f"shape {tuple(array.shape)} {array.dtype}"
    if array.size and array.dtype.kind in "fc":
        finite = np.isfinite(array)
        n_bad = int(array.size - finite.sum())
        if finite.any():
            values = array[finite]
            text += f", finite min {values.min():.4g} max {values.max():.4g}"
        if n_bad:
            text += (
                f", {int(np.isnan(array).sum())} NaN, {int(np.isinf(array).sum())} Inf"
                f" of {array.size}"
            )
    return text


def user_source_line() -> str:
    """The innermost stack frame outside the gradwise package, as 'file:line in fn: code'."""
    for frame in reversed(traceback.extract_stack()[:-1]):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno} in {frame.name}: {frame.line}"
    return "<unknown source line>"


def _reached_leaves(inputs: tuple[Tensor, ...], limit: int = 8) -> list[str]:
    """Names of the leaf tensors that require grad below ``inputs`` in the graph."""
    names: list[str] = []
    seen: set[int] = set()
    stack = list(inputs)
    while stack and len(names) < limit:
        tensor = stack.pop()
        if id(tensor) in seen or not tensor.requires_grad:
            continue
        seen.add(id(tensor))
        node = tensor._ctx
        if node is None:
            names.append(tensor.name or f"unnamed leaf of shape {tuple(tensor.shape)}")
        elif node.inputs is not None:
            stack.extend(node.inputs)
    return names


class _Detector:
    def __init__(self, check_inf: bool, check_forward: bool = False) -> None:
        self.check_inf = check_inf
        #: also check forward results (and the steps of a create_graph backward); torch checks
        #: only what each backward returns
        self.check_forward = check_forward
        #: the node whose differentiable backward (create_graph) is running, if any
        self.backward_of: Any = None

    def before_forward(self, ctx: Any, inputs: list[Tensor]) -> None:
        if self.backward_of is None:
            ctx.source_line = user_source_line()
        else:
            # an op of a create_graph backward: the user's line is that of the op differentiated
            outer = self.backward_of
            ctx.source_line = (f"the create_graph backward of {outer.name}, which was "
                               f"called at {getattr(outer, 'source_line', '<not recorded>')}")

    def run_backward_graph(self, node: Any, backward_graph: Any, grad: Tensor) -> Any:
        """Run ``node``'s differentiable backward, naming ``node`` in any anomaly inside it, then
        check the gradients it returns as the NumPy backward's are checked."""
        outer, self.backward_of = self.backward_of, node
        try:
            with np.errstate(all="ignore"):  # non-finite values are reported by the detector
                input_grads = backward_graph(node, grad)
        finally:
            self.backward_of = outer
        grads = input_grads if isinstance(input_grads, tuple) else (input_grads,)
        self.after_backward(node, tuple(None if g is None else g._data for g in grads),
                            grad._data)
        return input_grads

    def after_forward(self, ctx: Any, inputs: list[Tensor], result: Tensor) -> None:
        if not self.check_forward or not _is_bad(result._data, self.check_inf):
            return
        bad_inputs = [i for i, t in enumerate(inputs) if _is_bad(t._data, self.check_inf)]
        lines = [f"forward of {ctx.name} produced a non-finite value"]
        if self.backward_of is not None:
            lines[0] = (f"backward of {self.backward_of.name} (create_graph) produced "
                        f"a non-finite value in its {ctx.name} step")
        if bad_inputs:
            lines[0] += f" because input {bad_inputs[0]} already held one (it came from data " \
                        "or from code outside the recorded graph)"
        lines.append(f"  called at {ctx.source_line}")
        for i, tensor in enumerate(inputs):
            label = f" ({tensor.name})" if tensor.name else ""
            lines.append(f"  input {i}{label}: {describe_array(tensor._data)}")
        lines.append(f"  output: {describe_array(result._data)}")
        raise AnomalyError("\n".join(lines))

    def after_backward(self, ctx: Any, grads: tuple[Any, ...], grad_output: np.ndarray) -> None:
        bad = [i for i, g in enumerate(grads) if g is not None and _is_bad(g, self.check_inf)]
        if not bad:
            return
        inputs = ctx.inputs or ()
        lines = [
            f"backward of {ctx.name} produced a non-finite gradient for input {bad[0]}",
            f"  the op was called at {getattr(ctx, 'source_line', '<not recorded>')}",
            f"  incoming gradient: {describe_array(grad_output)}",
            f"  gradient it produced: {describe_array(grads[bad[0]])}",
        ]
        for i, tensor in enumerate(inputs):
            lines.append(f"  input {i}: {describe_array(tensor._data)}")
        reached = _reached_leaves(tuple(inputs[i] for i in bad if i < len(inputs)))
        if reached:
            lines.append(f"  it would have reached: {', '.join(reached)}")
        raise AnomalyError("\n".join(lines))


_detector: contextvars.ContextVar[_Detector | None] = contextvars.ContextVar(
    "gradwise_anomaly_detector", default=None
)


class detect_anomaly:
    """Check every backward result, as torch's ``detect_anomaly``; raise at the first NaN (and
    Inf if ``check_inf``).

    Args:
        check_inf: also raise at an Inf (gradwise's default; torch checks NaN only).
        check_forward: also check every forward result, naming the op that first made a
            non-finite value. Off by default, as in torch: a forward may legitimately hold a
            NaN or inf that ``where`` or masking drops (``where(x > 0, x.log(), 0)``).

    Example:
        >>> with gw.detect_anomaly():
        ...     loss = model(x).log().mean()
        ...     loss.backward()      # AnomalyError: backward of Log produced a non-finite ...
    """

    def __init__(self, check_inf: bool = True, *, check_forward: bool = False) -> None:
        self.check_inf = check_inf
        self.check_forward = check_forward

    def __enter__(self) -> detect_anomaly:
        self._token = _detector.set(_Detector(self.check_inf, self.check_forward))
        return self

    def __exit__(self, *exc: object) -> None:
        _detector.reset(self._token)


class set_detect_anomaly:
    """Turn anomaly detection on or off, as ``torch.autograd.set_detect_anomaly``: called as a
    function it takes effect at once (and stays); used as a context manager it restores the
    previous state on exit.

    Args:
        mode: True turns the detector of :class:`detect_anomaly` on, False off.
        check_nan: torch's flag; only True is supported (the detector always checks NaN).
        check_inf: also raise at the first Inf (gradwise's default, as ``detect_anomaly``).
        check_forward: also check forward results (see :class:`detect_anomaly`).
    Raises:
        NotImplementedError: ``check_nan=False`` with ``mode`` (docs/PORTING.md).
    """

    def __init__(self, mode: bool, check_nan: bool = True, *, check_inf: bool = True,
                 check_forward: bool = False) -> None:
        if mode and not check_nan:
            raise NotImplementedError(
                "set_detect_anomaly: check_nan=False is not supported; the detector always "
                "checks for NaN (docs/PORTING.md)"
            )
        self._previous = _detector.get()
        _detector.set(_Detector(check_inf, check_forward) if mode else None)

    def __enter__(self) -> set_detect_anomaly:
        return self

    def __exit__(self, *exc: object) -> None:
        _detector.set(self._previous)


def is_anomaly_enabled() -> bool:
    """True inside a ``detect_anomaly()`` block or after ``set_detect_anomaly(True)``, as
    ``torch.is_anomaly_enabled``."""
    return _detector.get() is not None
