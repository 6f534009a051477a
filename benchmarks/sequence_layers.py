"""Training-step speed of the issue-11 sequence layers against PyTorch: a 2-layer LSTM and a
GRU (hidden 64) over sequences of 50 and 200 steps, and a 2-layer Transformer encoder (d 64,
4 heads) over 50 tokens; batch 16, forward + backward of the summed output.

Both frameworks start from the same weights (PyTorch's initialisation, copied) and the same
input; calls are interleaved round by round (``_common.interleaved``) and the medians
reported. gradwise's recurrent layers run their time loop in Python (a cell per step), so the
ratio grows with the number of steps; no target is set (issue 11 asks for PyTorch's values, not
its speed), the figures are reported.

Run: python benchmarks/sequence_layers.py [--rounds 5] [--threads N]
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import interleaved, machine_description, print_table, setup_threads, torch

import gradwise as gw


def _pair(build: str, steps: int) -> tuple:
    torch.manual_seed(0)
    theirs = eval(build, {"nn": torch.nn})  # noqa: S307 - our own constant expressions
    ours = eval(build, {"nn": gw.nn})  # noqa: S307
    ours.load_state_dict(theirs.state_dict())
    x = np.random.default_rng(0).normal(size=(16, steps, 64)).astype(np.float32)
    ours_x, theirs_x = gw.tensor(x), torch.from_numpy(x)

    def first(output):
        return output[0] if isinstance(output, tuple) else output

    def ours_step() -> None:
        first(ours(ours_x)).sum().backward()

    def theirs_step() -> None:
        first(theirs(theirs_x)).sum().backward()

    return ours_step, theirs_step


CASES = [
    ("LSTM 2x64, 50 steps", "nn.LSTM(64, 64, num_layers=2, batch_first=True)", 50),
    ("LSTM 2x64, 200 steps", "nn.LSTM(64, 64, num_layers=2, batch_first=True)", 200),
    ("GRU 64, 50 steps", "nn.GRU(64, 64, batch_first=True)", 50),
    ("Transformer encoder 2x(64, 4 heads), 50 tokens",
     "nn.TransformerEncoder(nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, "
     "batch_first=True), 2, enable_nested_tensor=False)", 50),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if torch is None:
        raise SystemExit("sequence_layers.py compares against PyTorch, which is not installed")
    cores = setup_threads(args.threads)
    print(machine_description(), f"| torch threads {cores}")
    rows = []
    for label, build, steps in CASES:
        ours_step, theirs_step = _pair(build, steps)
        medians = interleaved({"gradwise": ours_step, "torch": theirs_step},
                              repeats=args.rounds)
        ratio = medians["gradwise"] / medians["torch"]
        rows.append((label, f"{medians['gradwise'] * 1e3:.1f} ms",
                     f"{ratio:5.1f}x torch ({medians['torch'] * 1e3:.1f} ms)"))
    print_table("forward + backward, batch 16 (medians)", rows)


if __name__ == "__main__":
    main()
