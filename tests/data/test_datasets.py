"""Finding data sets on disk: search order, layouts, validation, and the digits fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradwise.data import datasets
from gradwise.data.datasets import (
    FASHION_MNIST,
    MNIST,
    DatasetNotFoundError,
    DatasetRefusedError,
    candidate_dirs,
    load_dataset,
    load_digits_fallback,
    load_idx_dataset,
    load_mnist,
)
from gradwise.data.idx import write_idx

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_SYSTEM_DATA_DIRS = datasets.SYSTEM_DATA_DIRS  # read before any fixture patches it
LEVELS = ("data_dir", "env", "cache", "system")


@pytest.fixture
def four_locations(tmp_path, isolated_locations, monkeypatch, tiny_dataset):
    """A distinct copy of MNIST at every search level; returns (level -> folder, data_dir)."""
    folders = {
        "data_dir": tmp_path / "explicit",
        "env": tmp_path / "env-root" / "mnist",  # found through the per-dataset subfolder
        "cache": isolated_locations / "mnist",
        "system": tmp_path / "system-root" / "mnist",
    }
    for offset, folder in enumerate(folders.values()):
        tiny_dataset(folder, offset=offset)
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path / "env-root"))
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIRS", (tmp_path / "system-root",))
    return folders


@pytest.mark.parametrize("winner", LEVELS)
def test_search_order_data_dir_then_env_then_cache_then_system(four_locations, winner, monkeypatch):
    folders = four_locations
    # remove every level that should beat the expected winner
    for level in LEVELS[: LEVELS.index(winner)]:
        if level == "env":
            monkeypatch.delenv(datasets.DATA_DIR_ENV)
        elif level != "data_dir":
            for path in folders[level].iterdir():
                path.unlink()
    data_dir = folders["data_dir"] if winner == "data_dir" else None
    dataset = load_idx_dataset(MNIST, data_dir=data_dir, download=False)
    assert dataset.source == str(folders[winner])
    assert dataset.y_train[0] == LEVELS.index(winner)  # each copy's labels start at its offset


def test_candidate_dirs_lists_every_level_in_order(four_locations, tmp_path) -> None:
    places = candidate_dirs(MNIST, four_locations["data_dir"])
    labels = [label for label, _ in places]
    assert labels == sorted(labels, key=["data_dir", "GRADWISE_DATA", "cache", "system"].index)
    paths = [path for _, path in places]
    for folder in four_locations.values():
        assert folder in paths
    assert tmp_path / "explicit" / "MNIST" / "raw" in paths  # torchvision's layout


def test_env_var_may_hold_several_folders(tmp_path, monkeypatch, tiny_dataset) -> None:
    tiny_dataset(tmp_path / "second")
    monkeypatch.setenv(datasets.DATA_DIR_ENV, f"{tmp_path / 'first'}:{tmp_path / 'second'}")
    assert load_idx_dataset(MNIST, download=False).source == str(tmp_path / "second")


def test_uncompressed_files_and_torchvision_layout(tmp_path, tiny_dataset) -> None:
    x_train, y_train, x_test, y_test = tiny_dataset(tmp_path / "MNIST" / "raw", gzip=False)
    (xt, yt), (xv, yv) = load_mnist(data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(xt, x_train)
    np.testing.assert_array_equal(yv, y_test)
    assert xt.dtype == np.uint8 and yt.dtype == np.int64 and xv.shape == (6, 28, 28)


def test_a_refused_data_dir_is_reported_never_replaced(
    tmp_path, isolated_locations, tiny_dataset, monkeypatch
) -> None:
    """Issue 13 item 10: files refused in --data-dir were skipped in silence and another copy
    was used; now the refusal is the error, even when a good copy exists elsewhere."""
    tiny_dataset(tmp_path / "broken")
    (tmp_path / "broken" / "train-labels-idx1-ubyte.gz").write_bytes(b"\x00\x00\x08\x01junk")
    tiny_dataset(isolated_locations / "mnist")
    with pytest.raises(DatasetRefusedError, match="--data-dir .*broken.*refused.*train-labels"):
        load_idx_dataset(MNIST, data_dir=tmp_path / "broken", download=False)

    # a refused copy elsewhere (GRADWISE_DATA) is named in the source of the copy used instead
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path / "broken"))
    dataset = load_idx_dataset(MNIST, download=False)
    assert dataset.source.startswith(str(isolated_locations / "mnist"))
    assert "copies refused elsewhere" in dataset.source and "train-labels" in dataset.source

    # nothing usable anywhere: the not-found error carries the refusal
    (isolated_locations / "mnist" / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        load_idx_dataset(MNIST, download=False)
    assert info.value.refused and "train-labels-idx1-ubyte.gz" in info.value.refused[0]


@pytest.mark.parametrize(
    ("file_name", "array", "fragment"),
    [
        ("train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8), "11 labels for 12 images"),
        ("train-labels-idx1-ubyte.gz", np.full(12, 10, np.uint8), "label 10 is out of range"),
        ("t10k-images-idx3-ubyte.gz", np.zeros((6, 28, 27), np.uint8), "images of shape"),
        ("t10k-labels-idx1-ubyte.gz", np.zeros((6, 1), np.uint8), "1-d uint8 label"),
    ],
)
def test_files_that_do_not_fit_together_are_refused(
    tmp_path, tiny_dataset, file_name, array, fragment
) -> None:
    tiny_dataset(tmp_path)
    write_idx(tmp_path / file_name, array, gzip=True)
    with pytest.raises(DatasetRefusedError, match=fragment):
        load_idx_dataset(MNIST, data_dir=tmp_path, download=False)


def test_missing_files_are_named(tmp_path, tiny_dataset) -> None:
    from gradwise.data.datasets import DatasetRefusedError

    tiny_dataset(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    # an incomplete set in the folder the caller named is refused, not searched past
    with pytest.raises(DatasetRefusedError, match=r"3 of 4 \(missing t10k-labels-idx1-ubyte.gz"):
        load_idx_dataset(MNIST, data_dir=tmp_path, download=False)


def test_load_dataset_names_and_errors(tmp_path, tiny_dataset) -> None:
    tiny_dataset(tmp_path / "fashion-mnist")
    dataset = load_dataset("Fashion_MNIST", data_dir=tmp_path, download=False)
    assert dataset.name == "fashion-mnist" and dataset.classes[0] == "T-shirt/top"
    with pytest.raises(ValueError, match="unknown data set 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(DatasetNotFoundError):
        load_dataset("kmnist", download=False)


def test_fallback_returns_digits_and_says_why() -> None:
    dataset = load_dataset("mnist", download=False, fallback=True)
    assert dataset.name == "digits"
    assert "fallback" in dataset.source and "mnist was not found" in dataset.source
    assert dataset.x_train.shape[1:] == (28, 28)


def test_digits_fallback_looks_like_mnist() -> None:
    (x_train, y_train), (x_test, y_test) = load_digits_fallback()
    assert x_train.shape == (1438, 28, 28) and x_test.shape == (359, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert set(np.unique(y_train)) == set(range(10)) and set(np.unique(y_test)) <= set(range(10))
    assert x_train.max() == 255 and x_train.min() == 0
    images = np.concatenate([x_train, x_test])
    assert not images[:, :2].any() and not images[:, -2:].any()  # 2-pixel empty frame
    assert not images[:, :, :2].any() and not images[:, :, -2:].any()
    np.testing.assert_array_equal(images[:, 2:26:3, 2:26:3], images[:, 4:27:3, 4:27:3])  # 3x3
    again = load_digits_fallback()
    np.testing.assert_array_equal(again[1][0], x_test)  # deterministic split
    assert load_dataset("digits").source.startswith("scikit-learn digits")


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_found_in_the_default_system_dirs(monkeypatch) -> None:
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIRS", DEFAULT_SYSTEM_DATA_DIRS)
    dataset = load_dataset("fashion-mnist", download=False)
    assert dataset.source == str(DEFAULT_SYSTEM_DATA_DIRS[0] / "fashion-mnist")
    (x_train, y_train), (x_test, y_test) = dataset.splits()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert FASHION_MNIST.classes[y_train[0]] == "Ankle boot"


@pytest.mark.parametrize("layout", ["empty", "unrelated-files", "empty-subfolder"])
def test_a_data_dir_without_any_file_is_an_error_never_searched_past(
    tmp_path, isolated_locations, tiny_dataset, layout
) -> None:
    """Issue 17 item 2: an empty --data-dir let the search go on to another copy."""
    named = tmp_path / "mine"
    named.mkdir()
    if layout == "unrelated-files":
        (named / "notes.txt").write_text("x")
    elif layout == "empty-subfolder":
        (named / "mnist").mkdir()
    tiny_dataset(isolated_locations / "mnist")  # a good copy elsewhere must not be used
    with pytest.raises(DatasetRefusedError) as info:
        load_idx_dataset(MNIST, data_dir=named, download=False)
    message = str(info.value)
    assert str(named) in message and "holds no mnist files" in message
    for remote in MNIST.files:  # what it should hold
        assert remote.name in message
