"""Shared test configuration."""

import os

# keep BLAS single-threaded per test process so timings and results stay steady on 2 cores
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
