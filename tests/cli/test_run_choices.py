"""Choices a run offers from the command line: label smoothing, every optimizer, extending a
finished run, and best or last weights for evaluate/predict."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli.cli_helpers import gradwise, run_info
from gradwise.recipes import OPTIMIZERS
from gradwise.runs import RunError, load_run


def _train(capsys, run_dir, *extra):
    result = gradwise(capsys, "train", "xor", "--limit-train", "200", "--out", run_dir,
                      "--no-doctor", *extra)
    assert result.code == 0, result.err
    return result


def test_label_smoothing_flag_is_recorded_and_shown(capsys, tmp_path) -> None:
    result = _train(capsys, tmp_path / "run", "--epochs", "1", "--label-smoothing", "0.2")
    assert "label smoothing 0.2" in result.out.splitlines()[2]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["label_smoothing"] == 0.2
    assert run_info(tmp_path / "run")["hyperparameters"]["label_smoothing"] == 0.2


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_of_the_library_trains(capsys, tmp_path, optimizer) -> None:
    _train(capsys, tmp_path / "run", "--epochs", "1", "--optimizer", optimizer, "--quiet")
    assert run_info(tmp_path / "run")["hyperparameters"]["optimizer"] == optimizer


def test_resume_with_more_epochs_extends_a_finished_run(capsys, tmp_path) -> None:
    run = tmp_path / "run"
    _train(capsys, run, "--epochs", "2", "--schedule", "cosine", "--quiet")
    before = run_info(run)
    result = gradwise(capsys, "train", "--resume", run, "--epochs", "4")
    assert result.code == 0, result.err
    assert result.out.startswith("Extending xor from 2 to 4 epochs")
    info = run_info(run)
    assert info["status"] == "finished" and info["epoch"] == 4
    assert info["extended"] == [{"from": 2, "to": 4}]
    assert info["seconds"] > before["seconds"]
    assert json.loads((run / "config.json").read_text())["epochs"] == 4
    lrs = [json.loads(line)["lr"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(lrs) == 4
    # the cosine schedule ended near 0 after epoch 2; the new epochs restart it from the lr
    assert lrs[2] > 100 * lrs[1] and lrs[3] < lrs[2]
    epoch_lines = [line.split()[1] for line in result.out.splitlines()
                   if line.startswith("epoch ")]
    assert epoch_lines == ["3/4", "4/4"]


def test_resume_of_an_unfinished_run_cannot_change_its_epochs(capsys, tmp_path) -> None:
    run = tmp_path / "run"
    _train(capsys, run, "--epochs", "2", "--quiet")
    info = run_info(run)
    info["status"], info["epoch"] = "interrupted", 1
    (run / "run.json").write_text(json.dumps(info))
    result = gradwise(capsys, "train", "--resume", run, "--epochs", "5")
    assert result.code == 2 and "not finished (1 of 2 epochs)" in result.err


def test_evaluate_uses_the_best_weights_unless_told_last(capsys, tmp_path) -> None:
    run = tmp_path / "run"
    _train(capsys, run, "--epochs", "3", "--quiet")
    best_epoch = run_info(run)["best_epoch"]
    best, last = load_run(run), load_run(run, "last")
    assert best.weights == run / "checkpoints" / "best"
    assert best.weights_note.startswith(f"best: epoch {best_epoch} of 3")
    assert last.weights == run / "weights.safetensors"
    for weights, loaded in (("best", best), ("last", last)):
        result = gradwise(capsys, "evaluate", run, *(["--weights", "last"] * (weights == "last")))
        assert result.code == 0, result.err
        assert f"Weights: {loaded.weights_note}" in result.out
    # the best checkpoint holds what the model had at its epoch, not the final weights
    # a finished run without its final weights is an error, never a silent fallback
    (run / "weights.safetensors").unlink()
    with pytest.raises(RunError, match="weights.safetensors is missing.*last-checkpoint"):
        load_run(run, "last")
    assert load_run(run, "last-checkpoint").weights == run / "checkpoints" / "last"
    with pytest.raises(ValueError, match="weights must be one of"):
        load_run(run, "first")


def test_best_weights_differ_from_last_when_a_later_epoch_was_worse(capsys, tmp_path) -> None:
    run = tmp_path / "run"
    _train(capsys, run, "--epochs", "3", "--quiet")
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    accuracies = [record["val_accuracy"] for record in history]
    best, last = load_run(run), load_run(run, "last")
    same = all(np.array_equal(a, b) for a, b in zip(best.model.state_dict().values(),
                                                    last.model.state_dict().values(),
                                                    strict=True))
    assert same == (int(np.argmax(accuracies)) == len(accuracies) - 1)


def test_a_runs_weights_load_with_the_public_loader(capsys, tmp_path) -> None:
    from gradwise.recipes import build_model
    from gradwise.train import CheckpointError, load_model_weights

    run = tmp_path / "run"
    _train(capsys, run, "--epochs", "1", "--quiet")
    info = run_info(run)
    model = build_model(load_run(run).config, tuple(info["input_shape"]), len(info["classes"]))
    data = load_model_weights(run / "weights.safetensors", model)
    final = load_run(run, "last").model.state_dict()
    for key, array in model.state_dict().items():
        np.testing.assert_array_equal(np.asarray(array), np.asarray(final[key]))
    assert data.path == run / "weights.safetensors"
    load_model_weights(run / "checkpoints" / "best", model)  # checkpoints load as before
    wrong = build_model(load_run(run).config.updated({"hidden": [3]}), (2,), 2)
    with pytest.raises(CheckpointError, match="weights.safetensors: the checkpoint does not fit"):
        load_model_weights(run / "weights.safetensors", wrong)
    (tmp_path / "bad.safetensors").write_bytes(b"{}")
    with pytest.raises(CheckpointError, match="bad.safetensors: not a safetensors file"):
        load_model_weights(tmp_path / "bad.safetensors", model)
