"""Compile cost of gradwise's numba kernels: cold (empty cache: every kernel is compiled) and
warm (cache filled) start of a fresh process, against the NumPy path (``GRADWISE_JIT=0``, what
gradwise did before the kernels).

Each measurement is a fresh subprocess timing ``import gradwise`` plus first training steps that
reach every kernel: an MLP (Sequential Linear+ReLU fused, cross-entropy, dropout, LayerNorm,
softmax and log_softmax; two steps each, the second through the group kernel, of SGD with
momentum, SGD nesterov, Adam, Adam amsgrad, AdamW amsgrad, RMSprop centered, Adagrad) and a CNN
(Conv2d, BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, LayerNorm, Dropout; AdamW amsgrad, two
steps), in float32 and float64. Both wall and process
CPU time are reported (on a loaded machine the wall time measures the load: issue 14's reviewer
saw a cold CNN first step of 3.8 s CPU / 16 s wall at load 7). The numba cache goes to a
fresh temporary ``NUMBA_CACHE_DIR`` for the cold runs.
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

from _common import load_line, machine_busy

CHILD = r"""
import time
start, cpu_start = time.perf_counter(), time.process_time()
import numpy as np
import gradwise as gw
imported = time.perf_counter()
F, nn = gw.nn.functional, gw.nn
OPTIMIZERS = [("SGD", {"momentum": 0.9}), ("SGD", {"momentum": 0.9, "nesterov": True}),
              ("Adam", {}), ("Adam", {"amsgrad": True}), ("AdamW", {"amsgrad": True}),
              ("RMSprop", {"centered": True, "momentum": 0.5}), ("Adagrad", {})]
for dtype in (np.float32, np.float64):
    rng = np.random.default_rng(0)
    mlp = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.LayerNorm(16), nn.Dropout(0.1),
                        nn.Linear(16, 4)).to(dtype)
    x = gw.tensor(rng.random((8, 20)).astype(dtype))
    y = np.arange(8) % 4
    for name, settings in OPTIMIZERS:
        optimizer = getattr(gw.optim, name)(mlp.parameters(), lr=0.01, **settings)
        optimizer.zero_grad()
        logits = mlp(x)
        loss = F.cross_entropy(logits, y) + F.softmax(logits, dim=-1).sum() \
            + F.log_softmax(logits, dim=-1).sum()
        loss.backward()
        optimizer.step()
        optimizer.step()  # the second step runs the group kernel (one call per 8 parameters)
    # 1 -> 4 channels runs plane-major (ops/conv.py, im2col_planes), 4 -> 16 channels-last
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 16, 1),
                        nn.BatchNorm2d(16), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(16, 16, 3, padding=1), nn.AvgPool2d(2),
                        nn.Flatten(), nn.LayerNorm(16 * 4 * 4), nn.Dropout(0.2),
                        nn.Linear(16 * 4 * 4, 4)).to(dtype)
    optimizer = gw.optim.AdamW(cnn.parameters(), lr=1e-3, amsgrad=True)
    images = gw.tensor(rng.random((8, 1, 16, 16)).astype(dtype))
    optimizer.zero_grad()
    F.cross_entropy(cnn(images), y).backward()
    optimizer.step()
    optimizer.step()
done, cpu_done = time.perf_counter(), time.process_time()
print(f"{imported - start:.3f} {done - start:.3f} {cpu_done - cpu_start:.3f}")
"""


def run(env_extra: dict[str, str]) -> tuple[float, float, float]:
    """(import wall s, import + first steps wall s, same in process CPU s) of one fresh process."""
    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[0]), float(out[1]), float(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(load_line("start"))
    rows: dict[str, list[tuple[float, float, float]]] = {"numpy path": [], "cold": [], "warm": []}
    for _ in range(args.repeats):
        rows["numpy path"].append(run({"GRADWISE_JIT": "0"}))
        with tempfile.TemporaryDirectory() as cache:
            rows["cold"].append(run({"NUMBA_CACHE_DIR": cache}))
            rows["warm"].append(run({"NUMBA_CACHE_DIR": cache}))
    print(load_line("end"))
    print(f"medians of {args.repeats} fresh processes")
    medians = {name: tuple(statistics.median(r[i] for r in runs) for i in range(3))
               for name, runs in rows.items()}
    for name, (imported, total, cpu) in medians.items():
        print(f"{name:12s} import {imported:6.2f} s   import + first steps {total:6.2f} s wall, "
              f"{cpu:6.2f} s CPU")
    base, base_cpu = medians["numpy path"][1], medians["numpy path"][2]
    busy = machine_busy()
    note = f"  (machine busy: not a verdict; {busy})" if busy else ""
    for name, goal in (("cold", 15), ("warm", 0.5)):
        wall, cpu = medians[name][1] - base, medians[name][2] - base_cpu
        print(f"{name} start over the NumPy path: {wall:+.2f} s wall, {cpu:+.2f} s CPU "
              f"(goal <= {goal} s){note}")


if __name__ == "__main__":
    main()
