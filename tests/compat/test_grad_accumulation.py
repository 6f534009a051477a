"""``.grad`` is one Tensor that later backwards add into in place, as torch's AccumulateGrad:
a Tensor taken from ``p.grad`` earlier sees the sum, ``p.grad is p.grad``, and an assigned
gradient is the Tensor that was assigned (review 4 of issue 11)."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw


def _program(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    (a * 2).sum().backward()
    first = a.grad
    (a * 2).sum().backward()
    seen = [first.numpy().copy(), first is a.grad]
    first.zero_()
    (a * 3).sum().backward()
    seen += [first.numpy().copy(), a.grad.numpy().copy()]
    b = lib.tensor([1.0, 2.0], requires_grad=True)
    given = lib.zeros(2)
    b.grad = given
    (b * 5).sum().backward()
    seen += [b.grad is given, given.numpy().copy()]
    return seen


def test_grad_accumulates_in_place_as_torch() -> None:
    ours = _program(gw)
    assert ours[1] is True and ours[4] is True
    np.testing.assert_array_equal(ours[0], [4.0, 4.0])
    np.testing.assert_array_equal(ours[2], [3.0, 3.0])
    np.testing.assert_array_equal(ours[3], [3.0, 3.0])
    np.testing.assert_array_equal(ours[5], [5.0, 5.0])


def test_torch_gives_the_same() -> None:
    torch = pytest.importorskip("torch")
    for ours, theirs in zip(_program(gw), _program(torch), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_a_read_only_assigned_gradient_is_not_written() -> None:
    a = gw.tensor([1.0, 2.0], requires_grad=True)
    frozen = np.zeros(2, dtype=np.float32)
    frozen.flags.writeable = False
    a.grad = frozen
    (a * 2).sum().backward()
    np.testing.assert_array_equal(frozen, [0.0, 0.0])
    np.testing.assert_array_equal(np.asarray(a.grad), [2.0, 2.0])


def test_two_leaves_given_one_array_by_backward_stay_apart() -> None:
    # Add's backward hands the same array to both inputs: each keeps a private copy, so the
    # in-place accumulation into one never reaches the other
    a = gw.tensor([1.0, 2.0], requires_grad=True)
    b = gw.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    (a * 10).sum().backward()
    np.testing.assert_array_equal(np.asarray(a.grad), [11.0, 11.0])
    np.testing.assert_array_equal(np.asarray(b.grad), [1.0, 1.0])
