"""Training speed of a small CNN on Fashion-MNIST (Adam, batch 128): gradwise vs PyTorch.

conv3x3-32 pad1, relu, maxpool2, conv3x3-64 pad1, relu, maxpool2, fc128, relu, fc10. Both
frameworks start from the same weights and see the same batches; steps run in interleaved
rounds and the median step time is extrapolated to one epoch (60,000 images), labelled as such.

Run: python benchmarks/cnn_epoch.py [--rounds 5] [--steps 10]
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import (
    gw_model,
    gw_optimizer,
    gw_step,
    initial_weights,
    interleaved,
    load_fashion_mnist,
    machine_description,
    print_table,
    setup_threads,
    torch,
    torch_cnn,
    torch_step,
    verdict,
)

import gradwise as gw

BATCH = 128
TARGET = 0.6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--steps", type=int, default=10, help="training steps per round")
    args = parser.parse_args()
    setup_threads()
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

    seconds = interleaved(contenders, repeats=args.rounds)
    per_step = {name: s / args.steps for name, s in seconds.items()}
    print(machine_description())
    print(f"data: {source}; gradwise optimizer: {optimizer_kind}")
    rows = [
        (f"{name} step", f"{t * 1e3:8.1f} ms", f"epoch (extrapolated, {steps_per_epoch} steps): "
         f"{t * steps_per_epoch:6.1f} s")
        for name, t in per_step.items()
    ]
    if "pytorch" in per_step:
        rows.append(("gradwise / pytorch", "", verdict(per_step["gradwise"] / per_step["pytorch"],
                                                      TARGET)))
    print_table(f"CNN training, batch {BATCH}, Adam ({args.rounds} rounds x {args.steps} steps, "
                "median)", rows)


if __name__ == "__main__":
    main()
