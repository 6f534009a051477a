"""detect_anomaly's overhead: MLP training steps with and without ``gw.detect_anomaly()``.

A 784-256-128-10 ReLU MLP (gw.nn, SGD with momentum, batch 128): forward, loss, backward and
the optimizer step, ``--steps`` per call, interleaved and repeated, once plain and once inside
``with gw.detect_anomaly():`` (every op's forward and backward result checked for NaN/Inf, the
source line of every op recorded). There is no hard target; the issue asks that it be cheap
enough to leave on while debugging.

Run: python benchmarks/anomaly_overhead.py [--rounds 5] [--steps 50]
"""

from __future__ import annotations

import argparse
import contextlib

import numpy as np
from _common import (
    gw_model,
    initial_weights,
    interleaved,
    load_fashion_mnist,
    machine_description,
    print_table,
    setup_threads,
)

import gradwise as gw
from gradwise.nn import functional as F
from gradwise.optim import SGD

BATCH = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    setup_threads()
    images, labels, source = load_fashion_mnist()
    batches = [(images[i * BATCH:(i + 1) * BATCH], labels[i * BATCH:(i + 1) * BATCH])
               for i in range(args.steps)]
    model = gw_model("mlp", initial_weights("mlp"))
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train(check: bool, check_inf: bool = True) -> None:
        guard = gw.detect_anomaly(check_inf=check_inf) if check else contextlib.nullcontext()
        with guard:
            for x, y in batches:
                loss = F.cross_entropy(model(gw.Tensor(x)), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        if not np.isfinite(loss.item()):
            raise RuntimeError("anomaly_overhead: training diverged; the timing is meaningless")

    times = interleaved({
        "plain": lambda: train(False),
        "detect_anomaly": lambda: train(True),
        "detect_anomaly(check_inf=False)": lambda: train(True, check_inf=False),
    }, repeats=args.rounds)
    print(machine_description())
    print(f"data: {source}; {args.steps} steps of batch {BATCH} per call, {args.rounds} rounds")
    base = times["plain"]
    rows = [(name, f"{seconds / args.steps * 1e3:.3f} ms", f"{seconds / base:5.2f}x")
            for name, seconds in times.items()]
    print_table("detect_anomaly overhead (784-256-128-10 MLP training step)", rows)


if __name__ == "__main__":
    main()
