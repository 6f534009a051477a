"""copy.deepcopy of a Module: a real copy, whose dropout still draws from the default generator
(as torch's copies do), while an explicitly seeded stream is copied with the module."""

import copy

import numpy as np

import gradwise as gw


def _masks(model, x):
    model.train()
    return (model(x)._data != 0)


def test_copies_of_a_default_dropout_draw_different_masks_and_follow_manual_seed():
    gw.manual_seed(0)
    model = gw.nn.Sequential(gw.nn.Linear(4, 64), gw.nn.Dropout(0.5))
    twin = copy.deepcopy(model)
    x = gw.ones(8, 4)
    gw.manual_seed(1)
    first = _masks(model, x)
    second = _masks(twin, x)
    assert not np.array_equal(first, second)  # one stream, advanced by the first draw
    gw.manual_seed(1)
    assert np.array_equal(_masks(twin, x), first)  # the copy follows manual_seed


def test_deepcopy_copies_weights_and_an_explicit_stream():
    model = gw.nn.Sequential(gw.nn.Linear(3, 5), gw.nn.Dropout(0.5, rng=7))
    twin = copy.deepcopy(model)
    assert twin[0].weight is not model[0].weight
    np.testing.assert_array_equal(twin[0].weight._data, model[0].weight._data)
    twin[0].weight._data[...] = 0
    assert np.abs(model[0].weight._data).sum() > 0
    x = gw.ones(4, 3)
    np.testing.assert_array_equal(_masks(model, x), _masks(twin, x))  # same seeded stream, copied
