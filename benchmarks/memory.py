"""Memory: peak RSS of a training run, and RSS over 10 epochs on a subset (graph leak check).

Each framework trains in its own subprocess, so peaks don't mix. The peak is the kernel's
high-water mark of the resident set (``VmHWM``), reset after the data are loaded (decoding the
data set would dominate it otherwise), so it includes the peak inside a step; where the reset
is refused, the RSS sampled after every step. The leak
check records the resident set after every epoch; a graph kept alive by mistake (a saved
tensor, a hook, an accumulating list) shows up as steady growth.

Run: python benchmarks/memory.py [--subset 2048] [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

import numpy as np

BATCH = 128


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process's RSS (``VmHWM``), so that it measures
    from now on: Linux's ``/proc/self/clear_refs`` (value 5, since 4.0). False where refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """``VmHWM`` (the highest RSS since start or :func:`reset_peak_rss`), or None if unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def child(framework: str, kind: str, subset: int, epochs: int) -> None:
    """Train ``kind`` in ``framework`` and print {peak_mb, rss_per_epoch_mb} as JSON."""
    from _common import (
        gw_model,
        gw_optimizer,
        gw_step,
        initial_weights,
        load_fashion_mnist,
        setup_threads,
        torch,
        torch_cnn,
        torch_mlp,
        torch_step,
    )

    setup_threads()
    images, labels, _ = load_fashion_mnist()
    images, labels = images[:subset].copy(), labels[:subset].copy()  # drop the full set
    batches = [(images[i : i + BATCH], labels[i : i + BATCH]) for i in range(0, subset, BATCH)]
    if framework == "gradwise":
        model = gw_model(kind, initial_weights(kind))
        optimizer, _ = gw_optimizer("adam", list(model.parameters()), lr=1e-3)

        def step(x, y):
            return gw_step(model, optimizer, x, y)
    else:
        model = torch_mlp() if kind == "mlp" else torch_cnn()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]

        def step(x, y):
            return torch_step(model, optimizer, x, y)
    baseline = current_rss_mb()
    # the kernel's high-water mark, reset after loading the data: it sees the peak *inside* a
    # step (activations and gradients alive during backward), which sampling between steps misses
    high_water = reset_peak_rss()
    rss, peak, after_first = [], baseline, None
    for _ in range(epochs):
        for x, y in batches:
            step(x, y)
            now = current_rss_mb()
            peak = max(peak, now)
            if after_first is None:
                # one-time costs of the first step: gradwise maps numba's compiled kernels
                # (llvmlite and the cached machine code, ~50 MB), PyTorch its lazy kernels
                after_first = now
        rss.append(current_rss_mb())
    process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    in_step = peak_rss_mb() if high_water else None
    if in_step is not None:
        peak = max(peak, in_step)
    print(json.dumps({"baseline_mb": baseline, "after_first_step_mb": after_first,
                      "peak_source": "VmHWM" if in_step is not None else "sampled",
                      "peak_mb": peak, "rss_mb": rss, "process_peak_mb": process_peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.subset, args.epochs)
        return
    from _common import machine_description, print_table, torch

    frameworks = ["gradwise"] + (["pytorch"] if torch is not None else [])
    print(machine_description())
    for kind in ("mlp", "cnn"):
        rows = []
        peaks: dict[str, float] = {}
        for framework in frameworks:
            result = subprocess.run(
                [sys.executable, __file__, "--child", framework, kind,
                 "--subset", str(args.subset), "--epochs", str(args.epochs)],
                capture_output=True, text=True, check=True,
                cwd=os.path.dirname(os.path.abspath(__file__)),
            )
            data = json.loads(result.stdout.strip().splitlines()[-1])
            rss = np.array(data["rss_mb"])
            # growth from epoch 2 on (epoch 1 includes one-time allocations: optimizer state ...)
            growth = rss[-1] - rss[1] if len(rss) > 1 else 0.0
            flat = "flat" if growth < 5 else "GROWING"
            peaks[framework] = data["peak_mb"]
            rows.append((f"{framework} training peak RSS", f"{data['peak_mb']:8.1f} MB",
                         f"+{data['peak_mb'] - data['baseline_mb']:.0f} MB over the "
                         f"{data['baseline_mb']:.0f} MB before training ("
                         + ("kernel's high-water mark, within steps" if data["peak_source"]
                            == "VmHWM" else "sampled between steps") + ")"))
            rows.append((f"{framework} first step (one-time)",
                         f"{data['after_first_step_mb'] - data['baseline_mb']:+8.1f} MB",
                         "RSS after step 1: libraries and kernels loaded, optimizer state"))
            rows.append((f"{framework} peak over RSS after step 1",
                         f"{data['peak_mb'] - data['after_first_step_mb']:+8.1f} MB",
                         "what a step holds at its peak (activations, gradients)"))
            rows.append((f"{framework} RSS epoch 2 -> {len(rss)}",
                         f"{growth:+8.1f} MB", f"{flat} (per epoch: "
                         + " ".join(f"{v:.0f}" for v in rss) + " MB)"))
        if len(peaks) == 2:
            ratio = peaks["gradwise"] / peaks["pytorch"]
            rows.append(("gradwise / pytorch peak RSS", "",
                         f"{ratio:.2f}x (target <= 1.0x: {'met' if ratio <= 1.0 else 'MISSED'})"))
        print_table(f"{kind.upper()} training memory ({args.subset} images x {args.epochs} "
                    "epochs, Adam, batch 128)", rows)


if __name__ == "__main__":
    main()
