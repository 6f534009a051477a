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

* **BLAS**: held to 1 thread from the first region on and restored ``BLAS_RESTORE_DELAY``
  (0.1 s) after the last one ended, by a small daemon thread, not at the end of each region:
  after every call OpenBLAS ran on several threads, its idle workers spin (``sched_yield``) for
  about 0.1 s (measured: 105 ms of process CPU during a 0.2 s sleep after one 2-thread GEMM,
  the same after ``set_num_threads(1)``), and in a CNN step the fully-connected layers' products
  between the convolutions would start them again each time: a region's two threads then shared
  the 2 cores with a spinning third (the 2-thread CNN step of benchmarks/cnn_epoch.py: 40.9 ms
  restoring at each region's end, 25.1 ms with BLAS held, 28.2 ms before the regions; wall,
  medians of 40 steps, OPENBLAS_CORETYPE=Haswell, load ~1.7). So within a training step the
  products outside the regions run on 1 BLAS thread too; code that does no convolution (an
  MLP) never starts a region and keeps BLAS's threads. :func:`restore_blas_now` restores at
  once.
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
* **User threads**: two threads may run regions at once (two models trained side by side): the
  workers take parts in arrival order; BLAS is set to 1 thread when the first region starts and
  restored after the last one ends (a count under a lock), so one thread's region cannot restore
  the BLAS setting while another's still runs (another thread's own products meanwhile run on
  1 BLAS thread: slower, the same results within rounding).
* **Errors and Ctrl-C**: a region always waits for all of its parts before it returns or
  raises (they write into arrays the caller owns), ends its hold on BLAS (``finally``), then raises
  the first error in part order; a KeyboardInterrupt that arrives while waiting is re-raised
  once the parts are done.
* **fork**: the child of a ``fork`` has none of the parent's threads: the pool is forgotten
  there (rebuilt on demand) and BLAS's counts are restored at once if a region held them.
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


#: seconds BLAS stays on 1 thread after the last region ended (see the module docstring)
BLAS_RESTORE_DELAY = 0.1


class _State:
    """The process's pool and BLAS bookkeeping (one instance; replaced in a forked child)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.workers: list[queue.SimpleQueue] = []
        self.blas: list[Any] | None = None  # threadpoolctl controllers, found on first use
        self.default_threads: int | None = None
        self.active = 0  # regions running now, over all threads
        self.held = False  # BLAS set to 1 thread by a region and not yet restored
        self.saved: list[int] = []  # the BLAS counts to restore
        self.last_exit = 0.0  # time.monotonic() when the last region ended
        self.restorer: threading.Event | None = None  # wakes the restoring thread


_state = _State()


def set_thread_count(count: int) -> None:
    """Record ``gw.set_num_threads``'s count: regions use at most this many threads. Called
    after BLAS was set to ``count``: a pending restore of older BLAS counts is dropped."""
    _configured[:] = [int(count)]
    with _state.lock:
        if _state.held and _state.active == 0:
            _state.held = False
        elif _state.held:  # a region runs now: restore the new count after it
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
    by_size = (items * bytes_per_item) // max(1, min_part_bytes)
    return max(1, min(threads, items, by_size))


def blas_held() -> bool:
    """Whether a region holds BLAS at 1 thread now (one ran less than ``BLAS_RESTORE_DELAY``
    ago, or runs now). An op whose product BLAS would otherwise spread over its own threads
    (a linear layer's) splits its rows over a region only then: in a CNN step, between the
    convolutions, its product would run on 1 thread; in a program without regions (an MLP) BLAS's
    threads already share it, and starting a region would hold them for 0.1 s."""
    return _state.held


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


def _blas_to_one() -> None:
    with _state.lock:
        if not _state.held:
            controllers = _blas_controllers()
            _state.saved = [c.num_threads for c in controllers]
            for controller in controllers:
                controller.set_num_threads(1)
            _state.held = True
        _state.active += 1


def _region_ended() -> None:
    """The last region to end wakes the restoring thread (started on first use)."""
    with _state.lock:
        _state.active -= 1
        if _state.active:
            return
        _state.last_exit = time.monotonic()
        if _state.restorer is None:
            _state.restorer = threading.Event()
            threading.Thread(target=_restore_loop, args=(_state, _state.restorer), daemon=True,
                             name="gradwise-blas-restore").start()
        _state.restorer.set()


def _restore_loop(state: _State, wake: threading.Event) -> None:
    """Restore BLAS's counts once no region has run for ``BLAS_RESTORE_DELAY`` seconds."""
    while True:
        wake.wait()
        wake.clear()
        while True:
            with state.lock:
                if not state.held:
                    break
                idle = time.monotonic() - state.last_exit
                if state.active == 0 and idle >= BLAS_RESTORE_DELAY:
                    _restore(state)
                    break
                pause = BLAS_RESTORE_DELAY - idle if state.active == 0 else BLAS_RESTORE_DELAY
            time.sleep(max(pause, 0.001))


def _restore(state: _State) -> None:
    """Give BLAS back its saved counts (caller holds ``state.lock``)."""
    for controller, count in zip(state.blas or [], state.saved, strict=False):
        controller.set_num_threads(count)
    state.held = False


def restore_blas_now() -> bool:
    """Give BLAS back its thread counts now instead of after ``BLAS_RESTORE_DELAY`` (when no
    region runs); returns whether anything was restored. Tests and timing scripts use it."""
    with _state.lock:
        if _state.held and _state.active == 0:
            _restore(_state)
            return True
    return False


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
    """A forked child has no workers: forget them (and restore BLAS if forked inside a region)."""
    global _state
    old = _state
    _state = _State()
    _state.blas, _state.default_threads = old.blas, old.default_threads
    if old.held:  # no restoring thread here: restore at once
        _restore(old)
    _local.depth = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
