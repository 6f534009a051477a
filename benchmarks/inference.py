"""Inference throughput (images/s) of the MLP and the CNN: gradwise under no_grad vs PyTorch under
inference_mode, same weights, batch 256, interleaved rounds (target >= 1.0x PyTorch).

The process calls ``gradwise._malloc.reuse_freed_memory()`` first (both contenders share the
process, so both get it); ``--default-malloc`` skips it.

Run: python benchmarks/inference.py [--rounds 5] [--default-malloc]
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import (
    gw_model,
    initial_weights,
    interleaved,
    load_fashion_mnist,
    load_line,
    machine_description,
    numpy_path,
    print_table,
    setup_threads,
    torch,
    torch_cnn,
    torch_mlp,
    verdict,
)

import gradwise as gw
from gradwise._malloc import reuse_freed_memory

BATCH = 256
BATCHES = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc thresholds alone")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both frameworks (default: all cores)")
    args = parser.parse_args()
    tuned = False if args.default_malloc else reuse_freed_memory()
    setup_threads(args.threads)
    print(load_line("start"))
    images, _, source = load_fashion_mnist()
    batches = [images[i : i + BATCH] for i in range(0, BATCH * BATCHES, BATCH)]
    print(machine_description())
    print(f"data: {source}; allocator: "
          f"{'freed memory reused (reuse_freed_memory)' if tuned else 'default malloc'}")
    for kind in ("mlp", "cnn"):
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
                diff = np.abs(model(gw.Tensor(batches[0])).data
                              - t_model(t_batches[0]).numpy()).max()
            print(f"{kind}: max |gradwise - pytorch| on one batch: {diff:.2e}")
        seconds = interleaved(contenders, repeats=args.rounds)
        print(load_line(f"end of {kind}"))
        rate = {name: BATCH * BATCHES / s for name, s in seconds.items()}
        rows = [(name, f"{r:10.0f} img/s", "") for name, r in rate.items()]
        if "pytorch" in rate:
            rows.append(("gradwise / pytorch (throughput)", "",
                         verdict(rate["gradwise"] / rate["pytorch"], 1.0, lower_is_better=False)))
            rows.append(("gradwise NumPy path / pytorch", "",
                         f"{rate['gradwise, NumPy path'] / rate['pytorch']:.2f}x"))
        print_table(f"{kind.upper()} inference, batch {BATCH} (median of {args.rounds} rounds "
                    f"x {BATCHES} batches)", rows)


if __name__ == "__main__":
    main()
