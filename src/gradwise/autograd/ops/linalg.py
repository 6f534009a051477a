"""Matrix multiplication (1-D, 2-D, batched N-D with broadcasting) and the fused linear layer."""

from __future__ import annotations

import math

import numpy as np

from gradwise.autograd.function import Function
from gradwise.autograd.kernels import _threads
from gradwise.autograd.kernels import activation as _activation_kernels
from gradwise.autograd.ops._broadcast import unbroadcast, unbroadcast_graph
from gradwise.autograd.ops.decompositions import SvdU, SvdVh
from gradwise.autograd.ops.elementwise import Where, linked_to
from gradwise.autograd.ops.shape import Reshape, Transpose
from gradwise.autograd.tensor import _dtype_name


def _check_matmul(a: np.ndarray, b: np.ndarray) -> None:
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape}: both need at least 1 dimension")
    inner_a = a.shape[-1]
    inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if inner_a != inner_b:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not align ({inner_a} != {inner_b})"
        )
    if a.ndim > 2 or b.ndim > 2:
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions of {a.shape} and {b.shape} cannot be broadcast"
            ) from None


class MatMul(Function):
    """Matrix product with NumPy's rules: 1-D operands are promoted to matrices and the
    batch axes broadcast.

    Local derivative: for C = A B, dL/dA = G B^T and dL/dB = A^T G, summed over broadcast batch
    axes. Shape: (..., n, k) @ (..., k, m) -> (..., n, m); a 1-D side loses its axis again.
    """

    owns_grads = True
    named_per_call = True

    tensor_args = (0, 1)

    ndims: tuple[int, int]  # set by forward

    def torch_node_name(self) -> str:
        """The node torch.matmul records for these dims: ``Mm`` (2-D @ 2-D), ``Mv``, ``Dot``,
        ``SqueezeBackward4`` (1-D @ 2-D) and ``UnsafeView`` for the batched forms."""
        return {(2, 2): "Mm", (2, 1): "Mv", (1, 1): "Dot", (1, 2): "SqueezeBackward4"}.get(
            self.ndims, "UnsafeView")

    @staticmethod
    def forward(ctx, a, b):
        _check_matmul(a, b)
        ctx.ndims = (a.ndim, b.ndim)
        ctx.a, ctx.b = a, b
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        # C = A B:  dL/dA = G B^T,  dL/dB = A^T G. Vectors are promoted to matrices first.
        a, b = ctx.a, ctx.b
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if b.ndim == 1:
            g2 = g2[..., None]
        if a.ndim == 1:
            g2 = g2[..., None, :]
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            grad_b = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return grad_a, grad_b

    @staticmethod
    def backward_graph(ctx, grad):
        a, b = ctx.inputs
        a2 = Reshape.apply(a, (1, a.shape[0])) if a.ndim == 1 else a
        b2 = Reshape.apply(b, (b.shape[0], 1)) if b.ndim == 1 else b
        g2 = grad
        if b.ndim == 1:
            g2 = Reshape.apply(g2, (*g2.shape, 1))
        if a.ndim == 1:
            g2 = Reshape.apply(g2, (*g2.shape[:-1], 1, g2.shape[-1]))
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = unbroadcast_graph(MatMul.apply(g2, _swap_last(b2)), a2.shape)
            grad_a = Reshape.apply(grad_a, a.shape)
        if ctx.needs_input_grad[1]:
            grad_b = unbroadcast_graph(MatMul.apply(_swap_last(a2), g2), b2.shape)
            grad_b = Reshape.apply(grad_b, b.shape)
        return grad_a, grad_b


def _rows_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """(N, last) for an array of ``shape`` (..., last) seen as rows; N is computed, not -1,
    because reshape(-1, 0) is ambiguous for a size-0 last axis (a linear layer with no input
    features: torch gives empty and zero gradients there). ``math.prod`` of a tuple of ints:
    ``np.prod`` costs ~4 us per call, and a training step of a 3-layer MLP makes ten."""
    return math.prod(shape[:-1]), shape[-1]


def _check_linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> None:
    """Raise the error torch gives when x, W and b do not make a linear layer."""
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not fit weight of shape {weight.shape} "
            f"(expected input (..., {weight.shape[1] if weight.ndim == 2 else '?'}))"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(
            f"linear: bias of shape {bias.shape} does not fit weight {weight.shape}"
        )
    if x.dtype != weight.dtype or (bias is not None and bias.dtype != weight.dtype):
        # torch refuses to promote here (a float64 batch into a float32 layer is almost
        # always a forgotten cast, and promoting would silently run in float64)
        other = x.dtype if x.dtype != weight.dtype or bias is None else bias.dtype
        raise RuntimeError(
            f"linear: mat1 and mat2 must have the same dtype, but got {_dtype_name(other)} "
            f"and {_dtype_name(weight.dtype)} (cast the input: x.float() or "
            "x.to(weight.dtype))"
        )


#: A linear layer splits its rows over a batch-parallel region (``kernels/_threads.py``) only
#: within 0.1 s of another region (a CNN step: between the convolutions' regions its product
#: would otherwise run on BLAS's threads, whose idle workers then spin beside the next region)
#: and from this many multiply-adds per part, per
#: product. Measured (issue 14, ``cnn_epoch.py --ops``: linear + ReLU forward + backward, split
#: forced, 2 threads against 1, load 0.7): 0.59x at 25.7M per part (the CNN's fc1, batch 128),
#: 0.66x at 12.8M, erratic at 6.4M (min 0.67x, median 1.10x), 1.17x at 3.2M, 1.39x at 2.1M
#: (benchmarks/README.md, "The fully-connected layers of the 2-thread CNN step").
_MIN_PART_MACS = 8_000_000


def _row_ranges(rows: int, macs_per_row: int) -> list[tuple[int, int]]:
    """The (start, stop) row ranges a linear layer splits ``rows`` into (one: serial)."""
    if not _threads.regions_recently():
        return [(0, rows)]
    return _threads.split(rows, _threads.parts_for(rows, macs_per_row, _MIN_PART_MACS))


def _linear_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                    relu: bool) -> np.ndarray:
    """x W^T + b, then ReLU in place if ``relu``; split over a region when it pays.

    Which way: a split by rows makes every part pack (copy into BLAS's blocks) the whole of W,
    and a fully-connected layer's W is large next to its batch (fc1 of the CNN: 128 x 3136
    against 128 rows of 3136), so the parts duplicate most of the work (measured: forward 0.69
    ms split over 2 threads against 0.54 ms on 1). When there are no more rows than input
    features the parts split the input features instead (the inner dimension): part p forms
    x[:, k_p] W[:, k_p]^T, a (N, out) partial sum, and the parts are added (float rounding of
    that sum changes, nothing else); bias and ReLU then run once on the sum. With more rows than
    input features, the rows split (each row is computed by the same code whatever the split).
    Shape: x (..., in), W (out, in), b (out,) -> (..., out).
    """
    rows, features = _rows_shape(x.shape)
    ranges = _row_ranges(rows, features * weight.shape[0])
    if len(ranges) == 1:
        out = x @ weight.T  # (N, in) @ (in, out) -> (N, out)
        if relu:
            _activation_kernels.bias_relu_(out.reshape(_rows_shape(out.shape)), bias)
        elif bias is not None:
            out += bias
        return out
    x_2d = x.reshape(rows, features)  # (N, in)
    dtype = np.result_type(x.dtype, weight.dtype)
    if rows <= features:
        inner = _threads.split(features, len(ranges))
        partial: list = [None] * len(ranges)

        def inner_part(part: int, lo: int, hi: int) -> None:
            first, last = inner[part]
            # (N, in_p) @ (in_p, out): this part's input features
            partial[part] = x_2d[:, first:last] @ weight[:, first:last].T

        _threads.run_parts(inner_part, ranges)
        out = _threads.sum_parts(partial).astype(dtype, copy=False)
        if relu:
            _activation_kernels.bias_relu_(out, bias)
        elif bias is not None:
            out += bias
        return out.reshape(*x.shape[:-1], weight.shape[0])
    out = np.empty((rows, weight.shape[0]), dtype=dtype)

    def forward_rows(part: int, lo: int, hi: int) -> None:
        np.matmul(x_2d[lo:hi], weight.T, out=out[lo:hi])  # (rows, in) @ (in, out)
        if relu:
            _activation_kernels.bias_relu_(out[lo:hi], bias)
        elif bias is not None:
            out[lo:hi] += bias

    _threads.run_parts(forward_rows, ranges)
    return out.reshape(*x.shape[:-1], weight.shape[0])


def _linear_backward(grad: np.ndarray, x: np.ndarray, weight: np.ndarray,
                     relu_out: np.ndarray | None, needs: tuple[bool, bool, bool]
                     ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """dL/dx, dL/dW, dL/db of y = x W^T + b (``relu_out`` None) or of y = relu(x W^T + b)
    (``relu_out`` = y: the gradient is masked first, ``kernels/activation.py``), each None where
    ``needs`` says it is not wanted.

    Split over a region like :func:`_linear_forward`, after the mask and the bias gradient
    (serial: one cheap pass over dY): part p forms both for its columns of the input features,
    dL/dx[:, cols] = G W[:, cols] and dL/dW[:, cols] = G^T x[:, cols]. Not by rows, with dL/dW
    as per-part sums over the batch (as a convolution does): a fully-connected layer's weight is
    large next to its batch (fc1 of the CNN: 128 x 3136 against 128 rows), so each part would
    pack all of W for dL/dx and write, then add, a whole weight-sized dL/dW (measured: forward +
    backward 1.2x slower than on 1 thread). Every entry is thus the same dot product over the
    same terms whatever the split; only BLAS's blocking may change its last bits.
    Shape: grad (..., out), x (..., in) -> (..., in), (out, in), (out,).
    """
    rows, features = _rows_shape(x.shape)
    grad_2d = grad.reshape(rows, weight.shape[0])  # (N, out)
    grad_b = None
    if relu_out is not None:
        grad_2d, grad_b = _activation_kernels.relu_backward(
            grad_2d, relu_out.reshape(grad_2d.shape), needs[2])
    elif needs[2]:
        grad_b = grad_2d.sum(axis=0)
    ranges = _row_ranges(rows, features * weight.shape[0])
    if len(ranges) == 1:
        grad_x = grad_w = None
        if needs[0] and relu_out is None:
            grad_x = grad @ weight  # (..., out) @ (out, in) -> (..., in)
        elif needs[0]:
            grad_x = (grad_2d @ weight).reshape(x.shape)  # (N, out) @ (out, in) -> (N, in)
        if needs[1]:
            grad_w = grad_2d.T @ x.reshape(rows, features)  # (out, N) @ (N, in)
        return grad_x, grad_w, grad_b
    x_2d = x.reshape(rows, features)  # (N, in)
    dtype = np.result_type(grad_2d.dtype, weight.dtype)
    grad_x = np.empty((rows, features), dtype=dtype) if needs[0] else None
    grad_w = np.empty(weight.shape, dtype=dtype) if needs[1] else None
    columns = _threads.split(features, len(ranges))

    def backward_part(part: int, lo: int, hi: int) -> None:
        first, last = columns[part]
        if grad_x is not None:  # (N, out) @ (out, cols)
            np.matmul(grad_2d, weight[:, first:last], out=grad_x[:, first:last])
        if grad_w is not None:  # (out, N) @ (N, cols): the whole batch, these input features
            np.matmul(grad_2d.T, x_2d[:, first:last], out=grad_w[:, first:last])

    _threads.run_parts(backward_part, ranges)
    return (None if grad_x is None else grad_x.reshape(x.shape), grad_w, grad_b)


class Linear(Function):
    """y = x W^T + b with W of shape (out, in), PyTorch's layout, in one node.

    Local derivative: dL/dx = G W, dL/dW = G^T x (over all leading axes), dL/db = sum of G.
    Shape: x (..., in), W (out, in), b (out,) -> (..., out).
    """
    owns_grads = True
    named_per_call = True

    tensor_args = (0, 1, 2)

    x: np.ndarray  # set by forward
    has_bias: bool

    def torch_node_name(self) -> str:
        """The last node F.linear records in torch: ``Mm``/``Addmm`` for 2-D input,
        ``SqueezeBackward4`` (1-D, no bias), ``UnsafeView`` (batched, no bias), ``View``."""
        if self.x.ndim == 2:
            return "Addmm" if self.has_bias else "Mm"
        if not self.has_bias:
            return "SqueezeBackward4" if self.x.ndim == 1 else "UnsafeView"
        return "View"

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        _check_linear(x, weight, bias)
        ctx.x, ctx.weight, ctx.has_bias = x, weight, bias is not None
        return _linear_forward(x, weight, bias, relu=False)

    @staticmethod
    def backward(ctx, grad):
        needs = ctx.needs_input_grad
        grad_x, grad_w, grad_b = _linear_backward(
            grad, ctx.x, ctx.weight, None, (needs[0], needs[1], ctx.has_bias and needs[2]))
        if ctx.has_bias:
            return grad_x, grad_w, grad_b
        return grad_x, grad_w

    @staticmethod
    def backward_graph(ctx, grad):
        x, weight = ctx.inputs[0], ctx.inputs[1]
        needs = ctx.needs_input_grad
        grad_x = MatMul.apply(grad, weight) if needs[0] else None  # (N, out) @ (out, in)
        grad_w = grad_b = None
        grad_2d = Reshape.apply(grad, _rows_shape(grad.shape))  # (N, out)
        if needs[1]:
            x_2d = Reshape.apply(x, _rows_shape(x.shape))  # (N, in)
            grad_w = MatMul.apply(_swap_last(grad_2d), x_2d)  # (out, N) @ (N, in)
        if ctx.has_bias:
            if needs[2]:
                grad_b = grad_2d.sum(dim=0)
            return grad_x, grad_w, grad_b
        return grad_x, grad_w


class LinearReLU(Function):
    """y = relu(x W^T + b) in one node: the linear layer and the ReLU after it, fused.

    The same values and gradients as ``Linear`` then ``ReLU`` (relu'(0) = 0, a NaN output passes
    its gradient on), with the bias add and the ReLU done in place on the matrix product's output
    and, in backward, the ReLU mask and the bias gradient in one pass
    (``autograd/kernels/activation.py``). ``nn.Sequential`` uses it for a ``Linear`` followed by
    a ``ReLU`` when nothing observes the pre-activation (no hooks on either module, no activation
    observer); the doctor's observers see it as a "relu" op.

    Local derivative: with z = x W^T + b and m = (y != 0): dL/dz = G * m, then dL/dx = dz W,
    dL/dW = dz^T x, dL/db = sum of dz over all leading axes.
    Shape: x (..., in), W (out, in), b (out,) -> (..., out).
    """
    torch_name = "Relu"

    observe_kind = "relu"
    owns_grads = True
    saves_output = True
    tensor_args = (0, 1, 2)

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        _check_linear(x, weight, bias)
        out = _linear_forward(x, weight, bias, relu=True)  # (..., out)
        ctx.x, ctx.weight, ctx.has_bias, ctx.out = x, weight, bias is not None, out
        return out

    @staticmethod
    def backward(ctx, grad):
        needs = ctx.needs_input_grad
        grad_x, grad_w, grad_b = _linear_backward(
            grad, ctx.x, ctx.weight, ctx.out, (needs[0], needs[1], ctx.has_bias and needs[2]))
        if ctx.has_bias:
            return grad_x, grad_w, grad_b
        return grad_x, grad_w

    @staticmethod
    def backward_graph(ctx, grad):
        # the ReLU mask is piecewise constant (relu'' = 0), then Linear's graph backward; torch's
        # threshold_backward reads the result, a function of every input: linked to each that
        # requires grad (zeros, not None, when differentiated again; issue 12 item d)
        mask = ctx.out != 0
        grad_z = Where.apply(mask, grad, np.zeros((), dtype=grad.dtype))
        for tensor in ctx.inputs:
            grad_z = linked_to(grad_z, tensor)
        return Linear.backward_graph(ctx, grad_z)


class SingularValueNorm(Function):
    """A norm of the singular values of each matrix over the last two axes.

    ``kind`` "max" gives the spectral norm (matrix 2-norm), "min" the smallest singular value
    (the -2 "norm"), "sum" the nuclear norm. With the SVD ``x = U diag(s) V^T`` and the norm
    ``f(s)``, the local derivative is ``U diag(df/ds) V^T``: ``u_1 v_1^T`` for the spectral norm
    (split evenly between tied singular values, as PyTorch's ``amax`` over ``svdvals`` does) and
    ``U V^T`` for the nuclear norm. Its ``backward_graph`` records U and V^T as the SVD's ops,
    so the second derivative is the SVD's (finite while the singular values are distinct).
    Shape: (..., m, n) -> (...).
    """

    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, x, kind="max"):
        if x.ndim < 2 or x.shape[-1] == 0 or x.shape[-2] == 0:
            raise ValueError(
                f"matrix_norm: the singular-value norm {kind!r} needs non-empty matrices in the "
                f"last two axes, got shape {x.shape}"
            )
        u, s, vh = np.linalg.svd(x, full_matrices=False)  # (..., m, k), (..., k), (..., k, n)
        if kind == "sum":
            out = s.sum(axis=-1)
            weights = np.ones_like(s)
        else:
            out = s.max(axis=-1) if kind == "max" else s.min(axis=-1)
            hits = s == out[..., None]
            weights = hits / hits.sum(axis=-1, keepdims=True)
        ctx.u, ctx.vh, ctx.weights = u, vh, weights.astype(x.dtype, copy=False)
        return out.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        # dL/dx = U diag(grad * df/ds) V^T
        scaled = (grad[..., None] * ctx.weights)[..., None] * ctx.vh  # (..., k, n)
        return ((ctx.u @ scaled).astype(grad.dtype, copy=False),)

    @staticmethod
    def backward_graph(ctx, grad):
        # U diag(grad * df/ds) V^T with U and V^T recorded (SvdU / SvdVh), so the second
        # derivative goes through the SVD's (Townsend 2016), as PyTorch's through svdvals; the
        # weights df/ds are piecewise constant (a tie's even split): constants
        (x,) = ctx.inputs
        u, vh = SvdU.apply(x), SvdVh.apply(x)
        weights = grad.unsqueeze(-1) * ctx.weights  # (..., k)
        return ((u * weights.unsqueeze(-2)) @ vh,)


def _swap_last(t):
    """t with its last two axes swapped, as a recorded op."""
    axes = list(range(t.ndim))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    return Transpose.apply(t, tuple(axes))
