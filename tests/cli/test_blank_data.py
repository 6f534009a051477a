"""All-zero training images (h5fix item 3): one-line data error before any run folder exists."""

from __future__ import annotations

import numpy as np

from cli.cli_helpers import assert_one_line_error, gradwise
from gradwise.data import write_idx


def _write_blank(directory, count=40):
    for prefix in ("train", "t10k"):
        labels = (np.arange(count) % 10).astype(np.uint8)
        write_idx(directory / f"{prefix}-images-idx3-ubyte", np.zeros((count, 28, 28), np.uint8))
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels)


def test_all_zero_images_are_refused_before_the_run_folder_exists(capsys, tmp_path):
    data_dir = tmp_path / "blank"
    data_dir.mkdir()
    _write_blank(data_dir)
    run_dir = tmp_path / "run"
    result = gradwise(capsys, "train", "fashion-mlp", "--data-dir", data_dir, "--epochs", "1",
                      "--out", run_dir, "--quiet", "--no-doctor")
    assert_one_line_error(result, 3, "standard deviation is 0")
    assert str(data_dir) in result.err
    assert not run_dir.exists()
