"""Issue 11 part A without PyTorch: float64 gradcheck of every new differentiable function
(the torch comparisons are in tests/compat/test_oneliners.py), the errors that name the op
and the shapes, and the places where gradwise deliberately differs (docs/PORTING.md)."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.gradcheck import gradcheck

RNG = np.random.default_rng(7)
SQUARE = RNG.standard_normal((3, 3)) + 3 * np.eye(3)
_B = RNG.standard_normal((3, 3))
SPD = _B @ _B.T + 3 * np.eye(3)
TALL = RNG.standard_normal((4, 2))
VECTOR = RNG.standard_normal((2, 5)) + np.arange(10).reshape(2, 5)  # distinct values


def _leaf(array):
    return gw.tensor(np.ascontiguousarray(array, dtype=np.float64), requires_grad=True)


def _sym(a):
    return (a + a.mT) / 2


GRID = {
    "inv": (lambda a: gw.linalg.inv(a), SQUARE),
    "inv-batch": (lambda a: gw.linalg.inv(a), np.stack([SQUARE, SPD])),
    "det": (lambda a: gw.linalg.det(a), SQUARE),
    "det-singular": (lambda a: gw.linalg.det(a), np.array([[1.0, 2, 3], [2, 4, 6], [1, 0, 1]])),
    "slogdet": (lambda a: gw.linalg.slogdet(a).logabsdet, SQUARE),
    "solve-A": (lambda a: gw.linalg.solve(a, gw.tensor(TALL[:3])), SQUARE),
    "solve-B": (lambda b: gw.linalg.solve(gw.tensor(SQUARE), b), TALL[:3]),
    "solve-left-false": (lambda a: gw.linalg.solve(a, gw.tensor(TALL[:3].T), left=False),
                         SQUARE),
    "cholesky": (lambda a: gw.linalg.cholesky(_sym(a)), SPD),
    "cholesky-upper": (lambda a: gw.linalg.cholesky(_sym(a), upper=True), SPD),
    "eigvalsh": (lambda a: gw.linalg.eigvalsh(_sym(a)), SPD),
    "eigh-projector": (lambda a: (lambda v: v[:, :1] @ v[:, :1].mT)(
        gw.linalg.eigh(_sym(a)).eigenvectors), SPD),
    "svdvals": (lambda a: gw.linalg.svdvals(a), TALL),
    "svd-U-projector": (lambda a: (lambda u: u @ u[:1].mT)(
        gw.linalg.svd(a, full_matrices=False).U), TALL),
    "svd-Vh-projector": (lambda a: (lambda vh: vh.mT @ vh[:, :1])(
        gw.linalg.svd(a, full_matrices=False).Vh), TALL.T),
    "qr-Q": (lambda a: gw.linalg.qr(a).Q, TALL),
    "qr-R": (lambda a: gw.linalg.qr(a).R, TALL),
    "pinv": (lambda a: gw.linalg.pinv(a), TALL),
    "matrix_power": (lambda a: gw.linalg.matrix_power(a, -2), SQUARE),
    "einsum-bilinear": (lambda a: gw.einsum("ij,jk,kl->il", a, a, a), SQUARE),
    "einsum-broadcast": (lambda a: gw.einsum("...j,ij->...i", a, gw.tensor(SQUARE)), TALL[:1, :1]
                         * np.ones((2, 3))),
    "median": (lambda x: x.median(1).values, VECTOR),
    "quantile": (lambda x: x.quantile(gw.tensor([0.1, 0.75], dtype=gw.float64), dim=1), VECTOR),
    "kthvalue": (lambda x: x.kthvalue(2, 0).values, VECTOR),
    "cummax": (lambda x: x.cummax(1).values, VECTOR),
    "logcumsumexp": (lambda x: x.logcumsumexp(1), VECTOR),
    "scatter": (lambda x: x.scatter(1, gw.tensor([[0, 2], [4, 1]]), x[:, :2] * 2), VECTOR),
    "scatter_reduce-prod": (lambda x: gw.ones(2, 3, dtype=gw.float64).scatter_reduce(
        1, gw.tensor([[0, 0, 1, 2, 2], [1, 1, 1, 0, 2]]), x, "prod"), VECTOR),
    "scatter_reduce-mean": (lambda x: x.scatter_reduce(
        1, gw.tensor([[0, 0, 1, 2, 2], [1, 1, 1, 0, 2]]), x * x, "mean", include_self=False),
        VECTOR),
    "index_add": (lambda x: x.index_add(1, gw.tensor([4, 0, 4]), x[:, :3], alpha=0.5), VECTOR),
    "diag_embed": (lambda x: gw.diag_embed(x, 1, 0, 2), VECTOR),
    "roll-unfold": (lambda x: x.roll(2, 1).unfold(1, 3, 2), VECTOR),
    "cdist": (lambda x: gw.cdist(x, gw.tensor(TALL.T[:, :1] * np.ones((2, 5)))), VECTOR),
    "kron": (lambda x: gw.kron(x, gw.tensor(SQUARE[:2])), VECTOR),
    "cross": (lambda x: gw.cross(x[:, :3], x[:, 2:], dim=1), VECTOR),
    "lerp-hypot-logaddexp": (lambda x: x.lerp(x * x, 0.3).hypot(x).logaddexp(-x), VECTOR),
    "special": (lambda x: (x * 0.05).erfinv() + (x.abs() + 1).lgamma() + (x.abs() + 1).digamma()
                + x.erf() + x.erfc(), VECTOR),
    "xlogy-sinc-copysign": (lambda x: gw.xlogy(x, x.abs() + 1) + (x * 0.1).sinc()
                            + x.copysign(gw.tensor([-1.0])), VECTOR),
    "cumprod": (lambda x: x.cumprod(1), VECTOR * 0.2),
    "cumprod-with-zeros": (lambda x: x.cumprod(0), np.array([[2.0, 0.0], [0.0, 1.5], [3.0, 0.0],
                                                            [0.5, 2.0]])),
    "diff-nansum-tensordot": (lambda x: x.diff(dim=1).nansum(0) + gw.tensordot(x, x, dims=2),
                              VECTOR),
    "cov-corrcoef": (lambda x: gw.cov(x) + gw.corrcoef(x), VECTOR),
    "fmod-frac": (lambda x: x.fmod(gw.tensor(1.7, dtype=gw.float64)) + (x * 0.3).frac(),
                  VECTOR + 0.05),
}


@pytest.mark.parametrize("name", sorted(GRID))
def test_new_functions_pass_gradcheck(name):
    fn, value = GRID[name]
    assert gradcheck(fn, _leaf(value))


def test_det_gradient_at_a_singular_matrix_is_the_adjugate():
    # PyTorch 2.13 returns 0 here; the derivative of det is adj(A)^T whatever the rank
    a = _leaf([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    gw.linalg.det(a).backward()
    cofactors = np.array([[4.0, 4.0, -4.0], [-2.0, -2.0, 2.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(np.asarray(a.grad), cofactors, atol=1e-12)


def test_xlogy_has_no_nan_gradient_where_x_is_zero():
    x, y = _leaf([0.0, 0.0]), _leaf([0.0, np.inf])
    out = gw.xlogy(x, y)
    out.sum().backward()
    assert np.asarray(out).tolist() == [0.0, 0.0]
    assert np.isfinite(np.asarray(x.grad)).all() and np.isfinite(np.asarray(y.grad)).all()


@pytest.mark.parametrize(("call", "message"), [
    (lambda: gw.linalg.inv(gw.ones(2, 3)), r"linalg.inv: expected square matrices, got shape "
                                           r"\(2, 3\)"),
    (lambda: gw.linalg.inv(gw.zeros(2, 2)), r"linalg.inv: Singular matrix \(input of shape"),
    (lambda: gw.linalg.det(gw.ones(3)), r"linalg.det: expected a matrix .* shape \(3,\)"),
    (lambda: gw.linalg.inv(gw.tensor([[1, 2], [3, 4]])), "linalg.inv: expected a floating"),
    (lambda: gw.linalg.solve(gw.eye(3), gw.ones(2, 1)), r"linalg.solve: A of shape \(3, 3\) "
                                                        r"and B of shape \(2, 1\)"),
    (lambda: gw.linalg.cholesky(-gw.eye(2)), "linalg.cholesky: Matrix is not positive"),
    (lambda: gw.linalg.qr(gw.eye(2), mode="full"), "linalg.qr: mode must be"),
    (lambda: gw.ones(2, 3).scatter(0, gw.tensor([0]), 1.0), r"scatter: index has 1 dims, the "
                                                           r"tensor of shape \(2, 3\) has 2"),
    (lambda: gw.ones(2).scatter(0, gw.tensor([0.5]), 1.0), "scatter: index must be an integer"),
    (lambda: gw.ones(3).scatter_reduce(0, gw.tensor([0]), gw.ones(1), "max"),
     "scatter_reduce: reduce must be one of"),
    (lambda: gw.ones(3, 2).index_add(0, gw.tensor([0, 1]), gw.ones(3, 2)),
     r"index_add: index of shape \(2,\) and source of shape \(3, 2\)"),
    (lambda: gw.ones(3).quantile(1.5), r"quantile: q must be .* \[0, 1\], got 1.5"),
    (lambda: gw.ones(3).kthvalue(4), "kthvalue: k=4 out of range for a dim of size 3"),
    (lambda: gw.ones(2, 2).diag_embed(dim1=1, dim2=-2), "diag_embed: dim1 and dim2 are both"),
    (lambda: gw.ones(3).trace(), r"trace: expected a 2-d tensor, got shape \(3,\)"),
    (lambda: gw.einsum("ij,jk->ik", gw.ones(2, 3), gw.ones(2, 3)),
     r"einsum: 'ij,jk->ik' with operand shapes \[\(2, 3\), \(2, 3\)\]"),
    (lambda: gw.einsum("ij->i", gw.ones(2)), r"einsum: subscripts 'ij' have 2 labels"),
    (lambda: gw.cross(gw.ones(2, 2), gw.ones(2, 2)), r"cross: no dim of size 3 in shape"),
    (lambda: gw.roll(gw.ones(2, 2), (1, 2), 0), "roll: shifts .* and dims .* differ"),
    (lambda: gw.meshgrid(gw.ones(2), gw.ones(2, 2)), "meshgrid: expects 0-d or 1-d"),
    (lambda: gw.bucketize(gw.ones(2), gw.ones(2, 2)), r"bucketize: boundaries must be 1-d"),
    (lambda: gw.tensor([1.0]).bincount(), "bincount: expected a 1-d tensor of non-negative"),
    (lambda: gw.Tensor(2, 2.5), r"Tensor: expected data or int sizes"),
    (lambda: gw.set_printoptions(profile="huge"), "set_printoptions: profile must be one of"),
])
def test_bad_input_names_the_op_and_the_shapes(call, message):
    with pytest.raises((ValueError, TypeError, IndexError), match=message):
        call()


def test_scatter_names_the_index_out_of_bounds():
    # a RuntimeError, as torch's (negative indices are out of bounds too: issue 12, fix5)
    with pytest.raises(RuntimeError, match="scatter: index 5 is out of bounds for dimension 0 "
                                           "with size 2"):
        gw.ones(2, 3).scatter(0, gw.tensor([[5]]), 1.0)


def test_in_place_scatter_and_index_add_refuse_a_tensor_that_requires_grad():
    w = gw.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="index_add_: a leaf Variable that requires grad"):
        w.index_add_(0, gw.tensor([0]), gw.ones(1))
    with gw.no_grad():
        w.index_add_(0, gw.tensor([0, 0]), gw.ones(2))
    assert w.tolist() == [2.0, 0.0, 0.0]


def test_print_options_change_repr_until_reset():
    x = gw.tensor([1.23456, 20.5])
    try:
        gw.set_printoptions(precision=1)
        assert repr(x) == "tensor([ 1.2, 20.5])"
        gw.set_printoptions(sci_mode=True)
        assert "e+01" in repr(x)
        gw.set_printoptions(threshold=4, edgeitems=1)
        assert "..." in repr(gw.arange(10.0))
        assert gw.get_printoptions()["edgeitems"] == 1
    finally:
        gw.set_printoptions(profile="default")
    assert repr(x) == "tensor([ 1.2346, 20.5000])"


def test_legacy_tensor_constructor():
    assert gw.Tensor(2, 3).shape == (2, 3) and gw.Tensor(2, 3).dtype == gw.float32
    assert gw.Tensor((2, 3)).tolist() == [2.0, 3.0]  # a tuple is data, as in torch
    assert gw.Tensor(3).shape == (3,) and gw.Tensor().shape == (0,)
    assert gw.Tensor([1, 2]).dtype == gw.float32
    assert gw.Tensor(np.arange(3)).dtype == np.int64  # an ndarray keeps its dtype
    # a Python int given to an op is still a value, not a shape
    assert (gw.ones(2) * 3).tolist() == [3.0, 3.0]


def test_gradcheck_perturbs_a_non_contiguous_input():
    # a transposed (Fortran-ordered) input used to be perturbed through a copy: numerical 0
    x = gw.tensor(np.asfortranarray(SQUARE), requires_grad=True)
    assert not x._data.flags.c_contiguous
    assert gradcheck(lambda a: a * a, x)
