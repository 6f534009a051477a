"""Inference throughput (images/s) of the MLP and the CNN: gradwise under no_grad vs PyTorch under
inference_mode, same weights, batch 256, interleaved rounds (target >= 1.0x PyTorch).

Each round runs every contender over ``--batches`` batches; the table gives the median of the
rounds on two clocks, wall time and process CPU time, with the spread of the rounds (slowest /
fastest). With ``--threads 1`` the verdict is the CPU-time ratio (a busy machine's waiting is
not counted); with more threads it is the wall-time ratio, withheld when the load or the
spread says the run measured the machine. The process calls
``gradwise._malloc.reuse_freed_memory()`` first (both contenders share the process, so both get
it); ``--default-malloc`` skips it.

Run: python benchmarks/inference.py [--rounds 9] [--batches 20] [--threads N] [--default-malloc]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from _common import (
    cpu_verdict,
    gw_model,
    initial_weights,
    load_fashion_mnist,
    load_line,
    machine_description,
    numpy_path,
    print_table,
    setup_threads,
    spread,
    timed_rounds,
    torch,
    torch_cnn,
    torch_mlp,
    verdict,
)

import gradwise as gw
from gradwise._malloc import reuse_freed_memory

BATCH = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batches", type=int, default=20, help="batches of 256 per round")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc thresholds alone")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both frameworks (default: all cores)")
    parser.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp, cnn")
    args = parser.parse_args()
    tuned = False if args.default_malloc else reuse_freed_memory()
    setup_threads(args.threads)
    print(load_line("start"))
    images, _, source = load_fashion_mnist()
    batches = [images[i : i + BATCH] for i in range(0, BATCH * args.batches, BATCH)]
    print(machine_description())
    print(f"data: {source}; allocator: "
          f"{'freed memory reused (reuse_freed_memory)' if tuned else 'default malloc'}")
    clock = "cpu" if args.threads == 1 else "wall"
    for kind in args.models.split(","):
        model = gw_model(kind, initial_weights(kind))
        model.eval()

        gw_batches = [gw.from_numpy(x) for x in batches]  # shared memory, as torch.from_numpy

        def gw_run(model=model, gw_batches=gw_batches) -> None:
            with gw.no_grad():
                for x in gw_batches:
                    model(x)

        contenders = {"gradwise": gw_run, "gradwise, NumPy path": numpy_path(gw_run)}
        if torch is not None:
            t_model = (torch_mlp() if kind == "mlp" else torch_cnn()).eval()
            t_batches = [torch.from_numpy(x) for x in batches]

            def torch_run(t_model=t_model, t_batches=t_batches) -> None:
                with torch.inference_mode():
                    for x in t_batches:
                        t_model(x)

            contenders["pytorch"] = torch_run
            with gw.no_grad(), torch.inference_mode():
                diff = np.abs(model(gw_batches[0])._data
                              - t_model(t_batches[0]).numpy()).max()
            print(f"{kind}: max |gradwise - pytorch| on one batch: {diff:.2e}")
        rounds = timed_rounds(contenders, repeats=args.rounds)
        print(load_line(f"end of {kind}"))
        images_per_round = BATCH * args.batches
        rate = {name: {c: images_per_round / statistics.median(r[c]) for c in ("wall", "cpu")}
                for name, r in rounds.items()}
        rows = [(name, f"{rate[name]['wall']:9.0f} img/s",
                 f"CPU time: {rate[name]['cpu']:9.0f} img/s; rounds spread "
                 f"wall {spread(r['wall']):.2f}x, CPU {spread(r['cpu']):.2f}x")
                for name, r in rounds.items()]
        for name in ("gradwise", "gradwise, NumPy path"):
            if "pytorch" not in rate:
                break
            ratio = rate[name][clock] / rate["pytorch"][clock]
            if clock == "cpu":
                shown = cpu_verdict(ratio, 1.0, [spread(rounds[n]["cpu"])
                                                 for n in (name, "pytorch")],
                                    lower_is_better=False)
            else:
                shown = verdict(ratio, 1.0, lower_is_better=False)
            other = "cpu" if clock == "wall" else "wall"
            other_ratio = rate[name][other] / rate["pytorch"][other]
            rows.append((f"{name} / pytorch ({clock} time)", "",
                         f"{shown}; {other} time {other_ratio:.2f}x"))
        kernels = rate["gradwise"][clock] / rate["gradwise, NumPy path"][clock]
        rows.append((f"gradwise / its NumPy path ({clock} time)", "", f"{kernels:.2f}x"))
        print_table(f"{kind.upper()} inference throughput, batch {BATCH} (median of {args.rounds} "
                    f"rounds x {args.batches} batches)", rows)


if __name__ == "__main__":
    main()
