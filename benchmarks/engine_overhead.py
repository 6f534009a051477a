"""Engine overhead: the Python cost of one recorded op, and an MLP training step vs PyTorch/NumPy.

1. add of two (4,) tensors that require grad, minus the bare ``numpy.add`` of the same arrays
   (target < 5 us per op);
2. forward + backward (+ SGD update) of a 784-256-128-10 ReLU MLP at batch 128 with
   cross-entropy, in gradwise (gw.nn + gw.optim, and engine + F), PyTorch and hand-written NumPy
   (target <= 1.0x PyTorch).

Run: python benchmarks/engine_overhead.py
"""

from __future__ import annotations

import argparse
import time
import timeit

import numpy as np
from _common import (
    gw_mlp_functional,
    gw_model,
    gw_optimizer,
    gw_step,
    initial_weights,
    interleaved,
    machine_description,
    print_table,
    setup_threads,
    torch,
    torch_mlp,
    torch_step,
    verdict,
)

import gradwise as gw

BATCH = 128


def op_overhead_us() -> tuple[float, float]:
    """Median microseconds of process CPU time per recorded add and per bare numpy add.

    CPU time, not wall time: the op is single-threaded Python, and on a shared machine the wall
    clock also counts the time the process waited for a core (6.0 us "missed" at load 5.4 on 2
    cores where CPU time gave 2.2 us for the add, 0.25 us for np.add)."""
    a_np, b_np = np.ones(4, np.float32), np.ones(4, np.float32)
    a, b = gw.tensor(a_np, requires_grad=True), gw.tensor(b_np, requires_grad=True)
    number = 20000
    gw_times = timeit.repeat(lambda: a + b, number=number, repeat=7, timer=time.process_time)
    np_times = timeit.repeat(lambda: np.add(a_np, b_np), number=number, repeat=7,
                             timer=time.process_time)
    return float(np.median(gw_times)) / number * 1e6, float(np.median(np_times)) / number * 1e6


def numpy_mlp_step(weights: list[np.ndarray], lr: float = 0.01):
    """The same step written by hand in NumPy: the floor an engine on NumPy could reach."""
    w1, b1, w2, b2, w3, b3 = [w.copy() for w in weights]

    def step(x: np.ndarray, y: np.ndarray) -> None:
        h1 = np.maximum(x @ w1.T + b1, 0)
        h2 = np.maximum(h1 @ w2.T + b2, 0)
        logits = h2 @ w3.T + b3
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        probs[np.arange(len(y)), y] -= 1
        g3 = probs / len(y)
        g2 = (g3 @ w3) * (h2 > 0)
        g1 = (g2 @ w2) * (h1 > 0)
        for w, b, g, h in ((w3, b3, g3, h2), (w2, b2, g2, h1), (w1, b1, g1, x)):
            w -= lr * (g.T @ h)
            b -= lr * g.sum(axis=0)

    return step


def main() -> None:
    # no options; --help prints the docstring instead of running (newcomer review 8 of issue 14)
    argparse.ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    setup_threads()
    gw_us, np_us = op_overhead_us()
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 784), dtype=np.float32)
    y = rng.integers(0, 10, BATCH)
    weights = initial_weights("mlp")

    model = gw_model("mlp", weights)
    optimizer, optimizer_kind = gw_optimizer("sgd", list(model.parameters()), lr=0.01)
    params, forward = gw_mlp_functional(weights)
    f_optimizer, _ = gw_optimizer("sgd", params, lr=0.01)
    numpy_step = numpy_mlp_step(weights)
    contenders = {
        "gradwise (nn + optim)": lambda: [gw_step(model, optimizer, x, y) for _ in range(20)],
        "gradwise (engine + F)": lambda: [gw_step(forward, f_optimizer, x, y) for _ in range(20)],
        "numpy by hand": lambda: [numpy_step(x, y) for _ in range(20)],
    }
    if torch is not None:
        t_model = torch_mlp()
        t_optimizer = torch.optim.SGD(t_model.parameters(), lr=0.01)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        contenders["pytorch"] = lambda: [torch_step(t_model, t_optimizer, tx, ty)
                                         for _ in range(20)]
    step_ms = {k: v / 20 * 1e3 for k, v in interleaved(contenders, repeats=7).items()}

    print(machine_description())
    print(f"gradwise optimizer: {optimizer_kind}")
    print_table("Per-op overhead (add of two (4,) tensors, requires_grad; process CPU time)", [
        ("gradwise add", f"{gw_us:8.2f} us", ""),
        ("numpy add", f"{np_us:8.2f} us", ""),
        ("overhead", f"{gw_us - np_us:8.2f} us",
         f"target < 5 us: {'met' if gw_us - np_us < 5 else 'MISSED'}"),
    ])
    rows = [(name, f"{ms:8.3f} ms", "") for name, ms in step_ms.items()]
    if "pytorch" in step_ms:
        for name in ("gradwise (nn + optim)", "gradwise (engine + F)"):
            rows.append((f"{name} / pytorch", "", verdict(step_ms[name] / step_ms["pytorch"], 1.0)))
    for name in ("gradwise (nn + optim)", "gradwise (engine + F)"):
        rows.append((f"{name} / numpy", "", f"{step_ms[name] / step_ms['numpy by hand']:5.2f}x"))
    print_table(f"MLP 784-256-128-10 step, batch {BATCH} (fwd + bwd + SGD, median of 7 x 20)",
                rows)


if __name__ == "__main__":
    main()
