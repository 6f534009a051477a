"""The process group: rank, world size and collectives over MPI (mpi4py), with timeouts.

One process group per program, as in ``torch.distributed``'s default group. Under an MPI
launcher (``mpiexec -n N python train.py``) :func:`init` attaches to ``MPI.COMM_WORLD``; a
single process without a launcher, or without mpi4py installed, gets a group of one in which
every collective returns its input, so the same script runs alone unchanged.

Every blocking collective is started non-blocking and waited on with a deadline
(``timeout`` seconds, :func:`init`'s argument or ``GRADWISE_DIST_TIMEOUT``). A rank that
died, hangs or stopped early leaves the others waiting; when the deadline passes the waiting
rank prints which collective and how long, and calls ``MPI_Abort``, which ends every rank of
the job (MPI-4.1 standard, section 11.5: "terminates all MPI processes associated with the
communicator"). So a dead rank ends the job with a clear error instead of a hang.

Tensors travel as their raw NumPy arrays (``t._data``), never pickled.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradwise.autograd.tensor import Tensor

__all__ = [
    "DEFAULT_TIMEOUT",
    "DistributedError",
    "ReduceOp",
    "all_gather",
    "all_gather_json",
    "all_reduce",
    "barrier",
    "broadcast",
    "broadcast_json",
    "destroy_process_group",
    "get_rank",
    "get_world_size",
    "init",
    "is_available",
    "is_initialized",
    "launched_by_mpi",
    "launcher_rank",
    "launcher_world_size",
]

DEFAULT_TIMEOUT = 300.0
"""Seconds a rank waits in one collective before it aborts the job (torch's NCCL default is
600 s; ours is shorter because a CPU step here takes seconds, not minutes)."""

TIMEOUT_ENV = "GRADWISE_DIST_TIMEOUT"

# Environment variables that MPI launchers set in every process they start: MPICH/Hydra
# (PMI_RANK, PMI_SIZE), Open MPI (OMPI_COMM_WORLD_*), Intel MPI (PMI_*), Slurm's srun (PMIx).
_LAUNCHER_ENV = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")


class DistributedError(RuntimeError):
    """A collective failed: bad arguments, mismatched shapes, or another rank is gone."""


class ReduceOp:
    """Reduction operations for :func:`all_reduce` (``torch.distributed.ReduceOp`` names)."""

    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"
    PRODUCT = "product"


_OPS = (ReduceOp.SUM, ReduceOp.AVG, ReduceOp.MAX, ReduceOp.MIN, ReduceOp.PRODUCT)


@dataclass
class ProcessGroup:
    """What :func:`init` found: the communicator (None for a group of one), rank, size."""

    comm: Any
    rank: int
    world_size: int
    timeout: float


_group: ProcessGroup | None = None  # the default group, like torch.distributed's


def is_available() -> bool:
    """True when mpi4py (and so an MPI library) can be imported."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def launched_by_mpi() -> bool:
    """True when this process was started by an MPI launcher (mpiexec, mpirun, srun)."""
    return any(name in os.environ for name in _LAUNCHER_ENV)


def launcher_world_size() -> int | None:
    """The job's process count as the launcher's environment states it, before any
    :func:`init` (None without a launcher, or when it does not say)."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"):
        raw = os.environ.get(name, "")
        if raw.isdigit():
            return int(raw)
    return None


def launcher_rank() -> int:
    """This process's rank as the launcher's environment states it, before any :func:`init`
    (0 without a launcher): lets a program speak once per job even when it never joins it."""
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        raw = os.environ.get(name, "")
        if raw.isdigit():
            return int(raw)
    return 0


def init(timeout: float | None = None) -> ProcessGroup:
    """Join the job's process group: rank and world size come from the MPI launcher.

    Calling it again returns the same group. Without a launcher, or without mpi4py, the
    group has one process (rank 0, world size 1) and collectives return their input.

    Args:
        timeout: seconds one collective may wait for the other ranks before the job is
            aborted; default ``GRADWISE_DIST_TIMEOUT`` or :data:`DEFAULT_TIMEOUT`.

    Raises:
        DistributedError: started by an MPI launcher with more than one process but mpi4py is
            missing (every process would train alone on the whole data set), or a bad timeout.
    """
    global _group
    if _group is not None:
        return _group
    if timeout is None:
        raw = os.environ.get(TIMEOUT_ENV, "")
        try:
            timeout = float(raw) if raw else DEFAULT_TIMEOUT
        except ValueError:
            raise DistributedError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise DistributedError(f"init: timeout must be a positive number of seconds, got {timeout}")
    if not launched_by_mpi():
        _group = ProcessGroup(None, 0, 1, float(timeout))
        return _group
    try:
        from mpi4py import MPI
    except ImportError as error:
        size = os.environ.get("PMI_SIZE") or os.environ.get("OMPI_COMM_WORLD_SIZE") or "?"
        if size in ("1", "?"):
            _group = ProcessGroup(None, 0, 1, float(timeout))
            return _group
        raise DistributedError(
            f"init: started by an MPI launcher with {size} processes, but mpi4py is not "
            "installed; pip install 'gradwise[distributed]'"
        ) from error
    comm = MPI.COMM_WORLD
    _group = ProcessGroup(comm, comm.Get_rank(), comm.Get_size(), float(timeout))
    if _group.world_size > 1:
        _abort_on_uncaught_exception(_group)
    return _group


def _abort_on_uncaught_exception(group: ProcessGroup) -> None:
    """An uncaught exception on one rank ends the job at once instead of after the timeout.

    Without it the failed rank's interpreter would wait in ``MPI_Finalize`` for ranks that wait
    in a collective for it. (``python -m mpi4py`` does the same for scripts.)
    """
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, traceback: Any) -> None:
        if group.rank != 0:  # the same error on every rank: rank 0's abort ends this one first
            time.sleep(ABORT_GRACE)
        previous(kind, value, traceback)
        print(
            f"gradwise.distributed: rank {group.rank} of {group.world_size} stopped with "
            f"{kind.__name__}; aborting every rank of the job",
            file=sys.stderr, flush=True,
        )
        # MPI_Abort kills the launcher's output forwarding too: give it a moment to pass on the
        # lines above, or the job can end without saying why
        time.sleep(OUTPUT_GRACE)
        group.comm.Abort(1)

    sys.excepthook = hook


def is_initialized() -> bool:
    """True after :func:`init` (and before :func:`destroy_process_group`)."""
    return _group is not None


def destroy_process_group() -> None:
    """Forget the group (MPI itself is finalised by mpi4py when the interpreter exits)."""
    global _group
    _group = None


def _uninitialized(op: str) -> None:
    """Before :func:`init`: fine alone, an error in a job of several processes.

    Under ``mpiexec -n 4`` a rank that asks for its rank before ``init()`` would otherwise hear
    "0 of 1" and train alone on all the data, silently (torch raises here too: "Default process
    group has not been initialized").
    """
    size = launcher_world_size()
    if launched_by_mpi() and (size is None or size > 1):
        raise DistributedError(
            f"{op}: this process was started by an MPI launcher"
            f"{f' with {size} processes' if size else ''} but gw.distributed.init() was not "
            "called; call it first (before DistributedSampler, get_rank, get_world_size)"
        )


def get_rank() -> int:
    """This process's rank, 0..world_size-1 (0 before :func:`init` in a single process).

    Raises:
        DistributedError: started by an MPI launcher with several processes and :func:`init`
            was not called (as torch.distributed raises before ``init_process_group``).
    """
    if _group is None:
        _uninitialized("get_rank")
        return 0
    return _group.rank


def get_world_size() -> int:
    """The number of processes in the group (1 before :func:`init` in a single process).

    Raises:
        DistributedError: started by an MPI launcher with several processes and :func:`init`
            was not called.
    """
    if _group is None:
        _uninitialized("get_world_size")
        return 1
    return _group.world_size


def _require_group(op: str) -> ProcessGroup:
    if _group is None:
        raise DistributedError(f"{op}: call gw.distributed.init() first")
    return _group


def _wait(group: ProcessGroup, request: Any, op: str, detail: str = "") -> None:
    """Wait for a non-blocking MPI request, aborting the whole job after the timeout.

    Polls with a growing sleep (up to 1 ms) instead of spinning, so a waiting rank gives its
    core to the others when there are more ranks than cores.
    """
    deadline = time.monotonic() + group.timeout
    pause = 0.0
    while not request.Test():
        if time.monotonic() > deadline:
            message = (
                f"gradwise.distributed: rank {group.rank} of {group.world_size} waited "
                f"{group.timeout:g} s in {op}{detail} and the other ranks did not arrive (one "
                "died, hangs or stopped early); aborting every rank of the job"
            )
            _abort_job(group, message, 1)
        if pause:
            time.sleep(pause)
        pause = min(1e-3, pause * 2 if pause else 1e-5)


def _mpi_op(op: str) -> Any:
    from mpi4py import MPI

    return {
        ReduceOp.SUM: MPI.SUM,
        ReduceOp.AVG: MPI.SUM,
        ReduceOp.MAX: MPI.MAX,
        ReduceOp.MIN: MPI.MIN,
        ReduceOp.PRODUCT: MPI.PROD,
    }[op]


def _raw(op: str, value: Tensor | np.ndarray) -> np.ndarray:
    array = value._data if isinstance(value, Tensor) else value
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{op}: expected a Tensor or numpy array, got {type(value).__name__}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{op}: the array must be C-contiguous (shape {array.shape})")
    return array


def all_reduce_array(array: np.ndarray, op: str = ReduceOp.SUM, *,
                     check_shapes: bool = True) -> np.ndarray:
    """Reduce a C-contiguous array across ranks in place; every rank gets the result.

    ``check_shapes=False`` skips the shape/dtype exchange, for the library's per-step calls
    whose shapes are fixed by construction (one collective instead of two).

    Raises:
        DistributedError: the ranks' shapes or dtypes differ (named), or a rank is gone.
    """
    group = _require_group("all_reduce")
    if op not in _OPS:
        raise ValueError(f"all_reduce: unknown op {op!r}; use one of {', '.join(_OPS)}")
    if op == ReduceOp.AVG and array.dtype.kind != "f":
        raise TypeError(f"all_reduce: AVG needs a floating-point array, got {array.dtype}")
    if group.comm is not None:
        from mpi4py import MPI

        if check_shapes:
            _check_same_shape(group, "all_reduce", array)

        request = group.comm.Iallreduce(MPI.IN_PLACE, array, op=_mpi_op(op))
        _wait(group, request, "all_reduce", f" ({array.size} x {array.dtype})")
    if op == ReduceOp.AVG:
        array /= group.world_size
    return array


def all_reduce(tensor: Tensor | np.ndarray, op: str = ReduceOp.SUM) -> Tensor | np.ndarray:
    """Reduce ``tensor`` across all ranks, in place; every rank ends with the result.

    As ``torch.distributed.all_reduce``. The tensor's values change without recording a
    graph (call it outside autograd, on data or gradients).

    Args:
        tensor: a Tensor (or C-contiguous numpy array) of the same shape and dtype on every rank.
        op: a :class:`ReduceOp` (SUM, AVG, MAX, MIN, PRODUCT).

    Returns:
        ``tensor`` itself.

    Raises:
        DistributedError: no :func:`init`; the ranks' shapes or dtypes differ (both named,
            checked with one small exchange before the reduction); or another rank never
            arrived (the job is aborted).
        ValueError / TypeError: unknown op, a non-contiguous array, AVG of integers.
    """
    all_reduce_array(_raw("all_reduce", tensor), op)
    if isinstance(tensor, Tensor):
        tensor._bump()
    return tensor


def broadcast(tensor: Tensor | np.ndarray, src: int = 0, *,
              check_shapes: bool = True) -> Tensor | np.ndarray:
    """Copy ``tensor`` from rank ``src`` into the same-shaped ``tensor`` of every rank, in place.

    ``check_shapes=False`` skips the shape/dtype exchange (for shapes fixed by construction).

    Raises:
        ValueError: ``src`` is not a rank of the group.
        DistributedError: no :func:`init`; a rank's shape or dtype differs from rank
            ``src``'s (both named); or another rank never arrived.
    """
    group = _require_group("broadcast")
    array = _raw("broadcast", tensor)
    if not 0 <= src < group.world_size:
        raise ValueError(f"broadcast: src {src} is not a rank (world size {group.world_size})")
    if group.comm is not None:
        if check_shapes:
            _check_same_shape(group, "broadcast", array)
        _broadcast_unchecked(group, array, src)
    if isinstance(tensor, Tensor):
        tensor._bump()
    return tensor


def all_gather_array(array: np.ndarray) -> np.ndarray:
    """Every rank's ``array`` stacked in rank order: shape ``(world_size, *array.shape)``."""
    group = _require_group("all_gather")
    array = np.ascontiguousarray(array)
    out = np.empty((group.world_size, *array.shape), dtype=array.dtype)
    if group.comm is None:
        out[0] = array
        return out
    _check_same_shape(group, "all_gather", array)
    request = group.comm.Iallgather(array, out)
    _wait(group, request, "all_gather", f" ({array.size} x {array.dtype})")
    return out


def all_gather(tensor_list: list[Tensor] | None, tensor: Tensor) -> list[Tensor]:
    """Gather ``tensor`` from every rank, in rank order (``torch.distributed.all_gather``).

    Args:
        tensor_list: ``world_size`` Tensors shaped like ``tensor``, filled in place (as
            torch), or None for a new list.
        tensor: this rank's contribution; the same shape and dtype on every rank.

    Returns:
        The list of Tensors, one per rank.

    Raises:
        ValueError: ``tensor_list`` does not hold ``world_size`` Tensors of ``tensor``'s shape
            (torch raises too; checked before any communication).
        DistributedError: shapes or dtypes differ between ranks (named), or a rank is gone.
    """
    array = _raw("all_gather", tensor)
    if tensor_list is not None:
        size = _require_group("all_gather").world_size
        if len(tensor_list) != size:
            raise ValueError(
                f"all_gather: tensor_list holds {len(tensor_list)} tensor(s); it needs one per "
                f"rank ({size})"
            )
        for index, item in enumerate(tensor_list):
            if not isinstance(item, Tensor) or item._data.shape != array.shape:
                shape = tuple(item._data.shape) if isinstance(item, Tensor) else type(item)
                raise ValueError(
                    f"all_gather: tensor_list[{index}] is {shape}; every entry must be a "
                    f"Tensor of the input's shape {tuple(array.shape)}"
                )
    gathered = all_gather_array(array)
    if tensor_list is None:
        return [Tensor(gathered[rank]) for rank in range(len(gathered))]
    for item, value in zip(tensor_list, gathered, strict=True):
        item._data[...] = value
        item._bump()
    return tensor_list


_MAX_DIMS = 8


def _signature(array: np.ndarray) -> np.ndarray:
    """Shape and dtype as a fixed-length int64 vector: [dtype code, itemsize, ndim, dims...]."""
    signature = np.full(3 + _MAX_DIMS, -1, dtype=np.int64)
    signature[:3] = (array.dtype.num, array.dtype.itemsize, array.ndim)
    dims = array.shape if array.ndim <= _MAX_DIMS else (array.size,)  # deep: compare sizes
    signature[3 : 3 + len(dims)] = dims
    return signature


def _describe(signature: np.ndarray) -> str:
    ndim = int(signature[2])
    dims = signature[3 : 3 + min(ndim, _MAX_DIMS)] if ndim <= _MAX_DIMS else signature[3:4]
    dtype = next((np.dtype(c) for c in np.typecodes["All"] if c and
                  np.dtype(c).num == signature[0] and np.dtype(c).itemsize == signature[1]),
                 None)
    shape = "(" + ", ".join(str(int(d)) for d in dims) + ("," if len(dims) == 1 else "") + ")"
    return f"{shape} {dtype if dtype is not None else f'dtype #{int(signature[0])}'}"


def _check_same_shape(group: ProcessGroup, op: str, array: np.ndarray) -> None:
    """Compare shape and dtype across ranks first (one small all-gather of 11 int64 per
    rank), so a mismatch is an error naming both shapes, not garbage or an MPI crash."""
    mine = _signature(array)
    everyone = np.empty((group.world_size, mine.size), dtype=np.int64)
    _wait(group, group.comm.Iallgather(mine, everyone), op, " (shape check)")
    differing = [rank for rank in range(group.world_size)
                 if not np.array_equal(everyone[rank], everyone[0])]
    if differing:
        other = differing[0]
        raise DistributedError(
            f"{op}: ranks hold different shapes/dtypes: rank 0 has {_describe(everyone[0])}, "
            f"rank {other} has {_describe(everyone[other])} (every rank must pass the same "
            "shape and dtype)"
        )


def _broadcast_unchecked(group: ProcessGroup, array: np.ndarray, src: int) -> None:
    request = group.comm.Ibcast(array, root=src)
    _wait(group, request, "broadcast", f" ({array.size} x {array.dtype} from rank {src})")


def barrier() -> None:
    """Wait until every rank reaches this call (or abort the job after the timeout)."""
    group = _require_group("barrier")
    if group.comm is not None:
        _wait(group, group.comm.Ibarrier(), "barrier")


def _encode(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)


def broadcast_json(value: Any, src: int = 0) -> Any:
    """Send a JSON-serialisable value from rank ``src`` to every rank (no pickle)."""
    group = _require_group("broadcast")
    if group.comm is None:
        return json.loads(json.dumps(value))
    payload = _encode(value) if group.rank == src else np.empty(0, np.uint8)
    length = np.array([payload.size], dtype=np.int64)
    _broadcast_unchecked(group, length, src)  # shapes agree by construction
    buffer = payload.copy() if group.rank == src else np.empty(int(length[0]), np.uint8)
    _broadcast_unchecked(group, buffer, src)
    return json.loads(buffer.tobytes().decode())


def all_gather_json(value: Any) -> list[Any]:
    """Every rank's JSON-serialisable ``value``, in rank order (no pickle)."""
    group = _require_group("all_gather")
    if group.comm is None:
        return [json.loads(json.dumps(value))]
    payload = _encode(value)
    lengths = np.empty(group.world_size, dtype=np.int64)
    request = group.comm.Iallgather(np.array([payload.size], dtype=np.int64), lengths)
    _wait(group, request, "all_gather")
    out = np.empty(int(lengths.sum()), dtype=np.uint8)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    request = group.comm.Iallgatherv(payload, [out, lengths, offsets, _mpi_byte()])
    _wait(group, request, "all_gather")
    return [
        json.loads(out[offset : offset + length].tobytes().decode())
        for offset, length in zip(offsets, lengths, strict=True)
    ]


def _mpi_byte() -> Any:
    from mpi4py import MPI

    return MPI.BYTE


OUTPUT_GRACE = 0.5  # seconds the launcher gets to forward the last lines before an abort
ABORT_GRACE = 1.0
"""Seconds a rank other than 0 waits before it prints its abort message and aborts: when every
rank meets the same error (or waits for the same dead rank), rank 0's abort ends them first and
the job prints the message once; an error of one rank alone is still printed, a second later."""


def _abort_job(group: ProcessGroup, message: str, code: int) -> None:
    if group.rank != 0:
        time.sleep(ABORT_GRACE)
    print(message, file=sys.stderr, flush=True)
    time.sleep(OUTPUT_GRACE)  # let the launcher forward the message before the abort
    group.comm.Abort(code)
    raise SystemExit(code)  # MPI_Abort does not return


def abort(message: str, code: int = 1) -> None:
    """Print ``message`` and end every rank of the job (``MPI_Abort``); alone, exit.

    Ranks other than 0 wait :data:`ABORT_GRACE` seconds first, so an error that every rank
    meets is printed once (by rank 0).
    """
    if _group is not None and _group.comm is not None:
        _abort_job(_group, message, code)
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(code)
