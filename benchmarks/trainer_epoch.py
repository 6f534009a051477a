"""One Fashion-MNIST epoch through ``Trainer.fit`` against the same training loop in PyTorch.

784-256-128-10 ReLU MLP, SGD momentum 0.9, lr 0.01, batch 128, shuffled every epoch, the full
60,000 images. gradwise trains with ``Trainer(..., metrics=("accuracy",), progress=False)``, so
its time includes the DataLoader, the accuracy metric and the callbacks machinery; PyTorch runs
the same loop by hand (shuffled index batches, loss.item() and an accuracy count per step).
Rounds alternate between the two, median of ``--rounds``.

Run: python benchmarks/trainer_epoch.py [--rounds 3]
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import (
    gw_model,
    initial_weights,
    interleaved,
    load_fashion_mnist,
    machine_description,
    print_table,
    setup_threads,
    torch,
    torch_mlp,
)

import gradwise as gw
from gradwise.train import Trainer

BATCH = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setup_threads()
    images, labels, source = load_fashion_mnist()
    images = images.reshape(len(images), -1)
    weights = initial_weights("mlp")

    model = gw_model("mlp", weights)
    optimizer = gw.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    trainer = Trainer(model, gw.nn.CrossEntropyLoss(), optimizer, progress=False, seed=0)
    contenders = {
        "gradwise Trainer.fit": lambda: trainer.fit((images, labels), epochs=1, batch_size=BATCH),
    }
    if torch is not None:
        t_model = torch_mlp()
        t_optimizer = torch.optim.SGD(t_model.parameters(), lr=0.01, momentum=0.9)
        t_images, t_labels = torch.from_numpy(images), torch.from_numpy(labels)
        rng = np.random.default_rng(0)

        def torch_epoch() -> None:
            order = torch.from_numpy(rng.permutation(len(images)))
            correct = 0
            for start in range(0, len(images), BATCH):
                index = order[start : start + BATCH]
                x, y = t_images[index], t_labels[index]
                t_optimizer.zero_grad()
                logits = t_model(x)
                loss = torch.nn.functional.cross_entropy(logits, y)
                loss.backward()
                t_optimizer.step()
                loss.item()
                correct += int((logits.argmax(1) == y).sum())

        contenders["pytorch loop"] = torch_epoch
    seconds = interleaved(contenders, repeats=args.rounds)

    print(machine_description())
    print(f"data: {source}")
    rows = [(name, f"{s:8.2f} s", "") for name, s in seconds.items()]
    if "pytorch loop" in seconds:
        ratio = seconds["gradwise Trainer.fit"] / seconds["pytorch loop"]
        rows.append(("gradwise / pytorch", "", f"{ratio:5.2f}x"))
    print_table(f"MLP epoch through Trainer.fit, 60,000 images (median of {args.rounds})", rows)


if __name__ == "__main__":
    main()
