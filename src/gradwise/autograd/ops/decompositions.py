"""Matrix functions and decompositions over the last two axes: inverse, determinant, solve,
Cholesky, symmetric eigendecomposition, SVD, QR and the pseudo-inverse (``torch.linalg``).

Every op works on a batch ``(..., m, n)`` and keeps a floating input's dtype (NumPy's LAPACK
runs float32 in single precision, as PyTorch's does). A decomposition with several outputs is
one Function per output, each recomputing the factorisation: the backward formulas are linear
in the output gradients, so the per-output parts add up to the joint gradient, and an output
that is not used costs nothing in backward.

Sources of the backward formulas: M. Giles, "An extended collection of matrix derivative results
for forward and reverse mode algorithmic differentiation" (2008) for inv, det, solve, eigh and
cholesky; J. Townsend, "Differentiating the Singular Value Decomposition" (2016) for the SVD;
H.-J. Liao et al., "Differentiable Programming Tensor Networks" (2019) for QR; G. Golub and
V. Pereyra (1973) for the pseudo-inverse. They are the formulas PyTorch's
``FunctionsManual.cpp`` implements.

Every op also has ``backward_graph`` (``create_graph=True``): the same formula written in
recorded ops, with the factorisation's outputs recomputed as recorded ops of the input (the
inverse as ``Inverse.apply(A)``, U, S, Vh as ``SvdU``/``SvdS``/``SvdVh``...), so that a second
derivative differentiates through them exactly as PyTorch's double backward does (its
backward formulas read the op's outputs, which are differentiable functions of the input).
Where the first derivative is ill-defined (repeated eigenvalues or singular values, a rank
change), so is the second, with the same inf/NaN as PyTorch (docs/NUMERICS.md).
"""

from __future__ import annotations

import numpy as np

from gradwise.autograd.function import Function
from gradwise.autograd.ops._broadcast import unbroadcast, unbroadcast_graph
from gradwise.autograd.ops.elementwise import Where
from gradwise.autograd.ops.special import CumProd


def _eye(n: int, like) -> np.ndarray:
    """The n x n identity in the dtype of the Tensor ``like`` (a constant of the graph)."""
    return np.eye(n, dtype=like._data.dtype)


def _zero(like) -> np.ndarray:
    return np.zeros((), dtype=like._data.dtype)


def _mT(x: np.ndarray) -> np.ndarray:  # noqa: N802 - the matrix transpose, PyTorch's mT
    return np.swapaxes(x, -1, -2)


def check_matrices(op: str, x: np.ndarray, square: bool = True) -> None:
    """Raise unless ``x`` is a floating (batch of) matrix, square when ``square``.

    Raises:
        TypeError: ``x`` is not floating point.
        ValueError: fewer than 2 dims, or not square.
    """
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point tensor, got {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{op}: expected a matrix or a batch of matrices, got shape {x.shape}")
    if square and x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{op}: expected square matrices, got shape {x.shape}")


def _lapack(op: str, fn, *arrays):
    """Call a NumPy linalg routine, naming ``op`` when it refuses (singular, not PD...)."""
    try:
        return fn(*arrays)
    except np.linalg.LinAlgError as error:
        shapes = " and ".join(str(a.shape) for a in arrays)
        raise ValueError(f"{op}: {error} (input of shape {shapes})") from None


class Inverse(Function):
    """A^-1 (``torch.linalg.inv``). Local derivative: dL/dA = -A^-T G A^-T.
    Shape: (..., n, n) -> (..., n, n). Raises ValueError for a singular matrix."""

    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, a):
        check_matrices("linalg.inv", a)
        ctx.inverse = _lapack("linalg.inv", np.linalg.inv, a).astype(a.dtype, copy=False)
        return ctx.inverse

    @staticmethod
    def backward(ctx, grad):
        inverse_t = _mT(ctx.inverse)
        return (-(inverse_t @ grad @ inverse_t),)

    @staticmethod
    def backward_graph(ctx, grad):
        (a,) = ctx.inputs
        inverse_t = Inverse.apply(a).mT
        return (-(inverse_t @ grad @ inverse_t),)


def adjugate_transpose(a: np.ndarray) -> np.ndarray:
    """adj(A)^T, the derivative of det(A), through the SVD so that it is right for singular A.

    With A = U S V^T: adj(A)^T = det(U) det(V) U diag(prod_{j != i} s_j) V^T.
    """
    if a.shape[-1] == 0:  # the empty matrix: det = 1, a gradient with no entries
        return np.zeros(a.shape, dtype=a.dtype)
    u, s, vh = np.linalg.svd(a)
    n = s.shape[-1]
    others = np.stack([np.prod(np.delete(s, i, axis=-1), axis=-1) for i in range(n)], axis=-1)
    sign = np.linalg.det(u) * np.linalg.det(vh)
    return sign[..., None, None] * (u * others[..., None, :]) @ vh


class Determinant(Function):
    """det(A) (``torch.linalg.det``). Local derivative: dL/dA = g adj(A)^T (= g det(A) A^-T when
    A is invertible; the adjugate keeps it right for singular A). Shape: (..., n, n) -> (...)."""

    owns_grads = True

    @staticmethod
    def forward(ctx, a):
        check_matrices("linalg.det", a)
        ctx.a = a
        return np.asarray(np.linalg.det(a), dtype=a.dtype)

    @staticmethod
    def backward(ctx, grad):
        adj_t = adjugate_transpose(ctx.a.astype(np.float64))
        return ((grad[..., None, None] * adj_t).astype(grad.dtype, copy=False),)

    @staticmethod
    def backward_graph(ctx, grad):
        (a,) = ctx.inputs
        return (grad.unsqueeze(-1).unsqueeze(-1) * adjugate_transpose_graph(a),)


def _singular(a: np.ndarray) -> np.ndarray:
    """Which matrices of a batch are numerically singular: the smallest singular value at most
    n * eps times the largest (``matrix_rank``'s default cutoff, as NumPy's and PyTorch's)."""
    s = np.linalg.svd(a, compute_uv=False)
    n = a.shape[-1]
    return s[..., -1] <= n * np.finfo(a.dtype).eps * s[..., 0]


def adjugate_transpose_graph(a):
    """adj(A)^T of the Tensor ``a`` in recorded ops, for ``create_graph``.

    An invertible matrix takes det(A) A^-T (smooth, also where singular values repeat, as at
    the identity); a singular one the SVD form of :func:`adjugate_transpose`,
    det(U) det(V) U diag(prod_{j != i} s_j) V^T, whose derivative goes through the SVD's (finite
    while the singular values are distinct: a rank-(n-1) matrix). In a mixed batch each side
    sees a harmless stand-in (I, or diag(1..n)) for the other side's matrices, so neither
    side's inf or NaN reaches the other's gradient. PyTorch's ``linalg_det_backward`` also
    takes singular matrices through the SVD; the tests compare the two at rank n-1, at rank
    one, in mixed batches and at the zero matrix (NaN on both sides).
    """
    n = a.shape[-1]
    if n == 0 or a._data.size == 0:
        return a * 0
    singular = _singular(a._data)
    if not singular.any():
        return Determinant.apply(a).unsqueeze(-1).unsqueeze(-1) * Inverse.apply(a).mT
    pick = singular[..., None, None]
    if singular.all():
        safe_svd = a
    else:
        distinct = np.diag(np.arange(1, n + 1)).astype(a._data.dtype)
        safe_svd = Where.apply(pick, a, distinct)
    u, s, vh = SvdU.apply(safe_svd), SvdS.apply(safe_svd), SvdVh.apply(safe_svd)
    sign = (np.linalg.det(u._data) * np.linalg.det(vh._data)).astype(a._data.dtype)  # +-1
    # prod_{j != i} s_j: row i of a matrix holding s with 1 in place of s_i, running product
    others = _product_last(Where.apply(np.eye(n, dtype=bool), np.ones((), a._data.dtype),
                                       s.unsqueeze(-2)))
    svd_form = (u * (others * sign[..., None]).unsqueeze(-2)) @ vh
    if singular.all():
        return svd_form
    safe_inverse = Where.apply(pick, _eye(n, a), a)
    inverse_form = (Determinant.apply(safe_inverse).unsqueeze(-1).unsqueeze(-1)
                    * Inverse.apply(safe_inverse).mT)
    return Where.apply(pick, svd_form, inverse_form)


def _product_last(rows):
    """The product along the last dim, recorded as a running product (exact at zeros)."""
    return CumProd.apply(rows, -1)[..., -1]


class LogAbsDeterminant(Function):
    """log|det A| (the second output of ``torch.linalg.slogdet``). Local derivative: A^-T.
    Shape: (..., n, n) -> (...)."""

    owns_grads = True

    @staticmethod
    def forward(ctx, a):
        check_matrices("linalg.slogdet", a)
        ctx.a = a
        _, logabsdet = np.linalg.slogdet(a)
        return np.asarray(logabsdet, dtype=a.dtype)

    @staticmethod
    def backward(ctx, grad):
        inverse_t = _mT(_lapack("linalg.slogdet backward", np.linalg.inv, ctx.a))
        return ((grad[..., None, None] * inverse_t).astype(grad.dtype, copy=False),)

    @staticmethod
    def backward_graph(ctx, grad):
        (a,) = ctx.inputs
        return (grad.unsqueeze(-1).unsqueeze(-1) * Inverse.apply(a).mT,)


class Solve(Function):
    """X with A X = B (``torch.linalg.solve``); B is (..., n, k), or (n,)/(..., n) as a vector.

    Local derivative: dL/dB = A^-T G, dL/dA = -(dL/dB) X^T, batch axes unbroadcast.
    """

    owns_grads = True
    tensor_args = (0, 1)
    saves_inputs = False

    @staticmethod
    def forward(ctx, a, b):
        check_matrices("linalg.solve", a)
        if b.dtype.kind != "f":
            raise TypeError(f"linalg.solve: expected a floating point B, got {b.dtype}")
        vector = b.ndim == 1 or (b.ndim == a.ndim - 1 and b.shape == a.shape[:-1])
        b_matrix = b[..., None] if vector else b
        if b_matrix.shape[-2] != a.shape[-1]:
            raise ValueError(f"linalg.solve: A of shape {a.shape} and B of shape {b.shape} do "
                             f"not fit ({a.shape[-1]} != {b_matrix.shape[-2]})")
        try:
            batch = np.broadcast_shapes(a.shape[:-2], b_matrix.shape[:-2])
        except ValueError:
            raise ValueError(f"linalg.solve: batch shapes of A {a.shape} and B {b.shape} do "
                             "not broadcast") from None
        a_full = np.broadcast_to(a, (*batch, *a.shape[-2:]))
        b_full = np.broadcast_to(b_matrix, (*batch, *b_matrix.shape[-2:]))
        x = _lapack("linalg.solve", np.linalg.solve, a_full, b_full)
        x = x.astype(np.result_type(a, b), copy=False)
        ctx.a, ctx.x, ctx.vector, ctx.b_shape = a_full, x, vector, b.shape
        ctx.a_shape = a.shape
        return x[..., 0] if vector else x

    @staticmethod
    def backward(ctx, grad):
        grad_m = grad[..., None] if ctx.vector else grad
        grad_b = np.linalg.solve(_mT(ctx.a), grad_m)  # (..., n, k)
        grad_a = -grad_b @ _mT(ctx.x)
        grad_b_out = grad_b[..., 0] if ctx.vector else grad_b
        return (unbroadcast(grad_a, ctx.a_shape).astype(grad.dtype, copy=False),
                unbroadcast(grad_b_out, ctx.b_shape).astype(grad.dtype, copy=False))

    @staticmethod
    def backward_graph(ctx, grad):
        a, b = ctx.inputs
        grad_m = grad.unsqueeze(-1) if ctx.vector else grad
        grad_b = Solve.apply(a.mT, grad_m)  # (..., n, k), the batch broadcast
        grad_a = None
        if ctx.needs_input_grad[0]:
            x = Solve.apply(a, b)
            x_m = x.unsqueeze(-1) if ctx.vector else x
            grad_a = unbroadcast_graph(-(grad_b @ x_m.mT), ctx.a_shape)
        grad_b_out = None
        if ctx.needs_input_grad[1]:
            grad_b_out = unbroadcast_graph(grad_b[..., 0] if ctx.vector else grad_b,
                                           ctx.b_shape)
        return grad_a, grad_b_out


def _phi(x: np.ndarray) -> np.ndarray:
    """The lower triangle with the diagonal halved (Murray's Phi)."""
    out = np.tril(x)
    diagonal = np.einsum("...ii->...i", out)
    diagonal *= 0.5
    return out


class Cholesky(Function):
    """L with A = L L^T, L lower triangular (``torch.linalg.cholesky``; ``upper=True``: L^T).

    Local derivative (Murray 2016, PyTorch's): S = L^-T Phi(L^T tril(G)) L^-1,
    dL/dA = (S + S^T) / 2. Raises ValueError when A is not positive-definite.
    """

    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, a, upper=False):
        check_matrices("linalg.cholesky", a)
        lower = _lapack("linalg.cholesky", np.linalg.cholesky, a).astype(a.dtype, copy=False)
        ctx.lower, ctx.upper = lower, upper
        return np.ascontiguousarray(_mT(lower)) if upper else lower

    @staticmethod
    def backward(ctx, grad):
        lower = ctx.lower
        grad_lower = np.tril(_mT(grad) if ctx.upper else grad)
        phi = _phi(_mT(lower) @ grad_lower)
        inverse = np.linalg.inv(lower)
        s = _mT(inverse) @ phi @ inverse
        return ((0.5 * (s + _mT(s))).astype(grad.dtype, copy=False),)

    @staticmethod
    def backward_graph(ctx, grad):
        (a,) = ctx.inputs
        lower = Cholesky.apply(a, False)
        grad_lower = (grad.mT if ctx.upper else grad).tril()
        n = a.shape[-1]
        halved = np.tril(np.ones((n, n), dtype=a._data.dtype)) - 0.5 * _eye(n, a)  # Phi
        phi = (lower.mT @ grad_lower) * halved
        inverse = Inverse.apply(lower)
        s = inverse.mT @ phi @ inverse
        return (0.5 * (s + s.mT),)


class EighValues(Function):
    """The eigenvalues of a symmetric matrix, ascending (``torch.linalg.eigvalsh``), from its
    lower triangle (``UPLO="L"``) or upper. Local derivative: V diag(g) V^T."""

    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, a, uplo="L"):
        check_matrices("linalg.eigh", a)
        values, vectors = _lapack("linalg.eigh", lambda x: np.linalg.eigh(x, UPLO=uplo), a)
        ctx.vectors, ctx.uplo = vectors.astype(a.dtype, copy=False), uplo
        return values.astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        v = ctx.vectors
        return ((v * grad[..., None, :]) @ _mT(v),)

    @staticmethod
    def backward_graph(ctx, grad):
        (a,) = ctx.inputs
        v = EighVectors.apply(a, ctx.uplo)
        return ((v * grad.unsqueeze(-2)) @ v.mT,)


class EighVectors(Function):
    """The eigenvectors (columns) of a symmetric matrix (second output of ``torch.linalg.eigh``).

    Local derivative: V (F o skew(V^T G)) V^T with skew(X) = (X - X^T) / 2 and
    F_ij = 1 / (lambda_j - lambda_i), 0 on the diagonal (Giles 2008; the projection onto the
    skew-symmetric matrices is PyTorch's ``linalg_eig_backward`` for Hermitian input, which
    makes the gradient symmetric: the same as Giles' once the input is symmetric, and
    PyTorch's value when only one triangle was read). Ill-defined, as in PyTorch, when
    eigenvalues repeat.
    """

    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, a, uplo="L"):
        check_matrices("linalg.eigh", a)
        values, vectors = _lapack("linalg.eigh", lambda x: np.linalg.eigh(x, UPLO=uplo), a)
        ctx.values, ctx.vectors = values, vectors.astype(a.dtype, copy=False)
        ctx.uplo = uplo
        return ctx.vectors

    @staticmethod
    def backward(ctx, grad):
        v, values = ctx.vectors, ctx.values
        gaps = values[..., None, :] - values[..., :, None]  # [i, j] = lambda_j - lambda_i
        n = values.shape[-1]
        gaps[..., np.arange(n), np.arange(n)] = 1
        projected = _mT(v) @ grad
        inner = 0.5 * (projected - _mT(projected)) / gaps
        inner[..., np.arange(n), np.arange(n)] = 0
        return ((v @ inner @ _mT(v)).astype(grad.dtype, copy=False),)

    @staticmethod
    def backward_graph(ctx, grad):
        (a,) = ctx.inputs
        v, values = EighVectors.apply(a, ctx.uplo), EighValues.apply(a, ctx.uplo)
        n = a.shape[-1]
        gaps = values.unsqueeze(-2) - values.unsqueeze(-1) + _eye(n, a)  # 1 on the diagonal
        off_diagonal = ~np.eye(n, dtype=bool)
        projected = v.mT @ grad
        inner = Where.apply(off_diagonal, 0.5 * (projected - projected.mT) / gaps, _zero(a))
        return (v @ inner @ v.mT,)


def svd_backward(u, s, vh, grad_u, grad_s, grad_vh) -> np.ndarray:
    """dL/dA for the reduced SVD A = U diag(S) Vh given the gradients of the used outputs
    (None for the others). Townsend (2016); PyTorch's ``svd_backward``."""
    m, n, k = u.shape[-2], vh.shape[-1], s.shape[-1]
    v = _mT(vh)
    core = np.zeros((*s.shape, k), dtype=np.result_type(u, s))
    if grad_s is not None:
        idx = np.arange(k)
        core[..., idx, idx] = grad_s
    if grad_u is None and grad_vh is None:
        return (u * np.einsum("...ii->...i", core)[..., None, :]) @ vh
    s2 = s * s
    gaps = s2[..., None, :] - s2[..., :, None]  # [i, j] = s_j^2 - s_i^2
    gaps[..., np.arange(k), np.arange(k)] = 1
    off = np.zeros_like(core)
    if grad_u is not None:
        utgu = _mT(u) @ grad_u
        off += (utgu - _mT(utgu)) * s[..., None, :]
    if grad_vh is not None:
        vtgv = vh @ _mT(grad_vh)  # V^T gV, with gV = grad_vh^T
        off += s[..., :, None] * (vtgv - _mT(vtgv))
    off = off / gaps
    off[..., np.arange(k), np.arange(k)] = 0
    grad_a = u @ (core + off) @ vh
    if grad_u is not None and m > k:
        gu_sinv = grad_u / s[..., None, :]
        grad_a += (gu_sinv - u @ (_mT(u) @ gu_sinv)) @ vh
    if grad_vh is not None and n > k:
        gv_sinv = _mT(grad_vh) / s[..., None, :]  # (..., n, k)
        grad_a += u @ _mT(gv_sinv - v @ (vh @ gv_sinv))
    return grad_a


def svd_backward_graph(u, s, vh, grad_u, grad_s, grad_vh):
    """:func:`svd_backward` in recorded ops (all arguments Tensors, None for an unused output's
    gradient), for ``create_graph``; the same terms, Townsend (2016)."""
    m, n, k = u.shape[-2], vh.shape[-1], s.shape[-1]
    if grad_u is None and grad_vh is None:
        return (u * grad_s.unsqueeze(-2)) @ vh
    s2 = s * s
    gaps = s2.unsqueeze(-2) - s2.unsqueeze(-1) + _eye(k, s)  # [i, j] = s_j^2 - s_i^2
    off = None
    if grad_u is not None:
        utgu = u.mT @ grad_u
        off = (utgu - utgu.mT) * s.unsqueeze(-2)
    if grad_vh is not None:
        vtgv = vh @ grad_vh.mT
        term = s.unsqueeze(-1) * (vtgv - vtgv.mT)
        off = term if off is None else off + term
    inner = Where.apply(~np.eye(k, dtype=bool), off / gaps, _zero(s))
    if grad_s is not None:
        inner = inner + grad_s.diag_embed()
    grad_a = u @ inner @ vh
    if grad_u is not None and m > k:
        gu_sinv = grad_u / s.unsqueeze(-2)
        grad_a = grad_a + (gu_sinv - u @ (u.mT @ gu_sinv)) @ vh
    if grad_vh is not None and n > k:
        gv_sinv = grad_vh.mT / s.unsqueeze(-2)  # (..., n, k)
        grad_a = grad_a + u @ (gv_sinv - vh.mT @ (vh @ gv_sinv)).mT
    return grad_a


class _SvdPart(Function):
    """One output of the reduced SVD (``torch.linalg.svd(A, full_matrices=False)``)."""

    owns_grads = True
    saves_inputs = False
    part = 0

    @classmethod
    def forward(cls, ctx, a):
        check_matrices("linalg.svd", a, square=False)
        u, s, vh = _lapack("linalg.svd", lambda x: np.linalg.svd(x, full_matrices=False), a)
        ctx.u, ctx.s, ctx.vh = (x.astype(a.dtype, copy=False) for x in (u, s, vh))
        return (ctx.u, ctx.s, ctx.vh)[cls.part]

    @classmethod
    def backward(cls, ctx, grad):
        grads = [None, None, None]
        grads[cls.part] = grad
        return (svd_backward(ctx.u, ctx.s, ctx.vh, *grads).astype(grad.dtype, copy=False),)

    @classmethod
    def backward_graph(cls, ctx, grad):
        (a,) = ctx.inputs
        grads = [None, None, None]
        grads[cls.part] = grad
        u, vh = SvdU.apply(a), SvdVh.apply(a)
        s = SvdS.apply(a)
        return (svd_backward_graph(u, s, vh, *grads),)


class SvdU(_SvdPart):
    """U of the reduced SVD; its gradient is gauge-dependent (signs), as in PyTorch."""

    part = 0


class SvdS(_SvdPart):
    """The singular values, descending (``torch.linalg.svdvals``): dL/dA = U diag(g) Vh."""

    part = 1


class SvdVh(_SvdPart):
    """Vh of the reduced SVD."""

    part = 2


class _QrPart(Function):
    """One output of the reduced QR decomposition (``torch.linalg.qr``, mode "reduced").

    Local derivative for m >= n (Liao et al. 2019): M = R gR^T - gQ^T Q,
    dL/dA = (gQ + Q copyltu(M)) R^-T with copyltu(M) = tril(M) + tril(M, -1)^T.
    """

    owns_grads = True
    saves_inputs = False
    part = 0

    @classmethod
    def forward(cls, ctx, a):
        check_matrices("linalg.qr", a, square=False)
        q, r = np.linalg.qr(a, mode="reduced")
        ctx.q, ctx.r = q.astype(a.dtype, copy=False), r.astype(a.dtype, copy=False)
        return (ctx.q, ctx.r)[cls.part]

    @classmethod
    def backward(cls, ctx, grad):
        q, r = ctx.q, ctx.r
        if q.shape[-2] < r.shape[-1]:
            raise ValueError(f"linalg.qr: the gradient is implemented for tall or square "
                             f"matrices (m >= n), got {q.shape[-2]} x {r.shape[-1]}")
        grad_q = grad if cls.part == 0 else np.zeros_like(q)
        grad_r = grad if cls.part == 1 else np.zeros_like(r)
        m = r @ _mT(grad_r) - _mT(grad_q) @ q
        copyltu = np.tril(m) + _mT(np.tril(m, -1))
        rhs = grad_q + q @ copyltu  # (..., m, n); solve X R^T = rhs  <=>  R X^T = rhs^T
        grad_a = _mT(np.linalg.solve(r, _mT(rhs)))
        return (grad_a.astype(grad.dtype, copy=False),)

    @classmethod
    def backward_graph(cls, ctx, grad):
        (a,) = ctx.inputs
        q, r = QrQ.apply(a), QrR.apply(a)
        if q.shape[-2] < r.shape[-1]:
            raise ValueError(f"linalg.qr: the gradient is implemented for tall or square "
                             f"matrices (m >= n), got {q.shape[-2]} x {r.shape[-1]}")
        m = -(grad.mT @ q) if cls.part == 0 else r @ grad.mT  # R gR^T - gQ^T Q, one of them
        copyltu = m.tril() + m.tril(-1).mT
        rhs = q @ copyltu
        if cls.part == 0:
            rhs = grad + rhs
        return (Solve.apply(r, rhs.mT).mT,)


class QrQ(_QrPart):
    """Q of the reduced QR decomposition."""

    part = 0


class QrR(_QrPart):
    """R of the reduced QR decomposition."""

    part = 1


class PseudoInverse(Function):
    """The Moore-Penrose pseudo-inverse P = A^+ (``torch.linalg.pinv``), singular values below
    ``rtol * max(s)`` (default ``max(m, n) * eps``, PyTorch's) or ``atol`` treated as zero.

    Local derivative (Golub and Pereyra 1973, constant rank):
    dL/dA = -P^T G P^T + (I - A P) G^T P P^T + P^T P G^T (I - P A).
    Shape: (..., m, n) -> (..., n, m).
    """

    owns_grads = True

    @staticmethod
    def forward(ctx, a, rtol=None, atol=None, hermitian=False):
        check_matrices("linalg.pinv", a, square=False)
        m, n = a.shape[-2:]
        if atol is None and rtol is None:
            rtol = max(m, n) * np.finfo(a.dtype).eps
        rtol = 0.0 if rtol is None else float(rtol)
        u, s, vh = np.linalg.svd(a, full_matrices=False)
        cutoff = rtol * (s.max(axis=-1, keepdims=True) if s.shape[-1] else 0)
        if atol is not None:
            cutoff = np.maximum(cutoff, float(atol))
        keep = s > cutoff
        s_inv = np.where(keep, 1 / np.where(keep, s, 1), 0)
        p = (_mT(vh) * s_inv[..., None, :]) @ _mT(u)
        ctx.a, ctx.p = a, p.astype(a.dtype, copy=False)
        ctx.options = (rtol, atol, hermitian)
        return ctx.p

    @staticmethod
    def backward(ctx, grad):
        a, p = ctx.a, ctx.p
        eye_m = np.eye(a.shape[-2], dtype=a.dtype)
        eye_n = np.eye(a.shape[-1], dtype=a.dtype)
        grad_t = _mT(grad)
        out = (-(_mT(p) @ grad @ _mT(p))
               + (eye_m - a @ p) @ grad_t @ p @ _mT(p)
               + _mT(p) @ p @ grad_t @ (eye_n - p @ a))
        return (out.astype(grad.dtype, copy=False),)

    @staticmethod
    def backward_graph(ctx, grad):
        (a,) = ctx.inputs
        p = PseudoInverse.apply(a, *ctx.options)
        eye_m, eye_n = _eye(a.shape[-2], a), _eye(a.shape[-1], a)
        grad_t, p_t = grad.mT, p.mT
        return (-(p_t @ grad @ p_t)
                + (eye_m - a @ p) @ grad_t @ p @ p_t
                + p_t @ p @ grad_t @ (eye_n - p @ a),)
