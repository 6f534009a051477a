"""Shared test configuration."""

import os

# keep BLAS single-threaded per test process so timings and results stay steady on 2 cores
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from hypothesis import settings  # noqa: E402

# The suite's property and fuzz tests draw the same examples on every run, so CI never fails on
# a new random draw; exploring new inputs is the job of benchmarks/fuzz_long.py and of
# HYPOTHESIS_PROFILE=explore (random draws, as Hypothesis does by default).
settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


import pytest  # noqa: E402


@pytest.fixture(params=[True, False], ids=["jit", "numpy"])
def jit_path(request):
    """Run the test with the numba kernels on, then with the NumPy references (both paths of
    every kernel in one pytest run); yields the setting."""
    from gradwise.autograd.kernels._jit import _numba, set_jit_enabled

    if request.param and _numba is None:
        pytest.skip("numba is not installed")
    previous = set_jit_enabled(request.param)
    try:
        yield request.param
    finally:
        set_jit_enabled(previous)
