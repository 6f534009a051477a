"""mpiexec -n N gradwise train --distributed: rank 0 talks and writes; Ctrl-C stops every rank."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from distributed.mpi_helpers import Launcher

GRADWISE = str(Path(sys.executable).with_name("gradwise"))


def _interrupt_after(mpi: Launcher, ranks: int, args: list[str], line_prefix: str
                     ) -> tuple[int, str]:
    """Start the command, send SIGINT to mpiexec after a line, return (exit code, output)."""
    process = subprocess.Popen(mpi.command(ranks, [GRADWISE, "train", *args]),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               stdin=subprocess.DEVNULL, env=mpi.env)
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if line.startswith(line_prefix):
                process.send_signal(signal.SIGINT)  # mpiexec forwards it to every rank
                break
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, "".join(lines) + rest


def test_ctrl_c_then_resume_on_another_number_of_ranks(mpi, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    code, out = _interrupt_after(
        mpi, 2, ["spiral", "--distributed", "--epochs", "40", "--no-doctor", "--out",
                 str(run_dir)], "epoch 1/40")
    assert code == 130, out
    assert out.count("epoch 1/40") == 1, "only rank 0 prints"
    assert out.count("Interrupted at") == 1, out
    assert f"Resume with: mpiexec -n N gradwise train --resume {run_dir}" in out  # no schedule
    assert out.count("SIGINT received") == 1, "only rank 0 announces the signal"
    assert (run_dir / "checkpoints/last/checkpoint.json").is_file()
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "interrupted"
    stopped_at = info["step"]

    code, out = _interrupt_after(mpi, 3, ["--resume", str(run_dir), "--distributed"], "epoch ")
    assert code == 130, out
    assert out.count("Resuming spiral") == 1, out
    info = json.loads((run_dir / "run.json").read_text())
    assert info["resumed"] == 1 and info["step"] > stopped_at
    history = json.loads((run_dir / "history.json").read_text())["epochs"]
    assert [e["epoch"] for e in history] == list(range(1, len(history) + 1))
    assert len(history) >= 2  # epoch 2 ran on 2 ranks, then on 3
    # every sample once per epoch, plus at most 2 repeats padding the 3 ranks' shares
    assert all(900 <= e["samples"] <= 902 for e in history), history


def test_a_scheduled_run_names_its_rank_count_to_resume(mpi, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    code, out = _interrupt_after(
        mpi, 2, ["xor", "--distributed", "--epochs", "40", "--schedule", "cosine",
                 "--no-doctor", "--out", str(run_dir)], "epoch 1/40")
    assert code == 130, out
    assert f"Resume with: mpiexec -n 2 gradwise train --resume {run_dir} --distributed" in out
    done = subprocess.run(mpi.command(3, [GRADWISE, "train", "--resume", str(run_dir),
                                          "--distributed"]),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, env=mpi.env,
                          timeout=120)
    assert done.returncode != 0
    assert "taken on 2 rank(s) with a per-step schedule (CosineAnnealingLR)" in done.stderr
    assert "Resume it with mpiexec -n 2" in done.stderr
    assert done.stderr.count("gradwise: error on rank") == 1, "every rank fails; one says so"
