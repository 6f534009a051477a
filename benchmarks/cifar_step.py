"""Training step of CIFAR-style nets (3x32x32 inputs, 5x5 kernels, batch 64): gradwise vs PyTorch.

Two nets, both SGD with momentum 0.9 (lr 1e-3), cross-entropy:

* ``classic``: the PyTorch tutorial's net: conv5x5-6, relu, maxpool2, conv5x5-16, relu,
  maxpool2, fc120, relu, fc84, relu, fc10;
* ``wide``: conv5x5-32 pad 2, relu, maxpool2, conv5x5-64 pad 2, relu, maxpool2, fc256, relu, fc10.

Both frameworks start from the same weights (PyTorch's default initialisation) and see the same
batches: random images (speed does not depend on the pixels; no download needed), fixed seed.
Steps run in interleaved rounds; medians. ``--threads N`` limits NumPy's BLAS, numba's kernels
and PyTorch to N threads (1 is the comparison a shared machine's load disturbs least).

``--kernels-ab`` instead times gradwise alone with its numba kernels on and off in one process,
alternating step by step (process CPU time, ``--threads`` BLAS/numba threads, default 1;
``--rounds`` rounds of ``--steps`` steps, medians): the CIFAR nets and the Fashion-MNIST CNN
of ``cnn_epoch.py`` and MLP of ``mlp_epoch.py``, at batch 64.

``--cpu-time`` compares gradwise with PyTorch by process CPU time instead of wall time, one
thread each, alternating step by step (``--rounds`` rounds of ``--steps`` steps, medians), on the
CIFAR nets (batch 64, SGD momentum) and ``cnn_epoch.py``'s CNN (batch 128, Adam): on a machine
shared with other jobs, CPU time is the figure the load disturbs least (waiting for a core is
not counted; cache and memory-bandwidth contention still are).

Run: python benchmarks/cifar_step.py [--rounds 5] [--steps 10] [--threads N] [--net classic]
     python benchmarks/cifar_step.py --kernels-ab [--steps 40] [--rounds 5] [--threads 1]
     python benchmarks/cifar_step.py --cpu-time [--steps 10] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
from _common import (
    gw_model,
    initial_weights,
    interleaved,
    load_line,
    machine_description,
    print_table,
    setup_threads,
    torch,
    torch_step,
    verdict,
)

import gradwise as gw
from gradwise._malloc import reuse_freed_memory

BATCH = 64
TARGET = 1.0

#: layer specs shared by both frameworks: ("conv", c_in, c_out, kernel, padding), ("pool",),
#: ("relu",), ("flatten",), ("linear", in, out)
NETS: dict[str, list[tuple[Any, ...]]] = {
    "classic": [
        ("conv", 3, 6, 5, 0), ("relu",), ("pool",),
        ("conv", 6, 16, 5, 0), ("relu",), ("pool",),
        ("flatten",), ("linear", 16 * 5 * 5, 120), ("relu",), ("linear", 120, 84), ("relu",),
        ("linear", 84, 10),
    ],
    "wide": [
        ("conv", 3, 32, 5, 2), ("relu",), ("pool",),
        ("conv", 32, 64, 5, 2), ("relu",), ("pool",),
        ("flatten",), ("linear", 64 * 8 * 8, 256), ("relu",), ("linear", 256, 10),
    ],
}


def build(nn: Any, spec: list[tuple[Any, ...]]) -> Any:
    """The net of ``spec`` in the framework whose ``nn`` module is given (torch.nn or gw.nn)."""
    layers = []
    for kind, *args in spec:
        if kind == "conv":
            c_in, c_out, kernel, padding = args
            layers.append(nn.Conv2d(c_in, c_out, kernel, padding=padding))
        elif kind == "linear":
            layers.append(nn.Linear(*args))
        elif kind == "pool":
            layers.append(nn.MaxPool2d(2))
        elif kind == "relu":
            layers.append(nn.ReLU())
        else:
            layers.append(nn.Flatten())
    return nn.Sequential(*layers)


def gw_step(model: Any, optimizer: Any, x: np.ndarray, y: np.ndarray) -> None:
    optimizer.zero_grad()
    # from_numpy shares the batch's memory, as torch.from_numpy on the other side (gw.Tensor(x)
    # copied every batch, a cost PyTorch's side did not pay)
    loss = gw.nn.functional.cross_entropy(model(gw.from_numpy(x)), y)
    loss.backward()
    optimizer.step()


def kernels_ab(steps: int, rounds: int, threads: int) -> None:
    """Each net's step with the kernels on, then off, alternating, in ``rounds`` rounds of
    ``steps`` steps each on ``threads`` BLAS/numba threads; median process CPU time of each."""
    from gradwise.autograd.kernels._jit import set_jit_enabled

    rng = np.random.default_rng(0)
    rows = []
    for name in [*NETS, "cnn", "mlp"]:
        if name == "mlp":  # mlp_epoch.py's MLP and optimizer (SGD momentum)
            model = gw_model("mlp", initial_weights("mlp"))
            optimizer = gw.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            x = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
        elif name == "cnn":
            model = gw_model("cnn", initial_weights("cnn"))
            optimizer = gw.optim.Adam(model.parameters(), lr=1e-3)
            x = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
        else:
            model = build(gw.nn, NETS[name])
            optimizer = gw.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
            x = rng.standard_normal((BATCH, 3, 32, 32), dtype=np.float32)
        y = rng.integers(0, 10, BATCH)
        for enabled in (True, False):  # the first steps compile and warm the caches
            previous = set_jit_enabled(enabled)
            for _ in range(2):
                gw_step(model, optimizer, x, y)
            set_jit_enabled(previous)
        ratios, medians = [], {True: [], False: []}
        for _ in range(rounds):
            times: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(steps):
                for enabled in (True, False):
                    previous = set_jit_enabled(enabled)
                    start = time.process_time()
                    gw_step(model, optimizer, x, y)
                    times[enabled].append(time.process_time() - start)
                    set_jit_enabled(previous)
            for enabled in (True, False):
                medians[enabled].append(statistics.median(times[enabled]))
            ratios.append(medians[True][-1] / medians[False][-1])
        on, off = (statistics.median(medians[e]) for e in (True, False))
        rows.append((f"{name}: kernels on / off", f"{on * 1e3:6.2f} / {off * 1e3:6.2f} ms",
                     f"{on / off:5.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f})"))
    print_table(f"gradwise CPU time per step, batch {BATCH}, {threads} BLAS/numba thread(s), "
                f"kernels on vs off (alternating, median of {rounds} rounds x {steps})", rows)


def cpu_time_vs_torch(steps: int, rounds: int) -> None:
    """gradwise and PyTorch on one thread each, alternating step by step; median process CPU
    time per step of each and the median of the rounds' ratios, per net."""
    from _common import torch_cnn

    gw.set_num_threads(1)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    rows = []
    for name in [*NETS, "cnn"]:
        if name == "cnn":  # cnn_epoch.py's model, optimizer and batch size
            model = gw_model("cnn", initial_weights("cnn"))
            optimizer = gw.optim.Adam(model.parameters(), lr=1e-3)
            t_model = torch_cnn()
            t_optimizer = torch.optim.Adam(t_model.parameters(), lr=1e-3)
            x = rng.random((128, 1, 28, 28), dtype=np.float32)
        else:
            model = build(gw.nn, NETS[name])
            optimizer = gw.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
            torch.manual_seed(0)
            t_model = build(torch.nn, NETS[name])
            t_optimizer = torch.optim.SGD(t_model.parameters(), lr=1e-3, momentum=0.9)
            x = rng.standard_normal((BATCH, 3, 32, 32), dtype=np.float32)
        y = rng.integers(0, 10, len(x))
        t_x, t_y = torch.from_numpy(x), torch.from_numpy(y)
        steppers = {
            "gradwise": lambda m=model, o=optimizer, a=x, b=y: gw_step(m, o, a, b),
            "pytorch": lambda m=t_model, o=t_optimizer, a=t_x, b=t_y: torch_step(m, o, a, b),
        }
        for stepper in steppers.values():  # compile kernels, warm caches and allocators
            for _ in range(3):
                stepper()
        medians: dict[str, list[float]] = {who: [] for who in steppers}
        ratios = []
        for _ in range(rounds):
            times: dict[str, list[float]] = {who: [] for who in steppers}
            for _ in range(steps):
                for who, stepper in steppers.items():
                    start = time.process_time()
                    stepper()
                    times[who].append(time.process_time() - start)
            for who in steppers:
                medians[who].append(statistics.median(times[who]))
            ratios.append(medians["gradwise"][-1] / medians["pytorch"][-1])
        ours, theirs = (statistics.median(medians[who]) for who in steppers)
        rows.append((f"{name}: gradwise / pytorch", f"{ours * 1e3:7.2f} / {theirs * 1e3:7.2f} ms",
                     f"{statistics.median(ratios):5.2f}x (rounds {min(ratios):.2f}-"
                     f"{max(ratios):.2f})"))
    print_table(f"CPU time per step, 1 thread each, alternating (median of {rounds} rounds x "
                f"{steps} steps; target <= {TARGET}x for the CIFAR nets, <= 0.75x for the CNN)",
                rows)


def limit_kernel_threads(threads: int | None) -> None:
    if threads is not None:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--steps", type=int, default=10, help="training steps per round")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS, numba and PyTorch threads (default: all cores)")
    parser.add_argument("--net", choices=[*NETS, "all"], default="all")
    parser.add_argument("--kernels-ab", action="store_true",
                        help="gradwise alone, numba kernels on vs off in one process")
    parser.add_argument("--cpu-time", action="store_true",
                        help="gradwise vs PyTorch by process CPU time, 1 thread each")
    args = parser.parse_args()
    reuse_freed_memory()
    if args.cpu_time:
        if torch is None:
            parser.error("--cpu-time needs PyTorch")
        gw.set_num_threads(1)  # before the header, so it shows the threads in force
        torch.set_num_threads(1)
        print(machine_description())
        print(load_line("start"))
        cpu_time_vs_torch(args.steps, args.rounds)
        print(load_line("end"))
        return
    if args.kernels_ab:
        threads = args.threads or 1
        gw.set_num_threads(threads)  # before the header, so it shows the threads in force
        print(machine_description())
        print(load_line("start"))
        kernels_ab(args.steps, args.rounds, threads)
        print(load_line("end"))
        return
    setup_threads(args.threads)
    limit_kernel_threads(args.threads)
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((BATCH, 3, 32, 32), dtype=np.float32),
                rng.integers(0, 10, BATCH)) for _ in range(args.steps)]
    if torch is not None:
        t_batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
    print(machine_description())
    print(load_line("start"))
    for name in NETS if args.net == "all" else [args.net]:
        spec = NETS[name]
        model = build(gw.nn, spec)
        optimizer = gw.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        contenders = {"gradwise": lambda m=model, o=optimizer: [gw_step(m, o, x, y)
                                                                 for x, y in batches]}
        if torch is not None:
            torch.manual_seed(0)
            t_model = build(torch.nn, spec)
            for param, t_param in zip(model.parameters(), t_model.parameters(), strict=True):
                param.data = t_param.detach().numpy().copy()
            t_optimizer = torch.optim.SGD(t_model.parameters(), lr=1e-3, momentum=0.9)
            contenders["pytorch"] = lambda m=t_model, o=t_optimizer: [
                torch_step(m, o, x, y) for x, y in t_batches
            ]
        seconds = interleaved(contenders, repeats=args.rounds)
        per_step = {who: s / args.steps for who, s in seconds.items()}
        rows = [(f"{who} step", f"{t * 1e3:8.2f} ms", "") for who, t in per_step.items()]
        if "pytorch" in per_step:
            rows.append(("gradwise / pytorch", "",
                         verdict(per_step["gradwise"] / per_step["pytorch"], TARGET)))
        print(load_line(f"end of '{name}'"))
        print_table(f"CIFAR-style '{name}' training step, batch {BATCH}, SGD momentum "
                    f"({args.rounds} rounds x {args.steps} steps, median)", rows)


if __name__ == "__main__":
    main()
