"""`gradwise export RUN --format onnx` and `gradwise train --tensorboard DIR`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli.cli_helpers import assert_one_line_error, gradwise
from gradwise.runs import load_run

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def xor_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli-export") / "xor"
    from gradwise.cli import main

    assert main(["train", "xor", "--epochs", "2", "--out", str(run_dir), "--quiet"]) == 0
    return run_dir


def test_export_writes_an_onnx_file_that_predicts_like_the_run(xor_run, capsys, tmp_path):
    out = tmp_path / "xor.onnx"
    result = gradwise(capsys, "export", xor_run, "--format", "onnx", "--out", out)
    assert result.code == 0, result.err
    assert f"Wrote {out} (ONNX opset 17" in result.out
    model = onnx.load(str(out))
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert meta["classes"] == load_run(xor_run).info["classes"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((7, 2)).astype(np.float32)
    (logits,) = session.run(["logits"], {"input": x})
    import gradwise as gw

    with gw.no_grad():
        expected = load_run(xor_run).model(gw.tensor(x)).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_export_default_path_and_opset(xor_run, capsys):
    result = gradwise(capsys, "export", xor_run, "--opset", "13")
    assert result.code == 0, result.err
    assert onnx.load(str(xor_run / "model.onnx")).opset_import[0].version == 13


def test_export_errors_are_one_line(xor_run, capsys, tmp_path):
    assert_one_line_error(gradwise(capsys, "export", tmp_path / "nothing"), code=2)
    result = gradwise(capsys, "export", xor_run, "--opset", "9", "--out", tmp_path / "m.onnx")
    assert result.code != 0 and "opset 9 is not supported" in result.err
    assert not (tmp_path / "m.onnx").exists()
    result = gradwise(capsys, "export", xor_run, "--format", "tflite")
    assert result.code == 2 and "invalid choice: 'tflite'" in result.err


def test_train_tensorboard_writes_event_files(capsys, tmp_path):
    pytest.importorskip("tensorboardX")
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    result = gradwise(capsys, "train", "xor", "--epochs", "2", "--out", tmp_path / "run",
                      "--quiet", "--tensorboard", tmp_path / "tb")
    assert result.code == 0, result.err
    events = accumulator.EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    logged = [e.value for e in events.Scalars("epoch/val_accuracy")]
    np.testing.assert_allclose(logged, [r["val_accuracy"] for r in history["epochs"]], rtol=1e-6)
    assert any(tag.startswith("update_ratio/") for tag in events.Tags()["scalars"])
    assert events.Tags()["graph"]  # traced on the first training batch


def test_missing_optional_packages_are_named(xor_run, capsys, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    assert_one_line_error(gradwise(capsys, "export", xor_run, "--out", tmp_path / "m.onnx"),
                          code=7, fragment="pip install 'gradwise[onnx]'")
    result = gradwise(capsys, "train", "xor", "--epochs", "1", "--out", tmp_path / "run",
                      "--tensorboard", tmp_path / "tb")
    assert_one_line_error(result, code=7, fragment="pip install 'gradwise[tensorboard]'")
    assert not (tmp_path / "run").exists()
