"""Check analytic gradients against central finite differences, in float64."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from gradwise.autograd.functional import cat
from gradwise.autograd.higher_order import grad
from gradwise.autograd.tensor import Tensor


class GradcheckError(RuntimeError, AssertionError):
    """The analytic and numerical gradients disagree (a RuntimeError, as torch's; also an
    AssertionError, so ``pytest.raises(AssertionError)`` written for gradwise still holds)."""


def _outputs(op: str, output: Any) -> tuple[Tensor, ...]:
    """``fn``'s result as a tuple of Tensors (torch accepts one Tensor or a tuple/list)."""
    outputs = tuple(output) if isinstance(output, tuple | list) else (output,)
    for k, out in enumerate(outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"{op}: fn returned {type(out).__name__} as output {k}, expected "
                            "a Tensor or a tuple of Tensors")
    return outputs


def _low_precision_note(op: str, inputs: tuple[Any, ...], checked: list[int]) -> str:
    """Warn, as torch, for a checked input that is not float64; the note for the error."""
    low = [i for i in checked if inputs[i].dtype != np.float64]
    if not low:
        return ""
    warnings.warn(
        f"{op}: input {low[0]} requires grad and is {inputs[low[0]].dtype}, not float64; the "
        "check will likely fail unless every input is float64", UserWarning, stacklevel=3)
    return f" [input {low[0]} is {inputs[low[0]].dtype}: finite differences need float64]"


def _scalar_projection(output: Tensor, weights: np.ndarray) -> float:
    return float(np.sum(output._data * weights))


def _unpack_inputs(inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """torch's ``gradcheck(fn, (x, y))`` passes the inputs as one tuple: unpack it (the
    one-by-one form ``gradcheck(fn, x, y)`` stays as it is)."""
    if len(inputs) == 1 and isinstance(inputs[0], tuple | list):
        return tuple(inputs[0])
    return inputs


def gradcheck(
    fn: Callable[..., Tensor],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Compare backward's gradient of ``fn(*inputs)`` with central differences.

    For a non-scalar output the check runs on ``sum(fn(*inputs) * v)`` for a fixed random ``v``,
    which tests the whole vector-Jacobian product that backward computes.

    Args:
        fn: maps the inputs to a Tensor or a tuple/list of Tensors (each output's Jacobian is
            checked, as torch).
        inputs: float64 Tensors (another float dtype warns, as torch, and will likely fail),
            given one by one or (torch's form) as one tuple/list; those with
            ``requires_grad`` are checked, others held fixed. An input may be a non-leaf
            (``a * 1``, ``a.double()`` of a float32 leaf), as in torch.
    Returns:
        True when every element agrees within ``atol + rtol * |numerical|``. The analytic
        gradient comes from :func:`gradwise.autograd.grad`, so every input's ``.grad`` and the
        caller's graph are left as they were (torch's gradcheck does the same).
    Raises:
        GradcheckError (a RuntimeError, as torch's) naming the output, the input, the element
        index and both values; TypeError when fn returns something that is not a Tensor.
    """
    inputs = _unpack_inputs(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    note = _low_precision_note("gradcheck", inputs, checked)
    outputs = _outputs("gradcheck", fn(*inputs))
    rng = np.random.default_rng(seed)
    # as torch: an output that does not require grad is skipped when another one does; when
    # none does, each must be constant in the inputs (numerical derivative 0)
    any_differentiable = any(out.requires_grad for out in outputs)
    for k, output in enumerate(outputs):
        weights = rng.uniform(0.5, 1.5, size=output.shape)
        if any_differentiable and not output.requires_grad:
            continue
        # the analytic Jacobian as a value (autograd.grad), as torch does: the inputs' .grad is
        # left alone, a non-leaf input (``a * 1``, ``a.double()``) is differentiated like a
        # leaf, and retain_graph keeps the caller's graph behind a non-leaf input usable
        if output.requires_grad:
            analytics = grad(output, [inputs[i] for i in checked], weights.astype(output.dtype),
                             retain_graph=True, allow_unused=True)
        else:
            analytics = tuple(None for _ in checked)
        where = f"output {k}, " if len(outputs) > 1 else ""
        for i, found in zip(checked, analytics, strict=True):
            x = inputs[i]
            analytic = np.zeros_like(x._data) if found is None else found._data
            numeric = np.zeros_like(x._data)
            # index x itself: reshape(-1) of a non-C-contiguous array (a transpose) is a copy,
            # and perturbing a copy would leave every numerical derivative 0
            for index in np.ndindex(*x._data.shape):
                original = x._data[index]
                x._data[index] = original + eps
                plus = _scalar_projection(_outputs("gradcheck", fn(*inputs))[k], weights)
                x._data[index] = original - eps
                minus = _scalar_projection(_outputs("gradcheck", fn(*inputs))[k], weights)
                x._data[index] = original
                numeric[index] = (plus - minus) / (2 * eps)
            bad = np.abs(analytic - numeric) > atol + rtol * np.abs(numeric)
            if bad.any():
                index = tuple(int(j) for j in np.argwhere(bad)[0])
                raise GradcheckError(
                    f"gradcheck: {where}input {i} (shape {x.shape}) disagrees at index {index}: "
                    f"analytic {analytic[index]:.8g}, numerical {numeric[index]:.8g} "
                    f"({int(bad.sum())} of {bad.size} elements differ){note}"
                )
    return True


def gradgradcheck(
    fn: Callable[..., Tensor],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check second derivatives: the first gradient's own gradient against finite differences.

    The first gradient ``g(x) = d(sum(fn(x) * w))/dx`` (w fixed and random, as PyTorch's
    ``gradgradcheck`` takes random grad_outputs) is computed with ``create_graph=True``, and
    :func:`gradcheck` then compares backward through that recorded gradient with central
    differences of g itself, in float64. Before that, the recorded g is compared with the
    plain (NumPy) backward's gradient, which :func:`gradcheck` covers, so a differentiable
    backward that is self-consistent but wrong is caught too.

    Args:
        fn: maps the inputs to a Tensor or a tuple/list of Tensors (the first gradient sums
            over the outputs that require grad, as torch); every op on the way needs a
            differentiable backward.
        inputs: float64 Tensors, given one by one or (torch's form) as one tuple/list; those
            with ``requires_grad`` are checked, others held fixed; non-leaf inputs work, and
            no ``.grad`` is touched (as :func:`gradcheck`).
    Returns:
        True when every element of the second derivative agrees within
        ``atol + rtol * |numerical|``.
    Raises:
        GradcheckError naming the element; RuntimeError naming an op without a differentiable
        backward.
    """
    inputs = _unpack_inputs(inputs)
    checked = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: no input requires grad")
    _low_precision_note("gradgradcheck", inputs,
                        [i for i, x in enumerate(inputs) if any(x is c for c in checked)])
    probe = _outputs("gradgradcheck", fn(*inputs))
    rng = np.random.default_rng(seed + 1)
    weights = [rng.uniform(0.5, 1.5, size=out.shape) for out in probe]

    def differentiable(xs: tuple[Any, ...]) -> tuple[list[Tensor], list[np.ndarray]]:
        """fn's outputs that require grad, with their weights (torch skips the others)."""
        outs = _outputs("gradgradcheck", fn(*xs))
        kept = [k for k, out in enumerate(outs) if out.requires_grad]
        return [outs[k] for k in kept], [weights[k].astype(outs[k].dtype) for k in kept]

    def first_gradient(*xs: Any) -> Tensor:
        wanted = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        outs, ws = differentiable(xs)
        if not outs:
            grads: tuple[Tensor | None, ...] = tuple(None for _ in wanted)
        else:
            grads = grad(outs, wanted, ws, create_graph=True, allow_unused=True)
        flat = [
            (Tensor._make(np.zeros(x._data.size, x._data.dtype), False, None) if g is None
             else g.reshape(-1))
            for g, x in zip(grads, wanted, strict=True)
        ]
        result = flat[0] if len(flat) == 1 else cat(flat)
        if not result.requires_grad:
            # fn is linear in its inputs: the gradient is constant and its derivative exactly 0;
            # a zero-weighted term keeps it connected so gradcheck's backward can run
            result = result + (wanted[0].reshape(-1)[:1] * 0).sum()
        return result

    # the recorded first gradient must equal the plain one (the NumPy backward, which gradcheck
    # checks), or a wrong backward_graph that is merely self-consistent would pass
    recorded = first_gradient(*inputs)._data
    outs, ws = differentiable(inputs)
    plain_grads = (grad(outs, checked, ws, retain_graph=True, allow_unused=True) if outs
                   else tuple(None for _ in checked))
    plain = np.concatenate([
        np.zeros(x._data.size, x._data.dtype) if g is None else g._data.reshape(-1)
        for g, x in zip(plain_grads, checked, strict=True)
    ])
    bad = np.abs(recorded - plain) > atol + rtol * np.abs(plain)
    if bad.any():
        index = int(np.argmax(bad))
        raise GradcheckError(
            f"gradgradcheck: the first gradient recorded with create_graph=True disagrees with "
            f"backward's at flat index {index}: {recorded[index]:.8g} vs {plain[index]:.8g} "
            f"({int(bad.sum())} of {bad.size} elements differ)"
        )
    with warnings.catch_warnings():  # warned once above
        warnings.simplefilter("ignore", UserWarning)
        return gradcheck(first_gradient, *inputs, eps=eps, atol=atol, rtol=rtol, seed=seed)
