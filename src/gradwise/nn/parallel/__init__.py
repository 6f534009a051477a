"""gw.nn.parallel: data-parallel training across MPI ranks (see :mod:`gradwise.distributed`)."""

from gradwise.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
