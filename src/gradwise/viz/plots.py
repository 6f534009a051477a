"""Matplotlib plots of a training run: learning curves, gradient flow, update ratios, activation
histograms, confusion matrix, misclassified images and the lr range test.

Each ``*_figure`` function builds a ``matplotlib.figure.Figure`` without pyplot (no global figure
state, no GUI backend); each ``plot_*`` function saves one as a PNG, atomically, and returns the
path. :func:`figure_png` gives the PNG bytes, which the HTML report embeds.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gradwise._atomic import atomic_write_bytes

__all__ = [
    "activation_histograms_figure",
    "confusion_matrix_figure",
    "figure_png",
    "gradient_flow_figure",
    "history_columns",
    "learning_curves_figure",
    "lr_find_figure",
    "misclassified_figure",
    "numbers",
    "plot_activation_histograms",
    "plot_confusion_matrix",
    "plot_gradient_flow",
    "plot_learning_curves",
    "plot_lr_find",
    "plot_misclassified",
    "plot_update_ratios",
    "save_figure",
    "update_ratios_figure",
]

PathLike = str | os.PathLike[str]
_DPI = 100


def figure_png(figure: Figure) -> bytes:
    """The figure rendered as PNG bytes."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def save_figure(figure: Figure, path: PathLike) -> Path:
    """Write ``figure`` to ``path`` as a PNG, atomically; return the path."""
    path = Path(path)
    atomic_write_bytes(path, figure_png(figure))
    return path


def history_columns(history: Any) -> dict[str, list[Any]]:
    """key -> per-epoch values from a History, a list of epoch dicts or a dict of lists."""
    if hasattr(history, "epochs") and isinstance(history.epochs, list):
        history = history.epochs
    if isinstance(history, dict):
        return {str(key): list(values) for key, values in history.items()}
    if isinstance(history, Sequence):
        keys: dict[str, None] = {}
        for record in history:
            if not isinstance(record, dict):
                raise TypeError(
                    f"history: expected a History, a list of epoch dicts or a dict of lists; "
                    f"found a {type(record).__name__} in the list"
                )
            keys.update(dict.fromkeys(record))
        return {key: [record.get(key) for record in history] for key in keys}
    raise TypeError(
        f"history: expected a History, a list of epoch dicts or a dict of lists, got "
        f"{type(history).__name__}"
    )


def numbers(values: list[Any]) -> np.ndarray:
    """Float64 array of ``values``; anything that is not a number (None, text) becomes NaN."""
    return np.array([v if isinstance(v, int | float) else np.nan for v in values], dtype=float)


_numbers = numbers


# ---- learning curves ---------------------------------------------------------------------------
def learning_curves_figure(history: Any, best_epoch: int | None = None) -> Figure:
    """Loss (and validation loss) per epoch; metrics such as accuracy in a second panel; the
    learning rate at each epoch's end in a third when the history has ``lr``.

    Args:
        best_epoch: draw a dotted vertical line at this epoch on every panel (the report passes
            the epoch with the best validation result).
    """
    columns = history_columns(history)
    if "loss" not in columns:
        raise ValueError(f"learning curves: the history has no 'loss' (keys: {sorted(columns)})")
    epochs = _numbers(columns.get("epoch", list(range(1, len(columns["loss"]) + 1))))
    metrics = [key for key in columns
               if key not in ("epoch", "loss", "val_loss", "lr", "epoch_time", "steps", "samples")
               and not key.startswith("val_") and np.isfinite(_numbers(columns[key])).any()]
    lrs = _numbers(columns.get("lr", []))
    has_lr = lrs.size == epochs.size and bool(np.isfinite(lrs).any())
    panels = 1 + bool(metrics) + has_lr
    figure = Figure(figsize=(5.0 * panels, 3.6))
    axes = list(figure.subplots(1, panels, squeeze=False)[0])
    for key, style in (("loss", "-o"), ("val_loss", "--s")):
        if key in columns:
            axes[0].plot(epochs, _numbers(columns[key]), style, markersize=3, label=key)
    axes[0].set(xlabel="epoch", ylabel="loss", title="Loss")
    losses = _numbers(columns["loss"])
    if np.isfinite(losses).any() and np.nanmin(losses) > 0 \
            and np.nanmax(losses) / np.nanmin(losses) > 30:
        axes[0].set_yscale("log")
    panel = 1
    if metrics:
        for key in metrics:
            axes[panel].plot(epochs, _numbers(columns[key]), "-o", markersize=3, label=key)
            if f"val_{key}" in columns:
                axes[panel].plot(epochs, _numbers(columns[f"val_{key}"]), "--s", markersize=3,
                                 label=f"val_{key}")
        axes[panel].set(xlabel="epoch", title="Metrics")
        panel += 1
    if has_lr:
        axes[panel].plot(epochs, lrs, "-o", markersize=3, color="#6a3d9a", label="lr")
        axes[panel].set(xlabel="epoch", ylabel="learning rate",
                        title="Learning rate (end of epoch)")
        positive = lrs[np.isfinite(lrs) & (lrs > 0)]
        if positive.size and positive.max() / positive.min() > 30:
            axes[panel].set_yscale("log")
    for axis in axes:
        if best_epoch is not None:
            axis.axvline(best_epoch, color="#2e7d32", linestyle=":", linewidth=1.2,
                         label=f"best epoch ({best_epoch})")
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def plot_learning_curves(history: Any, path: PathLike) -> Path:
    """Save the learning curves (loss, validation loss, metrics per epoch) as a PNG."""
    return save_figure(learning_curves_figure(history), path)


# ---- doctor statistics -------------------------------------------------------------------------
def _weight_series(stats: Any) -> list[tuple[str, Any]]:
    names = stats.weight_names() or list(stats.params)
    return [(name, stats.params[name]) for name in names if stats.params[name].steps]


def _per_layer_figure(stats: Any, attribute: str, title: str, ylabel: str,
                      reference: float | None = None) -> Figure:
    figure = Figure(figsize=(9, 3.8))
    axis = figure.subplots()
    series_list = _weight_series(stats)
    if not series_list:
        raise ValueError(f"{title}: the doctor sampled no steps")
    colors = _colors(len(series_list))
    for (name, series), color in zip(series_list, colors, strict=True):
        values = np.asarray(getattr(series, attribute), dtype=float)
        values[~np.isfinite(values) | (values <= 0)] = np.nan
        # dots, not lines: the doctor samples some steps, and a line would invent the values
        # between samples (and join across long gaps)
        axis.plot(series.steps, values, "o", color=color, label=name, markersize=2.5)
    if reference is not None:
        axis.axhline(reference, color="gray", linestyle=":", linewidth=1)
    axis.set_yscale("log")
    axis.set(xlabel="step", ylabel=ylabel, title=title)
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=7, ncol=max(1, len(series_list) // 8), loc="best")
    figure.tight_layout()
    return figure


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(1, n - 1) * 0.9) for i in range(n)]


def gradient_flow_figure(stats: Any) -> Figure:
    """Gradient norm of every weight over the sampled steps (log scale), first layer darkest."""
    return _per_layer_figure(stats, "grad_norm", "Gradient flow: ||grad|| per layer", "||grad||")


def plot_gradient_flow(stats: Any, path: PathLike) -> Path:
    """Save :func:`gradient_flow_figure` as a PNG (atomically); return the path."""
    return save_figure(gradient_flow_figure(stats), path)


def update_ratios_figure(stats: Any) -> Figure:
    """||update|| / ||weight|| per layer over the sampled steps; the dotted line is 1e-3."""
    return _per_layer_figure(stats, "update_ratio", "Update / weight ratio per layer",
                             "||dw|| / ||w||", reference=1e-3)


def plot_update_ratios(stats: Any, path: PathLike) -> Path:
    """Save :func:`update_ratios_figure` as a PNG (atomically); return the path."""
    return save_figure(update_ratios_figure(stats), path)


def activation_histograms_figure(stats: Any) -> Figure:
    """Histogram of each watched layer's outputs on the latest sampled batch."""
    layers = [(name, s) for name, s in stats.activations.items() if s.histogram is not None]
    if not layers:
        raise ValueError("activation histograms: no layer output was sampled")
    columns = min(4, len(layers))
    rows = math.ceil(len(layers) / columns)
    figure = Figure(figsize=(3.2 * columns, 2.4 * rows))
    axes = figure.subplots(rows, columns, squeeze=False).reshape(-1)
    for axis, (name, series) in zip(axes, layers, strict=False):
        values = series.histogram[np.isfinite(series.histogram)]
        if values.size:
            axis.hist(values, bins=40, color="#3b6ea8")
        axis.set_title(f"{name} ({series.module_type})", fontsize=9)
        axis.tick_params(labelsize=7)
    for axis in axes[len(layers):]:
        axis.set_visible(False)
    figure.tight_layout()
    return figure


def plot_activation_histograms(stats: Any, path: PathLike) -> Path:
    """Save :func:`activation_histograms_figure` as a PNG (atomically); return the path."""
    return save_figure(activation_histograms_figure(stats), path)


# ---- predictions -------------------------------------------------------------------------------
def confusion_matrix_figure(matrix: np.ndarray, class_names: Sequence[str] | None = None
                            ) -> Figure:
    """Counts M[true, predicted], annotated, with the class names on the axes."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"confusion matrix: expected a square matrix, got shape {matrix.shape}")
    n = matrix.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    if len(names) != n:
        raise ValueError(f"confusion matrix: {len(names)} class names for {n} classes")
    size = min(8.0, 2.5 + 0.4 * n)
    figure = Figure(figsize=(size, size * 0.85))
    axis = figure.subplots()
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis, fraction=0.046)
    axis.set_xticks(range(n), names, rotation=45 if max(map(len, names)) > 3 else 0,
                    ha="right" if max(map(len, names)) > 3 else "center", fontsize=8)
    axis.set_yticks(range(n), names, fontsize=8)
    axis.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    if n <= 20:
        threshold = matrix.max() / 2 if matrix.size else 0
        for i in range(n):
            for j in range(n):
                axis.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                          color="white" if matrix[i, j] > threshold else "black")
    figure.tight_layout()
    return figure


def plot_confusion_matrix(matrix: np.ndarray, path: PathLike,
                          class_names: Sequence[str] | None = None) -> Path:
    """Save :func:`confusion_matrix_figure` as a PNG (atomically); return the path."""
    return save_figure(confusion_matrix_figure(matrix, class_names), path)


def misclassified_figure(images: np.ndarray, true: np.ndarray, predicted: np.ndarray,
                         class_names: Sequence[str] | None = None, columns: int = 8,
                         confidence: np.ndarray | None = None) -> Figure:
    """A grid of images, each titled 'true -> predicted' (and the prediction's probability).

    Shape:
        images: (N, H, W) grey, or (N, C, H, W) with C = 1 or 3. true, predicted,
        confidence: (N,).
    """
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
    if images.ndim not in (3, 4) or len(images) == 0:
        raise ValueError(
            f"misclassified images: expected (N, H, W) or (N, C, H, W) images, got shape "
            f"{images.shape}"
        )
    names = list(class_names) if class_names is not None else None
    columns = min(columns, len(images))
    rows = math.ceil(len(images) / columns)
    figure = Figure(figsize=(1.3 * columns, 1.5 * rows))
    axes = figure.subplots(rows, columns, squeeze=False).reshape(-1)
    for k, axis in enumerate(axes):
        axis.axis("off")
        if k >= len(images):
            continue
        image = images[k].astype(float)
        span = image.max() - image.min()
        axis.imshow((image - image.min()) / span if span else image, cmap="gray")
        t, p = int(true[k]), int(predicted[k])
        label_t = names[t] if names and t < len(names) else str(t)
        label_p = names[p] if names and p < len(names) else str(p)
        title = f"{label_t} \u2192 {label_p}"
        if confidence is not None:
            title += f"\n{float(confidence[k]):.0%}"
        axis.set_title(title, fontsize=8, color="#b00020")
    figure.tight_layout()
    return figure


def plot_misclassified(images: np.ndarray, true: np.ndarray, predicted: np.ndarray, path: PathLike,
                       class_names: Sequence[str] | None = None) -> Path:
    """Save :func:`misclassified_figure` as a PNG (atomically); return the path."""
    return save_figure(misclassified_figure(images, true, predicted, class_names), path)


# ---- lr range test -----------------------------------------------------------------------------
_SUGGESTION_STYLES = {"valley": ("o", "#b00020"), "steep": ("s", "#e08e0b"),
                      "minimum": ("^", "#2a9d48")}


def lr_find_figure(result: Any) -> Figure:
    """Loss against learning rate (log x) from :func:`gradwise.doctor.lr_find`, suggestions marked.

    The smoothed loss is drawn over the faint raw batch losses. The y axis is clipped to the
    useful range: from the curve's minimum up to the highest smoothed loss *before* that minimum
    (the starting level; for a curve that never fell, its rise up to 4x the minimum, where the
    sweep stops), with 10% of that span as margin on each side, so neither the divergence
    that ended the sweep nor one wild batch squashes the valley into a flat line (fastai drops
    the last points for the same reason). Each suggestion (``result.suggestions``) is a marker on
    the smoothed curve, labelled with its lr; the one ``suggested_lr`` is (``result.method``) is
    also a dashed vertical line.

    Raises:
        ValueError: the range test took no steps, or none of its losses is finite.
    """
    if not result.lrs:
        raise ValueError("lr_find plot: the range test took no steps")
    lrs = np.asarray(result.lrs, dtype=np.float64)
    losses = np.asarray(result.losses, dtype=np.float64)
    raw = np.asarray(getattr(result, "raw_losses", None) or [], dtype=np.float64)
    finite = np.isfinite(losses)
    if not finite.any():
        raise ValueError("lr_find plot: no finite loss to draw")
    figure = Figure(figsize=(6.4, 4.0))
    axis = figure.subplots()
    if raw.size == lrs.size:
        axis.plot(lrs, raw, "-", color="#3b6ea8", alpha=0.25, linewidth=0.8,
                  label="batch loss")
    axis.plot(lrs, losses, "-", color="#3b6ea8", label="smoothed loss")
    method = getattr(result, "method", None)
    suggestions = dict(getattr(result, "suggestions", None) or {})
    if not suggestions and result.suggested_lr is not None:
        suggestions = {method or "suggested": result.suggested_lr}
    curve_lrs, curve_losses = np.log(lrs[finite]), losses[finite]
    for name, lr in suggestions.items():
        if lr is None:
            continue
        marker, colour = _SUGGESTION_STYLES.get(name, ("o", "#b00020"))
        default = name == method or len(suggestions) == 1
        label = f"{name}: {lr:.2g}" + (" (suggested)" if default else "")
        loss_at = float(np.interp(math.log(lr), curve_lrs, curve_losses))
        axis.plot([lr], [loss_at], marker, color=colour, markersize=8, zorder=3, label=label)
        if default:
            axis.axvline(lr, color=colour, linestyle="--", linewidth=1)
    axis.set_xscale("log")
    lowest = int(np.nanargmin(np.where(finite, losses, np.nan)))
    top = float(np.nanmax(np.where(finite[: lowest + 1], losses[: lowest + 1], np.nan)))
    bottom = float(losses[lowest])
    if top <= bottom:  # the loss never fell: show its rise, up to 4x (where the sweep stops)
        highest = float(np.max(losses[finite]))
        top = min(highest, 4.0 * bottom) if bottom > 0 else highest
    margin = 0.1 * (top - bottom) if top > bottom else 0.05 * max(abs(bottom), 1e-12)
    axis.set_ylim(bottom - margin, top + margin)
    if lrs[-1] > lrs[0]:
        axis.set_xlim(lrs[0], lrs[-1])
    axis.set(xlabel="learning rate", ylabel="loss", title="Learning-rate range test")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def plot_lr_find(result: Any, path: PathLike) -> Path:
    """Save :func:`lr_find_figure` as a PNG (atomically); return the path."""
    return save_figure(lr_find_figure(result), path)
