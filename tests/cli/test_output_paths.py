"""User-named output paths (h5fix item 1): never a device, a folder or the run's own files.

The writers all go through ``gradwise._atomic.atomic_open``, which refuses a destination that
is not a regular file; the CLI checks ``--out`` before any work so the error is one line naming
the flag.
"""

from __future__ import annotations

import os
import stat

import pytest

from cli.cli_helpers import assert_one_line_error, gradwise

pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def xor_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli-out") / "xor"
    from gradwise.cli import main

    assert main(["train", "xor", "--epochs", "1", "--out", str(run_dir), "--quiet"]) == 0
    return run_dir


def _snapshot(run_dir):
    return {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name, fragment", [
    ("weights.safetensors", "inside the run folder"),
    ("config.json", "inside the run folder"),
    ("run.json", "inside the run folder"),
    ("checkpoints/new.onnx", "inside the run folder"),
])
def test_export_refuses_to_overwrite_the_run(xor_run, capsys, name, fragment):
    before = _snapshot(xor_run)
    result = gradwise(capsys, "export", xor_run, "--out", xor_run / name)
    assert_one_line_error(result, 2, fragment)
    assert _snapshot(xor_run) == before


def test_export_refuses_a_folder(xor_run, capsys, tmp_path):
    result = gradwise(capsys, "export", xor_run, "--out", tmp_path)
    assert_one_line_error(result, 2, "is a folder")
    assert ".tmp" not in result.err


def test_export_refuses_a_character_device_and_keeps_it(xor_run, capsys):
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    result = gradwise(capsys, "export", xor_run, "--out", "/dev/null")
    assert_one_line_error(result, 2, "character device")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_export_refuses_a_fifo(xor_run, capsys, tmp_path):
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    result = gradwise(capsys, "export", xor_run, "--out", fifo)
    assert_one_line_error(result, 2, "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_lr_find_refuses_a_folder_plot(capsys, tmp_path):
    result = gradwise(capsys, "lr-find", "xor", "--out", tmp_path, "--num-steps", "10")
    assert_one_line_error(result, 2, "is a folder")


def test_train_refuses_a_file_as_out_and_tensorboard(capsys, tmp_path):
    afile = tmp_path / "file"
    afile.write_text("keep")
    result = gradwise(capsys, "train", "xor", "--epochs", "1", "--out", afile)
    assert_one_line_error(result, 2, "cannot be a folder")
    result = gradwise(capsys, "train", "xor", "--epochs", "1", "--out", tmp_path / "r",
                      "--tensorboard", afile)
    assert_one_line_error(result, 2, "cannot be a folder")
    assert afile.read_text() == "keep"
