"""`gradwise train`: recipes learn, write their run folder, merge settings, fall back offline."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from cli.cli_helpers import (
    GRADWISE,
    RUN_FILES,
    assert_one_line_error,
    gradwise,
    module_available,
    run_info,
)
from gradwise.data import write_idx
from gradwise.recipes import RECIPES

OPTIONAL_FILES = {  # written once the module that makes them is part of the build
    "learning_curves.png": "gradwise.viz.plots",
    "report.html": "gradwise.viz.report",
}


def expected_files() -> list[str]:
    present = [name for name, module in OPTIONAL_FILES.items() if module_available(module)]
    return [*RUN_FILES, *present]


@pytest.mark.parametrize(("recipe", "floor"), [("xor", 0.9), ("spiral", 0.9)])
def test_toy_recipe_learns_and_writes_its_run_folder(capsys, tmp_path, recipe, floor) -> None:
    run_dir = tmp_path / "run"
    result = gradwise(capsys, "train", recipe, "--out", run_dir)
    assert result.code == 0, result.err
    info = run_info(run_dir)
    assert info["status"] == "finished"
    assert info["test_accuracy"] >= floor
    epochs = RECIPES[recipe].epochs
    for name in expected_files():
        assert (run_dir / name).is_file(), name
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == epochs
    assert json.loads((run_dir / "config.json").read_text())["recipe"] == recipe
    # per-epoch lines with losses, accuracies, lr and time; then the result and the folder
    epoch_lines = [line for line in result.out.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == epochs
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert f" {key} " in epoch_lines[-1]
    assert f"Test accuracy: {info['test_accuracy']:.2%}" in result.out
    assert "gradwise doctor:" in result.out
    assert f"Run folder: {run_dir}" in result.out
    assert_run_says_what_ran(run_dir, recipe)


def assert_run_says_what_ran(run_dir: Path, recipe: str) -> None:
    """run.json and the report name the recipe, data, model, every setting, seeds, versions,
    wall time, the best epoch and the test result."""
    info = run_info(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    assert info["hyperparameters"] == config and "label_smoothing" in config
    assert info["recipe"] == recipe and info["seed"] == config["seed"]
    assert info["fallback"] is None and info["source"].startswith("generated: ")
    assert info["versions"]["numpy"] == np.__version__
    assert info["parameters"] == sum(a.size for a in load_file(run_dir / "weights.safetensors"
                                                                ).values())
    assert "Total params" in info["model_summary"]
    assert info["seconds"] > 0 and 1 <= info["best_epoch"] <= info["epoch"]
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    for label, value in [("recipe", recipe), ("data set", info["dataset"]),
                         ("label_smoothing", f"{config['label_smoothing']:.4g}"),
                         ("test accuracy", f"{info['test_accuracy']:.2%}"),
                         ("parameters", f"{info['parameters']:,}")]:
        assert f"<tr><th>{label}</th><td>{value}</td></tr>" in report, label


def test_default_run_folder_is_under_runs(capsys) -> None:
    result = gradwise(capsys, "train", "xor", "--epochs", "1", "--quiet", "--no-doctor")
    assert result.code == 0, result.err
    (run_dir,) = Path("runs").iterdir()
    assert run_dir.name.startswith("xor-")
    assert "epoch 1/1" not in result.out  # --quiet: no per-epoch lines


def test_mnist_without_files_falls_back_to_digits_and_says_so(capsys, tmp_path,
                                                              monkeypatch) -> None:
    # only the default search (no --data-dir) may fall back; GRADWISE_DATA is part of it
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("GRADWISE_DATA", str(empty))
    result = gradwise(capsys, "train", "mnist-mlp", "--limit-train", "500", "--epochs", "1",
                      "--out", tmp_path / "run", "--no-doctor")
    assert result.code == 0, result.err
    notes = [line for line in result.out.splitlines() if line.startswith("No MNIST files found")]
    assert len(notes) == 1
    assert f"GRADWISE_DATA={empty}" in notes[0]
    assert "download from 1 mirror" in notes[0]
    assert notes[0].endswith("training on scikit-learn's 8x8 digits instead. Provide MNIST "
                             "with --data-dir or GRADWISE_DATA.")
    info = run_info(tmp_path / "run")
    assert info["dataset"] == "digits"
    assert info["samples"]["train"] + info["samples"]["val"] == 500
    assert info["fallback"] == notes[0]
    report = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert '<p class="loud">No MNIST files found' in report


def test_a_named_data_dir_never_falls_back_to_digits(capsys, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = gradwise(capsys, "train", "mnist-mlp", "--limit-train", "500", "--epochs", "1",
                      "--data-dir", empty, "--out", tmp_path / "run", "--no-doctor")
    assert result.code == 3, result.err
    assert f"--data-dir {empty}" in result.err and "digits" not in result.err
    assert not (tmp_path / "run").exists()


def write_bar_images(directory: Path, n_train: int = 400, n_test: int = 100) -> None:
    """Fashion-MNIST-style IDX files of a learnable task: class k is a bright band at row 2k+4."""
    rng = np.random.default_rng(0)
    for prefix, count in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        images = rng.integers(0, 60, (count, 28, 28)).astype(np.uint8)
        for index, label in enumerate(labels):
            images[index, 2 * label + 4 : 2 * label + 6, 4:24] = 230
        write_idx(directory / f"{prefix}-images-idx3-ubyte", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels)


def test_fashion_recipe_trains_on_idx_files_in_data_dir(capsys, tmp_path) -> None:
    data_dir = tmp_path / "fashion"
    data_dir.mkdir()
    write_bar_images(data_dir)
    run_dir = tmp_path / "run"
    result = gradwise(capsys, "train", "fashion-mlp", "--data-dir", data_dir, "--epochs", "2",
                      "--out", run_dir, "--quiet", "--no-doctor")
    assert result.code == 0, result.err
    info = run_info(run_dir)
    assert info["dataset"] == "fashion-mnist"
    assert info["classes"][0] == "T-shirt/top"
    assert info["test_accuracy"] > 0.8


def test_fashion_without_files_is_a_one_line_error(capsys, tmp_path) -> None:
    result = gradwise(capsys, "train", "fashion-mlp", "--out", tmp_path / "run")
    assert_one_line_error(result, code=3, fragment="no fashion-mnist files found (tried:")


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_config_file_values_are_overridden_by_flags(capsys, tmp_path, suffix) -> None:
    settings = {"recipe": "spiral", "epochs": 2, "batch-size": 16, "lr": 0.005,
                "hidden": [8, 8], "dropout": 0.1}
    path = tmp_path / f"settings{suffix}"
    if suffix == ".toml":
        path.write_text("\n".join(f"{k} = {json.dumps(v)}" for k, v in settings.items()))
    else:
        path.write_text(json.dumps(settings))
    run_dir = tmp_path / "run"
    result = gradwise(capsys, "train", "--config", path, "--lr", "0.02", "--out", run_dir,
                      "--quiet", "--no-doctor", "--detect-anomaly")
    assert result.code == 0, result.err
    config = json.loads((run_dir / "config.json").read_text())
    assert config["recipe"] == "spiral"
    assert (config["epochs"], config["batch_size"], config["lr"]) == (2, 16, 0.02)
    assert (config["hidden"], config["dropout"]) == ([8, 8], 0.1)
    assert (config["doctor"], config["detect_anomaly"]) == (False, True)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"epochs": 2, "learning_rate": 0.1}', "unknown setting 'learning_rate'"),
        ('{"epochs": "many"}', "epochs must be an integer, got 'many'"),
        ('{"lr": -0.5}', "lr must be > 0, got -0.5"),
        ("[1, 2]", "expected a table of settings"),
        ("{not json", "invalid JSON"),
    ],
)
def test_bad_config_file_is_a_one_line_usage_error(capsys, tmp_path, text, fragment) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    result = gradwise(capsys, "train", "spiral", "--config", path)
    assert_one_line_error(result, fragment=fragment)
    assert "bad.json" in result.err


def test_installed_entry_point_trains(tmp_path) -> None:
    run_dir = tmp_path / "smoke"
    done = subprocess.run([str(GRADWISE), "train", "xor", "--epochs", "2", "--out", str(run_dir),
                           "--quiet"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Test accuracy:" in done.stdout
    assert (run_dir / "weights.safetensors").is_file()


def test_resuming_a_run_killed_before_its_first_checkpoint_starts_it_again(capsys, tmp_path):
    """SIGKILL in the first epoch leaves config.json and run.json but no checkpoint."""
    run_dir = tmp_path / "run"
    assert gradwise(capsys, "train", "xor", "--epochs", "2", "--out", run_dir).code == 0
    finished = load_file(run_dir / "weights.safetensors")
    for path in (run_dir / "checkpoints").rglob("*"):
        if path.is_file():
            path.unlink()
    info = run_info(run_dir)
    info["status"] = "running"
    (run_dir / "run.json").write_text(json.dumps(info))
    result = gradwise(capsys, "train", "--resume", run_dir)
    assert result.code == 0, result.err
    assert "has no checkpoint yet" in result.out
    assert run_info(run_dir)["status"] == "finished"
    # the same seed from the first step: the same weights as the run that was not killed
    again = load_file(run_dir / "weights.safetensors")
    assert again.keys() == finished.keys()
    assert all(np.array_equal(again[key], finished[key]) for key in finished)
