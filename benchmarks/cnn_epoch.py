"""Training speed of a small CNN on Fashion-MNIST (Adam, batch 128): gradwise vs PyTorch.

conv3x3-32 pad1, relu, maxpool2, conv3x3-64 pad1, relu, maxpool2, fc128, relu, fc10. Both
frameworks start from the same weights and see the same batches; steps run in interleaved
rounds and the median step time is extrapolated to one epoch (60,000 images), labelled as such.
The process first calls ``gradwise._malloc.reuse_freed_memory()`` (glibc keeps freed large
blocks for reuse; it applies to both contenders, as they share the process); ``--default-malloc``
skips it. ``--ops`` instead times each conv/pool op of the gradwise model alone, forward and
backward, on the layer shapes of a batch, with ``gw.set_num_threads(1)`` and then 2 (the
batch-parallel regions of ``kernels/_threads.py`` run at 2), min and median of 15 runs, then
a linear layer + ReLU on the CNN's and the MLP's shapes at 1 thread, 2 with BLAS held (its rows
split over a region) and 2 with BLAS's own threads. ``--linear-ab`` times the whole step (gradwise
alone, 2 threads) with that split on and off, alternating in one process.

With one thread each (``--threads 1``) the ratio is judged by process CPU time, as in
mlp_epoch.py (a busy machine's waiting is not counted); with more threads by wall time.

Run: python benchmarks/cnn_epoch.py [--rounds 5] [--steps 10] [--threads N] [--default-malloc]
     python benchmarks/cnn_epoch.py --ops
     python benchmarks/cnn_epoch.py --linear-ab
"""

from __future__ import annotations

import argparse
import statistics
import time
import types
from collections.abc import Callable

import numpy as np
from _common import (
    cpu_verdict,
    gw_model,
    gw_optimizer,
    gw_step,
    initial_weights,
    load_fashion_mnist,
    load_line,
    machine_description,
    print_table,
    setup_threads,
    spread,
    timed_rounds,
    torch,
    torch_cnn,
    torch_step,
    verdict,
)

import gradwise as gw
from gradwise._malloc import reuse_freed_memory
from gradwise.autograd.kernels import _threads
from gradwise.autograd.ops import conv as conv_ops
from gradwise.autograd.ops import linalg as linalg_ops
from gradwise.autograd.ops import pool as pool_ops

BATCH = 128
#: issue 14's goals: <= 0.75x PyTorch's step time with 1 thread each, <= 0.90x with 2 (or more)
TARGET = {1: 0.75, 2: 0.90}


def min_median_ms(fn: Callable[[], object], repeats: int = 15,
                  before: Callable[[], object] | None = None) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        if before is not None:  # untimed preparation of each run
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3, statistics.median(times) * 1e3


def op_timings(threads: tuple[int, ...] = (1, 2)) -> list[tuple[str, str, str]]:
    """Forward and backward of each conv/pool op of the model, alone, on a batch's shapes, at
    each thread count (``gw.set_num_threads``): min (median) ms.

    Inputs are NCHW views of NHWC memory, as the ops hand them to each other in the model.
    """
    rng = np.random.default_rng(0)

    def activation(n: int, c: int, h: int, w: int) -> np.ndarray:
        return np.maximum(rng.standard_normal((n, h, w, c), dtype=np.float32), 0).transpose(
            0, 3, 1, 2
        )

    def shown(times: tuple[float, float]) -> str:
        return f"{times[0]:.2f} ({times[1]:.2f})"

    def time_op(function: type, needs: tuple[bool, ...], *args: object) -> tuple[str, str]:
        ctx = types.SimpleNamespace(needs_input_grad=needs)
        out = function.forward(ctx, *args)
        grad = activation(*out.shape)
        forward, backward = [], []
        for count in threads:
            gw.set_num_threads(count)
            forward.append(shown(min_median_ms(lambda: function.forward(ctx, *args))))
            backward.append(shown(min_median_ms(lambda: function.backward(ctx, grad))))
        return " / ".join(forward), " / ".join(backward)

    def conv(c_in: int, c_out: int, size: int, first: bool) -> tuple[str, str]:
        x = (rng.random((BATCH, 1, size, size), dtype=np.float32) if first
             else activation(BATCH, c_in, size, size))
        weight = rng.standard_normal((c_out, c_in, 3, 3), dtype=np.float32)
        bias = np.zeros(c_out, dtype=np.float32)
        needs = (not first, True, True)
        return time_op(conv_ops.Conv2d, needs, x, weight, bias, (1, 1), (1, 1), (1, 1))

    def pool(c: int, size: int) -> tuple[str, str]:
        x = activation(BATCH, c, size, size)
        return time_op(pool_ops.MaxPool2d, (True,), x, (2, 2), (2, 2), (0, 0))

    ops = {
        "conv 1->32, 28x28 (no input grad)": conv(1, 32, 28, first=True),
        "max-pool 32ch 28->14": pool(32, 28),
        "conv 32->64, 14x14": conv(32, 64, 14, first=False),
        "max-pool 64ch 14->7": pool(64, 14),
    }
    return [(name, f"fwd {fwd} ms", f"bwd {bwd} ms") for name, (fwd, bwd) in ops.items()]


def _hold_blas() -> None:
    """An empty 2-part region: for the next 0.1 s a linear layer splits its rows over a region
    (``_threads.regions_recently``), as between the convolutions of a CNN step."""
    _threads.run_parts(lambda part, lo, hi: None, [(0, 1), (1, 2)])


def _forget_regions() -> None:
    """No region ran recently: a linear layer runs its product on BLAS's own threads."""
    _threads._state.last_exit = -1e9


def linear_timings() -> list[tuple[str, str, str]]:
    """Forward + backward of a linear layer + ReLU (``LinearReLU``, all three gradients) alone:
    1 thread; 2 threads with BLAS held at 1 (the rows split over a region, as in the CNN step);
    2 threads with BLAS's own threads (no region: as in an MLP). The split is forced whatever
    ``linalg._MIN_PART_MACS`` says, so the rows show where the threshold belongs. Min (median)
    ms of 41 runs of each setting in turn (the machine is shared: medians move with its load)."""
    rng = np.random.default_rng(0)
    threshold, linalg_ops._MIN_PART_MACS = linalg_ops._MIN_PART_MACS, 1
    rows = []
    shapes = [(128, 3136, 128), (64, 3136, 128), (32, 3136, 128), (16, 3136, 128),
              (128, 784, 256), (64, 784, 256), (128, 256, 128), (128, 128, 10)]
    for batch, features, outputs in shapes:
        x = rng.standard_normal((batch, features), dtype=np.float32)
        weight = rng.standard_normal((outputs, features), dtype=np.float32)
        bias = rng.standard_normal(outputs, dtype=np.float32)
        grad = rng.standard_normal((batch, outputs), dtype=np.float32)
        ctx = types.SimpleNamespace(needs_input_grad=(True, True, True))
        # BLAS's own threads last: after a call on 2 OpenBLAS threads its idle worker spins
        # for ~0.1 s (see benchmarks/README.md) and would slow whatever ran next
        settings = {"1 thread": (1, None), "2, BLAS held (split)": (2, _hold_blas),
                    "2, BLAS threads": (2, _forget_regions)}
        times: dict[str, list[float]] = {name: [] for name in settings}
        for name, (count, before) in settings.items():
            gw.set_num_threads(count)
            for run in range(41):
                if before is not None and (run == 0 or name != "2, BLAS threads"):
                    before()
                start = time.perf_counter()
                linalg_ops.LinearReLU.forward(ctx, x, weight, bias)
                linalg_ops.LinearReLU.backward(ctx, grad)
                times[name].append(time.perf_counter() - start)
        time.sleep(0.2)  # let OpenBLAS's worker stop spinning before the next shape
        one = statistics.median(times["1 thread"])
        shown = [f"{name} {min(t) * 1e3:.2f} ({statistics.median(t) * 1e3:.2f}; "
                 f"{statistics.median(t) / one:.2f}x)" for name, t in times.items()]
        macs = batch * features * outputs // 2
        rows.append((f"linear+relu {batch}x{features}->{outputs} ({macs / 1e6:.1f}M MACs/part)",
                     shown[0], " / ".join(shown[1:])))
    gw.set_num_threads(2)
    linalg_ops._MIN_PART_MACS = threshold
    return rows


def linear_split_ab(pairs: int = 30, steps: int = 3) -> str:
    """The whole training step (gradwise only, 2 threads) with the linear layers' split on and
    off, alternating every ``steps`` steps in one process (order swapped every pair): the
    median step time of each and the median of the paired ratios (on / off), with quartiles."""
    gw.set_num_threads(2)
    model = gw_model("cnn", initial_weights("cnn"))
    optimizer, _ = gw_optimizer("adam", list(model.parameters()), lr=1e-3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, BATCH)
    settings = {"off": 10**18, "on": linalg_ops._MIN_PART_MACS}
    times: dict[str, list[float]] = {name: [] for name in settings}
    for pair in range(pairs + 1):
        for name in (list(settings) if pair % 2 else list(settings)[::-1]):
            linalg_ops._MIN_PART_MACS = settings[name]
            start = time.perf_counter()
            for _ in range(steps):
                gw_step(model, optimizer, x, y)
            if pair:  # the first pair warms up
                times[name].append((time.perf_counter() - start) / steps)
    linalg_ops._MIN_PART_MACS = settings["on"]
    ratios = [on / off for on, off in zip(times["on"], times["off"], strict=True)]
    quartiles = np.quantile(ratios, [0.25, 0.75])
    return (f"step, linear split off {statistics.median(times['off']) * 1e3:.2f} ms, on "
            f"{statistics.median(times['on']) * 1e3:.2f} ms; on / off (paired) "
            f"{statistics.median(ratios):.3f} (quartiles {quartiles[0]:.3f}-{quartiles[1]:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--steps", type=int, default=10, help="training steps per round")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc thresholds alone")
    parser.add_argument("--ops", action="store_true", help="time each conv/pool op alone")
    parser.add_argument("--linear-ab", action="store_true",
                        help="the step with the linear layers' split on and off (2 threads)")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS and PyTorch threads (default: all cores)")
    args = parser.parse_args()
    tuned = False if args.default_malloc else reuse_freed_memory()
    allocator = ("freed memory reused (gradwise._malloc.reuse_freed_memory)" if tuned
                 else "default malloc")
    if args.linear_ab:
        print(load_line("start"))
        result = linear_split_ab()
        print(load_line("end"))
        print(machine_description())
        print(result)
        return
    if args.ops:
        print(load_line("start"))
        rows = op_timings()
        print(load_line("end"))
        print(machine_description())
        print(f"allocator: {allocator}")
        print_table(f"gradwise CNN ops, batch {BATCH}, 1 / 2 threads, min (median) of 15", rows)
        print(load_line("start"))
        rows = linear_timings()
        print(load_line("end"))
        print_table("linear layer + ReLU, forward + backward, ms: min (median; / 1 thread)", rows)
        return
    setup_threads(args.threads)
    print(load_line("start"))
    if args.threads is not None:  # the kernels' pool too (numba's threads, parallel kernels)
        import numba

        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    images, labels, source = load_fashion_mnist()
    steps_per_epoch = -(-len(images) // BATCH)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images))[: BATCH * args.steps]
    batches = [(images[order[i : i + BATCH]], labels[order[i : i + BATCH]])
               for i in range(0, len(order), BATCH)]

    weights = initial_weights("cnn")
    model = gw_model("cnn", weights)
    optimizer, optimizer_kind = gw_optimizer("adam", list(model.parameters()), lr=1e-3)
    contenders = {
        "gradwise": lambda: [gw_step(model, optimizer, x, y) for x, y in batches],
    }
    if torch is not None:
        t_model = torch_cnn()
        t_optimizer = torch.optim.Adam(t_model.parameters(), lr=1e-3)
        t_batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
        contenders["pytorch"] = lambda: [
            torch_step(t_model, t_optimizer, x, y) for x, y in t_batches
        ]
        with gw.no_grad():
            gw_loss = float(gw.nn.functional.cross_entropy(model(gw.Tensor(batches[0][0])),
                                                          batches[0][1]).item())
        with torch.no_grad():
            t_loss = float(torch.nn.functional.cross_entropy(t_model(t_batches[0][0]),
                                                            t_batches[0][1]))
        print(f"initial loss on batch 0: gradwise {gw_loss:.5f}, pytorch {t_loss:.5f}")

    rounds = timed_rounds(contenders, repeats=args.rounds)
    print(load_line("end"))
    # one thread each: judged by process CPU time (time spent waiting for a core held by another
    # job is not counted), as mlp_epoch.py and inference.py; more threads: wall time
    clock = "cpu" if args.threads == 1 else "wall"
    other = "wall" if clock == "cpu" else "cpu"
    per_step = {name: {c: statistics.median(r[c]) / args.steps for c in ("wall", "cpu")}
                for name, r in rounds.items()}
    print(machine_description())
    print(f"data: {source}; gradwise optimizer: {optimizer_kind}; allocator: {allocator}")
    rows = [
        (f"{name} step", f"{t['wall'] * 1e3:8.1f} ms",
         f"CPU {t['cpu'] * 1e3:6.1f} ms; epoch (extrapolated, {steps_per_epoch} steps): "
         f"{t['wall'] * steps_per_epoch:6.1f} s; rounds spread wall "
         f"{spread(rounds[name]['wall']):.2f}x, CPU {spread(rounds[name]['cpu']):.2f}x")
        for name, t in per_step.items()
    ]
    if "pytorch" in per_step:
        goal = TARGET[1 if args.threads == 1 else 2]
        ratio = per_step["gradwise"][clock] / per_step["pytorch"][clock]
        other_ratio = per_step["gradwise"][other] / per_step["pytorch"][other]
        shown = (cpu_verdict(ratio, goal, [spread(r["cpu"]) for r in rounds.values()])
                 if clock == "cpu" else verdict(ratio, goal))
        rows.append((f"gradwise / pytorch ({clock})", "", f"{shown}; {other} time "
                     f"{other_ratio:.2f}x"))
    print_table(f"CNN training, batch {BATCH}, Adam ({args.rounds} rounds x {args.steps} steps, "
                "median)", rows)


if __name__ == "__main__":
    main()
