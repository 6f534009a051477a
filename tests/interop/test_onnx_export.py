"""gw.onnx.export: every supported layer and op, checked by onnx.checker and run in onnxruntime.

Each model is traced at batch size 3 and run by onnxruntime at batch sizes 3, 1 and 5 (the batch
axis is dynamic); the outputs must equal gradwise's within 1e-5.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import gradwise as gw
from gradwise import nn
from gradwise.nn import functional as F
from gradwise.recipes import RECIPES, TrainConfig, build_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOLERANCE = 1e-5


def _inputs(shape, batch, dtype=np.float32, seed=0, high=None):
    rng = np.random.default_rng(seed + batch)
    if high is not None:
        return rng.integers(0, high, size=(batch, *shape)).astype(np.int64)
    return rng.standard_normal((batch, *shape)).astype(dtype)


def check_export(model, shape, tmp_path, opset=gw.onnx.DEFAULT_OPSET, high=None, batches=(3, 1, 5)):
    """Export at batch 3; onnxruntime must match gradwise at each batch size within 1e-5."""
    path = tmp_path / "model.onnx"
    proto = gw.onnx.export(model, _inputs(shape, 3, high=high), path, opset=opset)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert proto.opset_import[0].version == opset
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if isinstance(model, nn.Module):
        model.eval()
    for batch in batches:
        x = _inputs(shape, batch, high=high)
        with gw.no_grad():
            expected = model(gw.tensor(x)).numpy()
        (got,) = session.run(None, {"input": x})
        assert got.shape == expected.shape, (batch, got.shape, expected.shape)
        np.testing.assert_allclose(got, expected, rtol=TOLERANCE, atol=TOLERANCE)
    return proto


def _with_running_stats(layer, seed):
    rng = np.random.default_rng(seed)
    layer.running_mean.numpy()[...] = rng.standard_normal(layer.num_features)
    layer.running_var.numpy()[...] = rng.uniform(0.5, 2.0, layer.num_features)
    if layer.affine:
        layer.weight.numpy()[...] = rng.uniform(0.5, 1.5, layer.num_features)
        layer.bias.numpy()[...] = rng.standard_normal(layer.num_features)
    return layer


class Plain(nn.Module):
    """Forward code written with gradwise ops rather than layers."""

    def __init__(self, body):
        super().__init__()
        self.lin = nn.Linear(6, 6, rng=0)
        self.body = body

    def forward(self, x):
        return self.body(self.lin(x))


PLAIN_OPS = {
    "add_sub_mul_div": lambda h: (h + 1.5) * h - h / (h.abs() + 2.0),
    "exp_log_sqrt": lambda h: (h.exp() + 1).log() + (h * h + 1).sqrt(),
    "pow": lambda h: h**2 + (h.abs() + 1) ** h.sigmoid(),
    "neg_clip": lambda h: -h.clip(-0.5, 0.7),
    "max_min_pair": lambda h: gw.maximum(h, h * 0.5) + gw.minimum(h, gw.tensor(0.1)),
    "where": lambda h: gw.where(np.arange(6) % 2 == 0, h, h * 3),
    "sum_mean_keepdims": lambda h: h - h.mean(axis=1, keepdims=True) + h.sum(axis=-1)[:, None],
    "max_min_reduce": lambda h: h.amax(dim=1, keepdim=True) - h.amin(dim=1)[:, None] + h,
    "logsumexp": lambda h: h - h.logsumexp(axis=1, keepdims=True),
    "reshape_transpose": lambda h: h.reshape(-1, 2, 3).transpose(0, 2, 1).reshape(-1, 6),
    "flatten_unsqueeze_squeeze": lambda h: h.unsqueeze(1).unsqueeze(3).flatten(1, 2).squeeze(2),
    "slice_and_index": lambda h: h[:, 1:5:2] * h[:, -1:] + h[..., ::-1][:, :2],
    "int_index_new_axis": lambda h: h[:, 2][:, None] * h[:, None, :][:, 0],
    "cat_stack": lambda h: gw.cat([h, h * 2], axis=1) + gw.stack([h, h], axis=1).reshape(-1, 12),
    "pad": lambda h: h.pad(((0, 0), (2, 1)), 0.5),
    "expand": lambda h: (
        h[:, :1].expand(-1, 6) + gw.tensor(np.ones((1, 1), np.float32)).expand(2, 6)[1]
    ),
    "softplus_gelu": lambda h: F.softplus(h * 10, beta=2.0, threshold=5.0) + F.gelu(h),
    "gelu_tanh_elu_leaky": lambda h: F.gelu(h, "tanh") + F.elu(h, 0.7) + F.leaky_relu(h, 0.2),
    "softmax_logsoftmax": lambda h: F.softmax(h, axis=1) + F.log_softmax(h, axis=-1),
    "matmul": lambda h: h @ gw.tensor(np.eye(6, dtype=np.float32) * 2) @ h.transpose(1, 0) @ h,
    "cast": lambda h: h.double().float() * 2,
    "constant_math": lambda h: h * (gw.tensor(3.0) * 2 + 1),
    "std_var": lambda h: h.var(axis=1, keepdims=True) + h,
    "std_ddof": lambda h: h.std(axis=1, keepdims=True, ddof=1) * h + h.std(axis=1, keepdims=True),
    "norms": lambda h: (h.norm(2, dim=1, keepdim=True) + gw.linalg.vector_norm(h, 1, dim=1,
                        keepdim=True) + gw.linalg.vector_norm(h, float("inf"), dim=1,
                        keepdim=True) + gw.linalg.vector_norm(h, 3, dim=1, keepdim=True)
                        + gw.linalg.vector_norm(h, 0, dim=1, keepdim=True)) * h,
}


def _layer_models():
    gelu_tanh = nn.GELU("tanh")
    return {
        "linear": (nn.Sequential(nn.Linear(5, 4, rng=0)), (5,)),
        "linear_no_bias_3d": (nn.Sequential(nn.Linear(5, 4, bias=False, rng=0)), (2, 5)),
        "linear_3d": (nn.Sequential(nn.Linear(5, 4, rng=1)), (7, 5)),
        "conv": (nn.Sequential(nn.Conv2d(2, 3, 3, rng=0)), (2, 7, 6)),
        "conv_stride_pad_dilation": (
            nn.Sequential(nn.Conv2d(2, 3, (3, 2), stride=2, padding=(1, 2), dilation=2, rng=0)),
            (2, 9, 8),
        ),
        "conv_no_bias": (nn.Sequential(nn.Conv2d(1, 2, 1, bias=False, rng=0)), (1, 4, 4)),
        "maxpool": (nn.Sequential(nn.MaxPool2d(2)), (2, 6, 6)),
        "maxpool_overlap_pad": (nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1)), (2, 7, 7)),
        "avgpool": (nn.Sequential(nn.AvgPool2d(2)), (2, 6, 6)),
        "avgpool_pad": (nn.Sequential(nn.AvgPool2d(3, stride=2, padding=1)), (2, 7, 7)),
        # torch's pooling options (issue 11 A): the N-d reference ops as MaxPool / AveragePool
        "maxpool_ceil_dilation": (nn.Sequential(nn.MaxPool2d(3, 2, 1, dilation=2,
                                                             ceil_mode=True)), (2, 7, 8)),
        "maxpool3d_ceil": (nn.Sequential(nn.MaxPool3d(2, 2, 1, ceil_mode=True)), (2, 5, 4, 3)),
        "maxpool1d_dilation": (nn.Sequential(nn.MaxPool1d(2, 1, 1, dilation=3)), (2, 8)),
        "avgpool_ceil_no_pad_count": (nn.Sequential(nn.AvgPool2d(3, 2, 1, ceil_mode=True,
                                                                 count_include_pad=False)),
                                      (2, 6, 7)),
        "avgpool3d_ceil": (nn.Sequential(nn.AvgPool3d(2, 2, 1, ceil_mode=True)), (2, 5, 4, 3)),
        "batchnorm1d": (nn.Sequential(_with_running_stats(nn.BatchNorm1d(4), 0)), (4,)),
        "batchnorm1d_3d": (nn.Sequential(_with_running_stats(nn.BatchNorm1d(4), 1)), (4, 5)),
        "batchnorm2d": (nn.Sequential(_with_running_stats(nn.BatchNorm2d(3), 2)), (3, 4, 4)),
        "batchnorm_no_affine": (
            nn.Sequential(_with_running_stats(nn.BatchNorm2d(3, affine=False), 3)), (3, 4, 4)
        ),
        "layernorm": (nn.Sequential(nn.LayerNorm(6)), (6,)),
        "layernorm_2d_shape": (nn.Sequential(nn.LayerNorm((3, 4))), (2, 3, 4)),
        "layernorm_no_affine": (nn.Sequential(nn.LayerNorm(6, elementwise_affine=False)), (6,)),
        "relu": (nn.Sequential(nn.ReLU()), (6,)),
        "sigmoid": (nn.Sequential(nn.Sigmoid()), (6,)),
        "tanh": (nn.Sequential(nn.Tanh()), (6,)),
        "leaky_relu": (nn.Sequential(nn.LeakyReLU(0.1)), (6,)),
        "elu": (nn.Sequential(nn.ELU(0.5)), (6,)),
        "gelu": (nn.Sequential(nn.GELU()), (6,)),
        "gelu_tanh": (nn.Sequential(gelu_tanh), (6,)),
        # ops of their own since issue 12's upstream-gradient grid (they were compositions)
        "relu6": (nn.Sequential(nn.Linear(5, 6, rng=0), nn.ReLU6()), (5,)),
        "hardtanh": (nn.Sequential(nn.Hardtanh(-0.5, 0.5)), (6,)),
        "hardsigmoid": (nn.Sequential(nn.Linear(5, 6, rng=0), nn.Hardsigmoid()), (5,)),
        "hardswish": (nn.Sequential(nn.Linear(5, 6, rng=0), nn.Hardswish()), (5,)),
        "silu": (nn.Sequential(nn.SiLU()), (6,)),
        "mish": (nn.Sequential(nn.Mish()), (6,)),
        "softmax": (nn.Sequential(nn.Softmax(1)), (6,)),
        "log_softmax": (nn.Sequential(nn.LogSoftmax(-1)), (6,)),
        "softmax_axis1_of_3d": (nn.Sequential(nn.Softmax(1)), (4, 3)),
        "dropout_eval": (nn.Sequential(nn.Linear(5, 5, rng=0), nn.Dropout(0.5, rng=0)), (5,)),
        "flatten": (nn.Sequential(nn.Flatten()), (2, 3, 4)),
        "flatten_middle": (nn.Sequential(nn.Flatten(1, 2), nn.Linear(4, 2, rng=0)), (2, 3, 4)),
    }


LAYER_MODELS = _layer_models()


@pytest.mark.parametrize("name", sorted(LAYER_MODELS))
def test_every_layer_matches_onnxruntime(name, tmp_path):
    model, shape = LAYER_MODELS[name]
    check_export(model, shape, tmp_path)


@pytest.mark.parametrize("name", sorted(PLAIN_OPS))
def test_plain_forward_code_matches_onnxruntime(name, tmp_path):
    check_export(Plain(PLAIN_OPS[name]), (6,), tmp_path)


def test_embedding_takes_integer_input(tmp_path):
    model = nn.Sequential(nn.Embedding(11, 4, rng=0), nn.Flatten(), nn.Linear(12, 2, rng=0))
    proto = check_export(model, (3,), tmp_path, high=11)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert [n.op_type for n in proto.graph.node][0] == "Gather"


class WithModuleList(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(4, 4, rng=i) for i in range(3)])
        self.head = nn.Linear(4, 2, rng=9)

    def forward(self, x):
        for block in self.blocks:
            x = x + F.tanh(block(x))  # residual connections
        return F.log_softmax(self.head(x), axis=1)


def test_module_list_with_residuals_and_parameter_names(tmp_path):
    proto = check_export(WithModuleList(), (4,), tmp_path)
    names = {init.name for init in proto.graph.initializer}
    assert {"blocks.0.weight", "blocks.2.bias", "head.weight"} <= names


def test_plain_callable_is_exported(tmp_path):
    weight = gw.tensor(np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32),
                       requires_grad=True)

    def forward(x):
        return F.relu(x @ weight).sum(axis=1, keepdims=True)

    check_export(forward, (3,), tmp_path)


@pytest.mark.parametrize("opset", [13, 15, 17, 18, 20, 21])
def test_opsets(opset, tmp_path):
    """Every opset the exporter claims: reductions (axes attribute vs input), LayerNorm, GELU."""
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1, rng=0), _with_running_stats(nn.BatchNorm2d(2), 4),
        nn.GELU(), nn.AvgPool2d(2), nn.Flatten(), nn.LayerNorm(8), nn.Linear(8, 3, rng=1),
    )
    check_export(model, (1, 4, 4), tmp_path, opset=opset)
    check_export(Plain(PLAIN_OPS["max_min_reduce"]), (6,), tmp_path, opset=opset)
    check_export(Plain(PLAIN_OPS["logsumexp"]), (6,), tmp_path, opset=opset)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_shipped_recipes_models(recipe, tmp_path):
    config = TrainConfig.from_recipe(recipe)
    image = RECIPES[recipe].model == "cnn" or RECIPES[recipe].dataset not in ("spiral", "xor")
    shape = (1, 28, 28) if image else (2,)
    if RECIPES[recipe].dataset == "digits":
        shape = (1, 8, 8)
    model = build_model(config, shape, 10)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            _with_running_stats(module, 5)
    check_export(model, shape, tmp_path, batches=(3, 2))


def test_modes_are_restored_and_dropout_is_off_in_the_file(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4, rng=0), nn.Dropout(0.5, rng=0), nn.BatchNorm1d(4))
    model.train()
    model[2].eval()
    gw.onnx.export(model, np.ones((3, 4), np.float32), tmp_path / "m.onnx")
    assert [m.training for m in model.modules()] == [True, True, True, False]
    ops = [n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node]
    assert "Dropout" not in ops and "RandomUniformLike" not in ops


def test_names_and_dynamic_batch_in_the_signature(tmp_path):
    model = nn.Sequential(nn.Linear(4, 2, rng=0))
    path = tmp_path / "m.onnx"
    proto = gw.onnx.export(model, np.ones((3, 4), np.float32), path,
                           input_names=["pixels"], output_names=["logits"])
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, out.name) == ("pixels", "logits")
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert out.type.tensor_type.shape.dim[0].dim_param == "batch"
    fixed = gw.onnx.export(model, np.ones((3, 4), np.float32), path, dynamic_batch=False)
    assert fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 3


class TwoInTwoOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3, rng=0)

    def forward(self, a, b):
        h = self.lin(a) + b
        return h, F.softmax(h, axis=1)


def test_several_inputs_and_outputs(tmp_path):
    model = TwoInTwoOut()
    a, b = _inputs((4,), 3), _inputs((3,), 3, seed=7)
    gw.onnx.export(model, (a, b), tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["output_0", "output_1"], {"input_0": a, "input_1": b})
    expected = model(gw.tensor(a), gw.tensor(b))
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e.numpy(), rtol=TOLERANCE, atol=TOLERANCE)


class WithLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, rng=0)
        self.lin = nn.Linear(8, 3, rng=0)

    def forward(self, x):
        h = self.conv(x).flatten(1)
        return F.cross_entropy(self.lin(h), np.zeros(len(x), dtype=np.int64))


class FancyIndex(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4, rng=0)

    def forward(self, x):
        return self.lin(x)[x.numpy()[:, 0] > 0]


class TrainingBatchNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4, rng=0)

    def forward(self, x):
        return F.batch_norm(self.lin(x), None, None, training=True)


class MaskFromNumpy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4, rng=0)

    def forward(self, x):
        mask = gw.tensor((x.numpy() > 0).astype(np.float32))  # outside the recorded graph
        return self.lin(x) * mask


class BranchOnValues(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4, rng=0)

    def forward(self, x):
        h = self.lin(x)
        return F.relu(h) if x.max().item() > 1.0 else F.tanh(h)


class CastsItsIntegerInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2, rng=0)

    def forward(self, x):
        return self.lin(x.float())  # an integer input is not recorded, so the cast is not


@pytest.mark.parametrize(
    "model, example, words",
    [
        (MaskFromNumpy(), _inputs((4,), 3), ["op Mul in module <model> (MaskFromNumpy)",
                                             "depends on the input values"]),
        (BranchOnValues(), np.full((3, 4), 1.5, np.float32), ["control flow"]),
        (CastsItsIntegerInput(), _inputs((4,), 3, high=5),
         ["op Linear in module lin (Linear)", "depends on the input values"]),
    ],
)
def test_values_baked_into_the_trace_are_refused(model, example, words, tmp_path):
    with pytest.raises(gw.onnx.ExportError) as error:
        gw.onnx.export(model, example, tmp_path / "m.onnx")
    for word in words:
        assert word in str(error.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "model, shape, words",
    [
        (WithLoss(), (1, 4, 4), ["CrossEntropy", "<model> (WithLoss)", "(3, 3)"]),
        (FancyIndex(), (4,), ["GetItem", "basic indexing", "bool"]),
        (TrainingBatchNorm(), (4,), ["BatchNorm", "training=True"]),
        (nn.Sequential(nn.AvgPool2d(2, divisor_override=3)), (2, 4, 4),
         ["AvgPoolNd", "divisor_override"]),
    ],
)
def test_unsupported_op_is_named_and_no_file_is_left(model, shape, words, tmp_path):
    path = tmp_path / "m.onnx"
    with pytest.raises(gw.onnx.ExportError) as error:
        gw.onnx.export(model, _inputs(shape, 3), path)
    for word in words:
        assert word in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_the_first_unsupported_op_is_named(tmp_path):
    def forward(x):
        loss = F.mse_loss(x, np.zeros(x.shape, np.float32))  # recorded first
        return F.binary_cross_entropy(x.sigmoid(), np.ones(x.shape, np.float32)) + loss

    # mse_loss is built from supported ops; binary_cross_entropy is the first op without one
    with pytest.raises(gw.onnx.ExportError, match="op BCE "):
        gw.onnx.export(forward, _inputs((2,), 3), tmp_path / "m.onnx")


def test_bad_arguments(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2, rng=0))
    x = np.ones((3, 2), np.float32)
    with pytest.raises(ValueError, match="opset 9 is not supported"):
        gw.onnx.export(model, x, tmp_path / "m.onnx", opset=9)
    with pytest.raises(ValueError, match="input_names must be 1"):
        gw.onnx.export(model, x, tmp_path / "m.onnx", input_names=["a", "b"])
    with pytest.raises(ValueError, match="dtype <U1"):
        gw.onnx.export(model, np.array([["a", "b"]]), tmp_path / "m.onnx")
    with pytest.raises(gw.onnx.ExportError, match="output 0 is a int"):
        gw.onnx.export(lambda x: 3, x, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_gradwise_imports_without_onnx_and_export_names_the_extra():
    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "import gradwise as gw\n"
        "try:\n"
        "    gw.onnx.export(gw.nn.Linear(2, 2), gw.ones(1, 2), 'never.onnx')\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert "pip install 'gradwise[onnx]'" in result.stdout


def _random_architecture(seed):
    """A random stack of the supported layers, with sizes, strides and paddings drawn."""
    rng = np.random.default_rng(seed)
    activations = [nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, lambda: nn.LeakyReLU(0.05),
                   lambda: nn.ELU(0.8)]
    layers = []
    if seed % 2:  # a CNN on (2, 9, 9) images
        channels, size = 2, 9
        for _ in range(rng.integers(1, 3)):
            out, kernel = int(rng.integers(1, 5)), int(rng.integers(1, 4))
            padding, stride = int(rng.integers(0, kernel)), int(rng.integers(1, 3))
            layers.append(nn.Conv2d(channels, out, kernel, stride=stride, padding=padding,
                                    rng=int(rng.integers(1000))))
            size = (size + 2 * padding - kernel) // stride + 1
            channels = out
            if rng.random() < 0.5:
                layers.append(_with_running_stats(nn.BatchNorm2d(channels), seed))
            layers.append(activations[rng.integers(len(activations))]())
            if size >= 2 and rng.random() < 0.6:
                pool = nn.MaxPool2d if rng.random() < 0.5 else nn.AvgPool2d
                layers.append(pool(2))
                size //= 2
        layers.append(nn.Flatten())
        width, shape = channels * size * size, (2, 9, 9)
    else:  # an MLP on 7 features
        width, shape = 7, (7,)
    for _ in range(rng.integers(1, 4)):
        out = int(rng.integers(2, 9))
        layers.append(nn.Linear(width, out, bias=bool(rng.random() < 0.8),
                                rng=int(rng.integers(1000))))
        width = out
        choice = rng.random()
        if choice < 0.25:
            layers.append(nn.LayerNorm(width))
        elif choice < 0.5:
            layers.append(_with_running_stats(nn.BatchNorm1d(width), seed + 1))
        layers.append(activations[rng.integers(len(activations))]())
        if rng.random() < 0.3:
            layers.append(nn.Dropout(0.5, rng=0))
    if rng.random() < 0.5:
        layers.append(nn.LogSoftmax(1) if rng.random() < 0.5 else nn.Softmax(1))
    return nn.Sequential(*layers), shape


@pytest.mark.parametrize("seed", range(16))
def test_random_architectures(seed, tmp_path):
    model, shape = _random_architecture(seed)
    check_export(model, shape, tmp_path, batches=(3, 1, 4))


@pytest.mark.parametrize("kind", ["float64_array", "float16_array", "list", "float64_tensor"])
@pytest.mark.parametrize("model_dtype", [np.float32, np.float64])
def test_inputs_take_the_models_float_dtype(kind, model_dtype, tmp_path):
    """Regression: a float64 array or a list (read as a tuple of inputs) made onnx's checker
    fail with 'Gemm: B has inconsistent type'; the file's input now has the model's dtype."""
    model = nn.Sequential(nn.Linear(3, 2, rng=0, dtype=model_dtype), nn.ReLU(),
                          nn.Linear(2, 2, rng=1, dtype=model_dtype))
    rows = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
    example = {"float64_array": np.array(rows), "float16_array": np.array(rows, np.float16),
               "list": rows, "float64_tensor": gw.tensor(rows, dtype=gw.float64)}[kind]
    proto = gw.onnx.export(model, example, tmp_path / "m.onnx")
    assert len(proto.graph.input) == 1
    elem = proto.graph.input[0].type.tensor_type.elem_type
    assert onnx.helper.tensor_dtype_to_np_dtype(elem) == model_dtype
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = np.array(rows, model_dtype)
    with gw.no_grad():
        expected = model(gw.tensor(x)).numpy()
    np.testing.assert_allclose(session.run(None, {"input": x})[0], expected, rtol=1e-6)


def test_integer_input_into_a_float_layer_is_refused_and_writes_nothing(tmp_path):
    # the layer refuses it while tracing, as torch's Linear does (no silent promotion)
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype, but got "
                                           "Long and Float"):
        gw.onnx.export(nn.Linear(3, 2, rng=0), [[1, 2, 3], [4, 5, 6]], tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_zero_d_outputs_and_constants_keep_their_rank(tmp_path):
    """Regression: 0-d constants were written as shape (1,), so a 0-d output failed shape
    inference ('Inferred shape and existing shape differ in rank: (1) vs (0)')."""
    check_export(lambda x: (x * 2.0).sum() * 3.0, (6,), tmp_path)


def test_a_missing_folder_names_the_path_not_a_temp_file(tmp_path):
    """Regression: the error named '/nonexistent/.e.onnx.XXXX.tmp'."""
    target = tmp_path / "nonexistent" / "e.onnx"
    with pytest.raises(FileNotFoundError) as caught:
        gw.onnx.export(nn.Linear(3, 2, rng=0), np.zeros((2, 3), np.float32), target)
    message = str(caught.value)
    assert f"cannot write {target}" in message
    assert f"the folder {target.parent} does not exist" in message and ".tmp" not in message


def test_adaptive_pooling_exports_past_its_create_graph_marker(tmp_path):
    # adaptive pooling of an input that requires grad records a ReadsInput marker (so its
    # create_graph gradient requires grad as torch's); the export writes it as Identity
    model = nn.Sequential(nn.Conv2d(2, 2, 1), nn.AdaptiveAvgPool2d((3, 2)), nn.Flatten())
    check_export(model, (2, 7, 5), tmp_path)


# Layers built from index_select (reflect/replicate/circular padding, nearest and bilinear
# upsampling, unfold) or from `where` on a comparison of the input (threshold, hardshrink,
# softshrink, prelu): before, each was refused (GetItem with an integer array on an axis past 0;
# a mask that was a constant of one trace).
GATHER_AND_MASK_MODELS = {
    **{f"{kind.lower()}pad{d}d": (getattr(nn, f"{kind}Pad{d}d")(2), (3,) + (5,) * d)
       for kind in ("Reflection", "Replication", "Circular") for d in (1, 2, 3)},
    **{f"conv2d_{mode}": (nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode, rng=0), (2, 6, 6))
       for mode in ("reflect", "replicate", "circular")},
    "conv1d_reflect_pad2": (nn.Conv1d(2, 3, 3, padding=2, padding_mode="reflect", rng=0), (2, 6)),
    "upsample_nearest": (nn.Upsample(scale_factor=2), (4, 6, 6)),
    "upsample_bilinear": (nn.Upsample(scale_factor=2, mode="bilinear"), (4, 6, 6)),
    "upsample_bilinear_corners": (nn.Upsample(size=(5, 9), mode="bilinear", align_corners=True),
                                  (2, 3, 4)),
    "unfold": (nn.Unfold(2), (4, 6, 6)),
    "unfold_stride_pad": (nn.Unfold((2, 3), stride=2, padding=1), (2, 5, 6)),
    "threshold": (nn.Threshold(0.1, 2.0), (4, 6)),
    "hardshrink": (nn.Hardshrink(0.4), (4, 6)),
    "softshrink": (nn.Softshrink(0.3), (4, 6)),
    "prelu": (nn.Sequential(nn.Conv2d(2, 3, 1, rng=0), nn.PReLU(3)), (2, 4, 4)),
    "prelu_shared": (nn.PReLU(), (6,)),
}


@pytest.mark.parametrize("name", sorted(GATHER_AND_MASK_MODELS))
def test_gathers_and_input_masks_match_onnxruntime(name, tmp_path):
    model, shape = GATHER_AND_MASK_MODELS[name]
    check_export(model, shape, tmp_path)


INDEX_OPS = {
    "index_select_dim1": lambda h: h.index_select(1, gw.tensor([4, 0, 0, 2])),
    "negative_index": lambda h: h[:, np.array([-1, 0, -6])],
    "index_array_2d": lambda h: h[:, np.array([[0, 1], [5, 5]])],
    "two_arrays_broadcast": lambda h: h.reshape(-1, 2, 3)[:, np.array([[1], [0]]),
                                                          np.array([[2, 0, 1]])],
    "ellipsis_then_arrays": lambda h: h.reshape(-1, 2, 3)[..., np.array([1, 0]),
                                                          np.array([2, 2])],
    "masks_of_values": lambda h: gw.where(h > 0.2, h, h * 0.5) + gw.where(h.abs() <= 1, 1.0, h)
    + gw.where(h != 0.5, h, 0.0) + gw.where(0.1 >= h, -h, h),  # noqa: SIM300 (reflected)
    "mask_of_two_values": lambda h: gw.where(h < h.flip(1), h, h.flip(1)),
}


@pytest.mark.parametrize("name", sorted(INDEX_OPS))
def test_index_arrays_and_value_masks_match_onnxruntime(name, tmp_path):
    check_export(Plain(INDEX_OPS[name]), (6,), tmp_path)


@pytest.mark.parametrize("layer, values", [
    (nn.Threshold(0.5, -1.0), [0.5, 0.49, 0.51, 0.0, np.nan, -np.inf, np.inf]),
    (nn.Hardshrink(0.5), [0.5, -0.5, 0.51, -0.51, 0.0, np.nan, np.inf]),
    (nn.Softshrink(0.5), [0.5, -0.5, 0.51, -0.51, 0.0, np.nan, -np.inf]),
    (nn.PReLU(), [0.0, -0.0, 1.0, -1.0, np.nan, np.inf, -np.inf]),
])
def test_masks_at_their_edges_match_gradwise(layer, values, tmp_path):
    # the comparison's edge (x == lambd, 0, NaN, inf) decides the same side in the file
    path = tmp_path / "m.onnx"
    gw.onnx.export(layer, _inputs((7,), 3), path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.array([values, values[::-1]], dtype=np.float32)
    with gw.no_grad():
        expected = layer(gw.tensor(x)).numpy()
    (got,) = session.run(None, {"input": x})
    np.testing.assert_array_equal(got, expected)


def test_a_mask_changed_in_place_is_still_refused(tmp_path):
    # a comparison's mask edited afterwards is no longer the comparison: it stays a constant
    # of the trace, and the second trace refuses it as before
    def forward(h):
        mask = h > 0
        mask[:, 0] = True
        return gw.where(mask, h, -h)

    with pytest.raises(gw.onnx.ExportError, match="depends on the input values"):
        gw.onnx.export(Plain(forward), _inputs((6,), 3), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("model, shape, words", [
    (nn.AdaptiveMaxPool2d(3), (2, 6, 6), ["GetItem", "depends on the input values"]),
    (nn.Fold((4, 4), 2), (16, 9), ["ScatterAdd", "no ONNX converter"]),
])
def test_layers_not_exported_yet_are_named(model, shape, words, tmp_path):
    with pytest.raises(gw.onnx.ExportError) as error:
        gw.onnx.export(model, _inputs(shape, 3), tmp_path / "m.onnx")
    for word in words:
        assert word in str(error.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dims", [(1,), (-1,), (0, 1), ()])
def test_flip_matches_onnxruntime(dims, tmp_path):
    check_export(Plain(lambda h: h.reshape(-1, 2, 3).flip(dims) * h.reshape(-1, 2, 3)),
                 (6,), tmp_path, batches=(3,) if 0 in dims else (3, 1, 5))


# Reshapes that move the batch off axis 0 or fold it into another axis: the file used to carry
# the traced batch size in those reshapes (it failed at any other batch size in onnxruntime,
# or was refused as for conv3d); a trace at one more row now finds the axis that follows the
# batch and writes -1 there.
BATCH_MOVING = {
    "unsqueeze_front": lambda h: h.reshape(1, -1, 6).sum(0),
    "transpose_then_reshape": lambda h: h.T.reshape(6, -1).T,
    "flatten_everything": lambda h: h.reshape(-1).sum() * h,
    "flatten_then_rows": lambda h: h.flatten().reshape(-1, 3).reshape(-1, 6),
    "repeat": lambda h: h.repeat(1, 2),
    "repeat_batch": lambda h: h.repeat(2, 1).reshape(2, -1, 6).sum(0),
    "repeat_leading": lambda h: h.repeat(2, 1, 1).sum(0),
    "tile": lambda h: h.tile((2,)),
}


@pytest.mark.parametrize("name", sorted(BATCH_MOVING))
def test_reshapes_that_move_the_batch_run_at_every_batch_size(name, tmp_path):
    proto = check_export(Plain(BATCH_MOVING[name]), (6,), tmp_path)
    # the output's declared shape follows the batch where its size does
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    with gw.no_grad():
        one = Plain(BATCH_MOVING[name])
        shapes = [one(gw.tensor(_inputs((6,), b))).shape for b in (3, 4)]
    for k, dim in enumerate(dims):
        assert bool(dim.dim_param) == (shapes[0][k] != shapes[1][k]), (k, dim, shapes)


@pytest.mark.parametrize("model, shape", [
    (nn.Sequential(nn.Conv3d(2, 3, 3, rng=0)), (2, 4, 4, 4)),
    (nn.Sequential(nn.Conv3d(2, 3, 3, padding=1, stride=2, rng=0), nn.ReLU(), nn.MaxPool3d(2)),
     (2, 6, 6, 6)),
    (nn.Sequential(nn.ConvTranspose3d(2, 3, 3, stride=2)), (2, 3, 3, 3)),
])
def test_conv3d_exports_with_a_dynamic_batch(model, shape, tmp_path):
    # conv3d folds the batch into its depth slices; it was refused before
    check_export(model, shape, tmp_path)


def test_a_model_tied_to_its_batch_size_is_refused_with_a_dynamic_batch(tmp_path):
    # the index has the traced batch's rows: the trace at one more row still runs but its
    # constants differ, so a dynamic-batch file would be wrong at other sizes
    index = gw.tensor(np.array([[0, 5], [1, 1], [2, 0]], dtype=np.int64))
    model = Plain(lambda h: h.gather(1, index))
    with pytest.raises(gw.onnx.ExportError, match="dynamic_batch=False"):
        gw.onnx.export(model, _inputs((6,), 3), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
    path = tmp_path / "fixed.onnx"
    gw.onnx.export(model, _inputs((6,), 3), path, dynamic_batch=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = _inputs((6,), 3)
    with gw.no_grad():
        np.testing.assert_allclose(session.run(None, {"input": x})[0],
                                   model(gw.tensor(x)).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, forward", [
    ("reshape_rows", lambda h: h.reshape(4, -1) * 2),
    ("chunk_batch", lambda h: sum(h.chunk(2, 0)).sum(0) * h),
    ("view_half_batch", lambda h: h.view(h.shape[0] // 2, -1).sum(1)),
])
def test_a_model_that_cannot_run_on_another_batch_size_gets_a_fixed_batch(name, forward,
                                                                           tmp_path):
    # the trace at one more row fails (24 numbers do not reshape to 4 rows at 5 rows; two
    # chunks of 3 and 2 rows do not add): the file is written with the example's batch size
    # (its input declared so), and a warning says so; it used to declare a dynamic batch and
    # fail or give another shape at other sizes
    path = tmp_path / "m.onnx"
    with pytest.warns(RuntimeWarning, match="batch axis is fixed at the example's 4 rows"):
        proto = gw.onnx.export(Plain(forward), _inputs((6,), 4), path)
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [4, 6]


# Models whose graph or constants follow axis 0 in ways a dynamic batch cannot express: before,
# each was written with a dynamic batch axis and gave wrong values or shapes (no error) at
# other batch sizes (newcomer review 9 of issue 14)
BATCH_BOUND = {
    "last_row": lambda h: h[-1] * h,
    "first_plus_last": lambda h: h[0] * 2 + h[-1],
    "tail_rows": lambda h: h[-2:].sum(0) * h,
    "drop_first_row": lambda h: h[1:].sum(0) * h,
    "divide_by_batch_size": lambda h: h / h.shape[0],
    # floor division gives the same number at b and b + 1 rows (review 10): traced at 2b + 1
    "first_half": lambda h: h[: h.shape[0] // 2].sum(0) * h,
    "divide_by_quarter_batch": lambda h: h / (h.shape[0] // 4),
}


@pytest.mark.parametrize("name", sorted(BATCH_BOUND))
def test_constants_that_follow_the_batch_are_refused(name, tmp_path):
    with pytest.raises(gw.onnx.ExportError, match="dynamic_batch=False"):
        gw.onnx.export(Plain(BATCH_BOUND[name]), _inputs((6,), 4), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
    gw.onnx.export(Plain(BATCH_BOUND[name]), _inputs((6,), 4), tmp_path / "fixed.onnx",
                   dynamic_batch=False)


class _SequenceFirstLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        gw.manual_seed(0)
        self.lstm = nn.LSTM(6, 8)  # (time, batch, features), torch's default

    def forward(self, x):
        return self.lstm(x)[0]


def test_a_sequence_first_rnn_is_refused_with_a_dynamic_batch(tmp_path):
    # axis 0 is time: the trace at one more step records more ops; the file used to drop the
    # steps past the traced length silently
    with pytest.raises(gw.onnx.ExportError, match="sequence-first RNN"):
        gw.onnx.export(_SequenceFirstLSTM(), _inputs((2, 6), 5), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("reps", [(2, 3), (1, 1), (2, 1, 3), (0, 2), (3,) * 3])
def test_repeat_values_and_gradients_match_torch(reps):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    if len(reps) < 2:
        reps = (1,) + reps
    g = gw.tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    y, ty = g.repeat(*reps), t.repeat(*reps)
    weights = np.random.default_rng(1).standard_normal(tuple(ty.shape)).astype(np.float32)
    (y * gw.tensor(weights)).sum().backward()
    (ty * torch.tensor(weights)).sum().backward()
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-6)
    assert not np.shares_memory(g.repeat(*(1,) * len(reps)).numpy(), g.numpy())
    with pytest.raises(ValueError, match="repeat counts must be >= 0"):
        g.repeat(-1, 2)
    y, ty = g.repeat(*reps), t.repeat(*reps)
    if ty.numel() == 0:  # torch's first gradient of an empty result carries no graph
        return
    gw_gg = gw.autograd.grad((y * y * y).sum(), g, create_graph=True)[0]
    t_gg = torch.autograd.grad((ty * ty * ty).sum(), t, create_graph=True)[0]
    np.testing.assert_allclose(gw.autograd.grad(gw_gg.sum(), g)[0].numpy(),
                               torch.autograd.grad(t_gg.sum(), t)[0].numpy(), rtol=1e-6)


# Ops with a converter since the 106-op export sweep (each was refused as "no ONNX converter";
# masked_fill on a comparison and frac were refused as constants of the trace)
MORE_OPS = {
    **{name: (lambda method: lambda h: getattr(h, method)())(name)
       for name in ("sin", "cos", "tan", "atan", "sinh", "cosh", "asinh", "erf", "log1p",
                    "expm1", "round", "trunc", "frac")},
    "log1p_of_abs": lambda h: h.abs().log1p(),
    "asin_acos_atanh": lambda h: h.tanh().asin() + h.tanh().acos() + (h.tanh() * 0.9).atanh(),
    "acosh": lambda h: (1 + h * h).acosh(),
    "round_decimals": lambda h: (h * 7).round(decimals=2),
    "fmod": lambda h: gw.fmod(h, 0.7) + gw.fmod(h * 3, h + 5),
    "remainder": lambda h: h % 0.7 + gw.remainder(h * 3, -(h.abs() + 1)),
    "prod": lambda h: h.prod(1, keepdim=True) * h + h.reshape(-1, 2, 3).prod(2).sum(1,
                                                                                keepdim=True),
    "cumsum": lambda h: h.cumsum(1) + h.cumsum(-1),
    "einsum": lambda h: gw.einsum("bi,bj->bij", h, h).sum(2) + gw.einsum("bi,ij->bj", h,
                                                                          h[:1].T @ h[:1]),
    "logit": lambda h: h.sigmoid().logit() + gw.logit(h.sigmoid(), eps=0.05),
    "nansum": lambda h: gw.nansum(h.log(), 1, keepdim=True) * h,
    "hypot": lambda h: gw.hypot(h, h * 0.5 + 1),
    "masked_fill": lambda h: h.masked_fill(h < 0, 0.5),
}


@pytest.mark.parametrize("name", sorted(MORE_OPS))
def test_more_ops_match_onnxruntime(name, tmp_path):
    check_export(Plain(MORE_OPS[name]), (6,), tmp_path)


class _FirstOutput(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)[0]


class _SelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        return self.attention(x, x, x)[0]


def _recurrent_models():
    gw.manual_seed(0)
    return {
        "rnn": (_FirstOutput(nn.RNN(6, 5, batch_first=True)), (4, 6)),
        "lstm": (_FirstOutput(nn.LSTM(6, 5, batch_first=True)), (4, 6)),
        "gru_two_layers": (_FirstOutput(nn.GRU(6, 5, batch_first=True, num_layers=2)), (4, 6)),
        "lstm_bidirectional": (_FirstOutput(nn.LSTM(6, 5, batch_first=True,
                                                    bidirectional=True)), (4, 6)),
        "self_attention": (_SelfAttention(), (4, 8)),
        "encoder_layer": (nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
                          (4, 8)),
    }


RECURRENT_MODELS = _recurrent_models()


@pytest.mark.parametrize("opset", [13, gw.onnx.DEFAULT_OPSET])
@pytest.mark.parametrize("name", sorted(RECURRENT_MODELS))
def test_recurrent_state_follows_the_batch(name, opset, tmp_path):
    # the zero initial state (num_layers, batch, hidden) was a constant of the traced batch:
    # at batch 1 the file broadcast its output to 3 rows (silently wrong shape); it is now a
    # ConstantOfShape of the input's batch size
    model, shape = RECURRENT_MODELS[name]
    check_export(model, shape, tmp_path, opset=opset)


def test_a_non_uniform_constant_following_the_batch_is_refused(tmp_path):
    def forward(h):
        ramp = gw.tensor(np.arange(h.shape[0] * 6, dtype=np.float32).reshape(-1, 6))
        return h + ramp

    with pytest.raises(gw.onnx.ExportError, match="follows the batch size"):
        gw.onnx.export(Plain(forward), _inputs((6,), 3), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
    gw.onnx.export(Plain(forward), _inputs((6,), 3), tmp_path / "m.onnx", dynamic_batch=False)
