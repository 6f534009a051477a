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
    assert_one_line_error(gradwise(capsys, "export", tmp_path / "nothing"), code=4,
                          fragment="no such run folder")
    # regression: a bad opset printed "unexpected ValueError ... (rerun with GRADWISE_DEBUG=1)"
    for opset in ("9", "12", "22"):
        result = gradwise(capsys, "export", xor_run, "--opset", opset, "--out",
                          tmp_path / "m.onnx")
        assert_one_line_error(result, code=2,
                              fragment=f"--opset {opset} is not supported; use one of 13..21")
        assert "unexpected" not in result.err
    assert not (tmp_path / "m.onnx").exists()
    # regression: an .onnx file given as the run said "no such run folder"
    onnx_file = tmp_path / "model.onnx"
    assert gradwise(capsys, "export", xor_run, "--out", onnx_file).code == 0
    for command in ("export", "evaluate"):
        assert_one_line_error(gradwise(capsys, command, onnx_file), code=4,
                              fragment=f"{onnx_file} is a file, not a run folder")
    assert_one_line_error(
        gradwise(capsys, "export", xor_run, "--out", tmp_path / "absent" / "m.onnx"), code=2,
        fragment="no such folder")
    # the same family: a file where a folder option is expected says so
    assert_one_line_error(gradwise(capsys, "train", "--resume", onnx_file), code=4,
                          fragment=f"--resume {onnx_file} is a file, not a folder")
    assert_one_line_error(gradwise(capsys, "train", "xor", "--data-dir", onnx_file), code=3,
                          fragment=f"--data-dir {onnx_file} is a file, not a folder")
    assert_one_line_error(gradwise(capsys, "export", xor_run, "--out", onnx_file / "m.onnx"),
                          code=2, fragment="is a file, not a folder")
    result = gradwise(capsys, "export", xor_run, "--format", "tflite")
    assert result.code == 2 and "invalid choice: 'tflite'" in result.err


def test_train_tensorboard_writes_event_files(capsys, tmp_path):
    pytest.importorskip("tensorboardX")
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    multiplexer = pytest.importorskip(
        "tensorboard.backend.event_processing.plugin_event_multiplexer")
    for name in ("run-a", "run-b"):  # regression: both runs' events went into one folder
        result = gradwise(capsys, "train", "xor", "--epochs", "2", "--out", tmp_path / name,
                          "--quiet", "--tensorboard", tmp_path / "tb")
        assert result.code == 0, result.err
        folder = tmp_path / "tb" / name
        assert f"TensorBoard event files: {folder}" in result.out
        assert f"tensorboard --logdir {tmp_path / 'tb'}" in result.out
        events = accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0})
        events.Reload()
        history = json.loads((tmp_path / name / "history.json").read_text())
        logged = [e.value for e in events.Scalars("epoch/val_accuracy")]
        np.testing.assert_allclose(logged, [r["val_accuracy"] for r in history["epochs"]],
                                   rtol=1e-6)
        assert any(tag.startswith("update_ratio/") for tag in events.Tags()["scalars"])
        assert events.Tags()["graph"]  # traced on the first training batch
    assert not list((tmp_path / "tb").glob("events.*"))
    # what `tensorboard --logdir tb` shows: two runs named after the run folders
    runs = multiplexer.EventMultiplexer()
    runs.AddRunsFromDirectory(str(tmp_path / "tb"))
    assert sorted(runs.Runs()) == ["run-a", "run-b"]


def test_missing_optional_packages_are_named(xor_run, capsys, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    assert_one_line_error(gradwise(capsys, "export", xor_run, "--out", tmp_path / "m.onnx"),
                          code=7, fragment="pip install 'gradwise[onnx]'")
    result = gradwise(capsys, "train", "xor", "--epochs", "1", "--out", tmp_path / "run",
                      "--tensorboard", tmp_path / "tb")
    assert_one_line_error(result, code=7, fragment="pip install 'gradwise[tensorboard]'")
    assert result.out == ""  # regression: "run folder: ..." was printed before the error
    assert not (tmp_path / "run").exists() and not (tmp_path / "tb").exists()


def test_onnx_missing_with_tensorboard_says_which_extra(capsys, tmp_path, monkeypatch):
    import sys

    pytest.importorskip("tensorboardX")
    monkeypatch.setitem(sys.modules, "onnx", None)
    result = gradwise(capsys, "train", "xor", "--epochs", "2", "--out", tmp_path / "run",
                      "--quiet", "--tensorboard", tmp_path / "tb")
    assert result.code == 0, result.err
    warnings = [line for line in result.err.splitlines() if "no model graph" in line]
    assert len(warnings) == 1 and "pip install 'gradwise[onnx]'" in warnings[0], result.err


@pytest.fixture(scope="module")
def batch_norm_run(tmp_path_factory):
    """A small CNN run with batch norm (mnist-cnn offline: scikit-learn's digits)."""
    folder = tmp_path_factory.mktemp("cli-bn")
    config = folder / "small.toml"
    config.write_text('recipe = "mnist-cnn"\nchannels = [4, 8]\nhidden = [16]\n')
    from gradwise.cli import main

    run_dir = folder / "cnn"
    assert main(["train", "--config", str(config), "--epochs", "1", "--limit-train", "64",
                 "--no-doctor", "--quiet", "--out", str(run_dir)]) == 0
    return run_dir


def test_batch_norm_runs_export_and_evaluate(batch_norm_run, capsys, tmp_path):
    """Regression: num_batches_tracked was saved as (1,), so every batch-norm run failed
    with "the checkpoint does not fit this model" in evaluate and export."""
    import safetensors.numpy

    weights = safetensors.numpy.load_file(str(batch_norm_run / "weights.safetensors"))
    counters = [key for key in weights if key.endswith("num_batches_tracked")]
    assert counters and all(weights[key].shape == () for key in counters)
    result = gradwise(capsys, "evaluate", batch_norm_run)
    assert result.code == 0, result.err
    out = tmp_path / "cnn.onnx"
    result = gradwise(capsys, "export", batch_norm_run, "--out", out)
    assert result.code == 0, result.err
    run = load_run(batch_norm_run)
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    import gradwise as gw

    with gw.no_grad():
        expected = run.model(gw.tensor(x)).numpy()
    np.testing.assert_allclose(session.run(["logits"], {"input": x})[0], expected,
                               rtol=1e-5, atol=1e-5)


def test_offline_run_says_which_dataset_ran(batch_norm_run):
    config = json.loads((batch_norm_run / "config.json").read_text())
    info = json.loads((batch_norm_run / "run.json").read_text())
    assert (config["dataset"], info["dataset"], info["dataset_requested"]) == (
        "mnist", "digits", "mnist")


def test_recipes_say_constant_lr_not_none_schedule(capsys):
    result = gradwise(capsys, "recipes")
    assert result.code == 0 and "none schedule" not in result.out
    assert "adam lr 0.02, constant lr" in result.out


def test_export_help_says_how_to_prepare_the_input(capsys):
    result = gradwise(capsys, "export", "--help")
    text = " ".join(result.out.split())
    assert "pixels scaled to 0-1 (value / 255), then normalised" in text
    assert "(x - mean) / std" in text


def test_run_folders_written_before_the_fix_still_load(batch_norm_run, capsys, tmp_path):
    """Weights files of earlier versions hold num_batches_tracked as (1,): evaluate, export and
    load_run take them as PyTorch does (a one-element 1-d array into a 0-d tensor)."""
    import shutil

    import safetensors.numpy

    old = tmp_path / "old-run"
    shutil.copytree(batch_norm_run, old)
    weights = dict(safetensors.numpy.load_file(str(old / "weights.safetensors")))
    for key in [k for k in weights if k.endswith("num_batches_tracked")]:
        weights[key] = weights[key].reshape(1)
    safetensors.numpy.save_file(weights, str(old / "weights.safetensors"))
    assert gradwise(capsys, "evaluate", old).code == 0
    assert gradwise(capsys, "export", old, "--out", tmp_path / "old.onnx").code == 0
    assert load_run(old).model.state_dict()["1.num_batches_tracked"].shape == ()
