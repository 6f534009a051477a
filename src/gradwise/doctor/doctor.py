"""Doctor: a callback that watches every layer while the model trains and says what is wrong.

On a sampled step it collects per-layer statistics (see :mod:`gradwise.doctor.stats`); every step
it records the loss. The sampling interval adapts so the doctor's own time stays within
``config.overhead_budget`` of the step time, measured with ``time.perf_counter``. At the end of
each epoch and of training it runs the diagnoses (:mod:`gradwise.doctor.diagnoses`).

Example:
    >>> doctor = gw.doctor.Doctor()
    >>> Trainer(model, loss_fn, optimizer, doctor=doctor).fit(train, epochs=5)  # doctest: +SKIP
    >>> print(doctor.format_findings())                                        # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import textwrap
import time
from typing import Any

from gradwise.doctor.config import DoctorConfig
from gradwise.doctor.diagnoses import Finding, diagnose
from gradwise.doctor.stats import StatsCollector, TrainingStats
from gradwise.train.callbacks import Callback

__all__ = ["Doctor"]

_FORMAT = "gradwise.doctor"
_VERSION = 1


class Doctor(Callback):
    """The training doctor: per-layer statistics on sampled steps, diagnoses in plain words.

    Args:
        config: thresholds and sampling settings; ``DoctorConfig()`` when None.

    Attributes:
        findings: the latest diagnoses (a list of :class:`Finding`), most serious first.
        stats: the measured time series (:class:`TrainingStats`), for plots and the report.
        interval: the current sampling interval in steps.

    Use it with a Trainer (``Trainer(..., doctor=Doctor())``), or in a hand-written loop: call
    ``watch(model)`` once, then the callback methods in the order the Trainer does
    (``on_batch_begin``, ``on_after_backward``, ``on_after_step``, ``on_batch_end``, and
    ``on_epoch_end`` / ``on_train_end``).
    """

    def __init__(self, config: DoctorConfig | None = None) -> None:
        if config is not None and not isinstance(config, DoctorConfig):
            raise TypeError(f"Doctor: config must be a DoctorConfig, got {type(config).__name__}")
        self.config = config or DoctorConfig()
        self.findings: list[Finding] = []
        self.interval = self.config.interval
        self._collector: StatsCollector | None = None
        self._model: Any = None
        self._sampling = False
        self._next_sample = 0
        self._warmup_until = self.config.warmup_steps
        self._batch_started = 0.0
        self._step_doctor_seconds = 0.0
        self._base_step_seconds = math.nan  # EMA of a step's time without the doctor
        self._sample_cost = math.nan  # EMA of the doctor's time on a sampled step
        self.doctor_seconds = 0.0
        self.step_seconds = 0.0
        self.steps_seen = 0

    # ---- setup --------------------------------------------------------------------------------
    def watch(self, model: Any) -> None:
        """Start watching ``model`` (the Trainer does this in on_train_begin)."""
        if model is self._model:
            return
        self._model = model
        self._collector = StatsCollector(model, self.config)

    @property
    def stats(self) -> TrainingStats:
        if self._collector is None:
            return TrainingStats()
        return self._collector.stats

    @property
    def overhead(self) -> float:
        """The doctor's time as a fraction of the training steps' own time (nan before a step)."""
        base = self.step_seconds - self.doctor_seconds
        return self.doctor_seconds / base if base > 0 else math.nan

    # ---- callback events ----------------------------------------------------------------------
    def on_train_begin(self) -> None:
        trainer = self.trainer
        if trainer is None or getattr(trainer, "model", None) is None:
            raise RuntimeError("Doctor.on_train_begin: no trainer with a model is attached")
        self.watch(trainer.model)
        self._next_sample = getattr(trainer, "step", 0)
        self._warmup_until = self._next_sample + self.config.warmup_steps

    def on_batch_begin(self, step: int, logs: dict[str, Any] | None = None) -> None:
        started = time.perf_counter()
        self._batch_started = started
        self._step_doctor_seconds = 0.0
        collector = self._require_collector("on_batch_begin")
        if step >= self._next_sample:
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
        collector.after_backward()
        self._step_doctor_seconds += time.perf_counter() - started

    def on_after_step(self, step: int) -> None:
        if not self._sampling:
            return
        started = time.perf_counter()
        self._require_collector("on_after_step").after_step()
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
        self._account(step, ended - self._batch_started, doctor_time, sampled)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        collector = self._require_collector("on_epoch_end")
        collector.record_epoch(epoch + 1, logs or {})
        collector.close_dead_windows()
        self.diagnose()

    def on_train_end(self) -> None:
        if self._collector is None:
            return
        self._collector.end_forward()
        self._collector.close_dead_windows()
        self.diagnose()

    # ---- adaptive sampling --------------------------------------------------------------------
    def _account(self, step: int, wall: float, doctor_time: float, sampled: bool) -> None:
        """Book the step's time and choose the next sampled step."""
        self.steps_seen += 1
        self.step_seconds += wall
        self.doctor_seconds += doctor_time
        base = max(wall - doctor_time, 1e-9)
        self._base_step_seconds = base if math.isnan(self._base_step_seconds) else (
            0.8 * self._base_step_seconds + 0.2 * base
        )
        if not sampled:
            return
        self._sample_cost = doctor_time if math.isnan(self._sample_cost) else (
            0.5 * self._sample_cost + 0.5 * doctor_time
        )
        if self.config.adaptive:
            # sampling every N steps costs sample_cost / N per step; keep that within budget
            needed = self._sample_cost / (self.config.overhead_budget * self._base_step_seconds)
            interval = 1
            while interval < needed:
                interval *= 2
            interval = min(max(interval, self.config.min_interval), self.config.max_interval)
            if interval != self.interval:
                self.interval = interval
                self.stats.intervals.append((step, interval))
        self._next_sample = step + (1 if step + 1 < self._warmup_until else self.interval)

    def _require_collector(self, event: str) -> StatsCollector:
        if self._collector is None:
            raise RuntimeError(
                f"Doctor.{event}: not watching a model; pass the doctor to Trainer(doctor=...) "
                "or call doctor.watch(model) first"
            )
        return self._collector

    # ---- results ------------------------------------------------------------------------------
    def diagnose(self) -> list[Finding]:
        """Run every diagnosis on the statistics so far; updates and returns ``findings``."""
        self.findings = diagnose(self.stats, self.config)
        return self.findings

    @property
    def problems(self) -> list[Finding]:
        """The findings of severity warning or error."""
        return [f for f in self.findings if f.severity != "info"]

    def format_findings(self, width: int = 100) -> str:
        """The findings as text for a terminal: summary, evidence and remedies of each."""
        sampled = len(self.stats.sampled_steps)
        overhead = self.overhead
        measured = f"sampled {sampled} of {self.steps_seen} steps"
        if math.isfinite(overhead):
            measured += f", overhead {overhead:.1%}"
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

    def __repr__(self) -> str:
        return f"Doctor(findings={[f.name for f in self.findings]}, interval={self.interval})"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
