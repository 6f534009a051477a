"""Classification metrics: plain functions on arrays, and streaming versions for the trainer.

The functions take model outputs and targets as NumPy arrays or Tensors:

- ``output`` (N, C) with C > 1: class scores (logits or probabilities); the prediction is the
  argmax over axis 1.
- ``output`` (N,) or (N, 1): one binary score per sample; the prediction is ``output > 0`` for
  logits (the default, matching ``BCEWithLogitsLoss``) or ``output > 0.5`` with
  ``logits=False`` (outputs that went through a sigmoid).

The streaming classes (:class:`Accuracy`, :class:`TopKAccuracy`, :class:`Precision`, ...)
accumulate counts batch by batch, so an epoch's value is exact, not an average of batch
averages. ``get_metric("accuracy")`` looks them up by name for ``Trainer(metrics=...)``.

Example:
    >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
    0.5
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "METRICS",
    "Accuracy",
    "F1Score",
    "FunctionMetric",
    "Metric",
    "Precision",
    "Recall",
    "TopKAccuracy",
    "accuracy",
    "confusion_matrix",
    "f1_score",
    "get_metric",
    "precision",
    "predicted_classes",
    "recall",
    "top_k_accuracy",
]


# ---- array helpers ----------------------------------------------------------------------------
def _array(value: Any) -> np.ndarray:
    """Accept Tensors (anything with an ndarray ``._data``) and array-likes alike."""
    data = getattr(value, "_data", value)
    return data if isinstance(data, np.ndarray) else np.asarray(data)


def _labels(name: str, target: Any, n_samples: int) -> np.ndarray:
    """Targets as a flat integer label vector; one-hot (N, C) targets are argmax-ed."""
    labels = _array(target)
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = labels.argmax(axis=1)
    labels = labels.reshape(-1)
    if labels.shape[0] != n_samples:
        raise ValueError(
            f"{name}: output has {n_samples} samples but target has {labels.shape[0]} "
            f"(target shape {_array(target).shape})"
        )
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise ValueError(
                f"{name}: targets must be class labels, got non-integer floats (is this a "
                "regression problem? then pass metrics=() to the Trainer)"
            )
    elif labels.dtype.kind not in "iub":
        raise TypeError(f"{name}: targets must be integer class labels, got dtype {labels.dtype}")
    return labels.astype(np.int64, copy=False)


def predicted_classes(output: Any, logits: bool = True, name: str = "predict") -> np.ndarray:
    """Class predictions from outputs: argmax for (N, C) scores, a threshold for one column.

    Shape:
        output: (N, C) -> (N,) argmax; (N,) or (N, 1) -> (N,) in {0, 1}.
    """
    scores = _array(output)
    if scores.ndim == 2 and scores.shape[1] > 1:
        return scores.argmax(axis=1)
    if scores.ndim == 1 or (scores.ndim == 2 and scores.shape[1] == 1):
        threshold = 0.0 if logits else 0.5
        return (scores.reshape(-1) > threshold).astype(np.int64)
    raise ValueError(
        f"{name}: output must be (N, C) class scores or (N,)/(N, 1) binary scores, "
        f"got shape {scores.shape}"
    )


def _check_k(k: int, n_classes: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"top_k_accuracy: k must be a positive int, got {k!r}")
    if k > n_classes:
        raise ValueError(f"top_k_accuracy: k={k} is larger than the number of classes {n_classes}")


def _top_k_hits(output: Any, target: Any, k: int) -> tuple[int, int]:
    scores = _array(output)
    if scores.ndim != 2:
        raise ValueError(f"top_k_accuracy: output must be (N, C), got shape {scores.shape}")
    _check_k(k, scores.shape[1])
    labels = _labels("top_k_accuracy", target, scores.shape[0])
    top = np.argpartition(scores, -k, axis=1)[:, -k:]  # (N, k), unordered
    return int((top == labels[:, None]).any(axis=1).sum()), scores.shape[0]


def _confusion(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"confusion_matrix: target labels span [{labels.min()}, {labels.max()}], "
            f"outside 0..{num_classes - 1}"
        )
    flat = labels * num_classes + pred
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _n_classes(output: np.ndarray, labels: np.ndarray, pred: np.ndarray) -> int:
    if output.ndim == 2 and output.shape[1] > 1:
        return output.shape[1]
    return int(max(2, labels.max(initial=0) + 1, pred.max(initial=0) + 1))


def _precision_recall_f1(matrix: np.ndarray) -> tuple[float, float, float]:
    """Macro averages over the classes seen in targets or predictions (others are ignored)."""
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    present = (predicted + actual) > 0
    if not present.any():
        return 0.0, 0.0, 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        precision_per_class = np.where(predicted > 0, true_positive / predicted, 0.0)
        recall_per_class = np.where(actual > 0, true_positive / actual, 0.0)
        denominator = precision_per_class + recall_per_class
        f1_per_class = np.where(
            denominator > 0, 2 * precision_per_class * recall_per_class / denominator, 0.0
        )
    return (
        float(precision_per_class[present].mean()),
        float(recall_per_class[present].mean()),
        float(f1_per_class[present].mean()),
    )


# ---- functions --------------------------------------------------------------------------------
def accuracy(output: Any, target: Any, logits: bool = True) -> float:
    """Fraction of samples whose predicted class equals the target.

    Args:
        output: (N, C) class scores, or (N,)/(N, 1) binary scores.
        target: (N,) integer labels (or (N, 1) 0/1 labels, or (N, C) one-hot).
        logits: for binary outputs, whether they are logits (threshold 0) or probabilities
            (threshold 0.5).
    """
    pred = predicted_classes(output, logits, "accuracy")
    labels = _labels("accuracy", target, pred.shape[0])
    if pred.shape[0] == 0:
        raise ValueError("accuracy: got zero samples")
    return float(np.mean(pred == labels))


def top_k_accuracy(output: Any, target: Any, k: int = 5) -> float:
    """Fraction of samples whose target is among the ``k`` highest scores.

    Shape:
        output: (N, C); target: (N,).
    """
    hits, total = _top_k_hits(output, target, k)
    if total == 0:
        raise ValueError("top_k_accuracy: got zero samples")
    return hits / total


def confusion_matrix(
    output: Any, target: Any, num_classes: int | None = None, logits: bool = True
) -> np.ndarray:
    """Counts ``M[true, predicted]``.

    Args:
        output: (N, C) scores or (N,)/(N, 1) binary scores.
        target: (N,) integer labels.
        num_classes: matrix size; inferred from the outputs and labels when None.

    Shape:
        returns (num_classes, num_classes) int64.
    """
    scores = _array(output)
    pred = predicted_classes(scores, logits, "confusion_matrix")
    labels = _labels("confusion_matrix", target, pred.shape[0])
    if num_classes is None:
        num_classes = _n_classes(scores, labels, pred)
    return _confusion(pred, labels, int(num_classes))


def precision(output: Any, target: Any, logits: bool = True) -> float:
    """Macro-averaged precision: per-class TP / (TP + FP), averaged over classes present."""
    return _precision_recall_f1(confusion_matrix(output, target, logits=logits))[0]


def recall(output: Any, target: Any, logits: bool = True) -> float:
    """Macro-averaged recall: per-class TP / (TP + FN), averaged over classes present."""
    return _precision_recall_f1(confusion_matrix(output, target, logits=logits))[1]


def f1_score(output: Any, target: Any, logits: bool = True) -> float:
    """Macro-averaged F1: the per-class harmonic mean of precision and recall, averaged."""
    return _precision_recall_f1(confusion_matrix(output, target, logits=logits))[2]


# ---- streaming metrics ------------------------------------------------------------------------
class Metric:
    """A metric accumulated over batches: ``reset()``, ``update(output, target)``, ``compute()``.

    ``state_dict()`` returns plain JSON data so a checkpoint taken in the middle of an epoch
    resumes with the epoch's counts intact.
    """

    name: str = "metric"

    def reset(self) -> None:
        """Forget everything accumulated; called at the start of each epoch."""
        raise NotImplementedError

    def update(self, output: np.ndarray, target: np.ndarray) -> None:
        """Accumulate one batch.

        Args:
            output: the model's output, shape (N, C) (logits or probabilities) or (N,).
            target: class indices, shape (N,).
        """
        raise NotImplementedError

    def compute(self) -> float:
        """The metric over everything seen since ``reset`` (a float; NaN before any update)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The accumulated counts as plain JSON data, for a mid-epoch checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore counts saved by ``state_dict`` (an exact resume of a half-finished epoch)."""
        del state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Accuracy(Metric):
    """Streaming :func:`accuracy`: the fraction of correct predictions over all batches since reset.
    """

    def __init__(self, logits: bool = True, name: str = "accuracy"):
        self.logits = logits
        self.name = name
        self.reset()

    def reset(self) -> None:
        self.correct = 0
        self.total = 0

    def update(self, output: np.ndarray, target: np.ndarray) -> None:
        pred = predicted_classes(output, self.logits, self.name)
        labels = _labels(self.name, target, pred.shape[0])
        self.correct += int(np.count_nonzero(pred == labels))
        self.total += pred.shape[0]

    def compute(self) -> float:
        return self.correct / self.total if self.total else float("nan")

    def state_dict(self) -> dict[str, Any]:
        return {"correct": self.correct, "total": self.total}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.correct, self.total = int(state["correct"]), int(state["total"])


class TopKAccuracy(Metric):
    """Streaming :func:`top_k_accuracy`: fraction of targets among the top ``k`` scores, all
    batches.
    """

    def __init__(self, k: int = 5, name: str | None = None):
        self.k = k
        self.name = name or f"top{k}_accuracy"
        self.reset()

    def reset(self) -> None:
        self.hits = 0
        self.total = 0

    def update(self, output: np.ndarray, target: np.ndarray) -> None:
        hits, total = _top_k_hits(output, target, self.k)
        self.hits += hits
        self.total += total

    def compute(self) -> float:
        return self.hits / self.total if self.total else float("nan")

    def state_dict(self) -> dict[str, Any]:
        return {"hits": self.hits, "total": self.total}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.hits, self.total = int(state["hits"]), int(state["total"])


class _ConfusionMetric(Metric):
    """Accumulates a confusion matrix that grows as new classes appear."""

    _index = 0  # 0 precision, 1 recall, 2 f1

    def __init__(self, logits: bool = True, name: str | None = None):
        self.logits = logits
        self.name = name or type(self).name
        self.reset()

    def reset(self) -> None:
        self.matrix = np.zeros((0, 0), dtype=np.int64)

    def update(self, output: np.ndarray, target: np.ndarray) -> None:
        scores = _array(output)
        pred = predicted_classes(scores, self.logits, self.name)
        labels = _labels(self.name, target, pred.shape[0])
        size = max(_n_classes(scores, labels, pred), self.matrix.shape[0])
        batch = _confusion(pred, labels, size)
        batch[: self.matrix.shape[0], : self.matrix.shape[1]] += self.matrix
        self.matrix = batch

    def compute(self) -> float:
        if self.matrix.sum() == 0:
            return float("nan")
        return _precision_recall_f1(self.matrix)[self._index]

    def state_dict(self) -> dict[str, Any]:
        return {"matrix": self.matrix.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.matrix = np.array(state["matrix"], dtype=np.int64).reshape(
            len(state["matrix"]), len(state["matrix"])
        )


class Precision(_ConfusionMetric):
    """Streaming macro :func:`precision`."""

    name = "precision"
    _index = 0


class Recall(_ConfusionMetric):
    """Streaming macro :func:`recall`."""

    name = "recall"
    _index = 1


class F1Score(_ConfusionMetric):
    """Streaming macro :func:`f1_score`."""

    name = "f1"
    _index = 2


class FunctionMetric(Metric):
    """Wraps ``fn(output, target) -> float`` as a sample-weighted mean over batches."""

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], float], name: str | None = None):
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "metric"))
        self.reset()

    def reset(self) -> None:
        self.weighted_sum = 0.0
        self.total = 0

    def update(self, output: np.ndarray, target: np.ndarray) -> None:
        n_samples = len(output)
        self.weighted_sum += float(self.fn(output, target)) * n_samples
        self.total += n_samples

    def compute(self) -> float:
        return self.weighted_sum / self.total if self.total else float("nan")

    def state_dict(self) -> dict[str, Any]:
        return {"weighted_sum": self.weighted_sum, "total": self.total}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weighted_sum, self.total = float(state["weighted_sum"]), int(state["total"])


METRICS: dict[str, Callable[..., Metric]] = {
    "accuracy": Accuracy,
    "acc": Accuracy,
    "top5_accuracy": lambda **kw: TopKAccuracy(5, **kw),
    "top_k_accuracy": lambda **kw: TopKAccuracy(5, **kw),
    "precision": Precision,
    "recall": Recall,
    "f1": F1Score,
    "f1_score": F1Score,
}
"""Metric names accepted by ``Trainer(metrics=...)`` and :func:`get_metric`."""


def get_metric(spec: str | Metric | Callable[..., float], logits: bool = True) -> Metric:
    """A fresh streaming metric from a name, a :class:`Metric`, or a ``fn(output, target)``.

    Args:
        spec: ``"accuracy"``, ``"top5_accuracy"``, ``"precision"``, ``"recall"``, ``"f1"``;
            a Metric instance (returned as is); or a callable returning a float per batch.
        logits: passed to the class metrics: how to threshold single-column binary outputs.
    """
    if isinstance(spec, Metric):
        return spec
    if isinstance(spec, str):
        try:
            factory = METRICS[spec]
        except KeyError:
            raise ValueError(
                f"unknown metric {spec!r}; known metrics: {', '.join(sorted(METRICS))}"
            ) from None
        if factory in (Accuracy, Precision, Recall, F1Score):
            return factory(logits=logits)
        return factory()
    if callable(spec):
        return FunctionMetric(spec)
    raise TypeError(f"a metric must be a name, a Metric or a callable, got {type(spec).__name__}")
