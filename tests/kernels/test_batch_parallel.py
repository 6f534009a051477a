"""Batch-parallel regions (``kernels/_threads.py``): convolution and pooling split over threads.

Each case runs the op with 1, 2 and 3 region threads (thresholds lowered so that even tiny
batches split) on the same inputs and output gradient. Bit for bit equal whatever the split:
pooling's outputs and gradients (numba kernels and copies, image by image). Equal within float
rounding: the convolution's outputs and input gradient (OpenBLAS's products differ in the last
bits with the rows a call gets, and with OpenBLAS's own thread count: measured with its Haswell
kernels, not with SkylakeX's) and its weight and bias gradients (sums over the batch, formed
per part and added at the end). Both kernel paths (``jit_path``), float32 and float64, batch sizes
0, 1, 2, 3 and 127, whole-batch and chunked im2col, strided inputs. The linear layer (``Linear``
and the fused ``LinearReLU``) splits only while a region holds BLAS at 1 thread: its forward by
input features with the parts' partial products added (no more rows than features) or by rows,
its input and weight gradients by input features (within float rounding); its bias gradient is
not split (bit for bit). Then the machinery itself:
user threads, re-entrancy, errors, Ctrl-C, fork, BLAS restored.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.kernels import _threads
from gradwise.autograd.ops import conv as conv_ops
from gradwise.autograd.ops import linalg as linalg_ops
from gradwise.autograd.ops import pool as pool_ops
from gradwise.nn import functional as F

try:
    import torch
except ImportError:  # the torch comparisons are skipped, the thread-count ones still run
    torch = None


@pytest.fixture
def region(monkeypatch):
    """Lower the thresholds so every batch of 2 or more splits; yields a setter of the region's
    thread count (restored afterwards)."""
    monkeypatch.setattr(conv_ops, "_MIN_PART_MACS", 1)
    monkeypatch.setattr(linalg_ops, "_MIN_PART_MACS", 1)
    monkeypatch.setattr(pool_ops, "_MIN_PART_BYTES", 1)
    monkeypatch.setattr(pool_ops, "MAX_POOL_KERNEL_MIN_CHANNELS", 1)  # the kernel at any C
    saved = list(_threads._configured)
    real_run_parts = _threads.run_parts
    _widest_split.clear()

    def counting_run_parts(work, ranges):
        _widest_split.append(len(ranges))
        return real_run_parts(work, ranges)

    monkeypatch.setattr(_threads, "run_parts", counting_run_parts)
    before = _blas_counts()
    yield _threads.set_thread_count
    _threads._configured[:] = saved
    _threads._state.last_exit = -1e9  # no region "recently" for the next test
    assert _threads._state.active == 0 and _blas_counts() == before


#: how many parts each region of the current test had (the proof that it did split)
_widest_split: list[int] = []


def _run(fn, arrays, grad_seed=1):
    """fn on Tensors of ``arrays``, backward with a fixed random gradient: [out, grads...]."""
    tensors = [gw.tensor(a, requires_grad=True) if a is not None else None for a in arrays]
    out = fn(*tensors)
    grad = np.random.default_rng(grad_seed).standard_normal(out.shape).astype(out.dtype)
    out.backward(gw.tensor(grad))
    return [np.asarray(out.detach()._data)] + [
        None if t is None else np.asarray(t.grad) for t in tensors]


def _by_thread_count(set_threads, fn, arrays, counts=(1, 2, 3)):
    results = []
    for count in counts:
        set_threads(count)
        results.append(_run(fn, arrays))
    return results


def _assert_split_invariant(results, exact, dtype):
    """results[0] is the 1-thread run; ``exact`` says which entries must match bit for bit."""
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for other in results[1:]:
        for index, (one, many) in enumerate(zip(results[0], other, strict=True)):
            if one is None:
                assert many is None
            elif exact[index]:
                np.testing.assert_array_equal(many, one)
            else:  # sums of products: rounding relative to the largest term
                scale = float(np.max(np.abs(one))) if one.size else 0.0
                np.testing.assert_allclose(many, one, rtol=rtol, atol=rtol * scale)


# (input C, H, W), weight shape, stride, padding, dilation, bias: NHWC path (incl. a 6-column
# product widened to 8) and the plane-major path (<= 4 in, <= 8 out channels)
CONV_CASES = {
    "nhwc": ((3, 7, 6), (10, 3, 3, 3), (1, 1), (1, 1), (1, 1), True),
    "nhwc_widened_strided": ((5, 8, 7), (6, 5, 3, 2), (2, 1), (1, 0), (1, 2), False),
    "planes": ((2, 7, 7), (6, 2, 3, 3), (1, 1), (1, 1), (1, 1), True),
    "planes_strided": ((3, 9, 8), (4, 3, 2, 3), (2, 2), (1, 1), (2, 1), True),
}


@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunked"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [0, 1, 2, 3, 127])
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv_split_matches_one_thread(region, monkeypatch, jit_path, case, batch, dtype,
                                       chunked):
    (c, h, w), w_shape, stride, padding, dilation, with_bias = CONV_CASES[case]
    if chunked:  # im2col rebuilt in chunks of about 2 images, not kept from the forward
        monkeypatch.setattr(conv_ops, "_WHOLE_BATCH_BYTES", 0)
        monkeypatch.setattr(conv_ops, "CHUNK_BYTES", 2 * h * w * int(np.prod(w_shape[1:])) * 8)
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, c, h, w)).astype(dtype)
    weight = rng.standard_normal(w_shape).astype(dtype)
    bias = rng.standard_normal(w_shape[0]).astype(dtype) if with_bias else None

    def conv(x, weight, bias):
        return F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation)

    results = _by_thread_count(region, conv, [x, weight, bias])
    assert max(_widest_split) == min(3, max(batch, 1))
    _assert_split_invariant(results, exact=[False] * 4, dtype=dtype)
    if torch is not None and batch in (3, 127):  # the split result against the oracle
        tensors = [None if a is None else torch.tensor(a, requires_grad=True)
                   for a in (x, weight, bias)]
        out = torch.nn.functional.conv2d(*tensors, stride=stride, padding=padding,
                                         dilation=dilation)
        grad = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
        out.backward(torch.tensor(grad))
        expected = [out.detach().numpy()] + [None if t is None else t.grad.numpy()
                                             for t in tensors]
        tol = 1e-4 if dtype == np.float32 else 1e-10
        for mine, theirs in zip(results[1], expected, strict=True):
            if theirs is not None:
                np.testing.assert_allclose(mine, theirs, rtol=tol, atol=tol)


@pytest.mark.parametrize("layout", ["nhwc_view", "strided"])
def test_conv_split_on_strided_input(region, jit_path, layout):
    rng = np.random.default_rng(7)
    if layout == "nhwc_view":  # what a previous convolution hands on: NCHW view of NHWC memory
        x = rng.standard_normal((5, 6, 6, 12)).astype(np.float32).transpose(0, 3, 1, 2)
    else:
        x = rng.standard_normal((5, 12, 12, 13)).astype(np.float32)[:, :, ::2, 1:7]
    for case in ((12, 12, 3, 3), (6, 12, 3, 3)):  # NHWC, plain and widened to 8 columns
        weight = rng.standard_normal(case).astype(np.float32)
        results = _by_thread_count(region, lambda a, b: F.conv2d(a, b, padding=1),
                                   [np.ascontiguousarray(x), weight])
        strided = _by_thread_count(region, lambda a, b: F.conv2d(a, b, padding=1), [x, weight])
        _assert_split_invariant(results + strided, exact=[False] * 3, dtype=np.float32)


@pytest.fixture
def held_region(region, monkeypatch):
    """``region``, with linear layers splitting as if a region had just run (a CNN step)."""
    monkeypatch.setattr(_threads, "regions_recently", lambda: True)
    return region


# input shape after the batch axis, weight shape, bias: rows are batch * prod(leading axes)
LINEAR_CASES = {
    "rows": ((7,), (5, 7), True),
    "rows_no_bias": ((7,), (5, 7), False),
    "batched_3d": ((3, 6), (4, 6), True),
    "one_output": ((9,), (1, 9), True),  # relu_backward's one-column path
    "few_features": ((2,), (3, 2), True),  # fewer input features than parts: empty ranges
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [0, 1, 2, 3, 127])
@pytest.mark.parametrize("fused", [False, True], ids=["linear", "linear_relu"])
@pytest.mark.parametrize("case", list(LINEAR_CASES))
def test_linear_split_matches_one_thread(held_region, jit_path, case, fused, batch, dtype):
    tail, w_shape, with_bias = LINEAR_CASES[case]
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, *tail)).astype(dtype)
    weight = rng.standard_normal(w_shape).astype(dtype)
    bias = rng.standard_normal(w_shape[0]).astype(dtype) if with_bias else None
    function = F._linear_relu if fused else F.linear
    results = _by_thread_count(held_region, function, [x, weight, bias])
    rows = batch * int(np.prod(tail[:-1]))
    assert max(_widest_split, default=1) == min(3, max(rows, 1))
    _assert_split_invariant(results, exact=[False, False, False, True], dtype=dtype)
    if torch is not None and batch in (3, 127):  # the split result against the oracle
        tensors = [None if a is None else torch.tensor(a, requires_grad=True)
                   for a in (x, weight, bias)]
        out = torch.nn.functional.linear(*tensors)
        if fused:
            out = torch.relu(out)
        out.backward(torch.tensor(np.random.default_rng(1).standard_normal(out.shape)
                                  .astype(dtype)))
        expected = [out.detach().numpy()] + [None if t is None else t.grad.numpy()
                                             for t in tensors]
        tol = 1e-4 if dtype == np.float32 else 1e-10
        for results_at in results[1:]:  # 2 and 3 threads
            for mine, theirs in zip(results_at, expected, strict=True):
                if theirs is not None:
                    np.testing.assert_allclose(mine, theirs, rtol=tol, atol=tol)


def test_linear_split_keeps_only_the_wanted_gradients(held_region):
    rng = np.random.default_rng(0)
    x, weight, bias = (rng.standard_normal(shape).astype(np.float32)
                       for shape in ((6, 5), (3, 5), (3,)))
    for function in (F.linear, F._linear_relu):
        grads = []
        for count in (1, 2):
            held_region(count)
            tensors = [gw.tensor(x), gw.tensor(weight, requires_grad=True), gw.tensor(bias)]
            function(*tensors).sum().backward()
            assert tensors[0].grad is None and tensors[2].grad is None
            grads.append(np.asarray(tensors[1].grad))
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-5)
    assert max(_widest_split) == 2


def test_linear_splits_only_within_a_moment_of_a_region(region):
    """An MLP never starts a region (BLAS's own threads share its products); in a CNN step the
    linear layers between the convolutions split their rows over a region of their own."""
    region(2)
    _threads._state.last_exit = -1e9
    rng = np.random.default_rng(0)
    x = gw.tensor(rng.standard_normal((8, 6)).astype(np.float32))
    weight = gw.tensor(rng.standard_normal((4, 6)).astype(np.float32))
    F.linear(x, weight)
    assert _widest_split == [] and not _threads.regions_recently()
    images = gw.tensor(rng.standard_normal((4, 2, 5, 5)).astype(np.float32))
    F.conv2d(images, gw.tensor(rng.standard_normal((3, 2, 3, 3)).astype(np.float32)))
    assert _threads.regions_recently()
    _widest_split.clear()
    F.linear(x, weight)
    assert _widest_split == [2]
    _assert_blas_restored()
    _widest_split.clear()
    time.sleep(_threads.RECENT * 1.5)
    F.linear(x, weight)
    assert _widest_split == []


def test_linear_shape_and_dtype_errors_unchanged_when_split(held_region):
    held_region(2)
    x = gw.tensor(np.ones((4, 3), dtype=np.float32))
    for function in (F.linear, F._linear_relu):
        with pytest.raises(ValueError, match=r"linear: input of shape \(4, 3\)"):
            function(x, gw.tensor(np.ones((2, 5), dtype=np.float32)))
        with pytest.raises(ValueError, match=r"linear: bias of shape \(3,\)"):
            function(x, gw.tensor(np.ones((2, 3), dtype=np.float32)),
                     gw.tensor(np.ones(3, dtype=np.float32)))
        with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype"):
            function(x, gw.tensor(np.ones((2, 3))))


POOL_CASES = {
    "max_tiles": (F.max_pool2d, dict(kernel_size=2)),
    "max_overlap_padded": (F.max_pool2d, dict(kernel_size=3, stride=2, padding=1)),
    "avg": (F.avg_pool2d, dict(kernel_size=2)),
    "avg_overlap_padded": (F.avg_pool2d, dict(kernel_size=3, stride=1, padding=1)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [0, 1, 2, 3, 127])
@pytest.mark.parametrize("case", list(POOL_CASES))
def test_pool_split_matches_one_thread(region, jit_path, case, batch, dtype):
    function, options = POOL_CASES[case]
    rng = np.random.default_rng(batch)
    # NCHW view of NHWC memory (as a convolution hands it on), with ties and a NaN
    x = rng.integers(-2, 3, size=(batch, 6, 7, 5)).astype(dtype).transpose(0, 3, 1, 2)
    if batch:
        x[0, 0, 0, 0] = np.nan
    results = _by_thread_count(region, lambda a: function(a, **options), [x])
    if jit_path:  # the NumPy references of pooling run serially
        assert max(_widest_split) == min(3, max(batch, 1))
    _assert_split_invariant(results, exact=[True, True], dtype=dtype)
    if torch is not None and batch == 3:
        t = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
        out = getattr(torch.nn.functional, function.__name__)(t, **options)
        out.backward(torch.tensor(np.random.default_rng(1).standard_normal(out.shape)
                                  .astype(dtype)))
        # avg: torch divides by the window size, gradwise multiplies by its inverse
        np.testing.assert_allclose(results[1][0], out.detach().numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(results[1][1], t.grad.numpy(), rtol=1e-6, atol=1e-6)


def _small_cnn(seed):
    gw.manual_seed(seed)
    return gw.nn.Sequential(gw.nn.Conv2d(1, 8, 3, padding=1), gw.nn.ReLU(), gw.nn.MaxPool2d(2),
                            gw.nn.Conv2d(8, 12, 3, padding=1), gw.nn.ReLU(), gw.nn.MaxPool2d(2),
                            gw.nn.Flatten(), gw.nn.Linear(12 * 3 * 3, 10), gw.nn.ReLU(),
                            gw.nn.Linear(10, 5))


def _training(seed, steps=4):
    """A model, its optimizer and its batches, made up front: the default generator is one
    per process (as torch's), so models are built before the threads start."""
    model = _small_cnn(seed)
    rng = np.random.default_rng(seed)
    batches = [(gw.tensor(rng.standard_normal((16, 1, 12, 12)).astype(np.float32)),
                rng.integers(0, 5, size=16)) for _ in range(steps)]
    return model, gw.optim.Adam(model.parameters(), lr=1e-2), batches


def _train(model, optimizer, batches):
    for x, y in batches:
        optimizer.zero_grad()
        gw.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return [np.asarray(p.detach()._data).copy() for p in model.parameters()]


def test_two_models_trained_in_two_user_threads(region, jit_path):
    region(2)
    expected = {seed: _train(*_training(seed)) for seed in (1, 2)}
    runs = {seed: _training(seed) for seed in (1, 2)}
    got: dict = {}

    def train_into(seed):
        got[seed] = _train(*runs[seed])

    threads = [threading.Thread(target=train_into, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert set(got) == {1, 2}
    for seed in (1, 2):
        for mine, alone in zip(got[seed], expected[seed], strict=True):
            np.testing.assert_allclose(mine, alone, rtol=1e-5, atol=1e-6)
    _assert_blas_restored()


def _blas_counts():
    return [c.num_threads for c in _threads._blas_controllers()]


def _assert_blas_restored(before=None):
    """No region runs, this thread is outside one, and BLAS has its counts back at once (the
    region that ended gave them back on this thread)."""
    assert _threads._state.active == 0
    assert getattr(_threads._local, "depth", 0) == 0
    if before is not None:
        assert _blas_counts() == before


@pytest.fixture
def two_blas_threads():
    previous = gw.get_num_threads()
    gw.set_num_threads(2)
    yield
    gw.set_num_threads(previous)


def test_region_sets_blas_to_one_thread_and_gives_it_back_at_once(region, two_blas_threads):
    # newcomer review 9 of issue 14: a daemon thread restored the counts 0.1 s later, but
    # numpy's OpenBLAS ignores a count set from another thread: BLAS stayed at 1 for good
    before = _blas_counts()
    assert before and set(before) == {2}
    seen = []
    for _ in range(2):
        _threads.run_parts(lambda part, lo, hi: seen.append(_blas_counts()), [(0, 1), (1, 2)])
        assert _blas_counts() == before  # given back when the region ended
    assert seen == [[1] * len(before)] * 4
    rng = np.random.default_rng(0)
    F.conv2d(gw.tensor(rng.standard_normal((4, 2, 5, 5)).astype(np.float32)),
             gw.tensor(rng.standard_normal((3, 2, 3, 3)).astype(np.float32)))
    assert _widest_split and max(_widest_split) == 2
    assert _blas_counts() == before


def test_set_num_threads_inside_a_region_is_what_stays(region, two_blas_threads):
    def work(part, lo, hi):
        if part == 0:
            gw.set_num_threads(3)  # on the calling thread, while the other part runs
        time.sleep(0.01)

    _threads.run_parts(work, [(0, 1), (1, 2)])
    assert set(_blas_counts()) == {3}


def test_a_thread_that_cannot_set_blas_runs_regions_serially(region, two_blas_threads):
    # numpy's OpenBLAS takes a count only from the main thread: elsewhere a region could not
    # hold BLAS at 1 thread, so it does not split (the same results, BLAS's own threads)
    found = {}

    def probe():
        found["able"] = _threads._can_set_blas()
        found["parts"] = _threads.parts_for(128, 1 << 30, 1)
        found["counts"] = _blas_counts()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(timeout=30)
    assert found["parts"] == (2 if found["able"] else 1)
    assert found["counts"] == [2] * len(found["counts"])  # the probe left BLAS as it was
    assert _threads._can_set_blas()  # the main thread (pytest's) can
    assert _blas_counts() == [2] * len(found["counts"])


def test_a_failing_part_raises_after_all_parts_and_restores(region):
    region(3)
    before = _blas_counts()
    finished = []

    def work(part, lo, hi):
        if part == 1:
            raise ValueError("part 1 failed")
        time.sleep(0.05)
        finished.append(part)

    with pytest.raises(ValueError, match="part 1 failed"):
        _threads.run_parts(work, _threads.split(3, 3))
    assert sorted(finished) == [0, 2]  # the others ran to the end before the error surfaced
    _assert_blas_restored(before)
    out = []
    _threads.run_parts(lambda part, lo, hi: out.append(part), _threads.split(3, 3))
    assert sorted(out) == [0, 1, 2]  # the pool still works


def test_keyboard_interrupt_waits_for_the_workers(region):
    region(2)
    before = _blas_counts()
    finished = []

    def work(part, lo, hi):
        if part == 0:
            raise KeyboardInterrupt
        time.sleep(0.05)
        finished.append(part)

    with pytest.raises(KeyboardInterrupt):
        _threads.run_parts(work, [(0, 1), (1, 2)])
    assert finished == [1]
    _assert_blas_restored(before)


def test_a_region_inside_a_region_runs_serially(region, jit_path):
    region(2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 6, 6)).astype(np.float32)
    weight = rng.standard_normal((9, 3, 3, 3)).astype(np.float32)
    expected = F.conv2d(gw.tensor(x), gw.tensor(weight), padding=1)._data
    inner_parts, outputs = [], {}

    def work(part, lo, hi):  # as a hook would: an op called from inside a region's part
        inner_parts.append(_threads.parts_for(4, 1 << 30, 1))
        outputs[part] = F.conv2d(gw.tensor(x), gw.tensor(weight), padding=1)._data

    _threads.run_parts(work, [(0, 1), (1, 2)])
    assert inner_parts == [1, 1]
    for part in (0, 1):
        np.testing.assert_allclose(outputs[part], expected, rtol=1e-5, atol=1e-5)


def test_one_thread_turns_regions_off():
    previous = gw.get_num_threads()
    try:
        gw.set_num_threads(1)
        assert _threads.parts_for(128, 1 << 30, 1) == 1
        gw.set_num_threads(2)
        assert _threads.parts_for(128, 1 << 30, 1) == 2
        assert _threads.parts_for(128, 10, 1 << 20) == 1  # too little work to pay
    finally:
        gw.set_num_threads(previous)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_a_fresh_pool(region):
    region(2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 6, 6)).astype(np.float32)
    weight = rng.standard_normal((9, 3, 3, 3)).astype(np.float32)
    expected = F.conv2d(gw.tensor(x), gw.tensor(weight), padding=1)._data  # starts the pool
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            out = F.conv2d(gw.tensor(x), gw.tensor(weight), padding=1)._data
            os._exit(0 if np.allclose(out, expected, rtol=1e-5, atol=1e-5) else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung in a region")
        time.sleep(0.01)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
