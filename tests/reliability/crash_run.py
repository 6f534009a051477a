"""A small training run for the crash tests, run as a subprocess:
``python crash_run.py RUN_DIR [EPOCHS]`` (EPOCHS defaults to 16).

It checkpoints to ``RUN_DIR/last`` after every CHECKPOINT_EVERY steps (mid-epoch checkpoints,
the hardest case for exact resume), resumes from ``RUN_DIR/last`` when it exists, and at the
end writes ``RUN_DIR/final.safetensors`` and prints ``DONE``. It prints ``STARTED`` once
training (or the resume) is about to begin, so the test can time its kills into the run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import safetensors.numpy

import gradwise as gw
from gradwise.data.toy import make_spirals
from gradwise.train import Callback, Trainer

EPOCHS = 16
CHECKPOINT_EVERY = 7


class CheckpointEverySteps(Callback):
    """Save the whole run to ``path`` every ``every`` optimizer steps."""

    def __init__(self, path: Path, every: int):
        self.path, self.every = path, every

    def on_batch_end(self, step: int, logs: dict) -> None:
        if (step + 1) % self.every == 0:
            self.trainer.save_checkpoint(self.path)


def main(run_dir: Path, epochs: int = EPOCHS) -> None:
    x, y = make_spirals(n_samples=600, seed=0)
    rng = np.random.default_rng(1)
    model = gw.nn.Sequential(
        gw.nn.Linear(2, 128, rng=rng), gw.nn.ReLU(),
        gw.nn.Linear(128, 128, rng=rng), gw.nn.ReLU(),
        gw.nn.Linear(128, 2, rng=rng),
    )
    optimizer = gw.optim.Adam(model.parameters(), lr=1e-2)
    last = run_dir / "last"
    trainer = Trainer(model, gw.nn.CrossEntropyLoss(), optimizer, seed=3, progress=False,
                      callbacks=[CheckpointEverySteps(last, CHECKPOINT_EVERY)])
    resume = last if (last / "checkpoint.json").exists() else None
    print("STARTED", flush=True)
    trainer.fit((x, y), epochs=epochs, batch_size=16, resume_from=resume)
    safetensors.numpy.save_file(dict(model.state_dict()), str(run_dir / "final.safetensors"))
    print("DONE", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), *(int(arg) for arg in sys.argv[2:3]))
