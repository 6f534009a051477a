"""nn.utils.parametrize, nn.utils.parametrizations (weight_norm, spectral_norm) and the older
hook-based nn.utils.weight_norm/spectral_norm against PyTorch: state-dict keys, values after
loading torch's state, outputs and gradients over several training steps."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import gradwise as gw
from gradwise.nn.utils import parametrizations, parametrize

torch = pytest.importorskip("torch")

LAYERS: dict[str, tuple[Callable[[Any], Any], tuple[int, ...]]] = {
    "linear": (lambda nn: nn.Linear(4, 3), (5, 4)),
    "conv2d": (lambda nn: nn.Conv2d(2, 3, 3, padding=1), (2, 2, 5, 5)),
    "conv-transpose2d": (lambda nn: nn.ConvTranspose2d(3, 2, 3), (2, 3, 4, 4)),
    "conv1d": (lambda nn: nn.Conv1d(2, 4, 2), (3, 2, 6)),
}


def _steps(lib: Any, module: Any, shape: tuple[int, ...], steps: int = 3) -> list[Any]:
    x = np.linspace(-1, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    outputs = []
    for step in range(steps):
        module.zero_grad()
        out = module(lib.tensor(x * (step + 1)))
        (out * out).sum().backward()
        outputs.append(np.array(out.detach().numpy()))
    return outputs


def _grads(module: Any) -> dict[str, np.ndarray]:
    return {name: np.array(np.asarray(p.grad.detach().numpy() if hasattr(p.grad, "detach")
                                      else p.grad)) for name, p in module.named_parameters()}


def _state(module: Any) -> dict[str, np.ndarray]:
    return {k: np.array(v.detach().numpy() if hasattr(v, "detach") else v)
            for k, v in module.state_dict().items()}


FORMS: dict[str, Callable[[Any, Any], Any]] = {
    "parametrizations.weight_norm": lambda lib, m: lib.nn.utils.parametrizations.weight_norm(m),
    "parametrizations.weight_norm-dim1":
        lambda lib, m: lib.nn.utils.parametrizations.weight_norm(m, dim=1),
    "parametrizations.weight_norm-dimNone":
        lambda lib, m: lib.nn.utils.parametrizations.weight_norm(m, dim=None),
    "parametrizations.spectral_norm":
        lambda lib, m: lib.nn.utils.parametrizations.spectral_norm(m),
    "parametrizations.spectral_norm-3iter-dim1":
        lambda lib, m: lib.nn.utils.parametrizations.spectral_norm(m, n_power_iterations=3,
                                                                     dim=1, eps=1e-6),
    "weight_norm": lambda lib, m: lib.nn.utils.weight_norm(m),
    "weight_norm-dimNone": lambda lib, m: lib.nn.utils.weight_norm(m, dim=None),
    "spectral_norm": lambda lib, m: lib.nn.utils.spectral_norm(m),
    "spectral_norm-2iter": lambda lib, m: lib.nn.utils.spectral_norm(m, n_power_iterations=2),
}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("layer", list(LAYERS))
def test_norm_reparametrizations_match_torch(layer: str, form: str) -> None:
    build, shape = LAYERS[layer]
    torch.manual_seed(0)
    theirs = build(torch.nn)
    ours = build(gw.nn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the deprecated hook-based forms
        FORMS[form](torch, theirs)
        FORMS[form](gw, ours)
    # the same keys and shapes, then torch's values (u and v included) into gradwise
    their_state = _state(theirs)
    assert list(_state(ours)) == list(their_state)
    assert {k: v.shape for k, v in _state(ours).items()} == {
        k: v.shape for k, v in their_state.items()}
    ours.load_state_dict(theirs.state_dict())
    for mode in ("train", "eval"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        for a, b in zip(_steps(gw, ours, shape), _steps(torch, theirs, shape), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-5)
        mine, ref = _grads(ours), _grads(theirs)
        assert list(mine) == list(ref)
        for name in ref:
            np.testing.assert_allclose(mine[name], ref[name], rtol=2e-4, atol=1e-4,
                                       err_msg=f"{mode}: {name}")
        for key, value in _state(theirs).items():  # the power iteration advanced alike
            np.testing.assert_allclose(_state(ours)[key], value, rtol=1e-4, atol=1e-5,
                                       err_msg=key)


REMOVALS = {
    "parametrizations.weight_norm": lambda lib, m: lib.nn.utils.parametrize.remove_parametrizations(
        m, "weight"),
    "parametrizations.spectral_norm":
        lambda lib, m: lib.nn.utils.parametrize.remove_parametrizations(m, "weight"),
    "weight_norm": lambda lib, m: lib.nn.utils.remove_weight_norm(m),
    "spectral_norm": lambda lib, m: lib.nn.utils.remove_spectral_norm(m),
}


@pytest.mark.parametrize("form", list(REMOVALS))
def test_removing_leaves_the_current_weight_as_torch(form: str) -> None:
    torch.manual_seed(0)
    theirs, ours = torch.nn.Linear(4, 3), gw.nn.Linear(4, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        FORMS[form](torch, theirs)
        FORMS[form](gw, ours)
    ours.load_state_dict(theirs.state_dict())
    _steps(gw, ours, (5, 4), 1)
    _steps(torch, theirs, (5, 4), 1)
    REMOVALS[form](torch, theirs)
    REMOVALS[form](gw, ours)
    assert type(ours) is gw.nn.Linear
    assert list(_state(ours)) == list(_state(theirs))
    assert set(_state(ours)) == {"weight", "bias"}
    np.testing.assert_allclose(_state(ours)["weight"], _state(theirs)["weight"], rtol=1e-5)
    assert isinstance(ours.weight, gw.nn.Parameter)


# ---- register_parametrization with user parametrizations ----------------------------------
def _user_modules(lib: Any) -> dict[str, type]:
    class Symmetric(lib.nn.Module):
        def forward(self, x: Any) -> Any:
            return x.triu() + x.triu(1).transpose(0, 1)

        def right_inverse(self, a: Any) -> Any:
            return a.triu()

    class Scaled(lib.nn.Module):
        def forward(self, x: Any) -> Any:
            return x * 2

        def right_inverse(self, a: Any) -> Any:
            return a / 2

    class Split(lib.nn.Module):  # two originals: a sum
        def forward(self, a: Any, b: Any) -> Any:
            return a + b

        def right_inverse(self, w: Any) -> Any:
            return w * 0.25, w * 0.75

    return {"Symmetric": Symmetric, "Scaled": Scaled, "Split": Split}


def _user_run(lib: Any, chain: list[str]) -> dict[str, Any]:
    kinds = _user_modules(lib)
    layer = lib.nn.Linear(3, 3)
    with lib.no_grad():
        layer.weight.copy_(lib.tensor(np.arange(9.0, dtype=np.float32).reshape(3, 3) / 9 - 0.4))
        layer.bias.copy_(lib.tensor(np.array([0.1, -0.2, 0.3], dtype=np.float32)))
    for name in chain:
        lib.nn.utils.parametrize.register_parametrization(layer, "weight", kinds[name]())
    x = lib.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
    out = layer(x)
    (out * out).sum().backward()
    record = {"keys": list(layer.state_dict()), "out": np.array(out.detach().numpy()),
              "grads": _grads(layer), "weight": np.array(layer.weight.detach().numpy()),
              "parametrized": lib.nn.utils.parametrize.is_parametrized(layer, "weight"),
              "type": lib.nn.utils.parametrize.type_before_parametrizations(layer).__name__}
    with lib.no_grad():  # assignment goes through right_inverse
        layer.weight = lib.tensor(np.eye(3, dtype=np.float32))
    record["assigned"] = np.array(layer.weight.detach().numpy())
    record["originals"] = _state(layer)
    with lib.nn.utils.parametrize.cached():
        record["cached_same"] = layer.weight is layer.weight
    record["uncached_same"] = layer.weight is layer.weight
    return record


CHAINS = [["Symmetric"], ["Scaled"], ["Split"], ["Symmetric", "Scaled"], ["Split", "Symmetric"]]


@pytest.mark.parametrize("chain", CHAINS, ids=["+".join(c) for c in CHAINS])
def test_register_parametrization_matches_torch(chain: list[str]) -> None:
    ours, theirs = _user_run(gw, chain), _user_run(torch, chain)
    assert ours["keys"] == theirs["keys"]
    assert ours["cached_same"] == theirs["cached_same"] is True
    assert ours["uncached_same"] == theirs["uncached_same"] is False
    assert ours["parametrized"] and ours["type"] == theirs["type"] == "Linear"
    for key in ("out", "weight", "assigned"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-6, atol=1e-7, err_msg=key)
    for name, grad in theirs["grads"].items():
        np.testing.assert_allclose(ours["grads"][name], grad, rtol=1e-5, atol=1e-6)
    for key, value in theirs["originals"].items():
        np.testing.assert_allclose(ours["originals"][key], value, rtol=1e-6, atol=1e-7)


def test_parametrize_errors_as_torch() -> None:
    for lib in (gw, torch):
        kinds = _user_modules(lib)
        layer = lib.nn.Linear(3, 3)
        with pytest.raises(ValueError, match="does not have a parameter, a buffer, or a "
                                             "parametrized element with name 'kernel'"):
            lib.nn.utils.parametrize.register_parametrization(layer, "kernel", kinds["Scaled"]())
        with pytest.raises(ValueError, match="does not have a parametrization on weight"):
            lib.nn.utils.parametrize.remove_parametrizations(layer, "weight")

        class Shrink(lib.nn.Module):
            def forward(self, x: Any) -> Any:
                return x[:2]

        with pytest.raises(ValueError, match="may not change the shape"):
            lib.nn.utils.parametrize.register_parametrization(lib.nn.Linear(3, 3), "weight",
                                                              Shrink())
        split = lib.nn.Linear(3, 3)
        lib.nn.utils.parametrize.register_parametrization(split, "weight", kinds["Split"]())
        with pytest.raises(ValueError, match="Cannot leave unparametrized"):
            lib.nn.utils.parametrize.remove_parametrizations(split, "weight",
                                                             leave_parametrized=False)


def test_remove_without_leaving_parametrized_restores_the_original() -> None:
    layer = gw.nn.Linear(3, 3)
    weight = layer.weight
    before = np.array(weight.numpy())
    opt = gw.optim.SGD(layer.parameters(), lr=0.1)
    parametrize.register_parametrization(layer, "weight", _user_modules(gw)["Scaled"]())
    assert layer.parametrizations.weight.original is weight  # the optimizer's tensor
    np.testing.assert_allclose(np.asarray(layer.weight.detach().numpy()), before, rtol=1e-6)
    parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
    assert layer.weight is weight and type(layer) is gw.nn.Linear
    np.testing.assert_allclose(weight.numpy(), before / 2, rtol=1e-6)
    assert opt.param_groups[0]["params"][0] is weight


def test_weight_norm_original_shapes_follow_dim() -> None:
    conv = parametrizations.weight_norm(gw.nn.Conv2d(2, 3, 3), dim=1)
    assert conv.parametrizations.weight.original0.shape == (1, 2, 1, 1)
    whole = parametrizations.weight_norm(gw.nn.Linear(2, 3), dim=None)
    assert whole.parametrizations.weight.original0.shape == ()
    with pytest.raises(ValueError, match="Expected n_power_iterations to be positive"):
        parametrizations.spectral_norm(gw.nn.Linear(2, 3), n_power_iterations=0)
    with pytest.raises(IndexError, match="Dimension out of range"):
        parametrizations.spectral_norm(gw.nn.Linear(2, 3), dim=2)


# ---- nn.utils.fusion -----------------------------------------------------------------------
FUSIONS = {
    "conv2d": (lambda nn: (nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3)), (2, 2, 5, 5), {}),
    "conv1d-no-bias": (lambda nn: (nn.Conv1d(2, 4, 2, bias=False), nn.BatchNorm1d(4)),
                       (3, 2, 6), {}),
    "conv-transpose2d": (lambda nn: (nn.ConvTranspose2d(3, 2, 3), nn.BatchNorm2d(2)),
                         (2, 3, 4, 4), {"transpose": True}),
    "linear": (lambda nn: (nn.Linear(4, 3), nn.BatchNorm1d(3)), (5, 4), None),
}


@pytest.mark.parametrize("kind", list(FUSIONS))
def test_fusing_batchnorm_matches_torch_and_the_unfused_pair(kind: str) -> None:
    build, shape, options = FUSIONS[kind]
    x = np.linspace(-2, 2, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    their_layer, their_bn = build(torch.nn)
    with torch.no_grad():
        their_bn.running_mean.uniform_(-1, 1)
        their_bn.running_var.uniform_(0.5, 2)
        their_bn.weight.uniform_(0.5, 1.5)
        their_bn.bias.uniform_(-1, 1)
    results = []
    for lib in (torch, gw):
        layer, bn = (their_layer, their_bn) if lib is torch else build(gw.nn)
        if lib is gw:  # torch's weights and statistics
            layer.load_state_dict(their_layer.state_dict())
            bn.load_state_dict(their_bn.state_dict())
        layer.eval()
        bn.eval()
        utils = lib.nn.utils
        fused = (utils.fuse_linear_bn_eval(layer, bn) if options is None
                 else utils.fuse_conv_bn_eval(layer, bn, **options))
        with lib.no_grad():
            pair = bn(layer(lib.tensor(x)))
            single = fused(lib.tensor(x))
        np.testing.assert_allclose(single.numpy(), pair.numpy(), rtol=1e-4, atol=1e-5)
        results.append((np.array(fused.weight.detach().numpy()),
                        np.array(fused.bias.detach().numpy())))
    for ours, theirs in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    with pytest.raises(AssertionError, match="Fusion only for eval!"):
        gw.nn.utils.fuse_conv_bn_eval(gw.nn.Conv2d(2, 3, 3), gw.nn.BatchNorm2d(3))
