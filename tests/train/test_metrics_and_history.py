"""Metrics agree with scikit-learn, stream exactly over batches and reject bad input; History
round-trips through JSON and files."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradwise as gw
from gradwise.train import History, metrics
from gradwise.train.metrics import get_metric

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.fixture(scope="module")
def scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, 200)
    logits = rng.standard_normal((200, 4)).astype(np.float32)
    logits[np.arange(200), target] += 0.8  # better than chance, far from perfect
    return logits, target


def test_multiclass_metrics_match_scikit_learn(scores) -> None:
    logits, target = scores
    pred = logits.argmax(axis=1)
    assert metrics.accuracy(logits, target) == sklearn_metrics.accuracy_score(target, pred)
    np.testing.assert_array_equal(
        metrics.confusion_matrix(logits, target), sklearn_metrics.confusion_matrix(target, pred)
    )
    for ours, theirs in (
        (metrics.precision, sklearn_metrics.precision_score),
        (metrics.recall, sklearn_metrics.recall_score),
        (metrics.f1_score, sklearn_metrics.f1_score),
    ):
        assert ours(logits, target) == pytest.approx(theirs(target, pred, average="macro"))
    assert metrics.top_k_accuracy(logits, target, k=2) == pytest.approx(
        sklearn_metrics.top_k_accuracy_score(target, logits, k=2)
    )


def test_binary_outputs_are_thresholded_as_logits_or_probabilities() -> None:
    output = np.array([[-0.5], [0.2], [0.7], [3.0]], dtype=np.float32)
    target = np.array([0, 1, 1, 0])
    assert metrics.accuracy(output, target) == 0.75  # logits: > 0
    assert metrics.accuracy(output, target, logits=False) == 0.5  # probabilities: > 0.5
    assert metrics.accuracy(gw.tensor(output.ravel()), target.reshape(-1, 1)) == 0.75
    np.testing.assert_array_equal(metrics.confusion_matrix(output, target), [[1, 1], [0, 2]])


@pytest.mark.parametrize("name", ["accuracy", "top5_accuracy", "precision", "recall", "f1"])
def test_streaming_metrics_equal_the_metric_over_all_samples(scores, name) -> None:
    logits = np.concatenate([scores[0], np.zeros((200, 2), np.float32)], axis=1)  # 6 classes
    target = scores[1]
    streaming = get_metric(name)
    for start in range(0, 200, 32):
        streaming.update(logits[start : start + 32], target[start : start + 32])
    restored = get_metric(name)
    restored.load_state_dict(streaming.state_dict())
    whole = {
        "accuracy": metrics.accuracy,
        "top5_accuracy": lambda o, t: metrics.top_k_accuracy(o, t, k=5),
        "precision": metrics.precision,
        "recall": metrics.recall,
        "f1": metrics.f1_score,
    }[name](logits, target)
    assert streaming.compute() == pytest.approx(whole)
    assert restored.compute() == streaming.compute()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: metrics.accuracy(np.zeros((4, 3)), np.zeros(5, int)), "4 samples but target"),
        (lambda: metrics.accuracy(np.zeros((4, 3, 2)), np.zeros(4, int)), r"got shape \(4, 3, 2\)"),
        (lambda: metrics.accuracy(np.zeros((2, 3)), np.array([0.5, 1.0])), "regression"),
        (lambda: metrics.top_k_accuracy(np.zeros((4, 3)), np.zeros(4, int), k=4), "k=4 is larger"),
        (lambda: metrics.confusion_matrix(np.zeros((2, 3)), np.array([0, 3])), "outside 0..2"),
        (lambda: get_metric("auc"), "unknown metric 'auc'; known metrics: acc"),
    ],
)
def test_bad_metric_input_is_named(call, message) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def sample_history() -> History:
    return History(
        [
            {"epoch": 1, "loss": 0.7, "accuracy": 0.5, "lr": 0.01, "epoch_time": 0.1},
            {"epoch": 2, "loss": math.nan, "accuracy": 0.5, "lr": 0.01, "epoch_time": math.inf},
        ],
        stop_reason="training stopped: loss is nan",
    )


def test_history_round_trips_through_json_and_files(tmp_path) -> None:
    history = sample_history()
    again = History.from_json(history.to_json())
    assert again == history and again.stop_reason == history.stop_reason
    assert math.isnan(again["loss"][1]) and again["epoch_time"][1] == math.inf
    history.save(tmp_path / "history.json")
    assert History.load(tmp_path / "history.json") == history
    assert history.keys() == ["epoch", "loss", "accuracy", "lr", "epoch_time"]
    assert "accuracy" in history and "val_loss" not in history


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "invalid JSON"),
        ('{"format": "other"}', "not a gradwise history"),
        ('{"format": "gradwise.history", "version": 9, "epochs": []}', "unsupported history"),
    ],
)
def test_loading_a_bad_history_file_names_the_file(tmp_path, text, message) -> None:
    path = tmp_path / "history.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"History.load: {path}: .*{message}"):
        History.load(path)


def test_history_lookup_of_an_unknown_key_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="no epoch recorded 'val_loss'"):
        sample_history()["val_loss"]
