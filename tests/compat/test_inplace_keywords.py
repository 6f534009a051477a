"""Every in-place method takes its out-of-place form's keywords, as torch's (issue 11, second
newcomer review: ``div_(..., rounding_mode=)`` raised), and ``Tensor.norm(dtype=)``. A walk over
gradwise's own methods finds an in-place form missing a keyword; a grid compares values,
dtypes and the tensor written with torch."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")

# gradwise's own aliases of torch's keywords, not torch names the in-place form must take
OWN_ALIASES = {"axis", "keepdims", "lo", "hi"}


def test_every_inplace_method_takes_the_out_of_place_keywords():
    missing = {}
    for name in dir(gw.Tensor):
        if not name.endswith("_") or name.startswith("_") or not callable(
                getattr(gw.Tensor, name[:-1], None)):
            continue
        inplace = inspect.signature(getattr(gw.Tensor, name)).parameters
        if any(p.kind == p.VAR_KEYWORD for p in inplace.values()):
            continue
        lacking = [key for key, p in inspect.signature(getattr(gw.Tensor, name[:-1]))
                   .parameters.items()
                   if key not in inplace and p.kind != p.VAR_POSITIONAL and key not in OWN_ALIASES]
        if lacking:
            missing[name] = lacking
    assert not missing


X = np.array([[1.5, -2.5, 3.0], [4.0, -5.5, 6.25]], np.float32)
Y = np.array([[2.0, 2.0, -4.0], [3.0, 1.5, 2.5]], np.float32)
CASES = {
    "div_ floor": lambda m, a, b: a.div_(b, rounding_mode="floor"),
    "div_ trunc": lambda m, a, b: a.div_(b, rounding_mode="trunc"),
    "div_ scalar floor": lambda m, a, b: a.div_(2, rounding_mode="floor"),
    "div_ none": lambda m, a, b: a.div_(b, rounding_mode=None),
    "div_ int floor": lambda m, a, b: m.tensor([7, -7, 9]).div_(2, rounding_mode="floor"),
    "divide_ trunc": lambda m, a, b: a.divide_(b, rounding_mode="trunc"),
    "addcmul_ keywords": lambda m, a, b: a.addcmul_(tensor1=b, tensor2=b, value=0.5),
    "addcdiv_ keywords": lambda m, a, b: a.addcdiv_(tensor1=b, tensor2=b, value=2),
    "swapaxes keywords": lambda m, a, b: a.swapaxes(axis0=0, axis1=1),
    "norm dtype": lambda m, a, b: a.norm(dtype=m.float64),
    "norm p dim dtype": lambda m, a, b: a.norm(1, dim=1, dtype=m.float64),
    "norm fro keepdim dtype": lambda m, a, b: a.norm("fro", 0, True, m.float64),
    "torch.norm dtype": lambda m, a, b: m.norm(a, dtype=m.float64),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_inplace_and_norm_keywords_as_torch(name):
    results = []
    for module in (torch, gw):
        a, b = module.tensor(X.copy()), module.tensor(Y)
        out = CASES[name](module, a, b)
        results.append((np.asarray(out.numpy()).tolist(),
                        str(out.dtype).replace("torch.", ""), np.asarray(a.numpy()).tolist()))
    assert results[1] == results[0]


def test_rounded_div_in_place_passes_a_zero_gradient_as_torch():
    grads = []
    for module in (torch, gw):
        leaf = module.tensor([1.0, 2.0], requires_grad=True)
        scaled = leaf * 5
        scaled.div_(module.tensor([2.0, 3.0]), rounding_mode="floor")
        scaled.sum().backward()
        grads.append((scaled.detach().numpy().tolist(), np.asarray(leaf.grad).tolist()))
    assert grads[1] == grads[0]
