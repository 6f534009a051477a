"""A small training run for the crash tests, run as a subprocess:
``python crash_run.py RUN_DIR [EPOCHS]`` (EPOCHS defaults to 16).

It checkpoints to ``RUN_DIR/last`` every CHECKPOINT_EVERY steps (mid-epoch checkpoints, the
hardest case for exact resume), keeps ``RUN_DIR/ckpt/best`` and ``RUN_DIR/ckpt/last`` with
ModelCheckpoint(save_best_only=True, save_last=True), stops early with EarlyStopping (which
restores the best weights), logs ``RUN_DIR/metrics.jsonl``, resumes from ``RUN_DIR/last`` when
it exists, and at the end writes ``RUN_DIR/final.safetensors`` and ``RUN_DIR/history.json`` and
prints ``DONE``. It prints ``STARTED`` once training (or the resume) is about to begin.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import gradwise as gw
from gradwise._atomic import atomic_write_bytes, remove_leftover_temp_files
from gradwise.data.toy import make_spirals
from gradwise.safetensors_io import dump_safetensors
from gradwise.train import (
    Callback,
    EarlyStopping,
    JSONLinesLogger,
    ModelCheckpoint,
    Trainer,
)

EPOCHS = 16
CHECKPOINT_EVERY = 5


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
    callbacks = [
        EarlyStopping(monitor="val_loss", patience=4, min_delta=1e-3,
                      restore_best_weights=True),
        JSONLinesLogger(run_dir / "metrics.jsonl"),
        CheckpointEverySteps(last, CHECKPOINT_EVERY),
        ModelCheckpoint(run_dir / "ckpt", monitor="val_accuracy", save_best_only=True,
                        save_last=True),
    ]
    trainer = Trainer(model, gw.nn.CrossEntropyLoss(), optimizer, seed=3, progress=False,
                      callbacks=callbacks)
    resume = last if (last / "checkpoint.json").exists() else None
    remove_leftover_temp_files(run_dir)  # what a kill mid-write left; nothing writes yet
    print("STARTED", flush=True)
    history = trainer.fit((x[:480], y[:480]), val_data=(x[480:], y[480:]), epochs=epochs,
                          batch_size=16, resume_from=resume)
    history.save(run_dir / "history.json")
    state = {name: np.asarray(value) for name, value in model.state_dict().items()}
    atomic_write_bytes(run_dir / "final.safetensors", dump_safetensors(state))
    print(f"DONE {len(history)} epochs, stop: {history.stop_reason}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), *(int(arg) for arg in sys.argv[2:3]))
