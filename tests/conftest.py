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
