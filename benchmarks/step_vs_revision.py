"""This checkout's training step against an earlier revision's, in alternating processes.

Guards the "no slowdown over 3%" promises of engine changes: the MLP (784-256-128-10, SGD
momentum, batch 128), CNN (two conv blocks, Adam, batch 64) and CIFAR-style (cifar_step.py's
"classic" net: 3 input channels, 5x5 kernels, SGD momentum, batch 64) steps are timed in fresh
processes, alternating base and head, one BLAS thread each (so the two do not fight over cores),
process CPU time per step, median over steps and then over pairs. Prints each pair and the
median head/base ratio.

Run: python benchmarks/step_vs_revision.py --base 38d66ca [--pairs 6] [--nets mlp,cnn,cifar]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STEP = """
import time
import numpy as np
import gradwise as gw
from gradwise import nn
from gradwise.nn import functional as F
rng = np.random.default_rng(0)
if "{net}" == "cifar":
    x = rng.standard_normal((64, 3, 32, 32)).astype(np.float32)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 5, rng=0), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, rng=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120, rng=2), nn.ReLU(), nn.Linear(120, 84, rng=3), nn.ReLU(),
        nn.Linear(84, 10, rng=4))
    optimizer = gw.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    warm, steps = 5, 60
elif "{net}" == "cnn":
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, rng=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(64 * 49, 128, rng=2), nn.ReLU(), nn.Linear(128, 10, rng=3))
    optimizer = gw.optim.Adam(model.parameters(), lr=1e-3)
    warm, steps = 3, 25
else:
    x = rng.standard_normal((128, 784)).astype(np.float32)
    model = nn.Sequential(nn.Linear(784, 256, rng=0), nn.ReLU(), nn.Linear(256, 128, rng=1),
                          nn.ReLU(), nn.Linear(128, 10, rng=2))
    optimizer = gw.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    warm, steps = 20, 600
x = gw.from_numpy(x)
y = gw.from_numpy(rng.integers(0, 10, len(x)))
def step():
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
for _ in range(warm):
    step()
times = []
for _ in range(steps):
    start = time.process_time()
    step()
    times.append(time.process_time() - start)
print(float(np.median(times)) * 1e3)
"""


NAMES = {"mlp": "MLP", "cnn": "CNN", "cifar": "CIFAR classic"}


def _time(src: Path, net: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", STEP.format(net=net)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--pairs", type=int, default=6, help="alternating base/head pairs")
    parser.add_argument("--nets", default="mlp,cnn,cifar",
                        help="comma-separated steps to time: mlp, cnn, cifar")
    args = parser.parse_args()
    unknown = [net for net in args.nets.split(",") if net not in NAMES]
    if unknown:
        parser.error(f"--nets: unknown {', '.join(unknown)} (choose from {', '.join(NAMES)})")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(base),
                        args.base], check=True)
        try:
            for net in args.nets.split(","):
                name = f"{NAMES[net]} step"
                ratios = []
                for pair in range(args.pairs):
                    old, new = _time(base / "src", net), _time(ROOT / "src", net)
                    ratios.append(new / old)
                    print(f"{name} pair {pair + 1}: base {old:.3f} ms, head {new:.3f} ms")
                print(f"{name}: median head/base {statistics.median(ratios):.3f} "
                      f"(range {min(ratios):.3f}-{max(ratios):.3f})")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                           check=False)


if __name__ == "__main__":
    main()
