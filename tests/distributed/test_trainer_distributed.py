"""Trainer(distributed=True) under mpiexec: equivalence, kill and resume, dead and hung ranks."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distributed.mpi_helpers import assert_states, load_state, parameter_keys, run, worker

# 50 samples, batch 4 per rank: 2 ranks take 7 steps per epoch, 3 ranks 5
STEPS_PER_EPOCH = {2: 7, 3: 5}


def _history(path: Path) -> list[dict]:
    return json.loads((path / "history.json").read_text())["epochs"]


@pytest.mark.parametrize(("model", "ranks"), [("mlp", 2), ("cnn", 3)])
def test_trainer_matches_one_process_across_a_kill_and_resume(
    mpi, tmp_path: Path, model: str, ranks: int
) -> None:
    full, killed = tmp_path / "full", tmp_path / "killed"
    full.mkdir(), killed.mkdir()
    flags = ["--model", model, "--epochs", "2", "--deterministic"]
    run(mpi, ranks, worker("trainer", *flags, "--out", str(full)))
    # rank 1 is SIGKILLed mid-epoch 2, after a checkpoint at step 6 (mid-epoch too)
    died = run(mpi, ranks, worker("trainer", *flags, "--out", str(killed),
                                  "--checkpoint-every", "6", "--die-at-step", "8"), check=False)
    assert died.code != 0, died.out
    assert not (killed / "rank0.npz").exists(), "the job went on after a rank died"
    run(mpi, ranks, worker("trainer", *flags, "--out", str(killed),
                           "--resume", str(killed / "ckpt")))
    steps = 2 * STEPS_PER_EPOCH[ranks]
    run(mpi, 0, worker("reference", "--ranks", str(ranks), "--model", model, "--steps",
                       str(steps), "--deterministic", "--out", str(tmp_path)))
    reference = load_state(tmp_path / "reference.npz")
    for folder in (full, killed):
        assert_states(load_state(folder / "rank0.npz"), reference, True, what=str(folder.name))
        for rank in range(1, ranks):
            other = load_state(folder / f"rank{rank}.npz")
            assert_states(other, reference, True, parameter_keys(reference),
                          what=f"{folder.name} rank {rank}")
    # metrics are reduced over ranks: the resumed epoch reports what the full run reported
    assert _history(killed) == [
        {**record, "epoch_time": record_k["epoch_time"]}
        for record, record_k in zip(_history(full), _history(killed), strict=True)
    ]
    padded = 50 if ranks == 2 else 51  # 3 ranks: the sampler repeats one sample
    assert [e["samples"] for e in _history(full)] == [padded] * 2


def test_resume_with_another_number_of_ranks_sees_every_sample(mpi, tmp_path: Path) -> None:
    flags = ["--model", "mlp", "--epochs", "3", "--out", str(tmp_path)]
    died = run(mpi, 3, worker("trainer", *flags, "--checkpoint-every", "4",
                              "--die-at-step", "9"), check=False)
    assert died.code != 0
    run(mpi, 2, worker("trainer", *flags, "--resume", str(tmp_path / "ckpt")))
    history = _history(tmp_path)
    assert [e["epoch"] for e in history] == [1, 2, 3]
    # epoch 1 on 3 ranks (50 + 1 padding); epoch 2: 3 steps of 3x4 on 3 ranks (36 samples),
    # then the other 14 dealt to 2 ranks; epoch 3 on 2 ranks (no padding needed)
    assert [e["samples"] for e in history] == [51, 50, 50]
    states = [load_state(tmp_path / f"rank{rank}.npz") for rank in range(2)]
    assert_states(states[1], states[0], True)


def test_a_dead_rank_ends_the_job(mpi, tmp_path: Path) -> None:
    result = run(mpi, 3, worker("trainer", "--model", "mlp", "--epochs", "3", "--out",
                                str(tmp_path), "--die-at-step", "3"), check=False, timeout=60)
    assert result.code != 0
    assert result.seconds < 30, result.out


def test_a_hung_rank_times_out_with_a_clear_error(mpi, tmp_path: Path) -> None:
    result = run(mpi, 3, worker("trainer", "--model", "mlp", "--epochs", "3", "--out",
                                str(tmp_path), "--hang-at-step", "3"),
                 env={"GRADWISE_DIST_TIMEOUT": "2"}, check=False, timeout=60)
    assert result.code != 0
    assert "waited 2 s in all_reduce" in result.out, result.out
    assert "aborting every rank" in result.out
    assert result.seconds < 30, result.out


def test_a_per_step_schedule_resumes_only_on_its_number_of_ranks(mpi, tmp_path: Path) -> None:
    flags = ["--model", "mlp", "--epochs", "2", "--onecycle", "--out", str(tmp_path)]
    died = run(mpi, 3, worker("trainer", *flags, "--checkpoint-every", "3",
                              "--die-at-step", "4"), check=False)
    assert died.code != 0
    refused = run(mpi, 2, worker("trainer", *flags, "--resume", str(tmp_path / "ckpt")),
                  check=False)
    assert refused.code != 0
    assert "per-step schedule (OneCycleLR)" in refused.out
    assert "Resume it with mpiexec -n 3" in refused.out
    run(mpi, 3, worker("trainer", *flags, "--resume", str(tmp_path / "ckpt")))
    assert [e["epoch"] for e in _history(tmp_path)] == [1, 2]


def test_ctrl_c_without_a_handler_ends_every_rank_at_once(mpi, tmp_path: Path) -> None:
    """A script with no SIGINT handler: each rank's KeyboardInterrupt aborts the whole job."""
    process = subprocess.Popen(
        mpi.command(3, worker("trainer", "--epochs", "500", "--out", str(tmp_path))),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=mpi.env,
        stdin=subprocess.DEVNULL)
    try:
        for line in process.stdout:
            if line.startswith("epoch 2/"):
                process.send_signal(signal.SIGINT)  # mpiexec forwards it to every rank
                started = time.perf_counter()
                break
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert "stopped with KeyboardInterrupt; aborting every rank of the job" in out
    assert time.perf_counter() - started < 30


_SAVE_INTO_A_FILE = """
import sys
import numpy as np
import gradwise as gw
from gradwise.train import Trainer
from gradwise.train.checkpoint import CheckpointError

gw.distributed.init()
model = gw.nn.Linear(3, 2, rng=0)
trainer = Trainer(model, gw.nn.CrossEntropyLoss(), gw.optim.SGD(model.parameters(), lr=0.1),
                  progress=False, distributed=True)
rng = np.random.default_rng(0)
trainer.fit((rng.standard_normal((12, 3)), rng.integers(0, 2, 12)), epochs=1, batch_size=2)
rank = gw.distributed.get_rank()
good = trainer.save_checkpoint(sys.argv[1] + "/good")
lines = [f"rank {rank} saved {good.name} {(good / 'checkpoint.json').is_file()}"]
try:
    trainer.save_checkpoint(sys.argv[1] + "/a-file/ckpt")  # its parent is a file
except Exception as error:
    lines.append(f"rank {rank} {type(error).__name__} {str(error)[:60]}")
with open(f"{sys.argv[1]}/rank{rank}.txt", "w") as f:  # files: stdout lines may interleave
    f.write("\\n".join(lines))
"""


def test_rank_zero_writes_and_every_rank_learns_the_outcome(mpi, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    run(mpi, 3, [sys.executable, "-c", _SAVE_INTO_A_FILE, str(tmp_path)])
    out = "\n".join((tmp_path / f"rank{rank}.txt").read_text() for rank in range(3))
    # the others wait for rank 0's write, so each sees the finished checkpoint
    for rank in range(3):
        assert f"rank {rank} saved good True" in out, out
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["good"]
    failures = [line for line in out.splitlines() if "Error" in line]
    assert len(failures) == 3, out
    for line in failures:
        if not line.startswith("rank 0 "):
            assert "CheckpointError rank 0 could not write the checkpoint" in line, line
