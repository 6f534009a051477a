"""Everyday PyTorch one-liners run side by side in torch and gradwise (issue 11).

Each case is ``lambda m: ...`` written once against a module ``m``: it runs with ``m = torch``
and with ``m = gradwise``, and :func:`assert_same` compares value, dtype and shape (tinygrad's
helper_test_op style: one helper, one table). Random cases compare dtype and shape only (the
streams differ on purpose: docs/PORTING.md). Deliberate differences are marked xfail with the
PORTING.md reason.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")

X = [[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]]
P = [[0.5, 1.5, 2.5], [3.5, 4.5, 5.5]]  # positive
I = [[1, 2, 3], [4, 5, 6]]  # noqa: E741 - ints
B = [[True, False, True], [False, False, True]]
V = [3.0, 1.0, 2.0, 5.0, 4.0]


def _x(m):
    return m.tensor(X)


def _p(m):
    return m.tensor(P)


def _i(m):
    return m.tensor(I)


def _v(m):
    return m.tensor(V)


def _3d(m):
    return m.arange(24.0).reshape(2, 3, 4)


CASES: list[tuple[str, object, str]] = []  # (id, fn, mode) mode: value | meta


def case(name, fn, mode="value"):
    CASES.append((name, fn, mode))


# ---- creation --------------------------------------------------------------------------------
case("tensor-int", lambda m: m.tensor([[1, 2], [3, 4]]))
case("tensor-float", lambda m: m.tensor([1.5, 2.0]))
case("tensor-bool", lambda m: m.tensor([True, False]))
case("tensor-mixed", lambda m: m.tensor([1, 2.5]))
case("tensor-scalar", lambda m: m.tensor(3))
case("tensor-dtype", lambda m: m.tensor([1, 2], dtype=m.float32))
case("tensor-f64", lambda m: m.tensor([1.0], dtype=m.float64))
case("zeros", lambda m: m.zeros(2, 3))
case("zeros-tuple", lambda m: m.zeros((2, 3)))
case("zeros-int", lambda m: m.zeros(3, dtype=m.int64))
case("ones", lambda m: m.ones(4))
case("ones-long", lambda m: m.ones(2, 2, dtype=m.long))
case("full-float", lambda m: m.full((2, 2), 7.0))
case("full-int", lambda m: m.full((2,), 7))
case("full-bool", lambda m: m.full((2,), True))
case("zeros_like", lambda m: m.zeros_like(_i(m)))
case("ones_like", lambda m: m.ones_like(_x(m)))
case("full_like", lambda m: m.full_like(_x(m), 2.5))
case("arange-int", lambda m: m.arange(5))
case("arange-start", lambda m: m.arange(2, 9, 3))
case("arange-float", lambda m: m.arange(0, 1, 0.25))
case("arange-float-end", lambda m: m.arange(5.0))
case("arange-dtype", lambda m: m.arange(4, dtype=m.float32))
case("linspace", lambda m: m.linspace(0, 1, 5))
case("linspace-neg", lambda m: m.linspace(-3, 3, 7))
case("logspace", lambda m: m.logspace(0, 2, 3))
case("eye", lambda m: m.eye(3))
case("eye-rect", lambda m: m.eye(2, 3))
case("empty-shape", lambda m: m.empty(2, 3).shape)
case("from_numpy", lambda m: m.from_numpy(np.arange(3, dtype=np.int32)))
case("as_tensor", lambda m: m.as_tensor([1, 2]))
case("is_tensor", lambda m: m.is_tensor(_x(m)))
case("cat-dim1", lambda m: m.cat([_x(m), _x(m)], dim=1))
case("cat-dim0", lambda m: m.cat([_x(m), _x(m)]))
case("stack", lambda m: m.stack([_v(m), _v(m)]))
case("stack-dim1", lambda m: m.stack([_v(m), _v(m)], dim=1))
case("where", lambda m: m.where(_x(m) > 0, _x(m), m.zeros(2, 3)))
case("where-scalar", lambda m: m.where(_x(m) > 0, _x(m), 0.0))
# ---- random: dtype and shape only ------------------------------------------------------------
case("rand", lambda m: m.rand(2, 3), "meta")
case("randn", lambda m: m.randn(4), "meta")
case("randn-gen", lambda m: m.randn(3, generator=m.Generator().manual_seed(2147483647)), "meta")
case("rand-gen", lambda m: m.rand((2, 2), generator=m.Generator().manual_seed(1)), "meta")
case("randint", lambda m: m.randint(0, 10, (32,)), "meta")
case("randint-high", lambda m: m.randint(5, (3, 2)), "meta")
case("randperm", lambda m: m.randperm(6), "meta")
case("randperm-sorted", lambda m: m.randperm(6).sort().values)
case("multinomial", lambda m: m.multinomial(m.tensor([0.2, 0.8]), 1), "meta")
case("multinomial-rep", lambda m: m.multinomial(m.tensor([0.2, 0.8]), 5, replacement=True),
     "meta")
case("multinomial-2d", lambda m: m.multinomial(m.ones(3, 4), 2), "meta")
case("normal", lambda m: m.normal(0, 0.01, size=(3, 4)), "meta")
case("normal-tensor", lambda m: m.normal(m.zeros(3), m.ones(3)), "meta")
case("rand_like", lambda m: m.rand_like(_x(m)), "meta")
case("randn_like", lambda m: m.randn_like(_x(m)), "meta")
case("bernoulli", lambda m: m.bernoulli(m.full((3,), 0.5)), "meta")
case("normal_", lambda m: m.empty(3, 4).normal_(0, 0.01), "meta")
case("uniform_", lambda m: m.empty(5).uniform_(-1, 1), "meta")
case("uniform_-range", lambda m: bool(((m.empty(50).uniform_(-1, 1)).abs() <= 1).all()))
case("manual_seed-repro", lambda m: (m.manual_seed(3), m.rand(3))[1].tolist()
     == (m.manual_seed(3), m.rand(3))[1].tolist())
case("generator-repro", lambda m: m.randn(2, generator=m.Generator().manual_seed(5)).tolist()
     == m.randn(2, generator=m.Generator().manual_seed(5)).tolist())
case("initial_seed", lambda m: m.Generator().manual_seed(7).initial_seed())

# ---- elementwise math ------------------------------------------------------------------------
for _name in ("abs", "exp", "tanh", "sigmoid", "relu", "neg", "square", "sign", "floor", "ceil",
              "round", "trunc", "sin", "cos"):
    case(f"{_name}-fn", lambda m, n=_name: getattr(m, n)(_x(m)))
    case(f"{_name}-method", lambda m, n=_name: getattr(_x(m), n)())
for _name in ("log", "sqrt", "log10", "log2", "log1p", "rsqrt", "reciprocal", "expm1"):
    case(f"{_name}-fn", lambda m, n=_name: getattr(m, n)(_p(m)))
    case(f"{_name}-method", lambda m, n=_name: getattr(_p(m), n)())
for _name in ("abs", "neg", "square", "sign"):
    case(f"{_name}-int", lambda m, n=_name: getattr(_i(m), n)())
case("exp-int", lambda m: m.exp(_i(m)))
case("sqrt-int", lambda m: _i(m).sqrt())
case("clamp-min", lambda m: m.clamp(_x(m), min=0))
case("clamp-both", lambda m: _x(m).clamp(-1, 2))
case("clamp-max", lambda m: _x(m).clamp(max=1.5))
case("clip", lambda m: m.clip(_x(m), -1, 1))
case("clamp_min", lambda m: _x(m).clamp_min(0.5))
case("pow", lambda m: m.pow(_x(m), 2))
case("pow-method", lambda m: _p(m).pow(0.5))
case("pow-op", lambda m: _x(m) ** 3)
case("rpow", lambda m: 2 ** _x(m))
case("add-alpha", lambda m: _x(m).add(_p(m), alpha=2))
case("sub-alpha", lambda m: m.sub(_x(m), _p(m), alpha=0.5))
case("mul", lambda m: m.mul(_x(m), 3))
case("div", lambda m: m.div(_x(m), 4))
case("div-floor", lambda m: _i(m).div(2, rounding_mode="floor"))
case("div-trunc", lambda m: _x(m).div(4, rounding_mode="trunc"))
case("floordiv", lambda m: _i(m) // 2)
case("mod", lambda m: _i(m) % 4)
case("int-div-int", lambda m: _i(m) / 2)
case("int-times-float", lambda m: _i(m) * 0.5)
case("int-plus-int", lambda m: _i(m) + 1)
case("float-plus-int-tensor", lambda m: _x(m) + _i(m))
case("f64-plus-f32", lambda m: _x(m).double() + _x(m))
case("bool-plus-int", lambda m: m.tensor(B) + 1)
case("np-scalar", lambda m: _x(m) * np.float64(2.0))
case("maximum", lambda m: m.maximum(_x(m), m.zeros(2, 3)))
case("minimum", lambda m: m.minimum(_x(m), _p(m)))
case("max-elementwise", lambda m: m.max(_x(m), _p(m)))
case("matmul", lambda m: m.matmul(_x(m), _x(m).t()))
case("mm", lambda m: m.mm(_x(m).t(), _x(m)))
case("matmul-op", lambda m: _x(m) @ _p(m).T)
case("matvec", lambda m: _x(m) @ m.ones(3))
case("dot", lambda m: m.dot(_v(m), _v(m)))
case("bmm", lambda m: m.bmm(_3d(m), _3d(m).transpose(1, 2)))
case("outer", lambda m: m.outer(_v(m), m.tensor([1.0, 2.0])))
case("einsum", lambda m: m.einsum("ij,kj->ik", _x(m), _p(m)))
case("int-matmul", lambda m: _i(m) @ _i(m).t())
case("masked_fill", lambda m: _x(m).masked_fill(_x(m) < 0, 0.0))
case("lerp-like", lambda m: _x(m) * 0.3 + _p(m) * 0.7)

# ---- comparisons and tests -------------------------------------------------------------------
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    case(f"{_name}-tensor", lambda m, n=_name: getattr(_x(m), n)(_p(m)))
    case(f"{_name}-scalar", lambda m, n=_name: getattr(m, n)(_x(m), 1.0))
case("gt-op", lambda m: _x(m) > 0)
case("eq-op-int", lambda m: _i(m) == 2)
case("any", lambda m: (_x(m) > 0).any())
case("all", lambda m: (_x(m) > -10).all())
case("any-dim", lambda m: (_x(m) > 0).any(dim=1))
case("all-dim", lambda m: m.all(_x(m) > 0, dim=0))
case("isnan", lambda m: m.isnan(m.tensor([1.0, math.nan])))
case("isinf", lambda m: m.isinf(m.tensor([1.0, math.inf, -math.inf])))
case("isfinite", lambda m: m.isfinite(m.tensor([1.0, math.inf, math.nan])))
case("allclose", lambda m: m.allclose(_x(m), _x(m) + 1e-9))
case("allclose-false", lambda m: m.allclose(_x(m), _p(m)))
case("equal", lambda m: m.equal(_x(m), _x(m)))
case("logical_not", lambda m: m.logical_not(m.tensor(B)))
case("logical_and", lambda m: m.logical_and(m.tensor(B), m.tensor(B).t().t()))
case("invert", lambda m: ~m.tensor(B))
case("and", lambda m: m.tensor(B) & (_x(m) > 0))
case("or", lambda m: m.tensor(B) | (_x(m) > 0))
case("nonzero", lambda m: m.nonzero(m.tensor(B)))
case("count_nonzero", lambda m: m.count_nonzero(m.tensor(B)))
case("sum-bool", lambda m: (_x(m) > 0).sum())
case("float-of-bool-mean", lambda m: (_x(m) > 0).float().mean())
case("accuracy", lambda m: (_x(m).argmax(1) == m.tensor([2, 1])).float().mean())

# ---- reductions ------------------------------------------------------------------------------
for _name in ("sum", "mean", "std", "var", "amax", "amin", "logsumexp", "prod"):
    for _dim in (0, 1, -1):
        case(f"{_name}-dim{_dim}", lambda m, n=_name, d=_dim: getattr(m, n)(_x(m), dim=d))
    case(f"{_name}-keepdim", lambda m, n=_name: getattr(_x(m), n)(1, keepdim=True))
for _name in ("sum", "mean", "std", "var", "amax", "amin", "prod"):
    case(f"{_name}-all", lambda m, n=_name: getattr(_x(m), n)())
case("sum-tuple", lambda m: _3d(m).sum(dim=(0, 2)))
case("mean-tuple-keep", lambda m: _3d(m).mean((1, 2), keepdim=True))
case("sum-int", lambda m: _i(m).sum())
case("sum-int-dim", lambda m: _i(m).sum(0))
case("std-unbiased", lambda m: m.tensor([1.0, 2.0, 3.0, 4.0]).std())
case("std-biased", lambda m: m.tensor([1.0, 2.0, 3.0, 4.0]).std(unbiased=False))
case("var-correction", lambda m: _x(m).var(dim=1, correction=0))
case("max-all", lambda m: _x(m).max())
case("min-all", lambda m: m.min(_x(m)))
case("max-dim", lambda m: tuple(_x(m).max(1)))
case("max-dim-keep", lambda m: tuple(_x(m).max(dim=0, keepdim=True)))
case("min-dim", lambda m: tuple(m.min(_x(m), 1)))
case("max-values", lambda m: _x(m).max(1).values)
case("max-indices", lambda m: _x(m).max(dim=1).indices)
case("argmax", lambda m: _x(m).argmax())
case("argmax-dim", lambda m: m.argmax(_x(m), dim=1))
case("argmax-keep", lambda m: _x(m).argmax(dim=1, keepdim=True))
case("argmin-dim", lambda m: _x(m).argmin(0))
case("cumsum", lambda m: _x(m).cumsum(1))
case("cumsum-dim0", lambda m: m.cumsum(_x(m), dim=0))
case("cumsum-int", lambda m: _i(m).cumsum(0))
case("softmax", lambda m: m.softmax(_x(m), dim=1))
case("log_softmax", lambda m: _x(m).log_softmax(dim=1))
case("softmax-dim0", lambda m: _x(m).softmax(0))
case("topk", lambda m: tuple(_v(m).topk(2)))
case("topk-smallest", lambda m: tuple(m.topk(_v(m), 3, largest=False)))
case("topk-dim", lambda m: tuple(_x(m).topk(2, dim=1)))
case("sort", lambda m: tuple(_v(m).sort()))
case("sort-desc", lambda m: tuple(m.sort(_x(m), dim=1, descending=True)))
case("argsort", lambda m: _v(m).argsort())
case("histc", lambda m: m.histc(_v(m), bins=4, min=0, max=6))
case("histc-auto", lambda m: m.histc(_v(m), bins=5))
case("bincount", lambda m: m.bincount(m.tensor([0, 1, 1, 3])))
case("unique-count", lambda m: len(set(_i(m).flatten().tolist())))

# ---- shapes ----------------------------------------------------------------------------------
case("view", lambda m: _x(m).view(-1, 2))
case("view-flat", lambda m: _x(m).view(-1))
case("view_as", lambda m: _v(m)[:4].view_as(m.zeros(2, 2)))
case("reshape", lambda m: m.reshape(_x(m), (3, 2)))
case("reshape_as", lambda m: _x(m).reshape_as(m.zeros(3, 2)))
case("size", lambda m: tuple(_3d(m).size()))
case("size-dim", lambda m: _3d(m).size(1))
case("size-neg", lambda m: _3d(m).size(-1))
case("shape", lambda m: tuple(_3d(m).shape))
case("numel", lambda m: _3d(m).numel())
case("numel-fn", lambda m: m.numel(_3d(m)))
case("dim", lambda m: _3d(m).dim())
case("ndim", lambda m: _3d(m).ndim)
case("t", lambda m: _x(m).t())
case("T", lambda m: _x(m).T)
case("t-1d", lambda m: _v(m).t())
case("transpose", lambda m: _3d(m).transpose(1, 2))
case("transpose-fn", lambda m: m.transpose(_3d(m), 0, 2))
case("permute", lambda m: _3d(m).permute(2, 0, 1))
case("mT", lambda m: _3d(m).mT)
case("movedim", lambda m: m.movedim(_3d(m), 0, -1))
case("flatten", lambda m: m.flatten(_3d(m)))
case("flatten-1", lambda m: m.flatten(_3d(m), 1))
case("flatten-method", lambda m: _3d(m).flatten(0, 1))
case("squeeze", lambda m: m.zeros(2, 1, 3).squeeze())
case("squeeze-dim", lambda m: m.zeros(2, 1, 3).squeeze(dim=1))
case("unsqueeze", lambda m: _v(m).unsqueeze(0))
case("unsqueeze-neg", lambda m: m.unsqueeze(_v(m), -1))
case("expand", lambda m: m.tensor([[1.0], [2.0]]).expand(2, 3))
case("expand-neg", lambda m: m.tensor([[1.0], [2.0]]).expand(-1, 4))
case("expand_as", lambda m: m.tensor([[1.0], [2.0]]).expand_as(_x(m)))
case("repeat", lambda m: _x(m).repeat(2, 1))
case("repeat-new-dim", lambda m: _v(m).repeat(2, 2))
case("chunk", lambda m: m.chunk(_v(m), 2))
case("chunk-dim1", lambda m: _x(m).chunk(3, dim=1))
case("split", lambda m: _v(m).split(2))
case("split-sizes", lambda m: m.split(_v(m), [1, 4]))
case("split-dim", lambda m: _x(m).split(1, dim=0))
case("unbind", lambda m: m.unbind(_x(m)))
case("gather", lambda m: m.gather(_x(m), 1, m.tensor([[0, 0], [1, 0]])))
case("gather-dim0", lambda m: _x(m).gather(0, m.tensor([[1, 0, 1]])))
case("contiguous", lambda m: _3d(m).transpose(0, 1).contiguous())
case("is_contiguous", lambda m: _x(m).is_contiguous())
case("index-int-tensor", lambda m: _v(m)[m.tensor([0, 2])])
case("index-rows", lambda m: _x(m)[m.arange(2), m.tensor([2, 0])])
case("index-mask", lambda m: _x(m)[_x(m) > 0])
case("index-slice", lambda m: _3d(m)[:, 1:, ::2])
case("index-ellipsis", lambda m: _3d(m)[..., 0])
case("index-none", lambda m: _v(m)[None, :])
case("index-0d", lambda m: ["a", "b", "c"][m.tensor(2)])
case("index-0d-int64", lambda m: list(range(10))[m.tensor([1, 7])[1]])
case("embedding-lookup", lambda m: m.arange(12.0).view(4, 3)[m.tensor([[0, 3], [2, 2]])])
case("setitem", lambda m: (lambda t: (t.__setitem__(0, 9.0), t)[1])(_v(m)))
case("setitem-mask", lambda m: (lambda t: (t.__setitem__(t < 0, 0.0), t)[1])(_x(m)))

# ---- dtypes, devices, conversion -------------------------------------------------------------
case("float", lambda m: _i(m).float())
case("long", lambda m: _x(m).long())
case("int", lambda m: _x(m).int())
case("double", lambda m: _x(m).double())
case("half", lambda m: _x(m).half())
case("bool", lambda m: _x(m).bool())
case("type-int64", lambda m: _x(m).type(m.int64))
case("to-dtype", lambda m: _i(m).to(m.float32))
case("to-cpu", lambda m: _x(m).to("cpu"))
case("to-device", lambda m: _x(m).to(m.device("cpu")))
case("to-device-dtype", lambda m: _i(m).to("cpu", m.float64))
case("to-kw", lambda m: _i(m).to(device="cpu", dtype=m.float32))
case("to-other", lambda m: _i(m).to(_x(m)))
case("type_as", lambda m: _i(m).type_as(_x(m)))
case("cpu", lambda m: _x(m).cpu())
case("detach-cpu-numpy", lambda m: _x(m).detach().cpu().numpy())
case("numpy-dtype", lambda m: str(_i(m).numpy().dtype))
case("tolist", lambda m: _x(m).tolist())
case("tolist-int", lambda m: _i(m).tolist())
case("item", lambda m: _x(m).sum().item())
case("item-int", lambda m: _i(m).sum().item())
case("float()", lambda m: float(_x(m).mean()))
case("int()", lambda m: int(_i(m)[0, 1]))
case("format", lambda m: f"{_x(m).mean():.2f}")
case("format-int", lambda m: f"{_i(m).sum():d}")
case("len", lambda m: len(_x(m)))
case("iter", lambda m: [row.sum().item() for row in _x(m)])
case("device-str", lambda m: str(m.device("cpu")))
case("device-type", lambda m: m.device("cpu").type)
case("tensor-device", lambda m: str(_x(m).device))
case("is_cuda", lambda m: _x(m).is_cuda)
case("cuda-available", lambda m: m.cuda.is_available())
case("float32-eq", lambda m: _x(m).dtype == m.float32)
case("int64-eq", lambda m: _i(m).dtype == m.int64)
case("is_floating_point", lambda m: _x(m).is_floating_point())
case("is_floating_point-int", lambda m: m.is_floating_point(_i(m)))
case("element_size", lambda m: _x(m).element_size())
case("default-dtype", lambda m: str(m.get_default_dtype()).replace("torch.", ""))
case("clone", lambda m: _x(m).clone())
case("requires_grad", lambda m: m.ones(2, requires_grad=True).requires_grad)
case("zeros-requires_grad", lambda m: m.zeros(2, requires_grad=True).sum().requires_grad)

# ---- autograd (values of gradients) ----------------------------------------------------------


def _grad_of(m, fn, data=X):
    x = m.tensor(data, requires_grad=True)
    fn(m, x).backward()
    return x.grad


for _name, _fn in [
    ("sum", lambda m, x: x.sum()),
    ("mean-dim", lambda m, x: x.mean(dim=1).sum()),
    ("std", lambda m, x: x.std()),
    ("var-dim", lambda m, x: x.var(0).sum()),
    ("max-dim", lambda m, x: x.max(dim=1).values.sum()),
    ("amax", lambda m, x: x.amax(1).sum()),
    ("topk", lambda m, x: x.topk(2, dim=1).values.sum()),
    ("sort", lambda m, x: (x.sort(1).values * m.tensor([1.0, 2.0, 3.0])).sum()),
    ("gather", lambda m, x: x.gather(1, m.tensor([[0, 0], [2, 1]])).sum()),
    ("tanh", lambda m, x: m.tanh(x).sum()),
    ("sin", lambda m, x: x.sin().sum()),
    ("cos", lambda m, x: m.cos(x).sum()),
    ("clamp", lambda m, x: x.clamp(min=0).sum()),
    ("log_softmax", lambda m, x: m.log_softmax(x, dim=1)[:, 0].sum()),
    ("cumsum", lambda m, x: (x.cumsum(1) ** 2).sum()),
    ("repeat", lambda m, x: (x.repeat(2, 2) * m.arange(24.0).view(4, 6)).sum()),
    ("chunk", lambda m, x: (x.chunk(3, 1)[1] * 2).sum()),
    ("split", lambda m, x: x.split([1, 1], 0)[1].sum()),
    ("masked_fill", lambda m, x: x.masked_fill(x > 0, 0.0).sum()),
    ("prod", lambda m, x: x.prod(1).sum()),
    ("index-rows", lambda m, x: x[m.arange(2), m.tensor([1, 1])].sum()),
    ("view_as", lambda m, x: (x.view_as(m.zeros(3, 2)) * m.arange(6.0).view(3, 2)).sum()),
    ("square", lambda m, x: x.square().sum()),
    ("expand", lambda m, x: x[:, :1].expand(2, 4).sum()),
]:
    case(f"grad-{_name}", lambda m, f=_fn: _grad_of(m, f))
case("grad-log1p", lambda m: _grad_of(m, lambda m_, x: x.log1p().sum(), P))
case("grad-log10", lambda m: _grad_of(m, lambda m_, x: x.log10().sum(), P))
case("grad-rsqrt", lambda m: _grad_of(m, lambda m_, x: x.rsqrt().sum(), P))

# ---- nn and functional one-liners ------------------------------------------------------------
case("one_hot", lambda m: m.nn.functional.one_hot(m.tensor([0, 2, 1])))
case("one_hot-classes", lambda m: m.nn.functional.one_hot(m.tensor([[0], [1]]), num_classes=4))
case("cross_entropy", lambda m: m.nn.functional.cross_entropy(_x(m), m.tensor([2, 1])))
case("log_softmax-F", lambda m: m.nn.functional.log_softmax(_x(m), dim=1))
case("softmax-F", lambda m: m.nn.functional.softmax(_x(m), dim=0))
case("relu-F", lambda m: m.nn.functional.relu(_x(m)))
case("mse", lambda m: m.nn.functional.mse_loss(_x(m), _p(m)))
case("dropout-eval", lambda m: m.nn.functional.dropout(_x(m), 0.5, training=False))
case("dropout-shape", lambda m: m.nn.functional.dropout(_x(m), 0.5).shape, "meta")
case("linear-shape", lambda m: m.nn.Linear(3, 4)(_x(m)).shape)
case("linear-params", lambda m: sum(p.numel() for p in m.nn.Linear(3, 4).parameters()))
case("linear-double", lambda m: m.nn.Linear(3, 4).double().weight.dtype == m.float64)
case("module-to", lambda m: m.nn.Linear(3, 4).to(m.device("cpu")).weight.shape)
case("init-kaiming", lambda m: m.nn.init.kaiming_normal_(
    m.empty(8, 4), mode="fan_out", nonlinearity="relu",
    generator=m.Generator().manual_seed(0)).shape)
case("init-kaiming-std", lambda m: round(float(m.nn.init.kaiming_normal_(
    m.empty(400, 300), mode="fan_in", nonlinearity="relu").std()), 1))
case("init-zeros", lambda m: m.nn.init.zeros_(m.ones(3)))
case("init-constant", lambda m: m.nn.init.constant_(m.ones(3), 0.5))
case("data-normal_", lambda m: m.nn.Linear(30, 20).weight.data.normal_(0, 0.01).shape)
case("grad-zero_", lambda m: (lambda w: (w.sum().backward(), w.grad.zero_())[1])(
    m.ones(3, requires_grad=True)))
case("grad-norm", lambda m: (lambda w: ((w * w).sum().backward(), w.grad.norm())[1])(
    m.tensor([3.0, 4.0], requires_grad=True)))
case("norm-dim", lambda m: _x(m).norm(dim=1))
case("norm-1", lambda m: _x(m).norm(1))
case("grad-data-norm", lambda m: (lambda w: ((w * w).sum().backward(), w.grad.data.norm(2))[1])(
    m.tensor([3.0, 4.0], requires_grad=True)))
case("set_grad_enabled-stmt", lambda m: (m.set_grad_enabled(False),
                                         (m.ones(1, requires_grad=True) * 2).requires_grad,
                                         m.set_grad_enabled(True))[1])
case("set_grad_enabled-ctx", lambda m: _with_grad_disabled(m))


# ---- promotion through multi-input ops and scalar arguments (torch-fix) -----------------------
case("where-int-float-scalar", lambda m: m.where(m.tensor([True, False]), m.tensor([1, 2]), 0.5))
case("where-float-int", lambda m: m.where(m.tensor(B), _x(m), _i(m)))
case("where-one-arg", lambda m: m.where(m.tensor(B)))
case("cat-int-float", lambda m: m.cat([_i(m), _x(m)]))
case("stack-int-float", lambda m: m.stack([_i(m), _x(m)], dim=1))
case("maximum-int-float", lambda m: m.maximum(_i(m), _x(m)))
case("minimum-int-float", lambda m: m.minimum(_i(m), _x(m)))
case("clamp-int-float-bounds", lambda m: m.clamp(_i(m), 0, 1.5))
case("clamp-int-max-float", lambda m: _i(m).clamp(max=1.5))
case("clamp-int-int-bounds", lambda m: _i(m).clamp(2, 5))
case("sum-dtype", lambda m: _i(m).sum(dtype=m.float64))
case("sum-int32", lambda m: m.tensor([1, 2], dtype=m.int32).sum())
case("mean-dtype", lambda m: _i(m).mean(dtype=m.float32))
case("bce-logits-target-grad", lambda m: _target_grad(m, "binary_cross_entropy_with_logits"))
case("bce-target-grad", lambda m: _target_grad(m, "binary_cross_entropy"))
case("mse-target-grad", lambda m: _target_grad(m, "mse_loss"))
case("l1-target-grad", lambda m: _target_grad(m, "l1_loss"))

case("repr-float-4-decimals", lambda m: repr(m.tensor([0.09, 0.2447])))
case("repr-whole-floats", lambda m: repr(m.tensor([1.0, 2.0])))
case("repr-int64", lambda m: repr(m.tensor([1, 2])))
case("repr-scalar", lambda m: repr(m.tensor(0.5)))
case("repr-grad_fn", lambda m: repr(m.tensor([0.09, 0.2447], requires_grad=True) * 2))
case("repr-requires_grad", lambda m: repr(m.tensor([0.5, 1.25], requires_grad=True)))
case("repr-load_state_dict", lambda m: (lambda lin: repr(lin.load_state_dict(lin.state_dict())))(
    m.nn.Linear(2, 2)))

case("rfloordiv", lambda m: 7 // m.tensor([2, -3]))
case("rmod", lambda m: 7 % m.tensor([2, -3]))
case("floordiv-negative", lambda m: m.tensor([7, -7]) // 2)
case("floordiv-float", lambda m: m.tensor([7.5, -7.0]) // 2)
case("mod-int-float", lambda m: m.tensor([7, -7]) % 2.5)
case("mod-negative-divisor", lambda m: _x(m) % -2)
case("div-trunc", lambda m: m.tensor([-7, 7]).div(2, rounding_mode="trunc"))
case("div-floor-float", lambda m: _x(m).div(4, rounding_mode="floor"))
case("mod-grad", lambda m: _grads(m, lambda a, b: (a % b).sum()))
case("uint8-wraps", lambda m: m.tensor([200], dtype=m.uint8) + 300)
case("embedding-padding-init", lambda m: m.nn.Embedding(4, 2, padding_idx=1).weight[1])
case("embedding-padding-grad", lambda m: _embedding_padding_grad(m))


def _grads(m, fn):
    a = m.tensor([5.5, -3.0, 7.25], requires_grad=True)
    b = m.tensor([2.0, 2.5, -3.0], requires_grad=True)
    fn(a, b).backward()
    return a.grad, b.grad


def _embedding_padding_grad(m):
    emb = m.nn.Embedding(4, 2, padding_idx=-1)
    emb(m.tensor([[0, 3, 3], [1, 0, 2]])).sum().backward()
    return emb.weight.grad

case("silu-F", lambda m: m.nn.functional.silu(_x(m)))
case("silu-module-grad", lambda m: _weighted_grad(m, m.nn.SiLU()))
case("relu6-F", lambda m: m.nn.functional.relu6(_x(m) * 2))
case("hardtanh-F", lambda m: m.nn.functional.hardtanh(_x(m), -2.0, 3.0))
case("hardtanh-grad", lambda m: _weighted_grad(m, m.nn.Hardtanh()))
case("softplus-module", lambda m: m.nn.Softplus(beta=2.0)(_x(m)))
case("identity", lambda m: m.nn.Identity(54, unused=1)(_x(m)))
case("normalize", lambda m: m.nn.functional.normalize(_x(m)))
case("normalize-p1-dim0", lambda m: m.nn.functional.normalize(_x(m), p=1, dim=0))
case("normalize-grad", lambda m: _weighted_grad(m, m.nn.functional.normalize))
case("cosine_similarity", lambda m: m.nn.functional.cosine_similarity(_x(m), _p(m)))
case("cosine_similarity-dim0", lambda m: m.nn.functional.cosine_similarity(_x(m), _p(m), dim=0))
case("cosine_similarity-grad", lambda m: _weighted_grad(
    m, lambda x: m.nn.functional.cosine_similarity(x, _p(m))))
case("pad-last", lambda m: m.nn.functional.pad(_x(m), (1, 2)))
case("pad-two-dims", lambda m: m.nn.functional.pad(_x(m), (1, 0, 0, 2), value=-1.0))
case("pad-grad", lambda m: _weighted_grad(m, lambda x: m.nn.functional.pad(x, (2, 1, 1, 1)) * 3))
case("smooth_l1", lambda m: m.nn.functional.smooth_l1_loss(_x(m), _p(m) - 3))
case("smooth_l1-beta", lambda m: m.nn.functional.smooth_l1_loss(_x(m), _p(m), beta=2.5))
case("smooth_l1-beta0", lambda m: m.nn.functional.smooth_l1_loss(_x(m), _p(m), beta=0.0))
case("smooth_l1-module-sum", lambda m: m.nn.SmoothL1Loss(reduction="sum")(_x(m), _p(m) - 3))
case("smooth_l1-grad", lambda m: _weighted_grad(
    m, lambda x: m.nn.functional.smooth_l1_loss(x, _p(m) - 3, beta=1.5)))
case("huber", lambda m: m.nn.functional.huber_loss(_x(m), _p(m) - 3, delta=2.0))
case("huber-module-none", lambda m: m.nn.HuberLoss(reduction="none")(_x(m), _p(m) - 3))
case("huber-grad", lambda m: _weighted_grad(
    m, lambda x: m.nn.functional.huber_loss(x, _p(m) - 3, delta=0.5)))
case("moduledict", lambda m: (lambda d: (list(d.keys()), d["b"](_x(m)).shape, len(d),
                                          len(list(d.parameters()))))(
    m.nn.ModuleDict({"a": m.nn.Linear(3, 2), "b": m.nn.Linear(3, 4)})))
case("moduledict-state-keys", lambda m: list(m.nn.ModuleDict(
    {"a": m.nn.Linear(3, 2)}).state_dict().keys()))


def _weighted_grad(m, fn):
    """The gradient of sum(fn(x) * weights) at X (weights vary so every position counts)."""
    x = _x(m).requires_grad_()
    out = fn(x)
    (out * m.arange(float(out.numel())).reshape(out.shape)).sum().backward()
    return x.grad

case("new_zeros", lambda m: _i(m).new_zeros(2, 3))
case("new_ones-tuple", lambda m: _x(m).new_ones((2,)))
case("new_full", lambda m: _x(m).new_full((2, 2), 7))
case("new_tensor", lambda m: _x(m).new_tensor([1, 2]))
case("index_select", lambda m: _x(m).index_select(1, m.tensor([2, 0, 2])))
case("index_select-fn-grad", lambda m: _weighted_grad(
    m, lambda x: m.index_select(x, 1, m.tensor([2, 0, 2]))))
case("narrow", lambda m: _3d(m).narrow(2, 1, 2))
case("narrow-grad", lambda m: _weighted_grad(m, lambda x: x.narrow(1, -2, 2)))
case("flip", lambda m: m.flip(_3d(m), (0, 2)))
case("flip-grad", lambda m: _weighted_grad(m, lambda x: x.flip(1)))
case("tril", lambda m: m.tril(_3d(m)))
case("triu-diagonal", lambda m: _3d(m).triu(1))
case("tril-grad", lambda m: _weighted_grad(m, lambda x: x.tril(-1) + x.triu(2)))
case("isclose", lambda m: m.isclose(_x(m), _x(m) + 1e-6))
case("finfo-eps", lambda m: float(m.finfo(m.float32).eps))
case("iinfo-max", lambda m: int(m.iinfo(m.int64).max))
case("inference_mode", lambda m: _inference(m))
case("lambdalr", lambda m: _lambda_lrs(m))


def _inference(m):
    with m.inference_mode():
        inside = (m.ones(1, requires_grad=True) * 2).requires_grad
    with m.inference_mode(False):
        off = (m.ones(1, requires_grad=True) * 2).requires_grad
    return inside, off


def _lambda_lrs(m):
    w = m.zeros(2, requires_grad=True)
    opt = m.optim.SGD([w], lr=0.5)
    sched = m.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.9 ** step)
    lrs = []
    for _ in range(3):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    return lrs


def _target_grad(m, loss):
    """The gradient a loss sends to a target computed from a leaf (torch differentiates it)."""
    x = m.tensor([0.3, -1.2, 2.0])
    w = m.tensor([0.5, 0.1, -0.4], requires_grad=True)
    prediction = x.sigmoid() if loss == "binary_cross_entropy" else x
    getattr(m.nn.functional, loss)(prediction, w.sigmoid()).backward()
    return w.grad


def test_mean_of_integers_raises_like_torch():
    with pytest.raises(RuntimeError):
        torch.tensor([1, 2, 3]).mean()
    with pytest.raises(TypeError, match="mean: input dtype must be floating point"):
        gw.tensor([1, 2, 3]).mean()


def _with_grad_disabled(m):
    with m.set_grad_enabled(False):
        inside = (m.ones(1, requires_grad=True) * 2).requires_grad
    return inside, (m.ones(1, requires_grad=True) * 2).requires_grad


# ---- issue 11 part A: linear algebra (values, dtype, shape and gradients through backward) ------
SQ = [[4.0, 1.0, -2.0], [1.0, 3.0, 0.5], [0.0, -1.0, 2.5]]  # well conditioned, det 30.25
SPD = [[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]]  # symmetric positive-definite
TALL = [[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]]
SINGULAR = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]]


def _matrix_grad(m, fn, base=SQ):
    """The gradient of sum(fn(A) * weights) at ``base`` (weights vary so every entry counts)."""
    a = m.tensor(base, dtype=m.float64).requires_grad_()
    out = fn(a)
    weights = m.arange(1.0, out.numel() + 1.0, dtype=m.float64).reshape(out.shape)
    (out * weights).sum().backward()
    return a.grad


def _sym(fn):
    """fn applied to the symmetric part (A + A^T) / 2, so both libraries see symmetric input."""
    return lambda a: fn((a + a.mT) / 2)


case("linalg-inv", lambda m: m.linalg.inv(m.tensor(SQ)))
case("linalg-inv-batch", lambda m: m.linalg.inv(m.stack([m.tensor(SQ), m.tensor(SPD)])))
case("linalg-inv-grad", lambda m: _matrix_grad(m, m.linalg.inv))
case("inverse", lambda m: m.inverse(m.tensor(SQ)))
case("linalg-det", lambda m: m.linalg.det(m.tensor(SQ)))
case("det-method", lambda m: m.tensor(SPD).det())
case("det-grad", lambda m: _matrix_grad(m, m.det))
case("det-singular", lambda m: m.linalg.det(m.tensor(SINGULAR, dtype=m.float64)).abs() < 1e-12)
case("slogdet", lambda m: tuple(m.linalg.slogdet(m.tensor([[0.0, 2.0], [3.0, 1.0]]))))
case("slogdet-grad", lambda m: _matrix_grad(m, lambda a: m.linalg.slogdet(a)[1]))
case("logdet", lambda m: m.logdet(m.tensor(SPD)))
case("logdet-negative", lambda m: m.logdet(m.tensor([[0.0, 2.0], [3.0, 1.0]])))
case("linalg-solve", lambda m: m.linalg.solve(m.tensor(SQ), m.tensor([[1.0, 2.0], [0.0, 1.0],
                                                                     [3.0, -1.0]])))
case("linalg-solve-vector", lambda m: m.linalg.solve(m.tensor(SQ), m.tensor([1.0, 2.0, 3.0])))
case("linalg-solve-grad-A", lambda m: _matrix_grad(
    m, lambda a: m.linalg.solve(a, m.tensor([[1.0], [2.0], [3.0]], dtype=m.float64))))
case("linalg-solve-grad-B", lambda m: _matrix_grad(
    m, lambda b: m.linalg.solve(m.tensor(SQ, dtype=m.float64), b), SPD))
case("linalg-cholesky", lambda m: m.linalg.cholesky(m.tensor(SPD)))
case("linalg-cholesky-upper", lambda m: m.linalg.cholesky(m.tensor(SPD), upper=True))
case("linalg-cholesky-grad", lambda m: _matrix_grad(m, _sym(m.linalg.cholesky), SPD))
case("linalg-eigvalsh", lambda m: m.linalg.eigvalsh(m.tensor(SPD)))
case("linalg-eigvalsh-grad", lambda m: _matrix_grad(m, _sym(m.linalg.eigvalsh), SPD))
case("linalg-eigh-values", lambda m: m.linalg.eigh(m.tensor(SPD)).eigenvalues)
case("linalg-eigh-reconstruct", lambda m: (lambda r: r.eigenvectors
                                            @ m.diag(r.eigenvalues)
                                            @ r.eigenvectors.mT)(m.linalg.eigh(m.tensor(SPD))))
case("linalg-eigh-vectors-grad", lambda m: _matrix_grad(
    m, _sym(lambda a: (lambda v: (v * v).sum(0) + (v[:, 0:1] * v[:, 0:1]).sum(1))(
        m.linalg.eigh(a).eigenvectors)), SPD))
case("linalg-eigh-projector-grad", lambda m: _matrix_grad(
    m, _sym(lambda a: (lambda v: v[:, 2:] @ v[:, 2:].mT)(m.linalg.eigh(a).eigenvectors)), SPD))
case("linalg-svdvals", lambda m: m.linalg.svdvals(m.tensor(TALL)))
case("linalg-svdvals-grad", lambda m: _matrix_grad(m, m.linalg.svdvals, TALL))
case("linalg-svd-shapes", lambda m: [tuple(t.shape) for t in m.linalg.svd(m.tensor(TALL))])
case("linalg-svd-reduced-reconstruct", lambda m: (lambda r: r.U @ m.diag(r.S) @ r.Vh)(
    m.linalg.svd(m.tensor(TALL), full_matrices=False)))
case("linalg-svd-U-projector-grad", lambda m: _matrix_grad(
    m, lambda a: (lambda u: u[:, :1] @ u[:, :1].mT)(m.linalg.svd(a, full_matrices=False).U),
    TALL))
case("linalg-svd-V-projector-grad", lambda m: _matrix_grad(
    m, lambda a: (lambda vh: vh[:1].mT @ vh[:1])(m.linalg.svd(a, full_matrices=False).Vh),
    TALL))
case("linalg-qr-R-abs", lambda m: m.linalg.qr(m.tensor(TALL)).R.abs())
case("linalg-qr-grad", lambda m: _matrix_grad(
    m, lambda a: (lambda qr: m.cat([qr.Q.reshape(-1), qr.R.reshape(-1)]))(m.linalg.qr(a)), TALL))
case("linalg-qr-complete-shape", lambda m: tuple(m.linalg.qr(m.tensor(TALL),
                                                               mode="complete").Q.shape))
case("linalg-pinv", lambda m: m.linalg.pinv(m.tensor(TALL)))
case("linalg-pinv-grad", lambda m: _matrix_grad(m, m.linalg.pinv, TALL))
case("pinverse", lambda m: m.pinverse(m.tensor(TALL)))
case("linalg-pinv-rank-deficient", lambda m: m.linalg.pinv(m.tensor(SINGULAR, dtype=m.float64)))
case("linalg-matrix_rank", lambda m: m.linalg.matrix_rank(m.tensor(SINGULAR)))
case("linalg-matrix_rank-batch", lambda m: m.linalg.matrix_rank(m.stack([m.tensor(SQ),
                                                                          m.tensor(SINGULAR)])))
case("linalg-matrix_power", lambda m: m.linalg.matrix_power(m.tensor(SQ), 3))
case("linalg-matrix_power-neg", lambda m: m.linalg.matrix_power(m.tensor(SQ), -2))
case("linalg-matrix_power-0", lambda m: m.linalg.matrix_power(m.tensor(SQ), 0))
case("linalg-matrix_power-grad", lambda m: _matrix_grad(
    m, lambda a: m.linalg.matrix_power(a, 3)))
case("linalg-multi_dot", lambda m: m.linalg.multi_dot([m.tensor(SQ), m.tensor(SPD),
                                                       m.tensor([1.0, 0.0, 2.0])]))
case("linalg-vecdot", lambda m: m.linalg.vecdot(_x(m), _p(m)))
case("linalg-cross", lambda m: m.linalg.cross(_x(m), _p(m)))
case("linalg-diagonal", lambda m: m.linalg.diagonal(_3d(m), offset=1))

# ---- issue 11 part A: tensor functions -----------------------------------------------------------
NANS = [float("nan"), float("inf"), -float("inf"), 1.5]
case("nan_to_num", lambda m: m.nan_to_num(m.tensor(NANS)))
case("nan_to_num-args", lambda m: m.tensor(NANS).nan_to_num(nan=0.5, posinf=9.0, neginf=-9.0))
case("nan_to_num-f64", lambda m: m.nan_to_num(m.tensor(NANS, dtype=m.float64)))
case("nan_to_num-grad", lambda m: (lambda x: (m.nan_to_num(x * 2).sum().backward(), x.grad)[1])(
    m.tensor(NANS, requires_grad=True)))
case("roll", lambda m: m.roll(_3d(m), 1, 2))
case("roll-flat", lambda m: _x(m).roll(-2))
case("roll-multi", lambda m: m.roll(_3d(m), shifts=(1, -1), dims=(0, 2)))
case("roll-grad", lambda m: _weighted_grad(m, lambda x: x.roll(1, 1)))
case("diag-1d", lambda m: m.diag(_v(m)))
case("diag-1d-offset", lambda m: m.diag(m.tensor([1, 2]), -1))
case("diag-2d", lambda m: m.diag(_x(m)))
case("diag-2d-offset", lambda m: _x(m).diag(1))
case("diag-grad", lambda m: _weighted_grad(m, lambda x: m.diag(x.reshape(-1), 1)))
case("diag_embed", lambda m: m.diag_embed(_x(m)))
case("diag_embed-offset-dims", lambda m: m.diag_embed(_x(m), offset=1, dim1=0, dim2=2))
case("diag_embed-grad", lambda m: _weighted_grad(m, lambda x: m.diag_embed(x, -1)))
case("diagonal", lambda m: m.diagonal(_3d(m)))
case("diagonal-offset-dims", lambda m: _3d(m).diagonal(offset=-1, dim1=1, dim2=2))
case("diagonal-grad", lambda m: _weighted_grad(m, lambda x: x.diagonal(1)))
case("trace", lambda m: m.trace(_x(m)))
case("trace-int", lambda m: m.trace(_i(m)))
case("trace-grad", lambda m: _weighted_grad(m, lambda x: x.trace().reshape(1)))
case("tile", lambda m: m.tile(_v(m), (2, 2)))
case("tile-fewer", lambda m: _3d(m).tile(2))
case("tile-grad", lambda m: _weighted_grad(m, lambda x: x.tile(2, 1)))
case("repeat_interleave", lambda m: m.repeat_interleave(_i(m), 2))
case("repeat_interleave-dim", lambda m: _x(m).repeat_interleave(m.tensor([1, 0, 2]), dim=1))
case("repeat_interleave-grad", lambda m: _weighted_grad(
    m, lambda x: x.repeat_interleave(m.tensor([2, 1]), dim=0)))
case("unique", lambda m: m.unique(m.tensor([3, 1, 2, 3, 1])))
case("unique-inverse-counts", lambda m: m.unique(m.tensor([[3, 1], [2, 3]]), return_inverse=True,
                                                 return_counts=True))
case("unique-dim", lambda m: m.unique(m.tensor([[1, 2], [1, 2], [0, 5]]), dim=0,
                                      return_inverse=True))
case("unique_consecutive", lambda m: m.unique_consecutive(m.tensor([1, 1, 2, 2, 3, 1]),
                                                           return_counts=True))
case("median", lambda m: m.median(_v(m)))
case("median-even", lambda m: m.tensor([4.0, 1.0, 3.0, 2.0]).median())
case("median-dim", lambda m: tuple(_x(m).median(dim=1)))
case("median-dim-keep", lambda m: tuple(m.median(_x(m), 0, keepdim=True)))
case("median-int", lambda m: _i(m).median())
case("median-nan", lambda m: m.tensor([1.0, float("nan"), 0.0]).median())
case("median-grad", lambda m: _weighted_grad(m, lambda x: x.median(1).values))
case("nanmedian", lambda m: m.tensor([1.0, float("nan"), 0.0, 5.0]).nanmedian())
case("quantile", lambda m: m.quantile(_v(m), 0.3))
case("quantile-vector-dim", lambda m: _x(m).quantile(m.tensor([0.25, 0.5, 1.0]), dim=1,
                                                     keepdim=True))
case("quantile-lower", lambda m: m.quantile(_v(m), 0.6, interpolation="lower"))
case("quantile-higher", lambda m: m.quantile(_v(m), 0.6, interpolation="higher"))
case("quantile-nearest", lambda m: m.quantile(m.arange(4.0), 0.5, interpolation="nearest"))
case("quantile-midpoint", lambda m: m.quantile(_v(m), 0.6, interpolation="midpoint"))
case("quantile-nan", lambda m: m.quantile(m.tensor([1.0, float("nan")]), 0.5))
case("quantile-grad", lambda m: _weighted_grad(m, lambda x: x.quantile(0.4, dim=0)))
case("nanquantile", lambda m: m.nanquantile(m.tensor([[1.0, float("nan"), 3.0],
                                                      [float("nan")] * 3]), 0.5, dim=1))
case("mode", lambda m: tuple(m.mode(m.tensor([[1, 2, 2, 3], [4, 4, 1, 1]]))))
case("mode-dim0", lambda m: tuple(m.tensor([[1.0, 2.0], [1.0, 3.0], [2.0, 3.0]]).mode(0)))
case("kthvalue", lambda m: tuple(m.kthvalue(_x(m), 2, 1)))
case("kthvalue-keep", lambda m: tuple(_v(m).kthvalue(4, keepdim=True)))
case("kthvalue-grad", lambda m: _weighted_grad(m, lambda x: x.kthvalue(1, 0).values))
case("cummax", lambda m: tuple(m.cummax(m.tensor([1.0, 3.0, 2.0, 3.0, 5.0]), 0)))
case("cummin-dim1", lambda m: tuple(_x(m).cummin(1)))
case("cummax-int", lambda m: tuple(_i(m).cummax(0)))
case("cummax-grad", lambda m: _weighted_grad(m, lambda x: x.cummax(1).values))
case("logcumsumexp", lambda m: m.logcumsumexp(_x(m), 1))
case("logcumsumexp-large", lambda m: m.tensor([1000.0, 0.0, 1001.0]).logcumsumexp(0))
case("logcumsumexp-grad", lambda m: _weighted_grad(m, lambda x: x.logcumsumexp(0)))
IDX = [[0, 1, 2], [2, 0, 0]]
case("scatter", lambda m: m.zeros(3, 3).scatter(0, m.tensor(IDX), _x(m)))
case("scatter-value", lambda m: m.zeros(2, 4).scatter(1, m.tensor([[1], [3]]), 7.0))
case("scatter-small-index", lambda m: m.zeros(3, 3).scatter(1, m.tensor([[2], [0]]), _x(m)))
case("scatter_", lambda m: m.zeros(3, 3).scatter_(0, m.tensor(IDX), _x(m)))
case("scatter-reduce-add", lambda m: m.ones(3, 3).scatter(0, m.tensor(IDX), _x(m),
                                                          reduce="add"))
case("scatter_add", lambda m: m.zeros(3, 3).scatter_add(0, m.tensor(IDX), _x(m)))
case("scatter_add_", lambda m: m.ones(3).scatter_add_(0, m.tensor([0, 0, 2]), _v(m)[:3]))
case("scatter-grad-self", lambda m: _weighted_grad(
    m, lambda x: x.scatter(1, m.tensor([[0], [2]]), m.zeros(2, 1))))
case("scatter-grad-src", lambda m: _weighted_grad(
    m, lambda x: m.zeros(3, 3).scatter(0, m.tensor(IDX), x)))
case("scatter_add-grad", lambda m: _weighted_grad(
    m, lambda x: m.ones(3, 3).scatter_add(0, m.tensor(IDX), x * x)))
for _reduce in ("sum", "prod", "mean", "amax", "amin"):
    for _self in (True, False):
        case(f"scatter_reduce-{_reduce}-{_self}", lambda m, r=_reduce, s=_self: m.tensor(
            [1.0, 2.0, 3.0, 4.0]).scatter_reduce(0, m.tensor([0, 1, 0, 1, 2, 1]),
                                                  m.tensor([5.0, -1.0, 2.0, 3.0, 2.0, 3.0]), r,
                                                  include_self=s))
        case(f"scatter_reduce-{_reduce}-{_self}-grad", lambda m, r=_reduce, s=_self:
             _weighted_grad(m, lambda x: m.tensor([[1.0, 2.0, 3.0], [5.0, 0.0, -6.0]])
                            .scatter_reduce(1, m.tensor([[0, 0, 1], [2, 2, 1]]), x, r,
                                            include_self=s)))
case("index_add", lambda m: m.ones(3, 3).index_add(0, m.tensor([0, 2]), _x(m)))
case("index_add-alpha-dup", lambda m: m.zeros(2, 2).index_add(1, m.tensor([1, 1, 0]), _x(m),
                                                              alpha=2))
case("index_add_", lambda m: m.zeros(4).index_add_(0, m.tensor([3, 0, 3]), m.tensor([1.0, 2.0,
                                                                                     4.0])))
case("index_add-grad", lambda m: _weighted_grad(
    m, lambda x: m.zeros(3, 3).index_add(0, m.tensor([2, 0]), x)))
case("masked_select", lambda m: m.masked_select(_x(m), _x(m) > 0))
case("masked_select-broadcast", lambda m: _x(m).masked_select(m.tensor([True, False, True])))
case("masked_select-grad", lambda m: _weighted_grad(m, lambda x: x.masked_select(x < 0)))
case("take_along_dim", lambda m: m.take_along_dim(_x(m), m.tensor([[0], [2]]), dim=1))
case("take_along_dim-argsort", lambda m: _x(m).take_along_dim(_x(m).argsort(1), 1))
case("take_along_dim-flat", lambda m: m.take_along_dim(_x(m), m.tensor([5, 0])))
case("take_along_dim-grad", lambda m: _weighted_grad(
    m, lambda x: x.take_along_dim(m.tensor([[1, 1]]), 1)))
case("bucketize", lambda m: m.bucketize(m.tensor([0.5, 1.0, 2.5, 9.0]), m.tensor([1.0, 2.0,
                                                                                3.0])))
case("bucketize-right-int32", lambda m: m.bucketize(m.tensor([1.0, 2.0]), m.tensor([1.0, 2.0]),
                                                    right=True, out_int32=True))
case("searchsorted", lambda m: m.searchsorted(m.tensor([1, 3, 5, 7]), m.tensor([[3, 6], [9, 0]])))
case("searchsorted-2d-right", lambda m: m.searchsorted(
    m.tensor([[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]]), m.tensor([[3.0], [4.0]]), right=True))
case("searchsorted-side", lambda m: m.searchsorted(m.tensor([1, 3, 3]), m.tensor([3]),
                                                   side="right"))
case("cdist", lambda m: m.cdist(_x(m), _p(m)))
case("cdist-p1", lambda m: m.cdist(_x(m), _p(m), p=1.0))
case("cdist-batch", lambda m: m.cdist(_3d(m), _3d(m)[:, :2]))
case("cdist-grad", lambda m: _weighted_grad(m, lambda x: m.cdist(x, m.tensor([[0.0, 1.0, 1.0]]))))
case("einsum-matmul", lambda m: m.einsum("ij,jk->ik", _x(m), _p(m).t()))
case("einsum-batch", lambda m: m.einsum("bij,bjk->bik", _3d(m), _3d(m).transpose(1, 2)))
case("einsum-trace", lambda m: m.einsum("ii", m.tensor(SQ)))
case("einsum-diag", lambda m: m.einsum("ii->i", m.tensor(SQ)))
case("einsum-ellipsis", lambda m: m.einsum("...ij->...ji", _3d(m)))
case("einsum-implicit", lambda m: m.einsum("ij,kj", _x(m), _p(m)))
case("einsum-list", lambda m: m.einsum("i,i->", [_v(m), _v(m)]))
case("einsum-grad", lambda m: _weighted_grad(m, lambda x: m.einsum("ij,kj->ik", x, x * 2)))
case("einsum-grad-diag", lambda m: _matrix_grad(m, lambda a: m.einsum("ii->i", a)))
case("einsum-grad-outer-sum", lambda m: _weighted_grad(m, lambda x: m.einsum("ij->j", x)))
case("kron", lambda m: m.kron(m.tensor([[1, 2], [3, 4]]), m.tensor([[0, 1], [1, 0]])))
case("kron-mixed-dims", lambda m: m.kron(_v(m), _x(m)))
case("kron-grad", lambda m: _weighted_grad(m, lambda x: m.kron(x, m.tensor([[1.0], [-2.0]]))))
case("outer-method", lambda m: _v(m).outer(m.tensor([1.0, 2.0])))
case("outer-int", lambda m: m.outer(m.tensor([1, 2]), m.tensor([3, 4, 5])))
case("cross", lambda m: m.cross(_x(m), _p(m), dim=1))
case("cross-default-dim", lambda m: m.cross(m.ones(3, 2), m.arange(6.0).reshape(3, 2)))
case("cross-grad", lambda m: _weighted_grad(m, lambda x: x.cross(m.tensor([[1.0, 2.0, 3.0]]),
                                                                  dim=1)))
case("fliplr", lambda m: m.fliplr(_x(m)))
case("flipud", lambda m: _3d(m).flipud())
case("rot90", lambda m: m.rot90(_x(m)))
case("rot90-k2", lambda m: _x(m).rot90(2))
case("rot90-k3-dims", lambda m: m.rot90(_3d(m), 3, (1, 2)))
case("rot90-neg", lambda m: m.rot90(_x(m), -1, [0, 1]))
case("rot90-grad", lambda m: _weighted_grad(m, lambda x: x.rot90(1)))
case("unfold", lambda m: m.arange(7.0).unfold(0, 3, 2))
case("unfold-dim1", lambda m: _3d(m).unfold(2, 2, 1))
case("unfold-grad", lambda m: _weighted_grad(m, lambda x: x.unfold(1, 2, 1)))
case("movedim-tuple", lambda m: m.movedim(_3d(m), (0, 1), (2, 0)))
case("moveaxis", lambda m: m.moveaxis(_3d(m), 0, -1))
case("atleast_1d", lambda m: m.atleast_1d(m.tensor(3.0)))
case("atleast_2d", lambda m: m.atleast_2d(_v(m)))
case("atleast_3d", lambda m: m.atleast_3d(_x(m)))
case("atleast_2d-many", lambda m: m.atleast_2d(m.tensor(1), _v(m)))
case("broadcast_tensors", lambda m: m.broadcast_tensors(m.ones(2, 1), m.arange(3)))
case("broadcast_shapes", lambda m: tuple(m.broadcast_shapes((2, 1), (3,))))
case("meshgrid-ij", lambda m: m.meshgrid(m.arange(2), m.arange(3), indexing="ij"))
case("meshgrid-xy", lambda m: m.meshgrid(m.arange(2.0), m.arange(3.0), indexing="xy"))
case("cartesian_prod", lambda m: m.cartesian_prod(m.tensor([1, 2]), m.tensor([3, 4, 5])))
case("block_diag", lambda m: m.block_diag(m.ones(2, 2), m.tensor([5.0, 6.0])))
case("bincount", lambda m: m.bincount(m.tensor([0, 3, 1, 3])))
case("bincount-minlength", lambda m: m.tensor([1, 1]).bincount(minlength=4))
case("bincount-weights", lambda m: m.bincount(m.tensor([0, 2, 2]), m.tensor([0.5, 1.0, 2.0])))
case("count_nonzero-dim", lambda m: m.count_nonzero(_i(m) - 2, dim=1))
case("lerp", lambda m: m.lerp(_x(m), _p(m), 0.25))
case("lerp-tensor-weight", lambda m: _x(m).lerp(_p(m), m.tensor([0.0, 0.5, 1.0])))
case("lerp-grad", lambda m: _weighted_grad(m, lambda x: x.lerp(m.zeros(3), 0.3)))
case("hypot", lambda m: m.hypot(_x(m), _p(m)))
case("hypot-grad", lambda m: _weighted_grad(m, lambda x: x.hypot(m.tensor(2.0))))
case("logaddexp", lambda m: m.logaddexp(_x(m), _p(m)))
case("logaddexp-large", lambda m: m.logaddexp(m.tensor([1000.0, -1000.0]), m.tensor([1000.0,
                                                                                     -999.0])))
case("logaddexp-neginf", lambda m: m.logaddexp(m.tensor([-float("inf")]),
                                               m.tensor([-float("inf")])))
case("logaddexp-grad", lambda m: _weighted_grad(m, lambda x: x.logaddexp(x * 0.5)))
case("erfinv", lambda m: m.erfinv(m.tensor([-0.9, 0.0, 0.5, 1.0])))
case("erfinv-grad", lambda m: _weighted_grad(m, lambda x: (x * 0.1).erfinv()))
case("erf", lambda m: m.erf(_x(m)))
case("erfc-grad", lambda m: _weighted_grad(m, lambda x: x.erfc()))
case("lgamma", lambda m: m.lgamma(_p(m)))
case("lgamma-int", lambda m: m.lgamma(m.tensor([1, 2, 5])))
case("lgamma-grad", lambda m: _weighted_grad(m, lambda x: (x.abs() + 0.5).lgamma()))
case("digamma", lambda m: m.digamma(_p(m)))
case("digamma-grad", lambda m: _weighted_grad(m, lambda x: (x.abs() + 0.5).digamma()))
case("xlogy", lambda m: m.xlogy(m.tensor([0.0, 2.0, 0.0]), m.tensor([0.0, 3.0, 5.0])))
case("xlogy-scalar", lambda m: m.xlogy(m.tensor([1.0, 2.0]), 2))
case("xlogy-grad-at-zero", lambda m: (lambda x, y: (m.xlogy(x, y).sum().backward(),
                                                    x.grad, y.grad)[1:])(
    m.tensor([0.0, 2.0], requires_grad=True), m.tensor([5.0, 3.0], requires_grad=True)))
case("sinc", lambda m: m.sinc(m.tensor([0.0, 0.5, 1.0, -2.5])))
case("sinc-grad", lambda m: _weighted_grad(m, lambda x: (x * 0.3).sinc()))
case("heaviside", lambda m: m.heaviside(m.tensor([-1.5, 0.0, 2.0]), m.tensor([0.5])))
case("copysign", lambda m: m.copysign(_x(m), -1.0))
case("copysign-int", lambda m: m.copysign(_i(m), m.tensor([-1, 1, -1])))
case("copysign-zero", lambda m: m.copysign(m.tensor([1.0, 2.0]), m.tensor([-0.0, 0.0])))
case("copysign-grad", lambda m: _weighted_grad(m, lambda x: x.copysign(m.tensor([1.0, -1.0,
                                                                                 -1.0]))))
case("nextafter", lambda m: m.nextafter(m.tensor([1.0, 0.0]), m.tensor([2.0, -1.0])) - m.tensor(
    [1.0, 0.0]))
case("frac", lambda m: m.frac(m.tensor([1.5, -2.25, 3.0])))
case("frac-grad", lambda m: _weighted_grad(m, lambda x: (x * 1.5).frac()))
case("trunc-neg", lambda m: m.trunc(m.tensor([-1.5, 1.7])))
case("fmod", lambda m: m.fmod(m.tensor([-7.0, 7.0, -7.0, 7.0]), m.tensor([2.0, -2.0, -2.0, 2.0])))
case("fmod-int", lambda m: m.tensor([-7, 7]).fmod(3))
case("fmod-grad", lambda m: _weighted_grad(m, lambda x: x.fmod(m.tensor(1.5))))
case("remainder-signs", lambda m: m.remainder(m.tensor([-7.0, 7.0, -7.0]), m.tensor([2.0, -2.0,
                                                                                     -2.0])))
case("remainder-int", lambda m: m.tensor([-7, 7]).remainder(3))
case("Tensor-sizes", lambda m: m.Tensor(2, 3).shape)
case("Tensor-sizes-zeroed", lambda m: m.Tensor(4, 2).zero_())
case("Tensor-list", lambda m: m.Tensor([1, 2]))
case("empty_like-shape", lambda m: m.empty_like(_i(m)).shape)
case("full_like-int", lambda m: m.full_like(_i(m), 7))
case("repr-printoptions", lambda m: _printed(m))
case("scheduler-warm-restarts", lambda m: _schedule(
    m, lambda o: m.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2,
                                                                  eta_min=0.01)))
case("scheduler-cyclic", lambda m: _schedule(
    m, lambda o: m.optim.lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=2, step_size_down=3,
                                               mode="triangular2")))
case("scheduler-cyclic-momentum", lambda m: _schedule(
    m, lambda o: m.optim.lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=3), "momentum"))
case("scheduler-polynomial", lambda m: _schedule(
    m, lambda o: m.optim.lr_scheduler.PolynomialLR(o, total_iters=4, power=2.0)))
case("scheduler-multiplicative", lambda m: _schedule(
    m, lambda o: m.optim.lr_scheduler.MultiplicativeLR(o, lambda epoch: 0.9)))
case("scheduler-constant", lambda m: _schedule(
    m, lambda o: m.optim.lr_scheduler.ConstantLR(o, factor=0.5, total_iters=3)))
case("scheduler-onecycle", lambda m: _schedule(
    m, lambda o: m.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=12)))
case("init-eye_", lambda m: m.nn.init.eye_(m.empty(2, 3)))
case("init-dirac_", lambda m: m.nn.init.dirac_(m.empty(4, 2, 3), groups=2))
case("init-orthogonal_", lambda m: (lambda w: (w @ w.t()).round(decimals=5))(
    m.nn.init.orthogonal_(m.empty(3, 5), gain=2.0, generator=m.Generator().manual_seed(0))))
case("init-trunc_normal_", lambda m: (lambda w: (bool(w.min() >= -0.1), bool(w.max() <= 0.1)))(
    m.nn.init.trunc_normal_(m.empty(500), std=0.5, a=-0.1, b=0.1,
                            generator=m.Generator().manual_seed(0))))
case("init-sparse_", lambda m: (m.nn.init.sparse_(m.empty(10, 4), 0.25,
                                                  generator=m.Generator().manual_seed(0)) == 0)
     .sum(0))

case("cumprod", lambda m: m.cumprod(_x(m), 1))
case("cumprod-int", lambda m: _i(m).cumprod(0))
case("cumprod-grad", lambda m: _weighted_grad(m, lambda x: x.cumprod(1)))
case("cumprod-grad-zero", lambda m: (lambda x: (x.cumprod(0).sum().backward(), x.grad)[1])(
    m.tensor([2.0, 0.0, 3.0, 0.5], requires_grad=True)))
case("diff", lambda m: m.diff(_x(m)))
case("diff-n2-dim0-append", lambda m: _3d(m).diff(n=2, dim=2, append=m.zeros(2, 3, 1)))
case("diff-bool", lambda m: m.diff(m.tensor([True, False, False, True])))
case("diff-grad", lambda m: _weighted_grad(m, lambda x: x.diff(dim=1)))
case("nansum", lambda m: m.nansum(m.tensor([[1.0, float("nan")], [2.0, 3.0]]), dim=0))
case("nanmean", lambda m: m.tensor([[1.0, float("nan")], [2.0, 3.0]]).nanmean())
case("nanmean-grad", lambda m: (lambda x: (x.nanmean().backward(), x.grad)[1])(
    m.tensor([1.0, float("nan"), 3.0], requires_grad=True)))
case("signbit", lambda m: m.signbit(m.tensor([-0.0, 0.0, -2.0])))
case("logical_xor", lambda m: m.logical_xor(m.tensor(B), m.tensor([True, True, False])))
case("isneginf-isposinf", lambda m: (m.isneginf(m.tensor(NANS)), m.isposinf(m.tensor(NANS))))
case("isin", lambda m: m.isin(_i(m), m.tensor([2, 5, 9])))
case("isin-invert", lambda m: m.isin(_i(m), m.tensor([2, 5]), invert=True))
case("exp2", lambda m: m.exp2(m.tensor([0, 3])))
case("logit", lambda m: m.logit(m.tensor([0.25, 0.5, 0.9])))
case("logit-eps", lambda m: m.tensor([0.0, 1.0]).logit(eps=1e-3))
case("deg2rad-rad2deg", lambda m: (m.deg2rad(m.tensor([180.0])), m.rad2deg(m.tensor([1.0]))))
case("float_power", lambda m: m.float_power(m.tensor([2, 3]), 2))
case("fmax-fmin", lambda m: (m.fmax(m.tensor([1.0, float("nan"), 3.0]),
                                    m.tensor([2.0, 0.0, float("nan")])),
                             m.fmin(m.tensor([1.0, float("nan")]), m.tensor([2.0, 0.0]))))
case("aminmax", lambda m: tuple(m.aminmax(_x(m), dim=1)))
case("argwhere", lambda m: m.argwhere(m.tensor(B)))
case("unflatten", lambda m: _3d(m).unflatten(2, (2, 2)))
case("tensor_split", lambda m: m.tensor_split(m.arange(7), 3))
case("tensor_split-indices", lambda m: m.arange(7).tensor_split([1, 5]))
case("hsplit-vsplit", lambda m: (m.hsplit(_x(m), [1]), m.vsplit(_3d(m), 2)))
case("hstack", lambda m: m.hstack([_x(m), _p(m)]))
case("hstack-1d", lambda m: m.hstack([_v(m), m.tensor([9.0])]))
case("vstack", lambda m: m.vstack([_v(m), _v(m)]))
case("dstack", lambda m: m.dstack([_x(m), _p(m)]))
case("column_stack", lambda m: m.column_stack([m.tensor([1, 2]), m.tensor([[3, 4], [5, 6]])]))
case("row_stack", lambda m: m.row_stack([_x(m), _p(m)]))
case("tensordot", lambda m: m.tensordot(_3d(m), m.ones(4, 2), dims=1))
case("tensordot-pairs", lambda m: m.tensordot(_3d(m), _3d(m), dims=([0, 2], [0, 2])))
case("tensordot-grad", lambda m: _weighted_grad(m, lambda x: m.tensordot(x, x, dims=2).reshape(1)))
case("tril_indices", lambda m: m.tril_indices(3, 4, 1))
case("triu_indices", lambda m: m.triu_indices(4, 3, -1))
case("vander", lambda m: m.vander(m.tensor([1, 2, 3])))
case("vander-increasing", lambda m: m.vander(_v(m), N=3, increasing=True))
case("std_mean", lambda m: m.std_mean(_x(m), dim=1))
case("var_mean", lambda m: m.var_mean(_x(m), 0, keepdim=True))
case("cov", lambda m: m.cov(m.tensor([[0.0, 1.0, 2.0, 5.0], [2.0, 1.0, 0.0, -1.0]])))
case("cov-1d", lambda m: m.cov(_v(m)))
case("corrcoef", lambda m: m.corrcoef(_x(m).t()))
case("cov-grad", lambda m: _weighted_grad(m, lambda x: m.cov(x)))
case("addmm", lambda m: m.addmm(m.ones(2, 2), _x(m), _p(m).t(), beta=0.5, alpha=2))
case("addmv", lambda m: m.addmv(m.ones(2), _x(m), m.tensor([1.0, 0.0, 2.0])))
case("baddbmm", lambda m: m.baddbmm(m.zeros(2, 3, 3), _3d(m), _3d(m).transpose(1, 2), alpha=0.5))
case("addcmul-addcdiv", lambda m: (m.addcmul(_x(m), _p(m), _x(m), value=0.5),
                                   m.addcdiv(_x(m), _x(m), _p(m), value=2)))
case("mv", lambda m: m.mv(_x(m), m.tensor([1.0, 2.0, 3.0])))
case("inner", lambda m: m.inner(_x(m), _p(m)))
case("inner-1d", lambda m: m.inner(_v(m), _v(m)))
case("vdot", lambda m: m.vdot(_v(m), _v(m)))
case("dist", lambda m: m.dist(_x(m), _p(m)))
case("dist-p1", lambda m: _x(m).dist(_p(m), 1))
case("msort", lambda m: m.msort(_x(m)))
case("matrix_power-top", lambda m: m.matrix_power(m.tensor(SQ), 2))
case("chain_matmul", lambda m: m.chain_matmul(m.tensor(SQ), m.tensor(SPD), m.tensor(SQ)))
case("clone-fn", lambda m: m.clone(_x(m)))
case("new_empty-shape", lambda m: _i(m).new_empty((2, 5)).shape)
case("tril_-triu_", lambda m: (m.ones(3, 3).tril_(), m.ones(3, 3).triu_(1)))
case("lerp_", lambda m: m.zeros(3).lerp_(m.ones(3), 0.25))
case("index_fill_", lambda m: m.zeros(3, 3).index_fill_(1, m.tensor([0, 2]), -1.0))
case("index_copy_", lambda m: m.zeros(3, 3).index_copy_(0, m.tensor([2, 0]), _x(m)))
case("fill_diagonal_", lambda m: m.zeros(3, 4).fill_diagonal_(5.0))
case("sgn-positive", lambda m: (m.sgn(_x(m)), m.positive(_x(m))))


# ---- issue 11 (second pass): integer reductions, NaN order, integer division, dtype inference --
INT_DTYPES = ("uint8", "int8", "int16", "int32", "int64", "bool")
for _dt in INT_DTYPES:
    def _ints(m, _dt=_dt):
        return m.tensor([[120, 3, 7], [1, 0, 2]] if _dt != "bool" else [[1, 1, 0], [1, 1, 1]],
                        dtype=getattr(m, _dt))
    case(f"prod-{_dt}", lambda m, f=_ints: (f(m).prod(), f(m).prod(1), f(m).prod(0, keepdim=True)))
    case(f"sum-{_dt}", lambda m, f=_ints: (f(m).sum(), f(m).sum(1), f(m).sum(dtype=m.float64)))
    case(f"cumsum-{_dt}", lambda m, f=_ints: (f(m).cumsum(1), f(m).cumsum(0, dtype=m.float32)))
    case(f"cumprod-{_dt}", lambda m, f=_ints: (f(m).cumprod(1), f(m).cumprod(0, dtype=m.int16)))
    case(f"prod-dtype-{_dt}", lambda m, f=_ints: (f(m).prod(dtype=m.float32),
                                                   f(m).prod(1, dtype=m.int16)))
    case(f"sort-desc-{_dt}", lambda m, f=_ints: (f(m).sort(descending=True),
                                                  f(m).argsort(1, descending=True)))

NAN = [1.0, math.nan, 3.0, 0.5, math.nan, 3.0]


def _n(m):
    return m.tensor(NAN)


NAN_NO_TIES = [1.0, math.nan, 3.0, 0.5, -2.0]  # torch's topk order among ties is unspecified
case("nan-topk", lambda m: m.tensor(NAN_NO_TIES).topk(3))
case("nan-topk-smallest", lambda m: m.tensor(NAN_NO_TIES).topk(3, largest=False))
case("nan-topk-2d", lambda m: m.tensor([[math.nan, 1.0, 2.0], [0.0, 5.0, math.nan]]).topk(2))
case("nan-sort", lambda m: (_n(m).sort(), _n(m).sort(descending=True)))
case("nan-sort-stable", lambda m: _n(m).sort(descending=True, stable=True))
case("nan-argsort", lambda m: (_n(m).argsort(), _n(m).argsort(descending=True)))
case("nan-sort-2d", lambda m: m.tensor([[math.nan, 1.0], [2.0, math.nan]]).sort(0, True))
case("nan-max-min", lambda m: (_n(m).max(), _n(m).min(), _n(m).max(0), _n(m).min(0)))
case("nan-argmax-argmin", lambda m: (_n(m).argmax(), _n(m).argmin()))
case("nan-kthvalue", lambda m: (_n(m).kthvalue(2), _n(m).kthvalue(5)))
case("nan-median", lambda m: (_n(m).median(), m.tensor([1.0, 2.0, 3.0]).median()))
case("nan-unique", lambda m: m.unique(m.tensor([1.0, math.nan, math.nan])))
case("nan-unique-counts", lambda m: m.unique(_n(m), return_counts=True))
case("uint8-sort-desc-zero", lambda m: m.tensor([0, 3, 255, 0], dtype=m.uint8).sort(
    descending=True))
case("numpy-scalar-int32", lambda m: m.tensor([np.int32(1), np.int32(2)]))
case("numpy-scalar-mixed", lambda m: (m.tensor([np.int32(1), 2]), m.tensor([np.int32(1), 1.0]),
                                      m.tensor([np.float64(1.0), 2.0]),
                                      m.tensor([[np.uint8(1)], [np.uint8(2)]]),
                                      m.tensor([True, np.int8(3)])))
case("float-floordiv-by-zero", lambda m: (m.tensor([1.0, -2.0]) // m.tensor([0.0, 1.0])))


# ---- issue 11: layout, take, index_fill/index_put_, shifts, clamp bounds, legacy types ------
case("stride", lambda m: (_3d(m).stride(), _3d(m).transpose(0, 2).stride(), _3d(m).stride(1),
                          m.zeros(3, 1).expand(3, 4).stride()))
case("storage_offset", lambda m: (_3d(m)[1].storage_offset(), _3d(m)[:, 1:, 2].storage_offset(),
                                  _3d(m).storage_offset()))
case("data_ptr-views", lambda m: (_3d(m)[1:].data_ptr() - _3d(m).data_ptr() == 0,
                                  (lambda x: x[1:].data_ptr() - x.data_ptr())(m.arange(4.0))))
case("take", lambda m: m.take(_x(m), m.tensor([[0, 5], [-1, 2]])))
case("take-grad", lambda m: _weighted_grad(m, lambda x: x.take(m.tensor([0, 5, 5, -2]))))
case("index_fill", lambda m: (_x(m).index_fill(1, m.tensor([0, 2]), -1.0),
                              m.index_fill(_i(m), 0, m.tensor([1]), 7)))
case("index_fill-grad", lambda m: _weighted_grad(m, lambda x: x.index_fill(1, m.tensor([1]), 0.0)))
case("index_put_", lambda m: m.zeros(3, 3).index_put_((m.tensor([0, 2]), m.tensor([1, 1])),
                                                      m.tensor([5.0, 6.0])))
case("index_put_-accumulate", lambda m: m.zeros(4).index_put_(
    (m.tensor([0, 0, 3]),), m.tensor([1.0, 2.0, 3.0]), accumulate=True))
case("index_put", lambda m: m.zeros(2, 2).index_put((m.tensor([1]),), m.tensor(4.0)))
case("detach_", lambda m: (lambda y: (y.detach_(), y.requires_grad, y.grad_fn is None))(
    m.ones(2, requires_grad=True) * 2))
case("shifts", lambda m: (_i(m) << 2, _i(m) >> 1, m.tensor([-8, 7]) >> 1, 1 << m.tensor([0, 3]),
                          m.tensor([1], dtype=m.uint8) << 9, m.bitwise_left_shift(_i(m), 1),
                          m.bitwise_right_shift(_i(m), m.tensor([0, 1, 2]))))
case("clamp-tensor-bounds", lambda m: (m.clamp(_x(m), min=m.tensor([0.0, 1.0, -5.0]),
                                               max=m.tensor([[2.0], [4.0]])),
                                       _i(m).clamp(min=m.tensor([2, 2, 2]))))
case("clamp-tensor-bounds-grad", lambda m: _weighted_grad(m, lambda x: x.clamp(
    min=m.tensor([0.0, -3.0, 2.0]), max=m.tensor([2.0, 4.0, 5.0]))))
case("clamp-tensor-bound-grad-to-bound", lambda m: (lambda lo: (
    m.clamp(_x(m), min=lo, max=m.tensor([9.0])).sum().backward(), lo.grad)[1])(
    m.tensor([0.0, 1.0, -5.0], requires_grad=True)))
case("legacy-constructors", lambda m: (m.FloatTensor([1, 2]), m.LongTensor([1.0, 2.0]),
                                       m.DoubleTensor([[1]]), m.IntTensor([3]),
                                       m.BoolTensor([1, 0]), m.ByteTensor([1]),
                                       m.FloatTensor(2, 3).shape, m.LongTensor(0).shape))
case("trig-family", lambda m: (m.sinh(_x(m)), m.cosh(_x(m)), m.asinh(_x(m)), m.acosh(_p(m) + 1),
                               m.atanh(_x(m) / 7), m.tan(_x(m)), m.asin(_x(m) / 7),
                               m.acos(_x(m) / 7), m.atan(_x(m)), m.atan2(_x(m), _p(m)),
                               m.arctan2(_i(m), _i(m).flip(0)), _x(m).arctanh()))


# ---- review 3 (issue 11): in-place forms, aliases, dtype=, namespace functions -------------
def _inplace(m, name, *args):
    c = m.arange(6.0).reshape(2, 3) / 7 + 0.5
    out = getattr(c, name)(*args)
    assert out is c
    return c


for _name, _args in (("log_", ()), ("sin_", ()), ("cos_", ()), ("tan_", ()), ("atan_", ()),
                     ("sinh_", ()), ("cosh_", ()), ("tanh_", ()), ("log10_", ()),
                     ("log2_", ()), ("log1p_", ()), ("expm1_", ()), ("exp2_", ()),
                     ("floor_", ()), ("ceil_", ()), ("round_", ()), ("trunc_", ()),
                     ("frac_", ()), ("sign_", ()), ("sgn_", ()), ("square_", ()),
                     ("rsqrt_", ()), ("reciprocal_", ()), ("erf_", ()), ("erfc_", ()),
                     ("lgamma_", ()), ("digamma_", ()), ("asin_", ()), ("acos_", ()),
                     ("deg2rad_", ()), ("rad2deg_", ()), ("logit_", ()), ("sinc_", ()),
                     ("clamp_min_", (0.7,)), ("clamp_max_", (0.7,)), ("clip_", (0.6, 0.9)),
                     ("fmod_", (0.3,)), ("remainder_", (0.3,)), ("eq_", (0.5,)),
                     ("ge_", (0.7,)), ("lt_", (0.7,)), ("ne_", (0.5,)), ("gt_", (0.7,)),
                     ("le_", (0.7,)), ("xlogy_", (2.0,)),
                     ("cumsum_", (1,)), ("cumprod_", (0,)),
                     ("multiply_", (3.0,)), ("subtract_", (1.0,)), ("divide_", (2.0,)),
                     ("true_divide_", (2.0,)), ("copysign_", (-1.0,)), ("negative_", ()),
                     ("absolute_", ()), ("fix_", ()), ("logical_not_", ()),
                     ("greater_", (0.7,)), ("less_equal_", (0.7,)), ("not_equal_", (0.5,))):
    case(f"inplace-{_name}", lambda m, _n=_name, _a=_args: _inplace(m, _n, *_a))


def _reshaped_in_place(m, call):
    c = m.arange(6.0).reshape(2, 3)
    assert call(c) is c
    return c, tuple(c.shape)


case("transpose_", lambda m: _reshaped_in_place(m, lambda c: c.transpose_(0, 1)))
case("t_", lambda m: _reshaped_in_place(m, lambda c: c.t_()))
case("swapdims_", lambda m: _reshaped_in_place(m, lambda c: c.swapdims_(0, 1)))
case("unsqueeze_", lambda m: _reshaped_in_place(m, lambda c: c.unsqueeze_(0)))
case("squeeze_", lambda m: _reshaped_in_place(m, lambda c: c.unsqueeze_(1).squeeze_(1)))
case("squeeze_-all", lambda m: _reshaped_in_place(m, lambda c: c.unsqueeze_(0).squeeze_()))
case("exp_-log_", lambda m: m.ones(3).exp_().log_())
case("swapdims", lambda m: (_3d(m).swapdims(0, 2), _3d(m).swapaxes(1, 2),
                            m.swapdims(_x(m), 0, 1)))
case("ravel", lambda m: (m.ravel(_x(m)), _x(m).t().ravel()))
case("masked_scatter", lambda m: _x(m).masked_scatter(_x(m) > 0, m.arange(12.0)))
case("masked_scatter-bcast", lambda m: _x(m).masked_scatter(m.tensor([True, False, True]),
                                                             m.arange(6.0) * 10))
case("masked_scatter_", lambda m: _x(m).masked_scatter_(_x(m) < 0, m.arange(3.0)))
case("masked_scatter-grad", lambda m: _grad_of(m, lambda m, w: (w.masked_scatter(
    m.tensor([[True, False, True], [False, True, False]]), w.flip(0) * 3) ** 2).sum()))
case("index_copy", lambda m: _x(m).index_copy(1, m.tensor([0, 2]), m.ones(2, 2)))
case("index_copy-0", lambda m: _x(m).index_copy(0, m.tensor([1]), m.zeros(1, 3)))
case("index_copy_", lambda m: _x(m).index_copy_(1, m.tensor([2]), m.ones(2, 1) * 7))
case("index_copy-grad", lambda m: _grad_of(m, lambda m, w: (w.index_copy(
    0, m.tensor([1]), w[:1] * 2) ** 2).sum()))
case("put_", lambda m: _x(m).put_(m.tensor([0, -1]), m.tensor([9.0, 8.0])))
case("put_-accumulate", lambda m: _x(m).put_(m.tensor([1, 1]), m.tensor([9.0, 8.0]),
                                             accumulate=True))
case("put", lambda m: _x(m).put(m.tensor([4]), m.tensor([0.5])))
case("bitwise", lambda m: (m.bitwise_and(_i(m), 3), m.bitwise_or(_i(m), 8),
                           m.bitwise_xor(_i(m), _i(m).flip(1)), m.bitwise_not(_i(m)),
                           _i(m).bitwise_and(6), m.bitwise_and(m.tensor(B), m.tensor(B).t().t()),
                           m.bitwise_not(m.tensor(B))))
case("bitwise_", lambda m: (_i(m).bitwise_and_(3), _i(m).bitwise_or_(8), _i(m).bitwise_xor_(1)))
case("alias-methods", lambda m: (_x(m).absolute(), _x(m).negative(), (_x(m) * 1.5).fix(),
                                 _x(m).greater(0), _x(m).less_equal(1), _x(m).not_equal(-2),
                                 _x(m).greater_equal(3), _x(m).less(0), _x(m).select(1, 2),
                                 _3d(m).select(-1, 0), _x(m).ldexp(m.tensor([1, 2, 3]))))
case("bmm", lambda m: m.bmm(_3d(m), _3d(m).transpose(1, 2)))
case("combinations", lambda m: (m.combinations(m.arange(4), 2), m.combinations(_v(m), 3),
                                m.combinations(m.arange(3), with_replacement=True)))
case("combinations-grad", lambda m: _grad_of(
    m, lambda m, w: m.combinations(w[0], 2).prod(1).sum()))
case("promote_types", lambda m: [str(m.promote_types(a, b)).replace("torch.", "") for a, b in (
    (m.int32, m.float32), (m.uint8, m.int8), (m.bool, m.int16), (m.float16, m.float64),
    (m.int64, m.float16))])
case("result_type", lambda m: [str(m.result_type(a, b)).replace("torch.", "") for a, b in (
    (_i(m), 1.0), (_i(m), 1), (_x(m), 2), (m.tensor([1], dtype=m.int8), 300),
    (m.tensor([True]), _i(m)), (m.tensor([1], dtype=m.uint8), m.tensor(5)))])
case("can_cast", lambda m: [m.can_cast(a, b) for a, b in (
    (m.float32, m.int32), (m.int32, m.float32), (m.float64, m.float16), (m.int64, m.bool),
    (m.bool, m.uint8), (m.uint8, m.int8))])
case("finfo-iinfo", lambda m: (m.finfo(m.float32).eps, m.finfo(m.float64).max,
                               m.finfo(m.float16).tiny, m.finfo().bits, m.iinfo(m.int32).max,
                               m.iinfo(m.uint8).min, m.finfo(m.float32).resolution))
case("histogram", lambda m: tuple(m.histogram(m.tensor([1.0, 2, 1]), bins=2)))
case("histogram-range", lambda m: tuple(m.histogram(_x(m), bins=4, range=(-6.0, 6.0),
                                                    density=True)))
case("histogram-edges", lambda m: tuple(m.histogram(_x(m), m.tensor([-6.0, 0.0, 1.0, 6.0]),
                                                    weight=_p(m))))
case("frexp", lambda m: tuple(m.frexp(m.tensor([8.0, 0.3, -5.0, 0.0]))))
case("poisson", lambda m: m.poisson(m.ones(3, 2) * 4), "meta")


def _backward_with_gradient(m):
    w = m.ones(2, requires_grad=True)
    (w * m.tensor([1.0, 2.0])).backward(gradient=m.tensor([3.0, 4.0]))
    return w.grad


case("backward-gradient-keyword", _backward_with_gradient)
case("softmax-dtype", lambda m: (m.nn.functional.softmax(_x(m), dim=1, dtype=m.float64),
                                 m.nn.functional.log_softmax(_i(m), dim=1, dtype=m.float32),
                                 m.nn.functional.softmin(_x(m), 0, dtype=m.float64),
                                 _x(m).softmax(1, m.float64), _i(m).log_softmax(0, m.float64),
                                 m.softmax(_i(m), 1, dtype=m.float32),
                                 _x(m).softmax(dim=0, dtype=m.float64)))
case("softmax-dtype-grad", lambda m: _grad_of(m, lambda m, w: m.nn.functional.log_softmax(
    w, 1, dtype=m.float64)[:, 0].sum()))
case("reductions-dtype", lambda m: (
    _i(m).sum(dtype=m.float32), _i(m).mean(dtype=m.float64), _i(m).cumsum(1, dtype=m.float32),
    _x(m).prod(1, dtype=m.float64), m.sum(_x(m), 0, dtype=m.float64),
    _i(m).cumprod(0, dtype=m.int32), m.mean(_i(m), 1, dtype=m.float32)))



def _printed(m):
    x = m.tensor([1.23456, 20.5])
    m.set_printoptions(precision=2)
    try:
        return repr(x)
    finally:
        m.set_printoptions(profile="default")


def _schedule(m, make, what="lr", steps=10):
    w = m.zeros(2, requires_grad=True)
    opt = m.optim.SGD([w], lr=0.5, momentum=0.9)
    sched = make(opt)
    values = []
    for _ in range(steps):
        opt.step()
        sched.step()
        values.append(round(opt.param_groups[0][what], 10))
    return values


# cases whose difference is deliberate: id -> the reason (docs/PORTING.md)
XFAIL: dict[str, str] = {
}


def _to_plain(value):
    """A comparable form of a result from either library: (kind, dtype, shape, values)."""
    if isinstance(value, torch.Tensor):
        array = value.detach().numpy()
        return ("tensor", str(value.dtype).replace("torch.", ""), tuple(value.shape), array)
    if isinstance(value, gw.Tensor):
        array = np.asarray(value)
        return ("tensor", str(value.dtype).replace("bool", "bool"), tuple(value.shape), array)
    if isinstance(value, tuple | list):
        return (type(value).__name__ if not hasattr(value, "_fields") else "tuple",
                [_to_plain(v) for v in value])
    if isinstance(value, np.ndarray):
        return ("ndarray", str(value.dtype), value.shape, value)
    if isinstance(value, torch.Size):
        return tuple(value)
    return value


def assert_same(expected, actual, mode="value", where="result"):
    """Compare a torch result with a gradwise one: kind, dtype and shape always; values unless
    ``mode`` is "meta" (random draws)."""
    if isinstance(expected, tuple) and len(expected) == 4 and expected[0] in ("tensor",
                                                                              "ndarray"):
        assert isinstance(actual, tuple) and actual[0] == expected[0], (
            f"{where}: torch gave a {expected[0]}, gradwise {actual!r:.80}")
        assert actual[1] == expected[1], f"{where}: dtype {actual[1]} != torch's {expected[1]}"
        assert actual[2] == expected[2], f"{where}: shape {actual[2]} != torch's {expected[2]}"
        if mode != "meta":
            np.testing.assert_allclose(
                np.asarray(actual[3], dtype=np.float64), np.asarray(expected[3], np.float64),
                rtol=2e-3 if expected[1] == "float16" else 1e-5, atol=1e-6,
                err_msg=f"{where}: values differ")
        return
    if isinstance(expected, tuple) and len(expected) == 2 and isinstance(expected[1], list):
        assert isinstance(actual, tuple) and len(actual[1]) == len(expected[1]), (
            f"{where}: torch gave {len(expected[1])} items, gradwise {actual!r:.80}")
        for i, (e, a) in enumerate(zip(expected[1], actual[1], strict=True)):
            assert_same(e, a, mode, f"{where}[{i}]")
        return
    if isinstance(expected, float):
        assert isinstance(actual, float), f"{where}: {actual!r} is not a float like {expected!r}"
        assert actual == pytest.approx(expected, rel=1e-5, abs=1e-6), where
        return
    assert type(actual) is type(expected), f"{where}: type {type(actual)} != {type(expected)}"
    if mode != "meta":
        assert actual == expected, f"{where}: {actual!r} != torch's {expected!r}"


def _params():
    for name, fn, mode in CASES:
        marks = [pytest.mark.xfail(reason=XFAIL[name], strict=False)] if name in XFAIL else []
        yield pytest.param(fn, mode, id=name, marks=marks)


@pytest.mark.parametrize(("fn", "mode"), list(_params()))
def test_oneliner_matches_torch(fn, mode):
    expected = fn(torch)
    actual = fn(gw)
    assert_same(_to_plain(expected), _to_plain(actual), "meta" if mode == "meta" else "value")


def test_table_is_large_and_mostly_matching():
    """The issue's bar: at least 250 one-liners, at most 3% marked as deliberate differences."""
    assert len(CASES) >= 250
    assert len(XFAIL) / len(CASES) <= 0.03


def test_set_num_threads_is_read_back_and_refuses_nonsense():
    before = gw.get_num_threads()
    assert before >= 1
    try:
        gw.set_num_threads(1)
        assert gw.get_num_threads() == 1
        with pytest.raises(ValueError, match="set_num_threads: expected a positive int"):
            gw.set_num_threads(0)
    finally:
        gw.set_num_threads(before)


# ---- issue 11: errors where torch raises (gradwise names the op) -----------------------------
@pytest.mark.parametrize("dt", ["int64", "int32", "uint8", "int8"])
@pytest.mark.parametrize("op", ["floordiv", "remainder", "div-floor", "div-trunc", "rfloordiv"])
def test_integer_division_by_zero_raises_like_torch(dt, op):
    def run(m):
        a = m.tensor([4, 1], dtype=getattr(m, dt))
        b = m.tensor([1, 0], dtype=getattr(m, dt))
        return {"floordiv": lambda: a // b, "remainder": lambda: a % b,
                "div-floor": lambda: a.div(b, rounding_mode="floor"),
                "div-trunc": lambda: a.div(b, rounding_mode="trunc"),
                "rfloordiv": lambda: 3 // b}[op]()
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        run(torch)
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        run(gw)


@pytest.mark.parametrize("dt", ["int64", "int32", "uint8", "bool"])
def test_integer_to_negative_integer_scalar_power_raises_like_torch(dt):
    for m, error in ((torch, RuntimeError), (gw, ValueError)):
        x = m.tensor([2, 3], dtype=getattr(m, dt))
        with pytest.raises(error, match="Integers to negative integer powers"):
            x ** -1
    assert np.asarray(gw.tensor([2, 3]) ** 2).tolist() == [4, 9]  # other powers stay fine


@pytest.mark.parametrize("dt", ["int64", "int32", "uint8", "bool"])
@pytest.mark.parametrize("fn", ["rand", "randn", "rand_like", "randn_like"])
def test_continuous_random_on_integer_dtype_raises_like_torch(dt, fn):
    for m in (torch, gw):
        dtype = getattr(m, dt)
        with pytest.raises(NotImplementedError):
            if fn.endswith("_like"):
                getattr(m, fn)(m.zeros(2, 3, dtype=dtype))
            else:
                getattr(m, fn)(2, 3, dtype=dtype)


def test_bit_shift_refuses_floats():
    with pytest.raises(TypeError, match="bitwise_left_shift: needs integer tensors"):
        gw.tensor([1.5]) << 1
    with pytest.raises(NotImplementedError):
        torch.tensor([1.5]) << 1


def test_take_names_an_out_of_range_index():
    for m in (torch, gw):
        with pytest.raises((IndexError, RuntimeError), match="out of range"):
            m.take(m.ones(2, 2), m.tensor([4]))
