"""Every layer in torch.nn and every function in torch.nn.functional exists in gradwise under
the same name, or docs/PORTING.md names it as not supported (so a missing name is documented,
never a surprise). Runs against the installed torch (skipped without it)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import gradwise as gw
import gradwise.nn as gnn
import gradwise.nn.functional as gF

torch = pytest.importorskip("torch")

PORTING = (Path(__file__).parents[2] / "docs" / "PORTING.md").read_text()

# torch.nn.functional's helpers for its own dispatch, not functions a program calls
INTERNAL = {"assert_int_or_pair", "boolean_dispatch", "handle_torch_function",
            "has_torch_function", "has_torch_function_unary", "has_torch_function_variadic"}


def _missing_layers() -> list[str]:
    return sorted(name for name, value in vars(torch.nn).items()
                  if inspect.isclass(value) and name[0].isupper() and not hasattr(gnn, name))


def _missing_functions() -> list[str]:
    functional = torch.nn.functional
    return sorted(name for name in dir(functional)
                  if not name.startswith("_") and name[0].islower() and name not in INTERNAL
                  and callable(getattr(functional, name))
                  and not inspect.isclass(getattr(functional, name))
                  and not inspect.ismodule(getattr(functional, name))
                  and not hasattr(gF, name))


@pytest.mark.parametrize("kind", ["layers", "functions"])
def test_every_missing_torch_name_is_listed_in_porting(kind):
    missing = _missing_layers() if kind == "layers" else _missing_functions()
    undocumented = [name for name in missing if f"`{name}`" not in PORTING]
    assert not undocumented, f"torch.nn names gradwise lacks, not in PORTING.md: {undocumented}"


def test_the_common_layers_exist():
    # a floor, so the test above cannot pass by documenting everything away
    for name in ("Conv1d", "ConvTranspose2d", "LSTM", "GRU", "RNN", "MultiheadAttention",
                 "TransformerEncoderLayer", "GroupNorm", "Upsample", "EmbeddingBag",
                 "AdaptiveAvgPool2d", "PixelShuffle", "Bilinear", "PReLU", "KLDivLoss"):
        assert hasattr(gnn, name), name
    assert len(_missing_layers()) < 60


# gradwise's own keywords, accepted by every layer beside torch's arguments
OWN_KEYWORDS = {"self", "rng", "generator", "dtype", "init", "device", "args", "kwargs"}
# constructors whose argument lists differ from torch's on purpose, documented in PORTING.md
# (the deprecated size_average/reduce of the older losses, inplace flags, NumPy's axis alias,
# groups/padding_mode/ceil_mode not implemented), or whose torch signature is *args/**kwargs
KNOWN_DIFFERENCES = {
    "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss",
    "ELU", "Hardtanh", "L1Loss", "LeakyReLU", "LogSoftmax", "MSELoss", "NLLLoss", "Parameter",
    "ReLU", "ReLU6", "RNNCellBase", "Sequential", "SiLU", "SmoothL1Loss", "SoftMarginLoss",
    "Softmax", "RNN", "LSTM", "GRU",
}


def _arguments(cls) -> list[str]:
    return [name for name in inspect.signature(cls.__init__).parameters
            if name not in OWN_KEYWORDS]


def test_layer_constructors_take_torchs_arguments_in_torchs_order():
    differing = []
    for name in sorted(dir(gnn)):
        ours, theirs = getattr(gnn, name), getattr(torch.nn, name, None)
        if not (inspect.isclass(ours) and inspect.isclass(theirs)) or name in KNOWN_DIFFERENCES:
            continue
        if _arguments(ours) != _arguments(theirs):
            differing.append((name, _arguments(ours), _arguments(theirs)))
    assert not differing, differing


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_recurrent_constructors_take_torchs_documented_arguments(name):
    # torch declares these as (*args, **kwargs); its documented order:
    documented = ["input_size", "hidden_size", "num_layers"] + (
        ["nonlinearity"] if name == "RNN" else []) + [
        "bias", "batch_first", "dropout", "bidirectional"] + (
        ["proj_size"] if name == "LSTM" else [])
    assert _arguments(getattr(gnn, name)) == documented


# ---- issue 11: layer reprs as torch prints them --------------------------------------------
REPR_LAYERS = [
    ("Dropout", (), {}), ("Dropout", (0.25,), {}), ("Dropout2d", (), {}),
    ("AlphaDropout", (), {}), ("FeatureAlphaDropout", (0.1,), {}), ("Dropout1d", (), {}),
    ("BatchNorm1d", (3,), {}), ("BatchNorm2d", (3,), {"affine": False}),
    ("BatchNorm2d", (4,), {"momentum": None, "track_running_stats": False}),
    ("GroupNorm", (1, 3), {}), ("GroupNorm", (2, 4), {"affine": False}),
    ("InstanceNorm1d", (3,), {}), ("InstanceNorm2d", (3,), {"affine": True}),
    ("LayerNorm", (3,), {}), ("LayerNorm", ((2, 3),), {"elementwise_affine": False}),
    ("LayerNorm", (3,), {"bias": False}),
    ("Conv1d", (2, 3, 3), {}), ("Conv1d", (2, 3, 3), {"padding": 1, "bias": False}),
    ("Conv1d", (2, 3, 3), {"padding": "same", "padding_mode": "reflect"}),
    ("Conv1d", (2, 3, 3), {"dilation": 2, "stride": 2}),
    ("Conv2d", (2, 3, 3), {}), ("Conv2d", (2, 3, (3, 1)), {"padding": (1, 0), "dilation": 2}),
    ("ConvTranspose1d", (2, 3, 3), {}), ("ConvTranspose2d", (2, 3, 3), {}),
    ("ConvTranspose2d", (2, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1}),
    ("Linear", (3, 4), {}), ("Linear", (3, 4), {"bias": False}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), REPR_LAYERS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(REPR_LAYERS)])
def test_layer_repr_matches_torch(name, args, kwargs):
    assert repr(getattr(gnn, name)(*args, **kwargs)) == repr(
        getattr(torch.nn, name)(*args, **kwargs))


def test_get_submodule_parameter_buffer_match_torch():
    def build(nn):
        return nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.BatchNorm1d(4), nn.ReLU()))

    for m in (torch.nn, gnn):
        net = build(m)
        assert net.get_submodule("") is net
        assert net.get_submodule("1.0") is net[1][0]
        assert net.get_parameter("0.weight") is net[0].weight
        assert tuple(net.get_parameter("1.0.bias").shape) == (4,)
        assert net.get_buffer("1.0.running_var") is net[1][0].running_var
        for call, target in ((net.get_submodule, "2"), (net.get_submodule, "1.5"),
                             (net.get_parameter, "0.nope"), (net.get_buffer, "0.weight"),
                             (net.get_parameter, "9.weight")):
            with pytest.raises(AttributeError):
                call(target)


# ---- issue 11, review 3: torch.Tensor's methods and the top-level torch namespace ----------
def _porting_block(kind: str) -> set[str]:
    """The names listed between ``<!-- torch-names: kind -->`` and ``<!-- end -->``."""
    start = PORTING.index(f"<!-- torch-names: {kind} -->")
    end = PORTING.index("<!-- end -->", start)
    return set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", PORTING[start:end]))


def missing_tensor_methods() -> set[str]:
    """torch.Tensor's public methods and properties that gw.Tensor lacks."""
    return {name for name in dir(torch.Tensor)
            if not name.startswith("_") and not hasattr(gw.Tensor, name)}


def missing_torch_names() -> set[str]:
    """Public names of the top-level ``torch`` module (not submodules) gradwise lacks."""
    return {name for name in dir(torch) if not name.startswith("_")
            and not inspect.ismodule(getattr(torch, name)) and not hasattr(gw, name)}


@pytest.mark.parametrize(("kind", "missing"), [("tensor", missing_tensor_methods),
                                               ("torch", missing_torch_names)])
def test_the_not_yet_supported_lists_are_exact(kind, missing):
    listed, absent = _porting_block(kind), missing()
    assert not absent - listed, f"missing from gradwise, not listed in PORTING.md: " \
                                f"{sorted(absent - listed)}"
    assert not listed - absent, f"listed in PORTING.md as missing but present: " \
                                f"{sorted(listed - absent)}"


def test_the_everyday_tensor_methods_and_functions_exist():
    # a floor, so the lists above cannot grow to swallow what tutorials use
    for name in ("masked_scatter", "index_copy", "put_", "transpose_", "t_", "unsqueeze_",
                 "squeeze_", "log_", "swapdims", "swapaxes", "ravel", "bitwise_and", "select"):
        assert hasattr(gw.Tensor, name), name
    for name in ("combinations", "promote_types", "result_type", "can_cast", "bitwise_and",
                 "ravel", "histogram", "histc", "frexp", "poisson", "cartesian_prod",
                 "block_diag", "cdist", "tril_indices", "pi", "finfo"):
        assert hasattr(gw, name), name
    assert len(missing_tensor_methods()) < 200 and len(missing_torch_names()) < 650


# ---- issue 11 part B: optimizers, schedules, nn.utils and parametrizations ----------------
def _own_missing(torch_module, ours, predicate) -> list[str]:
    """Public names defined in ``torch_module`` itself (not imported into it) that ``ours``
    lacks."""
    names = []
    for name in dir(torch_module):
        value = getattr(torch_module, name)
        if (name.startswith("_") or not predicate(value)
                or not getattr(value, "__module__", "").startswith(torch_module.__name__)):
            continue
        if not hasattr(ours, name):
            names.append(name)
    return sorted(names)


def _utility_modules():
    import torch.nn.utils.parametrizations
    import torch.nn.utils.parametrize  # noqa: F401 - the submodules compared below

    import gradwise as gw

    return [
        (torch.optim, gw.optim, inspect.isclass),
        (torch.optim.lr_scheduler, gw.optim.lr_scheduler, inspect.isclass),
        (torch.nn.utils, gw.nn.utils, inspect.isfunction),
        (torch.nn.utils.parametrizations, gw.nn.utils.parametrizations, inspect.isfunction),
        (torch.nn.utils.parametrize, gw.nn.utils.parametrize, inspect.isfunction),
    ]


def test_every_missing_optimizer_schedule_and_utility_is_listed_in_porting():
    undocumented = []
    for torch_module, ours, predicate in _utility_modules():
        undocumented += [f"{torch_module.__name__}.{name}"
                         for name in _own_missing(torch_module, ours, predicate)
                         if f"`{name}`" not in PORTING]
    assert not undocumented, f"names gradwise lacks, not in PORTING.md: {undocumented}"


def test_the_common_optimizers_schedules_and_utilities_exist():
    # a floor, so the test above cannot pass by documenting everything away
    import gradwise as gw

    for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam",
                 "RAdam", "Rprop", "ASGD", "LBFGS"):
        assert hasattr(gw.optim, name), name
    for name in ("ChainedScheduler", "SequentialLR", "ReduceLROnPlateau", "OneCycleLR",
                 "CyclicLR", "LambdaLR", "MultiplicativeLR", "LinearLR", "ConstantLR"):
        assert hasattr(gw.optim.lr_scheduler, name), name
    for name in ("weight_norm", "spectral_norm", "remove_weight_norm", "clip_grad_value_",
                 "parameters_to_vector", "vector_to_parameters", "clip_grad_norm_"):
        assert hasattr(gw.nn.utils, name), name
    assert hasattr(gw.nn.utils.parametrize, "register_parametrization")
