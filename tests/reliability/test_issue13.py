"""Regression tests for the faults of issue 13 not already covered by the hostile corpus
(test_hostile_corpus.py: items 5-9, 11, 12), the resume tests (tests/train/test_resume_exact.py:
items 1, 2), the kill campaign (test_crash_resume.py) and the data tests (item 10)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

import gradwise as gw
from gradwise.cli import EXIT_RUN
from gradwise.safetensors_io import dump_safetensors, parse_safetensors, read_safetensors
from gradwise.train import CheckpointError, Trainer
from gradwise.train.checkpoint import load_checkpoint


def _gradwise(*args: str, hash_seed: str = "0") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "gradwise.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)


# ---- item 3: identical runs, identical bytes -----------------------------------------------
def test_safetensors_bytes_do_not_depend_on_the_process():
    """The safetensors package keeps the header in a hash map: its order changed from process
    to process. dump_safetensors writes a sorted header: same tensors, same bytes."""
    script = (
        "import sys, hashlib, numpy as np\n"
        "from gradwise.safetensors_io import dump_safetensors\n"
        "arrays = {f't{i}': np.full(3, i, np.float32) for i in range(40)}\n"
        "meta = {f'k{i}': str(i) for i in range(40)}\n"
        "sys.stdout.write(hashlib.sha256(dump_safetensors(arrays, meta)).hexdigest())\n"
    )
    digests = {
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout
        for seed in range(4)
    }
    assert len(digests) == 1
    payload = dump_safetensors({"b": np.ones(2, np.float32), "a": np.zeros(3, np.int64)},
                               {"z": "1", "a": "2"})
    (length,) = struct.unpack("<Q", payload[:8])
    header = payload[8 : 8 + length].decode().rstrip()
    assert header == json.dumps(json.loads(header), sort_keys=True, separators=(",", ":"))
    arrays, metadata = parse_safetensors(payload)
    assert metadata == {"z": "1", "a": "2"} and arrays["a"].dtype == np.int64
    # 0-d tensors (BatchNorm's num_batches_tracked) keep their shape through a round trip
    scalar = parse_safetensors(dump_safetensors({"n": np.array(7, np.int64)}))[0]["n"]
    assert scalar.shape == () and scalar == 7


def test_two_identical_cli_runs_write_identical_files(tmp_path):
    from reliability.folders import comparable_files

    folders = []
    for seed in ("1", "2"):
        folder = tmp_path / f"run{seed}"
        result = _gradwise("train", "spiral", "--epochs", "2", "--no-doctor", "--quiet",
                           "--out", str(folder), hash_seed=seed)
        assert result.returncode == 0, result.stderr
        folders.append(folder)
    assert (folders[0] / "weights.safetensors").read_bytes() == (
        folders[1] / "weights.safetensors").read_bytes()
    first, second = (comparable_files(folder) for folder in folders)
    assert first == second
    for manifest in folders[0].rglob("checkpoint.json"):
        assert "created" not in json.loads(manifest.read_text())  # no timestamp


# ---- item 4: temp files left by kills are removed at the next start -------------------------
def test_resume_removes_every_leftover_temp_file(tmp_path):
    run = tmp_path / "run"
    result = _gradwise("train", "spiral", "--epochs", "2", "--no-doctor", "--quiet",
                       "--out", str(run))
    assert result.returncode == 0, result.stderr
    info = json.loads((run / "run.json").read_text())
    info["status"] = "interrupted"
    (run / "run.json").write_text(json.dumps(info))
    (run / "weights.safetensors").unlink()
    leftovers = [
        run / ".metrics.jsonl.abc123xy.tmp", run / ".history.json.k2j4h5g6.tmp",
        run / ".weights.safetensors.q1w2e3r4.tmp", run / ".learning_curves.png.zz99yy88.tmp",
        run / ".report.html.a1b2c3d4.tmp", run / ".run.json.x9y8z7w6.tmp",
        run / "checkpoints" / "best" / ".checkpoint.json.m3n4b5v6.tmp",
    ]
    for path in leftovers:
        path.write_bytes(b"partial")
    kept = [run / "notes.tmp", run / ".hidden", run / "checkpoints" / "my.tmp.txt"]
    for path in kept:
        path.write_text("mine")
    result = _gradwise("train", "--resume", str(run), "--quiet")
    assert result.returncode == 0, result.stderr
    assert [path for path in leftovers if path.exists()] == []
    assert all(path.exists() for path in kept)


# ---- item 9: safetensors caps before parsing -------------------------------------------------
def _bounded(call, seconds: float = 1.0, memory: int = 32 << 20):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        call()
    finally:
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < seconds and peak < memory, (elapsed, peak)


def test_a_million_key_header_is_refused_before_parsing(tmp_path):
    entry = b'"%d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},'
    header = b"{" + b"".join(entry % i for i in range(1_000_000))[:-1] + b"}"
    path = tmp_path / "keys.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(ValueError, match="refused|header of"):
        _bounded(lambda: read_safetensors(path, error=ValueError))


def test_two_gib_of_trailing_bytes_are_never_read(tmp_path):
    path = tmp_path / "trailing.safetensors"
    path.write_bytes(dump_safetensors({"w": np.ones(4, np.float32)}))
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size + (2 << 30))  # sparse: no disk used
    with pytest.raises(ValueError, match="trailing bytes"):
        _bounded(lambda: read_safetensors(path, error=ValueError, max_bytes=4 << 30))


@pytest.mark.parametrize("count", [5000, 100_000])
def test_a_manifest_of_many_tensors_gives_a_short_error(tmp_path, count):
    """A manifest listing a million tensors printed an 11 MB error line: now a count over the
    cap is refused as such, and a mismatch names at most three tensors."""
    from gradwise.train.checkpoint import CheckpointData, save_checkpoint

    save_checkpoint(tmp_path, CheckpointData(model_state={"w": np.ones(2, np.float32)}))
    manifest = json.loads((tmp_path / "checkpoint.json").read_text())
    manifest["model"]["tensors"] = {f"t{i}" * 20: {"shape": [1], "dtype": "float32"}
                                    for i in range(count)}
    (tmp_path / "checkpoint.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="more than the 65536" if count > 65536 else
                       "only in the manifest .* and 4997 more") as info:
        load_checkpoint(tmp_path)
    assert len(str(info.value)) < 400


# ---- item 11: loaded weights are checked --------------------------------------------------------
def test_non_finite_checkpoint_weights_are_refused_unless_asked(tmp_path):
    from gradwise.train.checkpoint import CheckpointData, save_checkpoint

    save_checkpoint(tmp_path, CheckpointData(model_state={"w": np.ones(2, np.float32)}))
    manifest = json.loads((tmp_path / "checkpoint.json").read_text())
    model_path = tmp_path / manifest["files"]["model"]["file"]
    payload = dump_safetensors({"w": np.array([1.0, np.nan], np.float32)})
    model_path.write_bytes(payload)
    import hashlib

    manifest["files"]["model"].update(bytes=len(payload),
                                      sha256=hashlib.sha256(payload).hexdigest())
    (tmp_path / "checkpoint.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="non-finite weights .* in w"):
        load_checkpoint(tmp_path)
    assert np.isnan(load_checkpoint(tmp_path, allow_non_finite=True).model_state["w"][1])


# ---- item 12: arguments refused where they are given --------------------------------------------
def test_a_loss_class_instead_of_an_instance_is_refused():
    model = gw.nn.Linear(2, 2)
    with pytest.raises(TypeError, match="loss_fn is the class CrossEntropyLoss.*instance"):
        Trainer(model, gw.nn.CrossEntropyLoss, gw.optim.SGD(model.parameters(), lr=0.1))


@pytest.mark.parametrize("data", [["a", "b"], [b"x"], np.array(["1"]), [object()]])
def test_tensors_hold_numbers_only(data):
    with pytest.raises(TypeError, match="numbers or booleans"):
        gw.tensor(data)


def test_a_data_dir_that_is_not_utf8_is_one_line(tmp_path):
    folder = os.fsencode(tmp_path) + b"/caf\xe9"
    os.mkdir(folder)
    result = subprocess.run(
        [os.fsencode(sys.executable), b"-m", b"gradwise.cli", b"train", b"mnist-mlp",
         b"--data-dir", folder, b"--out", os.fsencode(tmp_path / "out")],
        capture_output=True, timeout=120)
    err = result.stderr.decode(errors="replace").strip().splitlines()
    assert result.returncode == 2, err
    assert len(err) == 1 and "data-dir" in err[0] and "UTF-8" in err[0]


def test_nan_final_weights_are_refused_and_can_be_inspected(tmp_path, capsys):
    """Issue 13 item 11: NaN weights were evaluated with exit 0 ("loss nan")."""
    from gradwise.cli import main

    run = tmp_path / "run"
    assert main(["train", "spiral", "--epochs", "1", "--no-doctor", "--quiet",
                 "--out", str(run)]) == 0
    arrays = read_safetensors(run / "weights.safetensors")[0]
    first = next(iter(arrays))
    arrays[first].flat[0] = np.nan
    (run / "weights.safetensors").write_bytes(dump_safetensors(arrays))
    info = json.loads((run / "run.json").read_text())
    del info["weights_sha256"]  # the finiteness check, not the digest, must refuse them
    (run / "run.json").write_text(json.dumps(info))
    capsys.readouterr()
    # the final weights (the best epoch's checkpoint is untouched and still loads by default)
    assert main(["evaluate", str(run), "--weights", "last"]) == EXIT_RUN
    assert f"non-finite weights (NaN or inf) in {first}" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--weights", "last", "--allow-non-finite"]) == 0
