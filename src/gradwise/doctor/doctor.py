"""Doctor: watches every layer while the model trains and says, in plain words, what is wrong.

Which steps it examines is a function of the step number and the configuration only (every step
of the warm-up, then every ``interval``-th, see :class:`DoctorConfig`), so a seeded run gets the
same findings, with the same evidence, in every process. Every step it records the loss; on an
examined step it records per-layer statistics (:mod:`gradwise.doctor.stats`). The diagnoses
(:mod:`gradwise.doctor.diagnoses`) run at the end of each epoch and of training. Its own time is
measured with ``time.perf_counter`` and reported, never used to decide anything.

Two ways to use it:

    >>> doctor = gw.doctor.Doctor()                                             # doctest: +SKIP
    >>> Trainer(model, loss_fn, optimizer, doctor=doctor).fit(train, epochs=5)  # doctest: +SKIP
    >>> print(doctor.report())                                                  # doctest: +SKIP

or in any hand-written loop:

    >>> doctor = gw.doctor.Doctor(model, optimizer)                             # doctest: +SKIP
    >>> for x, y in batches:                                                    # doctest: +SKIP
    ...     loss = F.cross_entropy(model(x), y)
    ...     optimizer.zero_grad(); loss.backward(); optimizer.step()
    ...     doctor.step(loss)
    >>> print(doctor.report())                                                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import textwrap
import time
from typing import Any

from gradwise.doctor.config import DoctorConfig, auto_interval
from gradwise.doctor.diagnoses import Finding, diagnose
from gradwise.doctor.stats import StatsCollector, TrainingStats
from gradwise.train.events import Callback

__all__ = ["Doctor"]

_FORMAT = "gradwise.doctor"
_VERSION = 2


class Doctor(Callback):
    """The training doctor: per-layer statistics on examined steps, diagnoses in plain words.

    Args:
        model: the Module to watch; optional with a Trainer (it passes its own).
        optimizer: the optimizer training it (its learning rate goes into the evidence and the
            advice); optional with a Trainer.
        config: sampling, thresholds and advice style; ``DoctorConfig()`` when None.

    Attributes:
        findings: the latest diagnoses (a list of :class:`Finding`), most serious first.
        stats: the measured time series (:class:`TrainingStats`), for plots and the report.
        interval: the sampling interval in steps (after the warm-up), fixed when watching starts.

    Raises:
        TypeError: ``config`` is not a DoctorConfig, or ``model`` is not a Module.
    """

    def __init__(self, model: Any = None, optimizer: Any = None, *,
                 config: DoctorConfig | None = None) -> None:
        if isinstance(model, DoctorConfig):
            raise TypeError("Doctor: pass the config by name, Doctor(config=DoctorConfig(...))")
        if config is not None and not isinstance(config, DoctorConfig):
            raise TypeError(f"Doctor: config must be a DoctorConfig, got {type(config).__name__}")
        self.config = config or DoctorConfig()
        self.findings: list[Finding] = []
        # what the statistics looked like when ``findings`` were last computed (None: never)
        self._diagnosed_key: tuple[int, int, int] | None = None
        self.interval = self.config.interval or 1
        self._collector: StatsCollector | None = None
        self._model: Any = None
        self._optimizer: Any = optimizer
        self._loss_handle: Any = None
        self._pending_state: dict[str, Any] | None = None
        self._sampling = False
        self._next_step = 0  # the step doctor.step() will record next (hand-written loops)
        self._loop_started = 0.0
        self._batch_started = 0.0
        self._step_doctor_seconds = 0.0
        self.doctor_seconds = 0.0
        self.step_seconds = 0.0
        self.steps_seen = 0
        if model is not None:
            self.watch(model, optimizer)
            self._prepare(0)
            self._loop_started = time.perf_counter()

    # ---- setup --------------------------------------------------------------------------------
    def watch(self, model: Any, optimizer: Any = None) -> None:
        """Start watching ``model`` (the Trainer does this in on_train_begin).

        Raises:
            TypeError: ``model`` is not a Module.
        """
        if optimizer is not None:
            self._optimizer = optimizer
        if model is self._model:
            return
        self._model = model
        self._collector = StatsCollector(model, self.config)
        self.interval = self.config.interval or auto_interval(self._collector.n_parameters)
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            self.load_state_dict(state)

    @property
    def stats(self) -> TrainingStats:
        """Everything recorded so far (an empty TrainingStats before training starts)."""
        if self._collector is None:
            return TrainingStats()
        return self._collector.stats

    @property
    def overhead(self) -> float:
        """The doctor's time as a fraction of the training steps' own time (nan before a step)."""
        base = self.step_seconds - self.doctor_seconds
        return self.doctor_seconds / base if base > 0 else math.nan

    def is_sampled(self, step: int) -> bool:
        """Whether step ``step`` is examined (a function of the step and the config only)."""
        return self.config.sampled(step, self.interval)

    # ---- callback events (Trainer) ------------------------------------------------------------
    def on_train_begin(self) -> None:
        trainer = self.trainer
        if trainer is None or getattr(trainer, "model", None) is None:
            raise RuntimeError("Doctor.on_train_begin: no trainer with a model is attached")
        start = int(getattr(trainer, "step", 0))
        if start == 0 and self.stats.loss_steps:
            self._collector = None  # a new run from step 0: forget the previous one
            self._model = None
        self.watch(trainer.model, getattr(trainer, "optimizer", None))
        loss_fn = getattr(trainer, "loss_fn", None)
        if (self._loss_handle is None and loss_fn is not None
                and hasattr(loss_fn, "register_forward_pre_hook")):
            # losses that are not one fused op (MSELoss) report their targets through this hook
            self._loss_handle = loss_fn.register_forward_pre_hook(self._loss_inputs)

    def _loss_inputs(self, module: Any, inputs: Any) -> None:
        if self._sampling and self._collector is not None and len(inputs) >= 2:
            self._collector.record_loss_inputs(type(module).__name__, inputs[0], inputs[1])

    def on_batch_begin(self, step: int, logs: dict[str, Any] | None = None) -> None:
        started = time.perf_counter()
        self._batch_started = started
        self._step_doctor_seconds = 0.0
        collector = self._require_collector("on_batch_begin")
        if self.is_sampled(step):
            self._sampling = True
            collector.hook_seconds = 0.0
            collector.begin_sample(step)
        self._step_doctor_seconds += time.perf_counter() - started

    def on_after_backward(self, step: int) -> None:
        if not self._sampling:
            return
        started = time.perf_counter()
        collector = self._require_collector("on_after_backward")
        collector.end_forward()
        collector.record_gradients()
        collector.snapshot_weights(step)
        self._step_doctor_seconds += time.perf_counter() - started

    def on_after_step(self, step: int) -> None:
        if not self._sampling:
            return
        started = time.perf_counter()
        self._require_collector("on_after_step").record_updates()
        self._step_doctor_seconds += time.perf_counter() - started

    def on_batch_end(self, step: int, logs: dict[str, Any] | None = None) -> None:
        started = time.perf_counter()
        collector = self._require_collector("on_batch_end")
        loss = (logs or {}).get("loss")
        if loss is not None:
            collector.record_loss(step, float(loss))
        sampled = self._sampling
        if sampled:
            collector.end_forward()
            self._sampling = False
        ended = time.perf_counter()
        doctor_time = self._step_doctor_seconds + (ended - started)
        if sampled:
            doctor_time += collector.hook_seconds
        self._account(ended - self._batch_started, doctor_time)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        collector = self._require_collector("on_epoch_end")
        collector.record_epoch(epoch + 1, logs or {})
        self.diagnose()

    def on_train_end(self) -> None:
        if self._loss_handle is not None:
            self._loss_handle.remove()
            self._loss_handle = None
        if self._collector is None:
            return
        self._collector.end_forward()
        self._sampling = False
        self.diagnose()

    # ---- any training loop --------------------------------------------------------------------
    def step(self, loss: Any) -> None:
        """Record one training step of a hand-written loop; call it after ``optimizer.step()``.

        The doctor reads the gradients (still in ``p.grad``: zero them at the start of the next
        step, as usual), measures how far the weights moved since the previous call, and, when the
        next step is to be examined, copies the weights and observes the next forward pass.

        Args:
            loss: this step's loss (a 1-element Tensor or a number).

        Raises:
            RuntimeError: the doctor was made without a model (``Doctor(model, optimizer)``).
            TypeError: ``loss`` is neither a number nor a 1-element Tensor.
        """
        started = time.perf_counter()
        collector = self._require_collector("step")
        value = _loss_value(loss)
        step = self._next_step
        sampled = self._sampling
        if sampled:
            collector.end_forward()
            collector.record_gradients()
            collector.record_updates()
            self._sampling = False
        collector.record_loss(step, value)
        self._next_step = step + 1
        self._prepare(step + 1)
        ended = time.perf_counter()
        doctor_time = ended - started + (collector.hook_seconds if sampled else 0.0)
        self._account(ended - self._loop_started, doctor_time)
        self._loop_started = ended

    def _prepare(self, step: int) -> None:
        """Before ``step`` of a hand-written loop: copy the weights and observe its forward pass
        when it is to be examined."""
        if not self.is_sampled(step):
            return
        collector = self._require_collector("step")
        collector.hook_seconds = 0.0
        collector.begin_sample(step)
        collector.snapshot_weights(step)
        self._sampling = True

    def epoch_end(self, val_loss: float | None = None, train_loss: float | None = None) -> None:
        """Mark the end of an epoch in a hand-written loop (enables the overfitting check).

        Args:
            val_loss: the epoch's validation loss.
            train_loss: the epoch's mean training loss; the mean of the epoch's recorded batch
                losses when None.
        """
        collector = self._require_collector("epoch_end")
        stats = collector.stats
        if train_loss is None:
            since = stats.epochs[-1]["step"] if stats.epochs else 0
            recent = [v for s, v in zip(stats.loss_steps, stats.losses, strict=True) if s >= since]
            train_loss = sum(recent) / len(recent) if recent else math.nan
        logs: dict[str, Any] = {"loss": train_loss}
        if val_loss is not None:
            logs["val_loss"] = _loss_value(val_loss)
        lr = self._current_lr()
        if lr is not None:
            logs["lr"] = lr
        collector.record_epoch(len(stats.epochs) + 1, logs)

    def close(self) -> None:
        """Stop observing the model (a hand-written loop that has ended); the statistics and
        findings stay. The next :meth:`step` would start observing again."""
        if self._collector is not None:
            self._collector.end_forward()
        self._sampling = False

    def report(self) -> str:
        """Run the diagnoses on everything recorded so far and return the findings as text."""
        self.diagnose()
        return self.format_findings()

    # ---- bookkeeping --------------------------------------------------------------------------
    def _account(self, wall: float, doctor_time: float) -> None:
        self.steps_seen += 1
        self.step_seconds += wall
        self.doctor_seconds += doctor_time

    def _require_collector(self, event: str) -> StatsCollector:
        if self._collector is None:
            raise RuntimeError(
                f"Doctor.{event}: not watching a model; use Doctor(model, optimizer) in your own "
                "loop, or pass the doctor to Trainer(doctor=...)"
            )
        return self._collector

    def _current_lr(self) -> float | None:
        groups = getattr(self._optimizer, "param_groups", None)
        if groups:
            lr = groups[0].get("lr")
            if isinstance(lr, int | float):
                return float(lr)
        return None

    # ---- results ------------------------------------------------------------------------------
    def diagnose(self) -> list[Finding]:
        """Run every diagnosis on the statistics so far; updates and returns ``findings``."""
        self.findings = diagnose(self.stats, self.config, lr=self._current_lr(),
                                 optimizer=type(self._optimizer).__name__
                                 if self._optimizer is not None else None)
        self._diagnosed_key = self._stats_key()
        return self.findings

    def _stats_key(self) -> tuple[int, int, int]:
        stats = self.stats
        return (stats.steps, len(stats.sampled_steps), len(stats.epochs))

    @property
    def problems(self) -> list[Finding]:
        """The findings of severity warning or error."""
        return [f for f in self.findings if f.severity != "info"]

    def format_findings(self, width: int = 100, overhead: bool = True) -> str:
        """The findings as text for a terminal: summary, evidence and remedies of each.

        Runs :meth:`diagnose` first when steps were recorded and the statistics changed since
        the findings were last computed (or they never were), so it never reports stale or
        unevaluated findings; with nothing recorded, the findings are shown as they are.

        Args:
            width: wrap lines at this many characters.
            overhead: include the measured overhead in the first line (leave it out where the
                text must be the same in every process: the time differs, the findings do not).
        """
        if self.stats.steps and self._diagnosed_key != self._stats_key():
            # findings older than the statistics (or never computed: format_findings() before
            # report() said "no problems found" for a planted dead layer; issue 14)
            self.diagnose()
        sampled = len(self.stats.sampled_steps)
        measured = f"examined {sampled} of {self.stats.steps} steps"
        if overhead and math.isfinite(self.overhead):
            measured += f", overhead {self.overhead:.1%}"
        problems = self.problems
        if not problems:
            head = f"gradwise doctor: no problems found ({measured})"
            infos = [f for f in self.findings if f.severity == "info"]
            return "\n".join([head] + [f"  note: {f.summary}" for f in infos])
        noun = "problem" if len(problems) == 1 else "problems"
        lines = [f"gradwise doctor: {len(problems)} {noun} found ({measured})"]
        for finding in self.findings:
            where = []
            if finding.step is not None:
                where.append(f"step {finding.step}")
            if finding.layer:
                where.append(f"layer {finding.layer}")
            lines.append("")
            lines.append(f"[{finding.severity}] {finding.name}"
                         + (f" ({', '.join(where)})" if where else ""))
            lines.extend(textwrap.wrap(finding.summary, width, initial_indent="  ",
                                       subsequent_indent="  "))
            evidence = ", ".join(f"{k}={_short(v)}" for k, v in finding.evidence.items()
                                 if not isinstance(v, dict | list))
            if evidence:
                lines.extend(textwrap.wrap("evidence: " + evidence, width, initial_indent="  ",
                                           subsequent_indent="    "))
            if finding.remedies:
                lines.append("  try:")
                for remedy in finding.remedies:
                    lines.extend(textwrap.wrap(remedy, width, initial_indent="    - ",
                                               subsequent_indent="      "))
        return "\n".join(lines)

    def _repr_html_(self) -> str:  # Jupyter's display; the renderer lives in findings_html.py
        from gradwise.doctor.findings_html import findings_html

        return findings_html(self.findings, self.format_findings().splitlines()[0])

    def to_dict(self) -> dict[str, Any]:
        """The doctor's report as plain JSON data: format, version, config, findings and the
        statistics.
        """
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "config": self.config.to_dict(),
            "findings": [finding.to_dict() for finding in self.findings],
            "overhead": self.overhead if math.isfinite(self.overhead) else None,
            "interval": self.interval,
            "steps_seen": self.steps_seen,
            "stats": self.stats.to_dict(),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """Findings, settings and statistics as JSON (non-finite numbers become null)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume watching: statistics (all windows), sampling position,
        findings and time accounts, as JSON-able data (no arrays, no pickles)."""
        state = self.to_dict()
        state.update(
            next_step=self._next_step,
            doctor_seconds=self.doctor_seconds,
            step_seconds=self.step_seconds,
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved; the doctor must be watching the same model.

        Raises:
            ValueError: the state is not a doctor's, comes from another version, was taken with
                other sampling settings (the verdicts would differ) or is damaged.
        """
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError("Doctor.load_state_dict: not a gradwise doctor state")
        if state.get("version") != _VERSION:
            raise ValueError(
                f"Doctor.load_state_dict: state version {state.get('version')!r}, "
                f"this doctor reads {_VERSION}"
            )
        saved = DoctorConfig.from_dict(state["config"])
        for name in ("warmup_steps", "interval"):
            if getattr(saved, name) != getattr(self.config, name):
                raise ValueError(
                    f"Doctor.load_state_dict: saved with {name}={getattr(saved, name)!r}, this "
                    f"doctor has {name}={getattr(self.config, name)!r}"
                )
        if self._collector is None:
            # restored before training starts (a Trainer resuming): applied by watch()
            self._pending_state = state
            return
        stats = TrainingStats.from_dict(state["stats"])
        try:
            findings = [Finding(**f) for f in state["findings"]]
            interval, next_step = int(state["interval"]), int(state["next_step"])
            steps_seen = int(state["steps_seen"])
            doctor_seconds = float(state["doctor_seconds"])
            step_seconds = float(state["step_seconds"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"Doctor.load_state_dict: damaged state ({error!r})") from None
        collector = self._require_collector("load_state_dict")
        missing = sorted(set(stats.params) ^ set(collector.stats.params))
        if missing:
            raise ValueError(
                f"Doctor.load_state_dict: the saved statistics are of another model "
                f"(parameters differ: {missing[:5]})"
            )
        collector.end_forward()
        collector.stats = stats
        self.findings = findings
        self._diagnosed_key = self._stats_key()
        self.interval, self._next_step, self.steps_seen = interval, next_step, steps_seen
        self.doctor_seconds, self.step_seconds = doctor_seconds, step_seconds
        self._sampling = False
        if self._loop_started:  # a hand-written loop resumes at next_step
            self._prepare(next_step)

    def __repr__(self) -> str:
        return f"Doctor(findings={[f.name for f in self.findings]}, interval={self.interval})"


def _loss_value(loss: Any) -> float:
    data = getattr(loss, "_data", loss)
    try:
        return float(data.item() if hasattr(data, "item") else data)
    except (TypeError, ValueError):
        raise TypeError(
            f"Doctor.step: loss must be a number or a 1-element Tensor, got "
            f"{type(loss).__name__}"
        ) from None


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
