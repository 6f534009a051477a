"""Einstein summation (``torch.einsum``) as one recorded op.

Local derivative: for out = einsum("A,B,...->O", a, b, ...), the gradient of operand ``a`` is
einsum("O,B,...->A'", G, b, ...) over its distinct labels A'; a label that only ``a`` has
(summed away inside ``a`` alone) broadcasts the gradient along it, a label repeated in ``a``
(a diagonal, "ii->i") puts it on that diagonal, and size-1 dims that broadcast are summed
back. The ellipsis is expanded to explicit labels first (right-aligned, as in NumPy).

``backward_graph`` (``create_graph=True``) builds the same gradient from recorded ops: the
partial einsum is this op again (so einsum's second derivative is einsum's first, PyTorch's
``einsum`` being a composition of differentiable products), the broadcast along a label only
the operand has is an ``expand``, and a repeated label is put back on its diagonal by an
einsum with the identity (``"i,ij->ij"`` for ``"ii"``), all differentiable.
"""

from __future__ import annotations

import string

import numpy as np

from gradwise.autograd.function import Function


def parse_equation(equation: str, shapes: list[tuple[int, ...]]) -> tuple[list[str], str]:
    """Explicit subscripts (ellipsis replaced by letters) for each operand and the output.

    Raises:
        ValueError: the operand count or an operand's dims do not match the equation.
    """
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: equation {equation!r} names {len(terms)} operand(s), got "
                         f"{len(shapes)} (shapes {shapes})")
    used = set(equation) - set(".,->")
    spare = [c for c in string.ascii_letters if c not in used]
    ellipsis_dims = 0
    for term, shape in zip(terms, shapes, strict=True):
        letters = len(term.replace("...", ""))
        if "..." in term:
            ellipsis_dims = max(ellipsis_dims, len(shape) - letters)
        elif letters != len(shape):
            raise ValueError(f"einsum: subscripts {term!r} have {letters} labels for an operand "
                             f"of shape {shape}")
    fill = "".join(spare[:ellipsis_dims])
    explicit = []
    for term, shape in zip(terms, shapes, strict=True):
        if "..." in term:
            count = len(shape) - len(term.replace("...", ""))
            term = term.replace("...", fill[ellipsis_dims - count:] if count else "")
        explicit.append(term)
    if arrow:
        output = output.replace("...", fill)
    else:
        counts = {c: "".join(explicit).count(c) for c in set("".join(explicit))}
        output = fill + "".join(sorted(c for c, n in counts.items()
                                       if n == 1 and c not in fill))
    return explicit, output


class Einsum(Function):
    """``einsum(equation, *operands)``; every operand is an input (see the module docstring
    for the gradient). Shape: as the equation says."""

    owns_grads = True
    tensor_args = None

    @staticmethod
    def forward(ctx, *arrays, equation):
        shapes = [a.shape for a in arrays]
        terms, output = parse_equation(equation, shapes)
        try:
            out = np.einsum(f"{','.join(terms)}->{output}", *arrays)
        except ValueError as error:
            raise ValueError(f"einsum: {equation!r} with operand shapes {shapes}: "
                             f"{error}") from None
        ctx.arrays, ctx.terms, ctx.output = arrays, terms, output
        return np.asarray(out)

    @staticmethod
    def backward(ctx, grad):
        arrays, terms, output = ctx.arrays, ctx.terms, ctx.output
        grads = []
        for i, (array, term) in enumerate(zip(arrays, terms, strict=True)):
            if not ctx.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [t for j, t in enumerate(terms) if j != i]
            other_arrays = [a for j, a in enumerate(arrays) if j != i]
            elsewhere = set(output).union(*others) if others else set(output)
            distinct = "".join(dict.fromkeys(term))
            kept = "".join(c for c in distinct if c in elsewhere)
            partial = np.einsum(f"{','.join([output, *others])}->{kept}", grad, *other_arrays)
            # labels only this operand has: the gradient is the same along them
            sizes = {c: n for c, n in zip(term, array.shape, strict=True)}
            full_shape = tuple(sizes[c] for c in distinct)
            expanded = partial.reshape(tuple(partial.shape[kept.index(c)] if c in kept else 1
                                             for c in distinct))
            # a label only this operand has takes its size (also 0: an empty axis); a kept
            # one the larger of the two (a size-1 dim that broadcast, summed back below)
            expanded = np.broadcast_to(expanded, tuple(
                max(n, expanded.shape[k]) if c in kept else n
                for k, (c, n) in enumerate(zip(distinct, full_shape, strict=True))))
            # size-1 dims of the operand that broadcast against larger ones: sum back
            axes = tuple(k for k, c in enumerate(distinct)
                         if sizes[c] == 1 and expanded.shape[k] != 1)
            if axes:
                expanded = expanded.sum(axis=axes, keepdims=True)
            if len(distinct) == len(term):
                # np.array, not ascontiguousarray: that makes a 0-d operand's gradient 1-d
                result = np.array(np.einsum(f"{distinct}->{term}", expanded))
            else:  # a repeated label: the gradient lives on that diagonal
                result = np.zeros(array.shape, dtype=grad.dtype)
                view = np.einsum(f"{term}->{distinct}", result)
                view[...] = expanded
            grads.append(result.astype(grad.dtype, copy=False))
        return tuple(grads)

    @staticmethod
    def backward_graph(ctx, grad):
        terms, output = ctx.terms, ctx.output
        operands = ctx.inputs
        grads = []
        for i, (operand, term) in enumerate(zip(operands, terms, strict=True)):
            if not ctx.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [t for j, t in enumerate(terms) if j != i]
            other_operands = [x for j, x in enumerate(operands) if j != i]
            elsewhere = set(output).union(*others) if others else set(output)
            distinct = "".join(dict.fromkeys(term))
            kept = "".join(c for c in distinct if c in elsewhere)
            partial = Einsum.apply(grad, *other_operands,
                                   equation=f"{','.join([output, *others])}->{kept}")
            sizes = {c: n for c, n in zip(term, operand.shape, strict=True)}
            shape = tuple(partial.shape[kept.index(c)] if c in kept else 1 for c in distinct)
            expanded = partial if shape == partial.shape else partial.reshape(shape)
            target = tuple(max(sizes[c], expanded.shape[k]) if c in kept else sizes[c]
                           for k, c in enumerate(distinct))
            if target != expanded.shape:  # labels only this operand has
                expanded = expanded.expand(*target)
            axes = tuple(k for k, c in enumerate(distinct)
                         if sizes[c] == 1 and expanded.shape[k] != 1)
            if axes:
                expanded = expanded.sum(dim=axes, keepdim=True)
            if len(distinct) == len(term):
                if distinct != term:
                    expanded = Einsum.apply(expanded, equation=f"{distinct}->{term}")
                grads.append(expanded)
                continue
            # a repeated label: one fresh letter per repeat, tied to the first by an identity
            used = set("".join(terms)) | set(output)
            fresh = iter(c for c in string.ascii_letters if c not in used)
            seen: set[str] = set()
            renamed, ties, eyes = [], [], []
            for c in term:
                if c in seen:
                    new = next(fresh)
                    renamed.append(new)
                    ties.append(c + new)
                    eyes.append(np.eye(sizes[c], dtype=grad._data.dtype))
                else:
                    seen.add(c)
                    renamed.append(c)
            equation = f"{','.join([distinct, *ties])}->{''.join(renamed)}"
            grads.append(Einsum.apply(expanded, *eyes, equation=equation))
        return tuple(grads)
