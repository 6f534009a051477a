"""gw.nn.parallel: data-parallel training across MPI ranks (see :mod:`gradwise.distributed`)."""

from gradwise.nn.parallel.distributed import DistributedDataParallel
from gradwise.nn.parallel.sync_batchnorm import SyncBatchNorm

__all__ = ["DistributedDataParallel", "SyncBatchNorm"]
