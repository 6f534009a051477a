"""Compile cost of gradwise's numba kernels: cold (empty cache: every kernel the MLP path uses is
compiled) and warm (cache filled) start of a fresh process, against the NumPy path
(``GRADWISE_JIT=0``, what gradwise did before the kernels).

Each measurement is a fresh subprocess timing ``import gradwise`` plus a first training step that
reaches every MLP-path kernel: Sequential Linear+ReLU (fused), cross-entropy, dropout, LayerNorm,
softmax and log_softmax, and one step of SGD (momentum), Adam, RMSprop and Adagrad; then the
same for float64. The numba cache goes to a fresh temporary ``NUMBA_CACHE_DIR`` for the cold runs.
Goals (issue 14): cold <= 15 s, warm <= 0.5 s over the NumPy path.

Run: python benchmarks/kernel_compile.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import time
start = time.perf_counter()
import numpy as np
import gradwise as gw
imported = time.perf_counter()
F = gw.nn.functional
for dtype in (np.float32, np.float64):
    model = gw.nn.Sequential(gw.nn.Linear(20, 16), gw.nn.ReLU(), gw.nn.LayerNorm(16),
                             gw.nn.Dropout(0.1), gw.nn.Linear(16, 4)).to(dtype)
    x = gw.tensor(np.random.default_rng(0).random((8, 20)).astype(dtype))
    y = np.arange(8) % 4
    for name in ("SGD", "Adam", "RMSprop", "Adagrad"):
        settings = {"momentum": 0.9} if name == "SGD" else {}
        optimizer = getattr(gw.optim, name)(model.parameters(), lr=0.01, **settings)
        optimizer.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, y) + F.softmax(logits, dim=-1).sum() \
            + F.log_softmax(logits, dim=-1).sum()
        loss.backward()
        optimizer.step()
done = time.perf_counter()
print(f"{imported - start:.3f} {done - start:.3f}")
"""


def run(env_extra: dict[str, str]) -> tuple[float, float]:
    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, float]]] = {"numpy path": [], "cold": [], "warm": []}
    for _ in range(args.repeats):
        rows["numpy path"].append(run({"GRADWISE_JIT": "0"}))
        with tempfile.TemporaryDirectory() as cache:
            rows["cold"].append(run({"NUMBA_CACHE_DIR": cache}))
            rows["warm"].append(run({"NUMBA_CACHE_DIR": cache}))
    print(f"load average {os.getloadavg()[0]:.1f}; medians of {args.repeats} fresh processes")
    medians = {name: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
               for name, runs in rows.items()}
    for name, (imported, total) in medians.items():
        print(f"{name:12s} import {imported:6.2f} s   import + first steps {total:6.2f} s")
    base = medians["numpy path"][1]
    print(f"cold compile over the NumPy path: {medians['cold'][1] - base:+.2f} s (goal <= 15 s)")
    print(f"warm start over the NumPy path:   {medians['warm'][1] - base:+.2f} s (goal <= 0.5 s)")


if __name__ == "__main__":
    main()
