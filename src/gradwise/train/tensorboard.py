"""TensorBoardLogger: a callback that writes TensorBoard event files while the Trainer runs.

What it writes (tags as TensorBoard shows them):

- ``train/loss`` every ``log_every_n_steps`` optimizer steps, ``train/lr`` (the first parameter
  group's learning rate) at the same steps; x axis: the optimizer step.
- ``epoch/<key>`` for every number in the epoch's History record (``loss``, ``val_loss``,
  ``val_accuracy``, ``lr``, ...); x axis: the epoch number (1-based).
- ``weights/<param>`` histograms and ``weight_norm/<param>`` (L2 norm) at the end of every
  ``histogram_freq``-th epoch; ``grads/<param>`` histograms and ``grad_norm/<param>`` from the
  first step of those epochs, read right after backward (before clipping).
- ``update_ratio/<param>``: the doctor's update-to-weight ratio ||w_new - w_old|| / ||w_old||
  on each step it sampled, when the trainer has a doctor (``Trainer(..., doctor=True)``).
- ``doctor/findings`` (text): the doctor's findings at every epoch end and at the end.
- the model graph (TensorBoard's Graphs tab), exported with :func:`gradwise.onnx.export` at the
  end of the first epoch, traced on ``example_input`` or else on two rows of the first training
  batch; only when the ``onnx`` package is installed (without it, one warning names the extra
  to install). A model that cannot be exported gets a warning naming the op, and training goes
  on without the graph. Node names are the ONNX value names, each once (the graph's outputs are
  the nodes that compute them).

Event files are written by ``tensorboardX`` (``pip install 'gradwise[tensorboard]'``); the
TensorBoard app (``tensorboard --logdir DIR``) reads them.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from gradwise.train.events import Callback

__all__ = ["TensorBoardLogger"]


def _require_tensorboardx() -> Any:
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError(
            "TensorBoardLogger needs the 'tensorboardX' package: "
            "pip install 'gradwise[tensorboard]'"
        ) from None
    return SummaryWriter


class TensorBoardLogger(Callback):
    """Write scalars, histograms, the doctor's ratios and findings, and the graph for TensorBoard.

    Args:
        log_dir: folder for the event files (created if missing); point ``tensorboard --logdir``
            at it or at its parent.
        log_every_n_steps: write the step loss and learning rate every this many steps (>= 1).
        histogram_freq: write weight and gradient histograms and norms every this many epochs;
            0 switches them off.
        example_input: a batch (array or Tensor) to trace the model graph with; None: the
            first two rows of the first training batch.
        graph: write the model graph (needs the ``onnx`` package; without it the graph is
            left out with one RuntimeWarning naming ``pip install 'gradwise[onnx]'``).

    Raises:
        ImportError: ``tensorboardX`` is missing (names the pip extra), at construction.
        ValueError: a frequency is not a non-negative integer (``log_every_n_steps`` >= 1).

    Example:
        >>> logger = TensorBoardLogger("runs/tb/spiral")
        >>> Trainer(model, loss_fn, opt, callbacks=[logger], doctor=True).fit(data, epochs=5)
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        log_every_n_steps: int = 10,
        histogram_freq: int = 1,
        example_input: Any = None,
        graph: bool = True,
    ) -> None:
        self._writer_class = _require_tensorboardx()
        for name, value, low in (("log_every_n_steps", log_every_n_steps, 1),
                                 ("histogram_freq", histogram_freq, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(
                    f"TensorBoardLogger: {name} must be an integer >= {low}, got {value!r}"
                )
        self.log_dir = Path(log_dir)
        self.log_every_n_steps = log_every_n_steps
        self.histogram_freq = histogram_freq
        self.example_input = example_input
        self.graph = graph
        self.writer: Any = None
        self._graph_input: Any = None
        self._graph_pending = False
        self._capture: Any = None
        self._epoch = 0
        self._grads_pending = False
        self._ratios_written: dict[str, int] = {}
        self._onnx_warned = False

    # ---- events -------------------------------------------------------------------------------
    def on_train_begin(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.writer is None:
            self.writer = self._writer_class(logdir=str(self.log_dir))
        model = getattr(self.trainer, "model", None)
        self._graph_pending = self.graph and model is not None
        if self._graph_pending and not _onnx_available():
            self._graph_pending = False
            if not self._onnx_warned:
                self._onnx_warned = True
                warnings.warn(
                    "TensorBoardLogger: no model graph: it is exported through the 'onnx' "
                    "package, which is not installed: pip install 'gradwise[onnx]'",
                    RuntimeWarning, stacklevel=2,
                )
        if self._graph_pending and self.example_input is None and model is not None:
            self._capture = model.register_forward_pre_hook(self._capture_batch)

    def _capture_batch(self, module: Any, inputs: tuple[Any, ...]) -> None:
        """Keep two rows of the first training batch to trace the graph with, then let go."""
        first = inputs[0] if inputs else None
        if first is not None and hasattr(first, "shape") and len(first.shape) > 0:
            array = first.detach().numpy() if hasattr(first, "detach") else np.asarray(first)
            self._graph_input = np.array(array[:2])
        self._capture.remove()
        self._capture = None

    def on_epoch_begin(self, epoch: int) -> None:
        self._epoch = epoch
        self._grads_pending = self._histograms_due(epoch)

    def on_after_backward(self, step: int) -> None:
        if not self._grads_pending:
            return
        self._grads_pending = False
        for name, param in self._named_parameters():
            if param._grad is None:
                continue
            grad = np.asarray(param._grad, dtype=np.float64)
            self._histogram(f"grads/{name}", grad, step)
            self.writer.add_scalar(f"grad_norm/{name}", float(np.linalg.norm(grad)), step)

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        if self.writer is None or step % self.log_every_n_steps:
            return
        loss = logs.get("loss")
        if loss is not None and math.isfinite(float(loss)):
            self.writer.add_scalar("train/loss", float(loss), step)
        lr = self._learning_rate()
        if lr is not None:
            self.writer.add_scalar("train/lr", lr, step)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.writer is None:
            return
        number = epoch + 1
        for key, value in logs.items():
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                continue
            if math.isfinite(float(value)) and key != "epoch":
                self.writer.add_scalar(f"epoch/{key}", float(value), number)
        if self._histograms_due(epoch):
            for name, param in self._named_parameters():
                weights = np.asarray(param._data, dtype=np.float64)
                self._histogram(f"weights/{name}", weights, number)
                self.writer.add_scalar(f"weight_norm/{name}", float(np.linalg.norm(weights)),
                                       number)
        self._write_doctor(number)
        if self._graph_pending:
            # at an epoch's end no step is in flight (the doctor's layer hooks are off), and
            # export runs the model in evaluation mode, so tracing changes nothing in training
            self._graph_pending = False
            self._write_graph()
        self.writer.flush()

    def on_train_end(self) -> None:
        if self._capture is not None:
            self._capture.remove()
            self._capture = None
        if self.writer is None:
            return
        self._write_doctor(self._epoch + 1)
        self.writer.close()
        self.writer = None

    # ---- helpers ------------------------------------------------------------------------------
    def _histograms_due(self, epoch: int) -> bool:
        return self.histogram_freq > 0 and epoch % self.histogram_freq == 0

    def _named_parameters(self) -> list[tuple[str, Any]]:
        model = getattr(self.trainer, "model", None)
        return [] if model is None else list(model.named_parameters())

    def _learning_rate(self) -> float | None:
        optimizer = getattr(self.trainer, "optimizer", None)
        groups = getattr(optimizer, "param_groups", None)
        return float(groups[0]["lr"]) if groups else None

    def _histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        finite = values[np.isfinite(values)]
        if finite.size:
            self.writer.add_histogram(tag, finite, step)

    def _write_doctor(self, epoch: int) -> None:
        doctor = getattr(self.trainer, "doctor", None)
        if doctor is None:
            return
        stats = getattr(doctor, "stats", None)
        for name, series in getattr(stats, "params", {}).items():
            start = self._ratios_written.get(name, 0)
            for step, ratio in zip(series.steps[start:], series.update_ratio[start:],
                                   strict=False):
                if math.isfinite(ratio):
                    self.writer.add_scalar(f"update_ratio/{name}", ratio, step)
            # the last sampled step's ratio is filled in after its optimizer step
            done = len(series.update_ratio)
            if done and not math.isfinite(series.update_ratio[-1]):
                done -= 1
            self._ratios_written[name] = done
        if hasattr(doctor, "format_findings"):
            text = doctor.format_findings()
            # TensorBoard renders text as Markdown: keep the terminal layout in a code block
            self.writer.add_text("doctor/findings", "```\n" + text + "\n```", epoch)

    def _write_graph(self) -> None:
        from gradwise.onnx import ExportError, export

        model = getattr(self.trainer, "model", None)
        example = self.example_input if self.example_input is not None else self._graph_input
        if model is None or example is None:
            return
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.onnx")
            try:
                export(model, example, path)
            except (ExportError, ValueError) as error:
                warnings.warn(f"TensorBoardLogger: no model graph: {error}", RuntimeWarning,
                              stacklevel=2)
                return
            _drop_graph_outputs(path)
            with contextlib.redirect_stdout(io.StringIO()):  # tensorboardX prints every node
                self.writer.add_onnx_graph(path)


def _drop_graph_outputs(path: str) -> None:
    """Remove the graph's output declarations from the ONNX file at ``path`` (a temporary copy).

    tensorboardX draws every graph input and output as a node named after it, and every op as a
    node named after its first output; the exporter's last op (an Identity) writes the output,
    so each output became two nodes of one name. Without the declarations the op node stands
    for the output; nothing but TensorBoard reads this copy.
    """
    import onnx

    model = onnx.load(path)
    del model.graph.output[:]
    onnx.save(model, path)


def _onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True
