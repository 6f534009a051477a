"""gw.distributed: collectives across ranks, a group of one without MPI, import without mpi4py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradwise as gw
from distributed.mpi_helpers import run
from gradwise import distributed as dist

HERE = Path(__file__).parent


def test_collectives_on_three_ranks(mpi, tmp_path: Path) -> None:
    run(mpi, 3, [sys.executable, str(HERE / "collectives_worker.py"), str(tmp_path)])
    lines = [json.loads(path.read_text()) for path in sorted(tmp_path.glob("rank*.json"))]
    assert sorted(r["rank"] for r in lines) == [0, 1, 2]
    for r in lines:
        assert r["size"] == 3 and r["initialized"]
        assert r["sum"] == [6.0, -6.0]
        assert r["avg"] == [2.0, -2.0]
        assert r["max"] == [3.0, -1.0]
        assert r["min"] == [1.0, -3.0]
        assert r["product"] == [6.0, -6.0]
        assert r["broadcast"] == [2.0, 2.0, 2.0]
        assert r["all_gather"] == [[0, 0], [1, 10], [2, 20]]
        assert r["json"] == [{"r": 0}, {"r": 1}, {"r": 2}]
        assert "ranks hold different shapes" in r["mismatch"]
        assert "rank 0 has (1,) float32, rank 1 has (2,) float32" in r["mismatch"]
        assert r["all_reduce_shape"] == (
            "all_reduce: ranks hold different shapes/dtypes: rank 0 has (2,) float32, rank 1 "
            "has (3,) float32 (every rank must pass the same shape and dtype)")
        assert "rank 0 has (2,) float32, rank 2 has (2,) float64" in r["all_reduce_dtype"]
        assert "broadcast: ranks hold different shapes/dtypes: rank 0 has (2, 1) float32, " \
               "rank 1 has (2, 2) float32" in r["broadcast_shape"]
        assert r["short_list"] == ("all_gather: tensor_list holds 1 tensor(s); it needs one "
                                   "per rank (3)")
        assert r["filled"] == [[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]] and r["filled_in_place"]


def test_a_group_of_one_without_a_launcher() -> None:
    # pytest itself is not started by mpiexec: the group has one process
    group = dist.init()
    assert (group.rank, group.world_size, dist.get_rank(), dist.get_world_size()) == (0, 1, 0, 1)
    assert dist.is_initialized()
    t = gw.tensor([1.0, 2.0])
    assert dist.all_reduce(t, dist.ReduceOp.AVG) is t
    np.testing.assert_array_equal(np.asarray(t.data), [1.0, 2.0])
    np.testing.assert_array_equal(np.asarray(dist.all_gather(None, t)[0].data), [1.0, 2.0])
    assert dist.broadcast_json({"a": [1]}) == {"a": [1]}
    dist.barrier()
    with pytest.raises(ValueError, match="unknown op 'mean'"):
        dist.all_reduce(t, "mean")
    with pytest.raises(ValueError, match="src 1 is not a rank"):
        dist.broadcast(t, src=1)
    with pytest.raises(TypeError, match="AVG needs a floating-point"):
        dist.all_reduce(np.array([1, 2]), dist.ReduceOp.AVG)
    with pytest.raises(ValueError, match="C-contiguous"):
        dist.all_reduce(np.zeros((4, 4))[:, ::2])


_NO_MPI4PY = """
import sys
sys.modules["mpi4py"] = None  # as if it were not installed
import gradwise as gw
from gradwise import distributed as dist
from gradwise.nn.parallel import DistributedDataParallel
print(dist.is_available())
try:
    group = dist.init()
    print(group.world_size)
    model = DistributedDataParallel(gw.nn.Linear(2, 1, rng=0))
    model(gw.ones(3, 2)).sum().backward()
    print("ddp ok")
except dist.DistributedError as error:
    print("error:", error)
"""


def _launcher_free_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI", "OMPI_", "MPI_LOCALNRANKS"))}
    return {**env, **extra}


def test_the_library_works_without_mpi4py() -> None:
    done = subprocess.run([sys.executable, "-c", _NO_MPI4PY], capture_output=True, text=True,
                          env=_launcher_free_env(), timeout=60)
    assert done.stdout.split() == ["False", "1", "ddp", "ok"], done.stderr


def test_a_launcher_without_mpi4py_is_a_clear_error() -> None:
    done = subprocess.run([sys.executable, "-c", _NO_MPI4PY], capture_output=True, text=True,
                          env=_launcher_free_env(PMI_SIZE="4", PMI_RANK="0"), timeout=60)
    assert "error: init: started by an MPI launcher with 4 processes, but mpi4py is not " \
           "installed" in done.stdout, done.stdout + done.stderr


def test_a_bad_timeout_is_named(monkeypatch) -> None:
    monkeypatch.setattr(dist.process_group, "_group", None)
    monkeypatch.setenv("GRADWISE_DIST_TIMEOUT", "soon")
    with pytest.raises(dist.DistributedError, match="GRADWISE_DIST_TIMEOUT='soon'"):
        dist.init()
    with pytest.raises(dist.DistributedError, match="positive number"):
        dist.init(timeout=0)


_RAISES_ON_RANK_1 = """
import numpy as np
from gradwise import distributed as dist
group = dist.init()
if group.rank == 1:
    raise ValueError("boom on rank 1")
dist.all_reduce(np.ones(3))  # rank 0 waits here for a rank that is gone
print("rank 0 went on")
"""


_RAISES_ON_EVERY_RANK = """
from gradwise import distributed as dist
dist.init()
raise ValueError("the same on every rank")
"""


def test_an_error_on_every_rank_is_printed_once(mpi) -> None:
    result = run(mpi, 3, [sys.executable, "-c", _RAISES_ON_EVERY_RANK], check=False, timeout=60)
    assert result.code != 0
    assert result.out.count("ValueError: the same on every rank") == 1, result.out
    assert result.out.count("aborting every rank") == 1, result.out


def test_an_uncaught_exception_on_one_rank_ends_the_job_at_once(mpi) -> None:
    result = run(mpi, 2, [sys.executable, "-c", _RAISES_ON_RANK_1], check=False, timeout=60)
    assert result.code != 0
    assert "ValueError: boom on rank 1" in result.out
    assert "rank 1 of 2 stopped with ValueError; aborting every rank" in result.out
    assert "rank 0 went on" not in result.out
    assert result.seconds < 30  # not the 60 s collective timeout the helpers set
