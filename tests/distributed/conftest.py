"""Fixtures for the distributed tests: the MPI launcher (skips when MPI is missing)."""

from distributed.mpi_helpers import mpi  # noqa: F401 - a fixture
