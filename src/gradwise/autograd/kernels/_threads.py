"""Batch-parallel regions: the one place where gradwise itself runs work on more than one thread.

Issue 14: in the 2-thread CNN step only BLAS used the second core; the im2col copies, padding,
bias, col2im and pooling (NumPy copies and serial numba kernels) ran on one. A *region* splits
the images of a batch into parts and runs each part on its own thread, with every BLAS library
that threadpoolctl finds set to **1 thread** (the rule "one pool at a time" of ``_jit.py``:
inside a region gradwise's threads are the pool; outside regions, BLAS's). NumPy copies
and matrix products release the GIL and gradwise's numba kernels are ``nogil=True``, so plain
Python threads run the parts truly in parallel. The lead's prototype (conv2 of
benchmarks/cnn_epoch.py, forward, batch 128): 4.2-4.4 ms split over two threads against 7.8 ms
on one thread and 5.6 ms with BLAS alone on two.

How it behaves:

* **BLAS**: set to 1 thread when a region starts and given back its count when the region
  ends, by the calling thread. OpenBLAS (0.3.30-0.3.31 as numpy ships it) takes a thread count
  only from the process's main thread: a ``set_num_threads`` from any other thread is ignored
  (measured: a daemon thread's restore left the main thread's BLAS at 1 thread for good;
  newcomer review 9 of issue 14). So a thread whose setting does not take (checked once per
  thread) runs every region serially: its products keep BLAS's own threads.
  Why products outside regions matter: after every call OpenBLAS ran on several threads, its
  idle workers spin (``sched_yield``) for about 0.1 s (measured: 105 ms of process CPU during a
  0.2 s sleep after one 2-thread GEMM), and a region's threads would share the 2 cores with
  that spinning one (the 2-thread CNN step of benchmarks/cnn_epoch.py: 40.9 ms against 28.2 ms
  before the regions). So within ``RECENT`` (0.1 s) of a region a linear layer splits its
  product over a region of its own (``regions_recently``, ``ops/linalg.py``) instead of
  running it on BLAS's threads: in a CNN step every large product runs inside a region, and
  code that does no convolution (an MLP) never starts one and keeps BLAS's threads.
* **Threads**: the calling thread runs part 0, ``parts - 1`` daemon workers run the others.
  Workers are created lazily, on the first region that needs them, and kept (idle ones block on
  a queue and cost nothing). No numba threading layer is involved.
* **How many**: :func:`thread_count`: the count ``gw.set_num_threads`` last set, else the
  threads of numpy's BLAS at the first region (its default: the core count). ``1`` turns every
  region off: the op runs its one-part path, which *is* the serial code.
* **Results**: an op gives each part whole images, so everything computed per image (outputs,
  input gradients, pooling's picks) is the same bits whatever the split; what sums over the
  batch (a weight or bias gradient) is summed per part and the parts added at the end, which
  changes only the float rounding of that sum.
* **Re-entrancy**: a region entered on a thread already inside one (a worker, or a hook that
  runs an op on the calling thread) runs serially: no thread ever waits for a worker while
  being one, so there is no deadlock.
* **User threads**: regions split only on a thread whose BLAS count can be set (with numpy's
  OpenBLAS: the main thread); elsewhere they run serially, with the same results. Where several
  threads can set it, two regions may run at once (two models trained side by side): BLAS is
  set to 1 thread when the first starts and given back after the last one ends (a count under
  a lock), so one thread's region cannot restore it while another's still runs.
* **Errors and Ctrl-C**: a region always waits for all of its parts before it returns or
  raises (they write into arrays the caller owns), ends its hold on BLAS (``finally``), then raises
  the first error in part order; a KeyboardInterrupt that arrives while waiting is re-raised
  once the parts are done.
* **fork**: the child of a ``fork`` has none of the parent's threads: the pool is forgotten
  there (rebuilt on demand) and BLAS's counts are given back if it forked inside a region.
* Without threadpoolctl BLAS could not be held to 1 thread, so regions are off (serial).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

#: the count ``gw.set_num_threads`` last set (empty: never called)
_configured: list[int] = []
#: per thread: how deep in regions this thread is (workers start at 1: they never split again)
_local = threading.local()


#: seconds after a region during which a linear layer splits too (see the module docstring)
RECENT = 0.1


class _State:
    """The process's pool and BLAS bookkeeping (one instance; replaced in a forked child)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.workers: list[queue.SimpleQueue] = []
        self.blas: list[Any] | None = None  # threadpoolctl controllers, found on first use
        self.default_threads: int | None = None
        self.active = 0  # regions running now, over all threads
        self.saved: list[int] = []  # the BLAS counts to give back when the last region ends
        self.last_exit = -1e9  # time.monotonic() when the last region ended


_state = _State()


def set_thread_count(count: int) -> None:
    """Record ``gw.set_num_threads``'s count: regions use at most this many threads. Called
    after BLAS was set to ``count``: a region running now gives BLAS that count when it ends."""
    _configured[:] = [int(count)]
    with _state.lock:
        if _state.active:
            _state.saved = [int(count)] * len(_state.saved)


def _blas_controllers() -> list[Any]:
    """threadpoolctl's controllers of the BLAS libraries loaded now (cached; [] without it)."""
    if _state.blas is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            _state.blas = []
        else:
            _state.blas = [c for c in ThreadpoolController().lib_controllers
                           if c.user_api == "blas"]
    return _state.blas


def thread_count() -> int:
    """How many threads a region may use: ``gw.set_num_threads``'s count, else the most
    threads any BLAS library had at the first call (their default: the core count)."""
    if _configured:
        return _configured[0]
    if _state.default_threads is None:
        counts = [c.num_threads for c in _blas_controllers()]
        _state.default_threads = max(counts) if counts else (os.cpu_count() or 1)
    return _state.default_threads


def _depth() -> int:
    """How many regions this thread is inside (0 outside any; a worker's part counts 1)."""
    return int(getattr(_local, "depth", 0))


def parts_for(items: int, bytes_per_item: int, min_part_bytes: int) -> int:
    """How many parts to split ``items`` images into: one per thread, but none smaller than
    ``min_part_bytes`` of work (waking a worker and the smaller products must pay), and 1 on a
    thread already inside a region or without a BLAS controller."""
    threads = thread_count()
    if threads <= 1 or items < 2 or _depth() or not _blas_controllers():
        return 1
    if not _can_set_blas():  # this thread's BLAS count cannot be held at 1: serial
        return 1
    by_size = (items * bytes_per_item) // max(1, min_part_bytes)
    return max(1, min(threads, items, by_size))


def regions_recently() -> bool:
    """Whether a region runs now or ended less than ``RECENT`` seconds ago. A linear layer splits
    its product over a region only then: in a CNN step its product would otherwise run on
    BLAS's threads between the convolutions' regions, whose idle workers then spin beside the
    next region's threads; in a program without regions (an MLP) BLAS's threads share it."""
    return _state.active > 0 or time.monotonic() - _state.last_exit < RECENT


def sum_parts(partials: list[Any]) -> Any:
    """The per-part sums of a region (weight or bias gradients) added in part order into the
    first one (one part: itself): the split changes only the float rounding of a batch sum."""
    total = partials[0]
    for partial in partials[1:]:
        total += partial
    return total


def split(items: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous (start, stop) ranges covering ``range(items)``, sizes within one."""
    base, extra = divmod(items, parts)
    bounds, start = [], 0
    for part in range(parts):
        stop = start + base + (part < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def _worker_loop(tasks: queue.SimpleQueue) -> None:
    _local.depth = 1  # a region started from here runs serially (no waiting on a worker)
    while True:
        work, args, done, slot = tasks.get()
        try:
            work(*args)
        except BaseException as error:  # noqa: BLE001 - handed to the caller, which raises it
            done.put((slot, error))
        else:
            done.put((slot, None))


def _workers(count: int) -> list[queue.SimpleQueue]:
    """The task queues of the first ``count`` workers, starting the missing ones."""
    with _state.lock:
        while len(_state.workers) < count:
            tasks: queue.SimpleQueue = queue.SimpleQueue()
            thread = threading.Thread(target=_worker_loop, args=(tasks,), daemon=True,
                                      name=f"gradwise-region-{len(_state.workers) + 1}")
            thread.start()
            _state.workers.append(tasks)
        return _state.workers[:count]


def _can_set_blas() -> bool:
    """Whether BLAS takes a thread count set from this thread (see the module docstring);
    checked once per thread, by setting 1 and reading it back."""
    able = getattr(_local, "can_set_blas", None)
    if able is None:
        controllers = _blas_controllers()
        with _state.lock:
            if _state.active:  # a region holds BLAS at 1 now: a probe would read its 1
                return False
            counts = [c.num_threads for c in controllers]
            probe = [max(1, n - 1) if n > 1 else 2 for n in counts]
            for controller, n in zip(controllers, probe, strict=True):
                controller.set_num_threads(n)
            able = bool(controllers) and [c.num_threads for c in controllers] == probe
            for controller, n in zip(controllers, counts, strict=True):
                controller.set_num_threads(n)
        _local.can_set_blas = able
    return able


def _blas_to_one() -> None:
    """The first region to start sets every BLAS library to 1 thread (saving the counts)."""
    with _state.lock:
        if _state.active == 0:
            controllers = _blas_controllers()
            _state.saved = [c.num_threads for c in controllers]
            for controller in controllers:
                controller.set_num_threads(1)
        _state.active += 1


def _region_ended() -> None:
    """The last region to end gives BLAS back its counts (on this thread: see the module
    docstring) and notes the time for :func:`regions_recently`."""
    with _state.lock:
        _state.active -= 1
        if _state.active:
            return
        for controller, count in zip(_state.blas or [], _state.saved, strict=False):
            controller.set_num_threads(count)
        _state.last_exit = time.monotonic()


def run_parts(work: Callable[..., None], ranges: Sequence[tuple[int, int]]) -> None:
    """Call ``work(part, start, stop)`` for every range, in parallel when there are several.

    With one range this is just the call (no threads, BLAS untouched). With more, part 0 runs
    on the calling thread and the others on workers, BLAS held to 1 thread throughout; returns
    when every part has finished, and raises the first part's error (in part order) if any
    failed. ``work`` must write only to what its own part owns (or to per-part slots).
    """
    if len(ranges) <= 1:
        for part, (start, stop) in enumerate(ranges):
            work(part, start, stop)
        return
    done: queue.SimpleQueue = queue.SimpleQueue()
    errors: list[BaseException | None] = [None] * len(ranges)
    _blas_to_one()
    _local.depth = _depth() + 1
    waiting = 0
    try:
        for part, tasks in enumerate(_workers(len(ranges) - 1), start=1):
            tasks.put((work, (part, *ranges[part]), done, part))
            waiting += 1
        try:
            work(0, *ranges[0])
        except BaseException as failure:  # noqa: BLE001 - raised below, after the workers
            errors[0] = failure
    finally:
        interrupted = None
        while waiting:
            try:
                slot, outcome = done.get()
            except KeyboardInterrupt as signal:  # wait for the parts first, then raise it
                interrupted = signal
                continue
            errors[slot] = outcome
            waiting -= 1
        _local.depth -= 1
        _region_ended()
    if interrupted is not None:
        raise interrupted
    for error in errors:
        if error is not None:
            raise error


def _after_fork_in_child() -> None:
    """A forked child has no workers: forget them (and give BLAS its counts back if forked
    inside a region: the child has no region running)."""
    global _state
    old = _state
    _state = _State()
    _state.blas, _state.default_threads = old.blas, old.default_threads
    if old.active:
        for controller, count in zip(old.blas or [], old.saved, strict=False):
            controller.set_num_threads(count)
    _local.depth = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
