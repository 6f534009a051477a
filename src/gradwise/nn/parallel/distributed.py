"""DistributedDataParallel: one model replica per MPI rank, gradients averaged after backward.

How it works (the design of PyTorch's DDP, Li et al., "PyTorch Distributed: Experiences on
Accelerating Data Parallel Training", VLDB 2020, sections 3.2-3.3):

1. At construction rank 0's parameters and buffers are broadcast, so every replica starts equal.
2. The parameters are laid out, in reverse registration order (about the order backward
   produces their gradients), into buckets of at most ``bucket_cap_mb`` MiB, one flat
   contiguous buffer per bucket and dtype (float32 for float32 models).
3. A gradient hook on every parameter copies the parameter's local gradient (this backward's
   plus what ``no_sync`` accumulated) into its bucket. When a bucket is full its allreduce is
   started (non-blocking), in bucket order on every rank, while backward goes on with the rest.
4. When the last parameter's gradient arrives, all allreduces are waited for, each bucket is
   divided by the world size, and every ``.grad`` holds the average over the ranks. Because
   each rank's loss is a mean over its local batch of B samples, the result is the gradient of
   the mean loss over all N*B samples, as one process with batch N*B would compute.

Replicas stay identical: they start equal, see equal averaged gradients and take the same
optimizer step. Buffers (BatchNorm's running statistics) are broadcast from rank 0 before each
training forward (``broadcast_buffers=True``, PyTorch's default), so rank 0's running
statistics are the model's. BatchNorm normalises with the statistics of the local batch only
(B samples per rank, not N*B); this is PyTorch's behaviour too, and documented in
docs/DISTRIBUTED.md.

Randomness: each module Generator (Dropout's) starts as rank 0's and rank r then jumps it
r times (``bit_generator.jumped(r)``, 2**127 draws each for PCG64), so ranks draw independent
dropout masks, reproducibly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradwise import distributed as dist
from gradwise.autograd.grad_mode import is_grad_enabled
from gradwise.autograd.tensor import Tensor
from gradwise.nn.module import Module, Parameter

__all__ = ["DistributedDataParallel"]

_MIB = 1024 * 1024


@dataclass
class _Bucket:
    """Parameters whose gradients travel together in one flat buffer."""

    params: list[Parameter]
    offsets: list[int]
    flat: np.ndarray
    ready: int = 0
    request: Any = None
    gathered: np.ndarray | None = None  # deterministic mode: (world_size, size)
    index: int = 0
    members: dict[int, int] = field(default_factory=dict)  # id(param) -> position


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training across the ranks of ``gw.distributed``.

    Each rank runs the same program on its own shard of the data (see
    :class:`gradwise.data.DistributedSampler`); after ``loss.backward()`` every parameter's
    ``.grad`` is the average of the ranks' gradients, so ``optimizer.step()`` keeps the
    replicas identical.

    Args:
        module: the model. Build it the same way on every rank; rank 0's weights win.
        bucket_cap_mb: the most MiB of gradients per allreduce (PyTorch's default, 25).
            Smaller buckets start communicating earlier; larger ones send fewer messages.
        broadcast_buffers: send rank 0's buffers (BatchNorm running statistics) to every rank
            before each training forward.
        deterministic: average with an all-gather and a sum in rank order instead of MPI's
            allreduce, so the result does not depend on the MPI library's reduction order and
            equals a single process summing the ranks' gradients in rank order, bitwise. Costs
            (N-1)x the memory and bandwidth of a ring allreduce.

    ``state_dict()``, ``load_state_dict()``, ``rng_state()``, ``set_rng_state()`` and
    ``named_parameters()`` are the wrapped module's (no ``module.`` prefix, unlike PyTorch; see
    docs/PORTING.md), so checkpoints load into the bare model.

    Raises:
        DistributedError: a parameter received no gradient in a backward (named at the next
            forward), or a rank is gone (the job is aborted after the group's timeout).
        ValueError: ``bucket_cap_mb`` is not positive.

    Example:
        >>> gw.distributed.init()
        >>> model = DistributedDataParallel(gw.nn.Linear(10, 2, rng=0))
        >>> loss = model(x).sum(); loss.backward()     # doctest: +SKIP
    """

    def __init__(
        self,
        module: Module,
        bucket_cap_mb: float = 25.0,
        broadcast_buffers: bool = True,
        deterministic: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(
                f"DistributedDataParallel: module must be a gw.nn.Module, got "
                f"{type(module).__name__}"
            )
        if isinstance(bucket_cap_mb, bool) or not (
            isinstance(bucket_cap_mb, (int, float)) and bucket_cap_mb > 0
        ):
            raise ValueError(
                f"DistributedDataParallel: bucket_cap_mb must be a positive number, got "
                f"{bucket_cap_mb!r}"
            )
        self.module = module
        object.__setattr__(self, "bucket_cap_mb", float(bucket_cap_mb))
        object.__setattr__(self, "broadcast_buffers", bool(broadcast_buffers))
        object.__setattr__(self, "deterministic", bool(deterministic))
        group = dist.init()
        object.__setattr__(self, "rank", group.rank)
        object.__setattr__(self, "world_size", group.world_size)
        object.__setattr__(self, "_require_sync", True)
        object.__setattr__(self, "_expect_backward", False)
        object.__setattr__(self, "_arrived", 0)
        names = {id(p): name for name, p in module.named_parameters()}
        trainable = [p for p in module.parameters() if p.requires_grad]
        object.__setattr__(self, "_param_names", names)
        object.__setattr__(self, "_trainable", trainable)
        object.__setattr__(self, "_arrived_ids", set())
        self._sync_module_state()
        self._split_rng_streams()
        object.__setattr__(self, "_buckets", self._make_buckets(trainable))
        object.__setattr__(
            self, "_bucket_of", {id(p): b for b in self._buckets for p in b.params}
        )
        object.__setattr__(self, "_hook_handles", [p.register_hook(self._hook_for(p))
                                                   for p in trainable])

    # ---- the wrapped module's face ------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self._check_last_backward()
        training = self.module.training
        if training and self.broadcast_buffers and self.world_size > 1:
            self._broadcast_buffers()
        object.__setattr__(self, "_expect_backward", training and is_grad_enabled())
        return self.module(*args, **kwargs)

    def state_dict(self, *, destination: Any = None, prefix: str = "",
                   keep_vars: bool = False) -> Any:
        return self.module.state_dict(destination=destination, prefix=prefix,
                                      keep_vars=keep_vars)

    def load_state_dict(self, state_dict: Any, strict: bool = True) -> Any:
        return self.module.load_state_dict(state_dict, strict)

    def rng_state(self) -> dict[str, dict[str, Any]]:
        return self.module.rng_state()

    def set_rng_state(self, state: dict[str, dict[str, Any]]) -> None:
        self.module.set_rng_state(state)

    def named_parameters(self, prefix: str = "", recurse: bool = True
                         ) -> Iterator[tuple[str, Parameter]]:
        return self.module.named_parameters(prefix, recurse)

    def named_buffers(self, prefix: str = "", recurse: bool = True
                      ) -> Iterator[tuple[str, Tensor]]:
        return self.module.named_buffers(prefix, recurse)

    def extra_repr(self) -> str:
        return (
            f"world_size={self.world_size}, buckets={len(self._buckets)}, "
            f"bucket_cap_mb={self.bucket_cap_mb:g}, deterministic={self.deterministic}"
        )

    @property
    def bucket_sizes(self) -> list[int]:
        """Elements per bucket, in the order their allreduces are started."""
        return [bucket.flat.size for bucket in self._buckets]

    @property
    def allreduce_bytes_per_step(self) -> int:
        """Bytes of gradients each rank contributes to the allreduces of one step."""
        return sum(bucket.flat.nbytes for bucket in self._buckets)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Backward inside this block accumulates gradients locally, without communication.

        For gradient accumulation: run k-1 micro-batches under ``no_sync()`` and the k-th
        outside it; that backward averages the accumulated gradients across ranks.
        """
        previous = self._require_sync
        object.__setattr__(self, "_require_sync", False)
        try:
            yield
        finally:
            object.__setattr__(self, "_require_sync", previous)

    # ---- construction -------------------------------------------------------------------------
    def _sync_module_state(self) -> None:
        """Broadcast rank 0's parameters and buffers (flattened per dtype) to every rank.

        First the ranks compare their models' layouts (names, shapes, dtypes: one small
        exchange), so models that differ across ranks are an error naming the tensor, not an
        MPI crash or silently mixed weights.
        """
        if self.world_size > 1:
            self._check_same_layout()
        tensors = [*self.module.parameters(), *self.module.buffers()]
        _broadcast_tensors(tensors)

    def _check_same_layout(self) -> None:
        named = [*self.module.named_parameters(), *self.module.named_buffers()]
        mine = [[name, list(t._data.shape), t._data.dtype.str, t.requires_grad]
                for name, t in named]
        everyone = dist.all_gather_json(mine)
        reference = everyone[0]
        for rank, layout in enumerate(everyone[1:], start=1):
            if layout == reference:
                continue
            for ours, theirs in zip(reference, layout, strict=False):
                if ours != theirs:
                    raise dist.DistributedError(
                        f"DistributedDataParallel: the model differs across ranks: rank 0 has "
                        f"{_layout_entry(ours)}, rank {rank} has {_layout_entry(theirs)}; build "
                        "the same model on every rank"
                    )
            shorter = min(len(reference), len(layout))
            extra = (reference if len(reference) > shorter else layout)[shorter]
            raise dist.DistributedError(
                f"DistributedDataParallel: the model differs across ranks: rank 0 has "
                f"{len(reference)} parameters and buffers, rank {rank} has {len(layout)} "
                f"(the first extra one: {_layout_entry(extra)}); build the same model on "
                "every rank"
            )

    def _broadcast_buffers(self) -> None:
        _broadcast_tensors(list(self.module.buffers()))

    def _split_rng_streams(self) -> None:
        self.jump_rng_streams(dist.broadcast_json(_json_ints(self.module.rng_state())))

    def jump_rng_streams(self, states: dict[str, dict[str, Any]]) -> None:
        """Set every module Generator to rank 0's ``states``, then jump it ``rank`` times.

        Raises:
            TypeError: a Generator whose bit generator cannot jump (use PCG64 or Philox).
        """
        if not states:
            return
        self.module.set_rng_state(states)
        if self.rank == 0:
            return
        for name, module in self.module.named_modules():
            generator = module.__dict__.get("rng")
            if name in states and isinstance(generator, np.random.Generator):
                bit_generator = generator.bit_generator
                if not hasattr(bit_generator, "jumped"):
                    raise TypeError(
                        f"DistributedDataParallel: {name}.rng uses "
                        f"{type(bit_generator).__name__}, which cannot jump to an independent "
                        "stream per rank; use PCG64 (numpy's default) or Philox"
                    )
                bit_generator.state = bit_generator.jumped(self.rank).state

    def _make_buckets(self, params: list[Parameter]) -> list[_Bucket]:
        cap = self.bucket_cap_mb * _MIB
        buckets: list[_Bucket] = []
        groups: dict[np.dtype, list[Parameter]] = {}
        for param in reversed(params):  # about the order backward produces gradients
            dtype = param._data.dtype
            group = groups.setdefault(dtype, [])
            size = sum(p._data.nbytes for p in group)
            if group and size + param._data.nbytes > cap:
                buckets.append(self._new_bucket(group, len(buckets)))
                groups[dtype] = group = []
            group.append(param)
        for group in groups.values():
            if group:
                buckets.append(self._new_bucket(group, len(buckets)))
        return buckets

    @staticmethod
    def _new_bucket(params: list[Parameter], index: int) -> _Bucket:
        offsets, total = [], 0
        for param in params:
            offsets.append(total)
            total += param._data.size
        flat = np.zeros(total, dtype=params[0]._data.dtype)
        members = {id(p): position for position, p in enumerate(params)}
        return _Bucket(params, offsets, flat, index=index, members=members)

    # ---- gradient synchronisation -------------------------------------------------------------
    def _hook_for(self, param: Parameter) -> Any:
        def hook(grad: Tensor) -> np.ndarray | None:
            if not (self._expect_backward and self._require_sync):
                return None
            return self._arrive(param, grad._data)

        return hook

    def _arrive(self, param: Parameter, grad: np.ndarray) -> np.ndarray | None:
        """Record one parameter's local gradient; the last one finishes the synchronisation."""
        bucket = self._bucket_of[id(param)]
        position = bucket.members[id(param)]
        # what the engine is about to store in .grad: the accumulated local gradient
        local = grad if param._grad is None else param._grad + grad
        start = bucket.offsets[position]
        bucket.flat[start : start + param._data.size] = local.reshape(-1)
        bucket.ready += 1
        self._arrived_ids.add(id(param))
        object.__setattr__(self, "_arrived", self._arrived + 1)
        self._launch_ready_buckets()
        if self._arrived < len(self._trainable):
            return None
        self._finish()
        # the engine copies a hook's replacement into .grad (None first: no accumulation)
        param._grad = None
        return bucket.flat[start : start + param._data.size].reshape(param._data.shape)

    def _launch_ready_buckets(self) -> None:
        """Start allreduces for full buckets, strictly in bucket order (the same on all ranks).

        Started ones are tested on the way: MPI moves a non-blocking collective on only inside
        MPI calls, so this lets it progress while backward computes the next gradients.
        """
        for bucket in self._buckets:
            if bucket.request is not None:
                bucket.request.Test()
                continue
            if bucket.ready < len(bucket.params):
                return
            if self.world_size == 1:
                bucket.request = _DONE
            elif self.deterministic:
                bucket.gathered = np.empty((self.world_size, bucket.flat.size), bucket.flat.dtype)
                bucket.request = self._comm().Iallgather(bucket.flat, bucket.gathered)
            else:
                from mpi4py import MPI

                bucket.request = self._comm().Iallreduce(MPI.IN_PLACE, bucket.flat, op=MPI.SUM)

    def _finish(self) -> None:
        group = dist.init()
        for bucket in self._buckets:
            if bucket.request is not _DONE:
                dist.process_group._wait(
                    group, bucket.request, "DistributedDataParallel gradient allreduce",
                    f" (bucket {bucket.index}, {bucket.flat.size} x {bucket.flat.dtype})",
                )
            if bucket.gathered is not None:
                # a fixed order: ((g0 + g1) + g2) + ..., as a single process would add them
                np.copyto(bucket.flat, bucket.gathered[0])
                for rank in range(1, self.world_size):
                    bucket.flat += bucket.gathered[rank]
                bucket.gathered = None
            if self.world_size > 1:
                bucket.flat /= bucket.flat.dtype.type(self.world_size)
            for param, start in zip(bucket.params, bucket.offsets, strict=True):
                param._grad = bucket.flat[start : start + param._data.size].reshape(
                    param._data.shape
                ).copy()
            bucket.ready = 0
            bucket.request = None
        self._arrived_ids.clear()
        object.__setattr__(self, "_arrived", 0)
        object.__setattr__(self, "_expect_backward", False)

    def _check_last_backward(self) -> None:
        if self._arrived == 0:
            return
        missing = [self._param_names.get(id(p), "?") for p in self._trainable
                   if id(p) not in self._arrived_ids]
        raise dist.DistributedError(
            f"DistributedDataParallel: the last backward gave no gradient to {len(missing)} "
            f"parameter(s) ({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}), so "
            "the gradients were not averaged across ranks. Use every parameter in the loss, "
            "or freeze the unused ones (requires_grad_(False)) before wrapping the model"
        )

    def _comm(self) -> Any:
        return dist.init().comm


class _Done:
    """The request of a bucket that needs no communication (a group of one)."""

    def Test(self) -> bool:  # noqa: N802 - mpi4py's Request interface
        return True


_DONE = _Done()


def _broadcast_tensors(tensors: list[Tensor]) -> None:
    """Broadcast tensors from rank 0: one flat buffer per dtype, copied back in place."""
    if dist.get_world_size() == 1:
        return
    by_dtype: dict[np.dtype, list[Tensor]] = {}
    for tensor in tensors:
        by_dtype.setdefault(tensor._data.dtype, []).append(tensor)
    for dtype in sorted(by_dtype, key=str):
        group = by_dtype[dtype]
        flat = np.concatenate([t._data.reshape(-1) for t in group]).astype(dtype, copy=False)
        dist.broadcast(flat, src=0, check_shapes=False)  # layouts compared at construction
        start = 0
        for tensor in group:
            size = tensor._data.size
            tensor._data[...] = flat[start : start + size].reshape(tensor._data.shape)
            tensor._bump()
            start += size


def _layout_entry(entry: list[Any]) -> str:
    name, shape, dtype, requires_grad = entry
    frozen = "" if requires_grad else ", frozen"
    return f"{name} of shape {tuple(shape)} {np.dtype(dtype)}{frozen}"


def _json_ints(value: Any) -> Any:
    """numpy scalars inside a Generator state become plain ints, for JSON."""
    if isinstance(value, dict):
        return {key: _json_ints(item) for key, item in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value
