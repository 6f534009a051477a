"""gw.distributed: data-parallel training over MPI (mpi4py), with torch.distributed's names.

Launch N copies of a program with an MPI launcher; each calls :func:`init` and learns its rank:

    mpiexec -n 4 python train.py          # or: mpiexec -n 4 gradwise train --distributed

Example:
    >>> import gradwise as gw
    >>> gw.distributed.init()                       # a group of one without mpiexec
    >>> t = gw.tensor([float(gw.distributed.get_rank())])
    >>> gw.distributed.all_reduce(t, gw.distributed.ReduceOp.SUM)   # 0 + 1 + ... + (N-1)

mpi4py is optional: without it (or without a launcher) the group has one process and every
collective returns its input. Install MPI with ``pip install 'gradwise[distributed]'``.
See docs/DISTRIBUTED.md.
"""

from gradwise.distributed.process_group import (
    DEFAULT_TIMEOUT,
    DistributedError,
    ProcessGroup,
    ReduceOp,
    abort,
    all_gather,
    all_gather_array,
    all_gather_json,
    all_reduce,
    all_reduce_array,
    barrier,
    broadcast,
    broadcast_json,
    destroy_process_group,
    get_rank,
    get_world_size,
    init,
    is_available,
    is_initialized,
    launched_by_mpi,
    launcher_rank,
    launcher_world_size,
)

init_process_group = init  # torch.distributed's name

__all__ = [
    "DEFAULT_TIMEOUT",
    "DistributedError",
    "ProcessGroup",
    "ReduceOp",
    "abort",
    "all_gather",
    "all_gather_array",
    "all_gather_json",
    "all_reduce",
    "all_reduce_array",
    "barrier",
    "broadcast",
    "broadcast_json",
    "destroy_process_group",
    "get_rank",
    "get_world_size",
    "init",
    "init_process_group",
    "is_available",
    "is_initialized",
    "launched_by_mpi",
    "launcher_rank",
    "launcher_world_size",
]
