"""What a newcomer gets wrong under mpiexec gets a clear error or the right behaviour, never
a job that silently trains each rank alone, returns garbage or dies at the end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from distributed.mpi_helpers import run

HERE = Path(__file__).parent
GRADWISE = str(Path(sys.executable).with_name("gradwise"))


def test_forgotten_init_mismatched_models_and_the_doctor_on_every_rank(mpi, tmp_path: Path
                                                                        ) -> None:
    run(mpi, 2, [sys.executable, str(HERE / "misuse_worker.py"), str(tmp_path)])
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for rank, r in enumerate(ranks):
        assert r["get_rank_before_init"].startswith(
            "get_rank: this process was started by an MPI launcher with 2 processes but "
            "gw.distributed.init() was not called")
        assert not r["initialized_before_sampler"]
        assert r["sampler"] == [2, rank, list(range(rank, 10, 2))]
        assert r["ddp_mismatch"] == (
            "DistributedDataParallel: the model differs across ranks: rank 0 has weight of "
            "shape (16, 2) float32, rank 1 has weight of shape (17, 2) float32; build the same "
            "model on every rank")
        assert r["findings"] == ranks[0]["findings"]
        assert r["findings"].startswith("gradwise doctor:")
    assert ranks[0]["doctor_names"] == [["0.bias", "0.weight", "2.bias", "2.weight"], ["1"]]


def test_train_without_distributed_under_mpiexec_is_refused(mpi, tmp_path: Path) -> None:
    done = run(mpi, 2, [GRADWISE, "train", "xor", "--out", str(tmp_path / "run")], check=False)
    assert done.code == 2, done.out
    assert done.out.count("did you mean 'mpiexec -n N gradwise train ... --distributed'?") \
        == 1, done.out
    assert not (tmp_path / "run").exists()
    done = run(mpi, 2, [GRADWISE, "recipes"], check=False)  # any other command: one process
    assert done.code == 2, done.out
    assert done.out.count("'recipes' runs in one process") == 1, done.out


def test_ctrl_c_after_training_changes_nothing(mpi, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = run(mpi, 2, [sys.executable, str(HERE / "end_phase_worker.py"), "train", "xor",
                        "--distributed", "--epochs", "2", "--no-doctor", "--out", str(run_dir)],
               check=False)
    assert done.code == 0, done.out
    assert done.out.count("SIGINT received") <= 1, "only rank 0 speaks"
    assert "batch size 32 per rank x 2 ranks = 64" in done.out
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "finished", info
    assert (info["ranks"], info["global_batch_size"]) == (2, 64)
