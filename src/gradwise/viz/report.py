"""write_report: one self-contained HTML page about a training run, images embedded as PNG.

Sections, in order: summary, learning curves, the doctor's findings (with their evidence and
remedies), gradient flow (gradient norm per layer over time), update ratios, activation
histograms, confusion matrix and misclassified test images. A section whose inputs are missing
(no doctor, no test data, tabular data for the image grid) says so instead of vanishing.

Example:
    >>> write_report("runs/mnist", history=history, doctor=doctor, model=model,
    ...              test_data=(x_test, y_test), class_names=classes)   # doctest: +SKIP
    PosixPath('runs/mnist/report.html')
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from gradwise._atomic import atomic_write_bytes
from gradwise.autograd.grad_mode import no_grad
from gradwise.autograd.tensor import Tensor
from gradwise.viz import plots

__all__ = ["SECTIONS", "write_report"]

#: the id of every section, in page order
SECTIONS = (
    "summary",
    "learning-curves",
    "findings",
    "gradient-flow",
    "update-ratios",
    "activations",
    "confusion-matrix",
    "misclassified",
)

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0;
       background: #f6f7f9; color: #1d232b; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { margin: 0 0 4px 0; font-size: 26px; }
.sub { color: #5b6570; margin-bottom: 20px; }
section { background: white; border: 1px solid #dde1e6; border-radius: 8px; padding: 16px 20px;
          margin: 0 0 18px 0; }
h2 { font-size: 18px; margin: 0 0 10px 0; }
img { max-width: 100%; height: auto; display: block; margin: 6px 0; }
table { border-collapse: collapse; font-size: 14px; }
td, th { border-bottom: 1px solid #e6e9ed; padding: 4px 12px 4px 0; text-align: left; }
.note { color: #5b6570; font-style: italic; }
.finding { border-left: 5px solid #999; padding: 6px 12px; margin: 10px 0; background: #fafbfc; }
.finding.error { border-color: #c62828; }
.finding.warning { border-color: #ef8f00; }
.finding.info { border-color: #1e88e5; }
.badge { display: inline-block; font-size: 12px; font-weight: 600; padding: 1px 8px;
         border-radius: 10px; color: white; background: #999; margin-right: 6px; }
.badge.error { background: #c62828; } .badge.warning { background: #ef8f00; }
.badge.info { background: #1e88e5; }
.ok { color: #2e7d32; font-weight: 600; }
code { background: #eef1f4; padding: 0 4px; border-radius: 3px; }
"""


def _img(figure: Any, alt: str) -> str:
    data = base64.b64encode(plots.figure_png(figure)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{section_id}">\n<h2>{html.escape(title)}</h2>\n{body}\n</section>'


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_format(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_format(v) for v in value[:12]) + (" ..." if len(value) > 12 else "")
    return str(value)


def _summary(history: Any, columns: dict[str, list[Any]]) -> str:
    rows = [("epochs", str(len(columns.get("loss", []))))]
    for key, values in columns.items():
        if key in ("epoch", "epoch_time", "steps", "samples") or not values:
            continue
        last = values[-1]
        if isinstance(last, int | float):
            rows.append((f"final {key}", _format(float(last))))
    stop_reason = getattr(history, "stop_reason", None)
    rows.append(("stopped", stop_reason or "after all requested epochs"))
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                   for k, v in rows)
    return f"<table>{body}</table>"


def _findings(doctor: Any) -> str:
    if doctor is None:
        return _note("No doctor watched this run (pass doctor=Doctor() to the Trainer).")
    findings = list(doctor.findings)
    sampled = len(doctor.stats.sampled_steps)
    overhead = getattr(doctor, "overhead", math.nan)
    measured = f"The doctor sampled {sampled} of {getattr(doctor, 'steps_seen', '?')} steps"
    if isinstance(overhead, float) and math.isfinite(overhead):
        measured += f" at {overhead:.1%} overhead"
    parts = [f"<p>{html.escape(measured)}.</p>"]
    if not [f for f in findings if f.severity != "info"]:
        parts.append('<p class="ok">No problems found.</p>')
    for finding in findings:
        where = []
        if finding.step is not None:
            where.append(f"step {finding.step}")
        if finding.layer:
            where.append(f"layer {finding.layer}")
        evidence = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_format(v))}</td></tr>"
            for k, v in finding.evidence.items()
        )
        remedies = "".join(f"<li>{html.escape(r)}</li>" for r in finding.remedies)
        parts.append(
            f'<div class="finding {finding.severity}" data-name="{html.escape(finding.name)}">'
            f'<p><span class="badge {finding.severity}">{finding.severity}</span>'
            f"<b>{html.escape(finding.name)}</b> {html.escape(' · '.join(where))}</p>"
            f"<p>{html.escape(finding.summary)}</p>"
            f"<details open><summary>Evidence</summary><table>{evidence}</table></details>"
            f"<p>Try:</p><ul>{remedies}</ul></div>"
        )
    return "\n".join(parts)


def _doctor_plot(doctor: Any, builder: Any, alt: str) -> str:
    if doctor is None:
        return _note("No doctor watched this run, so there are no per-layer statistics.")
    try:
        return _img(builder(doctor.stats), alt)
    except ValueError as error:
        return _note(str(error))


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


def _predictions(model: Any, test_data: Any, class_names: Sequence[str] | None,
                 image_shape: Sequence[int] | None, max_images: int) -> tuple[str, str]:
    if model is None or test_data is None:
        missing = _note("Pass model= and test_data=(x, y) to see predictions on test data.")
        return missing, missing
    from gradwise.train.metrics import confusion_matrix, predicted_classes

    x, y = test_data
    x = np.asarray(x._data if isinstance(x, Tensor) else x)
    y = np.asarray(y._data if isinstance(y, Tensor) else y)
    if len(x) != len(y):
        raise ValueError(f"write_report: test_data x has {len(x)} samples but y has {len(y)}")
    if y.ndim != 1 or y.dtype.kind not in "iu":
        note = _note("The targets are not class labels, so there is no confusion matrix.")
        return note, note
    inputs = x.astype(np.float32) if x.dtype.kind != "f" else x
    output = _predict(model, inputs)
    predicted = predicted_classes(output)
    n_classes = len(class_names) if class_names is not None else None
    matrix = confusion_matrix(output, y, num_classes=n_classes)
    accuracy = float((predicted == y).mean())
    confusion = (f"<p>Test accuracy {accuracy:.2%} on {len(y)} samples.</p>"
                 + _img(plots.confusion_matrix_figure(matrix, class_names), "confusion matrix"))
    images = _as_images(x, image_shape)
    if images is None:
        return confusion, _note("Skipped: the inputs are tabular, not images.")
    wrong = np.flatnonzero(predicted != y)
    if wrong.size == 0:
        return confusion, _note("Every test sample was classified correctly.")
    shown = wrong[:max_images]
    grid = _img(plots.misclassified_figure(images[shown], y[shown], predicted[shown],
                                           class_names), "misclassified test images")
    text = f"<p>{wrong.size} of {len(y)} test samples misclassified; the first {shown.size} " \
           "(true \u2192 predicted):</p>"
    return confusion, text + grid


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
        max_misclassified: how many misclassified images the grid shows at most.
    """
    columns = plots.history_columns(history)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if "loss" in columns and columns["loss"]:
        curves = _img(plots.learning_curves_figure(history), "learning curves")
    else:
        curves = _note("The history holds no finished epoch yet.")
    confusion, misclassified = _predictions(model, test_data, class_names, image_shape,
                                            max_misclassified)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        _section("summary", "Summary", _summary(history, columns)),
        _section("learning-curves", "Learning curves", curves),
        _section("findings", "The doctor's findings", _findings(doctor)),
        _section("gradient-flow", "Gradient flow",
                 "<p>The gradient norm of each layer's weights over training. Lines that sink "
                 "far below the others (vanishing) or shoot up (exploding) are the ones to "
                 "look at.</p>"
                 + _doctor_plot(doctor, plots.gradient_flow_figure, "gradient flow")),
        _section("update-ratios", "Update-to-weight ratios",
                 "<p>How much each step changes each weight matrix, relative to its size; "
                 "about 1e-3 (the dotted line) is typical of healthy training.</p>"
                 + _doctor_plot(doctor, plots.update_ratios_figure, "update ratios")),
        _section("activations", "Activation histograms",
                 "<p>Each watched layer's outputs on the latest sampled batch.</p>"
                 + _doctor_plot(doctor, plots.activation_histograms_figure,
                                "activation histograms")),
        _section("confusion-matrix", "Confusion matrix", confusion),
        _section("misclassified", "Misclassified test images", misclassified),
    ]
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{html.escape(title)}</h1>\n<div class=\"sub\">written {stamp} by gradwise</div>\n"
        + "\n".join(sections)
        + "\n</main>\n</body>\n</html>\n"
    )
    path = run_dir / "report.html"
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
