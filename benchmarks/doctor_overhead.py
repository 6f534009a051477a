"""The training doctor's overhead: training steps with and without the Doctor.

A 784-256-128-10 ReLU MLP or the recipe CNN (``--model``; SGD, momentum 0.9, batch 128) trains
with the real Trainer for ``--steps`` steps on Fashion-MNIST (random data of its shape when the
files are absent), once with ``doctor=Doctor()`` (default sampling: the first 8 steps, then every
16th) and once without, interleaved and repeated; each call builds a fresh model, so the doctor's
warm-up is included. Target: <= 1.05x. The doctor's own estimate of its overhead (time in the
doctor / time of the steps) and the steps it examined are printed too.

Run: python benchmarks/doctor_overhead.py [--model mlp|cnn] [--rounds 5] [--steps 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

from _common import (
    gw_model,
    initial_weights,
    load_fashion_mnist,
    machine_description,
    print_table,
    setup_threads,
    verdict,
)

from gradwise import nn
from gradwise.doctor import Doctor
from gradwise.optim import SGD
from gradwise.train import Trainer

BATCH = 128


def measure(contenders: dict, rounds: int, pause: float = 0.3) -> tuple[dict, dict]:
    """Median wall-clock and process-CPU seconds per call, contenders interleaved round by round.

    CPU time (all threads of this process) is reported too: on a shared, busy machine the wall
    clock also counts the time other processes held the cores, CPU time does not.
    """
    for fn in contenders.values():
        fn()  # warm-up
    wall: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            time.sleep(pause)
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
    return ({n: statistics.median(t) for n, t in wall.items()},
            {n: statistics.median(t) for n, t in cpu.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    args = parser.parse_args()
    setup_threads()
    images, labels, source = load_fashion_mnist()
    x, y = images[: args.steps * BATCH], labels[: args.steps * BATCH]
    if args.model == "cnn":
        x = x.reshape(len(x), 1, 28, 28)
    weights = initial_weights(args.model)
    doctors: list[Doctor] = []

    def train(with_doctor: bool) -> None:
        model = gw_model(args.model, weights)
        optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9)
        doctor = Doctor() if with_doctor else None
        trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, metrics=(), progress=False,
                          doctor=doctor)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit((x, y), epochs=1, batch_size=BATCH)
        if doctor is not None:
            doctors.append(doctor)

    wall, cpu = measure({"without": lambda: train(False), "with doctor": lambda: train(True)},
                        args.rounds)
    print(machine_description())
    print(f"data: {source}; {args.steps} steps of batch {BATCH} per run, {args.rounds} rounds")
    last = doctors[-1]
    rows = []
    for label, times in (("wall", wall), ("CPU", cpu)):
        ratio = times["with doctor"] / times["without"]
        rows += [
            (f"step without doctor ({label})", f"{times['without'] / args.steps * 1e3:.3f} ms", ""),
            (f"step with doctor ({label})", f"{times['with doctor'] / args.steps * 1e3:.3f} ms",
             verdict(ratio, 1.05)),
        ]
    title = "784-256-128-10 MLP" if args.model == "mlp" else "recipe CNN"
    print_table(f"Doctor overhead ({title}, SGD, Trainer)", rows + [
        ("doctor's own estimate", f"{last.overhead:.2%}", ""),
        ("examined steps", f"{len(last.stats.sampled_steps)} of {last.steps_seen}",
         f"interval {last.interval}"),
    ])


if __name__ == "__main__":
    main()
