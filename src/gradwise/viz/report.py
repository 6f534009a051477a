"""write_report: one self-contained HTML page about a training run, images embedded as PNG.

Sections, in order: summary (with the test accuracy and the best epoch), what ran (recipe, data
set and where it came from, model, every hyperparameter, seeds, versions, wall time: from
``run_info``), learning curves (with the learning rate and the best-epoch marker), the doctor's
findings (with their evidence and remedies), gradient flow (gradient norm per layer at each
sampled step), update ratios, activation histograms, confusion matrix and the most confidently
misclassified test images. A section whose inputs are missing (no doctor, no test data, tabular
data for the image grid) says so instead of vanishing.

The page is rendered from the Jinja2 template ``templates/report.html`` with autoescaping on.

Example:
    >>> write_report("runs/mnist", history=history, doctor=doctor, model=model,
    ...              test_data=(x_test, y_test), class_names=classes)   # doctest: +SKIP
    PosixPath('runs/mnist/report.html')
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from gradwise import __version__
from gradwise._atomic import atomic_write_bytes
from gradwise.autograd.grad_mode import no_grad
from gradwise.autograd.tensor import Tensor
from gradwise.viz import plots

__all__ = ["SECTIONS", "best_epoch", "confidently_wrong", "write_report"]

#: the id of every section, in page order
SECTIONS = (
    "summary",
    "run",
    "learning-curves",
    "findings",
    "gradient-flow",
    "update-ratios",
    "activations",
    "confusion-matrix",
    "misclassified",
)


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("gradwise.viz", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


@dataclass
class _Section:
    """What the template draws for one section; every field optional but ``id`` and title."""

    id: str
    title: str
    intro: str = ""
    loud: list[str] = field(default_factory=list)
    rows: list[tuple[str, str]] = field(default_factory=list)
    tables: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    pre: str = ""
    ok: str = ""
    findings: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, str]] = field(default_factory=list)
    note: str = ""


def _img(figure: Any, alt: str) -> dict[str, str]:
    return {"alt": alt, "data": base64.b64encode(plots.figure_png(figure)).decode("ascii")}


def _format(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_format(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_format(v) for v in value[:12]) + (" ..." if len(value) > 12 else "")
    return str(value)


def best_epoch(history: Any) -> int | None:
    """The epoch (1-based, as in the history) with the best validation result, or None.

    Best is the highest ``val_accuracy`` when the history has one (what ``gradwise train``
    keeps in ``checkpoints/best``), else the lowest ``val_loss``; the first such epoch on ties.
    """
    columns = plots.history_columns(history)
    epochs = columns.get("epoch") or list(range(1, len(columns.get("loss", [])) + 1))
    for key, pick in (("val_accuracy", np.nanargmax), ("val_loss", np.nanargmin)):
        values = plots.numbers(columns.get(key, []))
        if values.size and np.isfinite(values).any():
            values[~np.isfinite(values)] = np.nan
            return int(epochs[int(pick(values))])
    return None


def _summary(history: Any, columns: dict[str, list[Any]], test_accuracy: float | None
             ) -> _Section:
    rows = [("epochs", str(len(columns.get("loss", []))))]
    best = best_epoch(history)
    if best is not None:
        rows.append(("best epoch", str(best)))
    if test_accuracy is not None:
        rows.append(("test accuracy", f"{test_accuracy:.2%}"))
    for key, values in columns.items():
        if key in ("epoch", "epoch_time", "steps", "samples") or not values:
            continue
        last = values[-1]
        if isinstance(last, int | float):
            rows.append((f"final {key}", _format(float(last))))
    stop_reason = getattr(history, "stop_reason", None)
    rows.append(("stopped", stop_reason or "after all requested epochs"))
    return _Section("summary", "Summary", rows=rows)


_RUN_ROWS = (
    ("recipe", "recipe"),
    ("dataset", "data set"),
    ("source", "data source"),
    ("samples", "samples"),
    ("model", "model"),
    ("parameters", "parameters"),
    ("seed", "seed"),
    ("status", "status"),
    ("stop_reason", "stop reason"),
    ("epoch", "epochs completed"),
    ("step", "optimizer steps"),
    ("best_epoch", "best epoch (checkpoints/best)"),
    ("test_accuracy", "test accuracy"),
    ("test_loss", "test loss (no label smoothing)"),
    ("test_weights", "weights tested"),
    ("seconds", "wall time (s)"),
    ("created", "started"),
    ("resumed", "times resumed"),
)


def _run(run_info: Mapping[str, Any] | None) -> _Section:
    section = _Section("run", "What ran")
    if not run_info:
        section.note = ("No run metadata was given (gradwise train passes its run.json as "
                        "run_info=).")
        return section
    if run_info.get("fallback"):
        section.loud.append(str(run_info["fallback"]))
    for key, label in _RUN_ROWS:
        if run_info.get(key) is None:
            continue
        value = run_info[key]
        if key == "test_accuracy" and isinstance(value, float):
            text = f"{value:.2%}"
        elif key == "parameters" and isinstance(value, int):
            text = f"{value:,}"
        else:
            text = _format(value)
        section.rows.append((label, text))
    for key, title in (("hyperparameters", "Hyperparameters"), ("versions", "Versions")):
        values = run_info.get(key)
        if isinstance(values, Mapping):
            section.tables.append((title, [(str(k), _format(v)) for k, v in values.items()]))
    if run_info.get("model_summary"):
        section.pre = str(run_info["model_summary"])
    return section


def _findings(doctor: Any) -> _Section:
    section = _Section("findings", "The doctor's findings")
    if doctor is None:
        section.note = "No doctor watched this run (pass doctor=Doctor() to the Trainer)."
        return section
    findings = list(doctor.findings)
    sampled = len(doctor.stats.sampled_steps)
    overhead = getattr(doctor, "overhead", math.nan)
    measured = f"The doctor sampled {sampled} of {getattr(doctor, 'steps_seen', '?')} steps"
    if isinstance(overhead, float) and math.isfinite(overhead):
        measured += f" at {overhead:.1%} overhead"
    section.intro = measured + "."
    if not [f for f in findings if f.severity != "info"]:
        section.ok = "No problems found."
    for finding in findings:
        where = []
        if finding.step is not None:
            where.append(f"step {finding.step}")
        if finding.layer:
            where.append(f"layer {finding.layer}")
        section.findings.append({
            "severity": finding.severity,
            "name": finding.name,
            "where": " \u00b7 ".join(where),
            "summary": finding.summary,
            "evidence": [(str(k), _format(v)) for k, v in finding.evidence.items()],
            "remedies": list(finding.remedies),
        })
    return section


def _doctor_plot(section: _Section, doctor: Any, builder: Any, alt: str) -> _Section:
    if doctor is None:
        section.note = "No doctor watched this run, so there are no per-layer statistics."
        return section
    try:
        section.images.append(_img(builder(doctor.stats), alt))
    except ValueError as error:
        section.note = str(error)
    return section


def _predict(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    outputs = []
    try:
        with no_grad():
            for start in range(0, len(x), batch_size):
                outputs.append(np.asarray(model(Tensor(x[start:start + batch_size]))._data))
    finally:
        if hasattr(model, "train"):
            model.train(was_training)
    return np.concatenate(outputs)


def _as_images(x: np.ndarray, image_shape: Sequence[int] | None) -> np.ndarray | None:
    """The inputs as pictures when they are images: (N, H, W), (N, C, H, W), or flattened
    square grey images (N, H*W) with H >= 8; None for tabular data."""
    if image_shape is not None:
        return x.reshape((len(x), *image_shape))
    if x.ndim == 3 or (x.ndim == 4 and x.shape[1] in (1, 3)):
        return x
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side >= 8 and side * side == x.shape[1]:
            return x.reshape(len(x), side, side)
    return None


def _confidence(output: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """The probability the model gave its predicted class: softmax of (N, C) logits, or the
    sigmoid of one logit column (its distance from 0.5 for the chosen side)."""
    scores = output.astype(np.float64)
    if scores.ndim == 2 and scores.shape[1] > 1:
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        return probabilities[np.arange(len(predicted)), predicted]
    positive = 1.0 / (1.0 + np.exp(-scores.reshape(-1)))
    return np.where(predicted == 1, positive, 1.0 - positive)


def confidently_wrong(output: np.ndarray, target: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` misclassified samples the model was most sure of.

    Sure means the probability given to the predicted class (softmax of (N, C) logits, sigmoid
    of one logit column); ties keep test-set order.

    Shape:
        output: (N, C) or (N,)/(N, 1) logits. target: (N,) labels. returns (<= count,) int64.
    """
    from gradwise.train.metrics import predicted_classes

    output = np.asarray(output)
    predicted = predicted_classes(output)
    wrong = np.flatnonzero(predicted != np.asarray(target))
    confidence = _confidence(output, predicted)
    return wrong[np.argsort(-confidence[wrong], kind="stable")][:count]


def _predictions(model: Any, test_data: Any, class_names: Sequence[str] | None,
                 image_shape: Sequence[int] | None, max_images: int
                 ) -> tuple[_Section, _Section, float | None]:
    confusion = _Section("confusion-matrix", "Confusion matrix")
    wrong_section = _Section("misclassified", "Most confidently misclassified test images")
    if model is None or test_data is None:
        confusion.note = wrong_section.note = (
            "Pass model= and test_data=(x, y) to see predictions on test data.")
        return confusion, wrong_section, None
    from gradwise.train.metrics import confusion_matrix, predicted_classes

    x, y = test_data
    x = np.asarray(x._data if isinstance(x, Tensor) else x)
    y = np.asarray(y._data if isinstance(y, Tensor) else y)
    if len(x) != len(y):
        raise ValueError(f"write_report: test_data x has {len(x)} samples but y has {len(y)}")
    if y.ndim != 1 or y.dtype.kind not in "iu":
        confusion.note = wrong_section.note = (
            "The targets are not class labels, so there is no confusion matrix.")
        return confusion, wrong_section, None
    inputs = x.astype(np.float32) if x.dtype.kind != "f" else x
    output = _predict(model, inputs)
    predicted = predicted_classes(output)
    n_classes = len(class_names) if class_names is not None else None
    matrix = confusion_matrix(output, y, num_classes=n_classes)
    accuracy = float((predicted == y).mean())
    confusion.intro = f"Test accuracy {accuracy:.2%} on {len(y)} samples."
    confusion.images.append(_img(plots.confusion_matrix_figure(matrix, class_names),
                                 "confusion matrix"))
    images = _as_images(x, image_shape)
    if images is None:
        wrong_section.note = "Skipped: the inputs are tabular, not images."
        return confusion, wrong_section, accuracy
    wrong = np.flatnonzero(predicted != y)
    if wrong.size == 0:
        wrong_section.note = "Every test sample was classified correctly."
        return confusion, wrong_section, accuracy
    confidence = _confidence(output, predicted)
    shown = confidently_wrong(output, y, max_images)
    wrong_section.intro = (
        f"{wrong.size} of {len(y)} test samples misclassified; the {shown.size} the model was "
        "most sure of (true \u2192 predicted, with the probability it gave its prediction):")
    wrong_section.images.append(_img(
        plots.misclassified_figure(images[shown], y[shown], predicted[shown], class_names,
                                   confidence=confidence[shown]),
        "most confidently misclassified test images"))
    return confusion, wrong_section, accuracy


def write_report(
    run_dir: str | os.PathLike[str],
    *,
    history: Any,
    doctor: Any = None,
    model: Any = None,
    test_data: tuple[Any, Any] | None = None,
    class_names: Sequence[str] | None = None,
    title: str = "gradwise training report",
    image_shape: Sequence[int] | None = None,
    max_misclassified: int = 32,
    run_info: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``run_dir/report.html`` (atomically) and return its path.

    Args:
        run_dir: the run's folder; created if missing.
        history: the Trainer's History (or a list of epoch dicts, or a dict of lists).
        doctor: the run's Doctor, for findings, gradient flow, update ratios and activations.
        model: the trained model, to predict on ``test_data``.
        test_data: ``(x, y)`` test arrays in the form the model takes, y integer labels.
        class_names: names of the classes, indexed by label.
        title: the page title.
        image_shape: the shape of one image when ``x`` is flattened and not square, e.g.
            ``(3, 32, 32)``; square flattened images (784 = 28 x 28) are recognised unaided.
        max_misclassified: how many misclassified images the grid shows at most (the most
            confidently wrong first).
        run_info: what ran, as ``gradwise train`` writes it to ``run.json``: keys such as
            ``recipe``, ``dataset``, ``source``, ``fallback`` (shown loudly), ``model``,
            ``model_summary``, ``parameters``, ``hyperparameters`` (a mapping), ``seed``,
            ``versions`` (a mapping), ``seconds``, ``test_accuracy``, ``test_loss``,
            ``best_epoch``. Missing keys are left out.

    Raises:
        TypeError: ``history`` is not a History, a list of epoch dicts or a dict of lists.
        ValueError: ``test_data``'s x and y differ in length.
    """
    columns = plots.history_columns(history)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    curves = _Section("learning-curves", "Learning curves")
    if "loss" in columns and columns["loss"]:
        best = best_epoch(history)
        curves.images.append(_img(plots.learning_curves_figure(history, best_epoch=best),
                                  "learning curves"))
        if best is not None:
            curves.intro = (f"The dotted line marks epoch {best}, the best on the validation "
                            "data.")
    else:
        curves.note = "The history holds no finished epoch yet."
    confusion, misclassified, accuracy = _predictions(model, test_data, class_names,
                                                      image_shape, max_misclassified)
    gradient_flow = _Section(
        "gradient-flow", "Gradient flow",
        intro="The gradient norm of each layer's weights at each step the doctor sampled (one "
              "dot per sample). Series that sink far below the others (vanishing) or shoot up "
              "(exploding) are the ones to look at.")
    update_ratios = _Section(
        "update-ratios", "Update-to-weight ratios",
        intro="How much each sampled step changes each weight matrix, relative to its size; "
              "about 1e-3 (the dotted line) is typical of healthy training.")
    activations = _Section(
        "activations", "Activation histograms",
        intro="Each watched layer's outputs on the latest sampled batch.")
    sections = [
        _summary(history, columns, accuracy),
        _run(run_info),
        curves,
        _findings(doctor),
        _doctor_plot(gradient_flow, doctor, plots.gradient_flow_figure, "gradient flow"),
        _doctor_plot(update_ratios, doctor, plots.update_ratios_figure, "update ratios"),
        _doctor_plot(activations, doctor, plots.activation_histograms_figure,
                     "activation histograms"),
        confusion,
        misclassified,
    ]
    environment = _environment()
    page = environment.get_template("report.html").render(
        title=title,
        css=environment.loader.get_source(environment, "report.css")[0],  # type: ignore[union-attr]
        stamp=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        sections=sections,
    )
    path = run_dir / "report.html"
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
