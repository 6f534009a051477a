"""Soak test: a long training run keeps its memory flat and its step time steady.

Trains a 784-256-128-10 MLP with Adam on a Fashion-MNIST subset (sklearn's digits when
Fashion-MNIST is not on this machine) for 20 epochs with the full machinery a real run uses:
the Trainer, the doctor, a checkpoint of the whole run at every epoch end, and a JSON-lines
log. After each epoch it records the process's resident set size (VmRSS) and the mean step
time, both wall-clock and CPU time of this process (CPU time is what the check uses: it does not
move when other programs share the cores). It passes when RSS never grows more than 5% over
its value after epoch 2 (after the allocator and caches have warmed up) and the median CPU step
time of the last 5 epochs is within 25% of that of epochs 2-5.

Run: python benchmarks/soak.py [--epochs 20] [--samples 10000] [--batch-size 64]
Exit status 0 when both checks pass, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import gradwise as gw
from gradwise import nn, optim
from gradwise.data import load_dataset
from gradwise.doctor import Doctor
from gradwise.train import Callback, JSONLinesLogger, ModelCheckpoint, Trainer

RSS_GROWTH_LIMIT = 0.05
STEP_TIME_DRIFT_LIMIT = 0.25


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


class EpochProbe(Callback):
    """Record RSS and mean step time at the end of every epoch."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, float, float]] = []  # epoch, RSS, wall ms, CPU ms

    def on_epoch_begin(self, epoch: int) -> None:
        self._started = time.perf_counter(), time.process_time()
        self._steps_before = self.trainer.step

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        steps = max(self.trainer.step - self._steps_before, 1)
        wall_ms = 1000 * (time.perf_counter() - self._started[0]) / steps
        cpu_ms = 1000 * (time.process_time() - self._started[1]) / steps
        self.rows.append((epoch + 1, rss_bytes(), wall_ms, cpu_ms))
        print(f"epoch {epoch + 1:3d}  loss {logs['loss']:.4f}  RSS {self.rows[-1][1] / 2**20:8.1f}"
              f" MiB  step {wall_ms:6.2f} ms wall, {cpu_ms:6.2f} ms CPU", flush=True)


def load_subset(samples: int) -> tuple[np.ndarray, np.ndarray, str]:
    try:
        data = load_dataset("fashion-mnist", download=False, progress=False)
        x, y, name = data.x_train[:samples], data.y_train[:samples], "fashion-mnist"
    except OSError:
        data = load_dataset("digits", download=False, progress=False)
        x, y, name = data.x_train, data.y_train, "digits"
    x = x.reshape(len(x), -1).astype(np.float32) / 255.0
    return x, y.astype(np.int64), f"{name} ({len(x)} samples)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    x, y, source = load_subset(args.samples)
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(x.shape[1], 256, rng=rng), nn.ReLU(),
                          nn.Linear(256, 128, rng=rng), nn.ReLU(), nn.Linear(128, 10, rng=rng))
    probe = EpochProbe()
    print(f"soak: {args.epochs} epochs, MLP {x.shape[1]}-256-128-10, Adam, batch "
          f"{args.batch_size}, {source}; gradwise {gw.__version__}, pid {os.getpid()}")
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(
            model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-3),
            progress=False, doctor=Doctor(),
            callbacks=[probe, ModelCheckpoint(Path(run_dir) / "ckpt", monitor="loss",
                                              save_last=True),
                       JSONLinesLogger(Path(run_dir) / "metrics.jsonl")],
        )
        trainer.fit((x, y), epochs=args.epochs, batch_size=args.batch_size)

    rss = {epoch: value for epoch, value, _, _ in probe.rows}
    step_ms = [cpu_ms for _, _, _, cpu_ms in probe.rows]
    baseline = rss[min(2, len(rss))]
    growth = (max(rss[e] for e in rss if e >= 2) - baseline) / baseline
    final_growth = (rss[max(rss)] - baseline) / baseline
    early = statistics.median(step_ms[1:5])
    late = statistics.median(step_ms[-5:])
    drift = late / early - 1
    print()
    print(f"RSS after epoch 2: {baseline / 2**20:.1f} MiB; peak growth after it {growth:+.2%}, "
          f"at the end {final_growth:+.2%} (limit {RSS_GROWTH_LIMIT:.0%})")
    print(f"CPU step time: median epochs 2-5 {early:.2f} ms, last 5 epochs {late:.2f} ms "
          f"({drift:+.1%}; limit +/-{STEP_TIME_DRIFT_LIMIT:.0%})")
    passed = growth < RSS_GROWTH_LIMIT and abs(drift) < STEP_TIME_DRIFT_LIMIT
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
