"""The hostile corpus: files and arguments a user may be handed, each of which gradwise must
refuse cleanly (one ``gradwise: error:`` line, exit 1 or 2, never "unexpected"), quickly and in
bounded memory. Run by tests/reliability/test_hostile_corpus.py through corpus_worker.py.

Each case is a function ``build(tmp, bases) -> argv`` registered with :func:`case`; it writes
what it needs under ``tmp`` (a fresh folder) and returns the ``gradwise`` arguments. ``bases``
holds ready-made run folders to copy: ``spiral`` (a real 2-epoch run) and ``digits`` (an
image-recipe run folder with freshly initialised weights).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Build = Callable[[Path, dict[str, Path]], list[str]]
CASES: dict[str, tuple[str, Build, bool]] = {}
"""name -> (loader family, builder, should_succeed)."""


def case(family: str, ok: bool = False) -> Callable[[Build], Build]:
    def register(build: Build) -> Build:
        CASES[f"{family}:{build.__name__}"] = (family, build, ok)
        return build
    return register


# ---- helpers ----------------------------------------------------------------------------------
def run_copy(bases: dict[str, Path], kind: str, tmp: Path) -> Path:
    run = tmp / "run"
    shutil.copytree(bases[kind], run, symlinks=True)
    return run


def st_bytes(header: Any, payload: bytes = b"", length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + payload


def edit_json(path: Path, change: Callable[[dict], Any]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def replace_with(path: Path, kind: str, target: str | Path | None = None) -> None:
    """Replace ``path`` by a FIFO, a symlink, a folder or a sparse file of ``target`` bytes."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link":
        path.symlink_to(target)
    elif kind == "dir":
        path.mkdir()
    elif kind == "sparse":
        with open(path, "wb") as handle:
            handle.truncate(int(target))


def last_manifest(run: Path) -> Path:
    return run / "checkpoints" / "last" / "checkpoint.json"


def unpin(run: Path) -> None:
    """Drop run.json's SHA-256 digests (a run written before gradwise recorded them, or a forger
    who also edited run.json), so that a forged file reaches the checks behind the digest."""
    edit_json(run / "run.json", lambda d: [d.pop(key, None) for key in (
        "weights_sha256", "checkpoint_sha256")])


def checkpoint_run(bases: dict[str, Path], tmp: Path, resume: bool = False) -> Path:
    """A spiral run whose final weights are gone, unpinned and marked unfinished: evaluate
    reads checkpoints/last (a finished run without its weights is refused, see the digest
    cases)."""
    run = run_copy(bases, "spiral", tmp)
    (run / "weights.safetensors").unlink()
    unpin(run)
    edit_json(run / "run.json", lambda d: d.update(status="interrupted" if resume else "stopped"))
    return run


def model_file(run: Path) -> Path:
    manifest = json.loads(last_manifest(run).read_text())
    return last_manifest(run).parent / manifest["files"]["model"]["file"]


def resign(run: Path) -> None:
    import hashlib

    path = model_file(run)
    payload = path.read_bytes()
    edit_json(last_manifest(run), lambda d: d["files"]["model"].update(
        bytes=len(payload), sha256=hashlib.sha256(payload).hexdigest()))


def weights_of(run: Path) -> dict[str, np.ndarray]:
    from gradwise.safetensors_io import read_safetensors

    return read_safetensors(run / "weights.safetensors")[0]


def write_weights(path: Path, arrays: dict[str, np.ndarray]) -> None:
    import safetensors.numpy

    path.write_bytes(safetensors.numpy.save(arrays))


def png_with_chunks(width: int, height: int, extra: bytes = b"",
                    body: bytes | None = None) -> bytes:
    """A PNG of a given header size (1-bit grayscale) with optional extra chunks."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    if body is None:
        row = b"\x00" + bytes((width + 7) // 8)
        body = zlib.compress(row * min(height, 64), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra + chunk(b"IDAT", body) + chunk(
        b"IEND", b"")


def idx_header(code: int, dims: tuple[int, ...]) -> bytes:
    return struct.pack(f">BBBB{len(dims)}I", 0, 0, code, len(dims), *dims)


def mnist_dir(tmp: Path, images: bytes | None = None, labels: bytes | None = None,
              n: int = 20, compress: bool = True) -> Path:
    """A --data-dir with the four MNIST files; the train images/labels may be replaced."""
    folder = tmp / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    good_images = idx_header(8, (n, 28, 28)) + rng.integers(0, 255, (n, 28, 28), np.uint8).tobytes()
    good_labels = idx_header(8, (n,)) + (np.arange(n) % 10).astype(np.uint8).tobytes()
    contents = {
        "train-images-idx3-ubyte": good_images if images is None else images,
        "train-labels-idx1-ubyte": good_labels if labels is None else labels,
        "t10k-images-idx3-ubyte": good_images,
        "t10k-labels-idx1-ubyte": good_labels,
    }
    for name, data in contents.items():
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / name).write_bytes(data)
    return folder


def train_mnist(folder: Path) -> list[str]:
    return ["train", "mnist-mlp", "--data-dir", str(folder), "--epochs", "1", "--no-doctor",
            "--out", str(folder.parent / "out"), "--quiet"]


def evaluate(run: Path) -> list[str]:
    # the final weights (or checkpoints/last), which these cases forge; evaluate's default
    # would read the untouched checkpoints/best instead
    return ["evaluate", str(run), "--weights", "last"]


def resume(run: Path) -> list[str]:
    return ["train", "--resume", str(run), "--quiet"]


# ---- controls: these must work --------------------------------------------------------------
@case("control", ok=True)
def evaluate_a_good_run(tmp, bases):
    return evaluate(run_copy(bases, "spiral", tmp))


@case("control", ok=True)
def evaluate_from_the_checkpoint(tmp, bases):
    return evaluate(checkpoint_run(bases, tmp))


@case("control", ok=True)
def predict_a_good_picture(tmp, bases):
    from PIL import Image, ImageDraw

    image = Image.new("L", (60, 60), 0)
    ImageDraw.Draw(image).line([(30, 10), (30, 50)], fill=255, width=6)
    image.save(tmp / "one.png")
    return ["predict", str(run_copy(bases, "digits", tmp)), str(tmp / "one.png")]


# ---- final weights (weights.safetensors) ------------------------------------------------------
def _weights_case(name: str, payload: Callable[[Path], bytes]) -> None:
    def build(tmp, bases):
        run = run_copy(bases, "spiral", tmp)
        (run / "weights.safetensors").write_bytes(payload(run))
        return evaluate(run)
    build.__name__ = name
    case("weights")(build)


def _valid_header(run: Path) -> tuple[dict, bytes]:
    raw = (run / "weights.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def _mutated(change: Callable[[dict], None]) -> Callable[[Path], bytes]:
    def payload(run: Path) -> bytes:
        header, data = _valid_header(run)
        change(header)
        return st_bytes(header, data)
    return payload


def _first(header: dict) -> dict:
    return header[next(k for k in header if k != "__metadata__")]


for _name, _payload in {
    "empty_file": lambda run: b"",
    "seven_bytes": lambda run: b"\x01" * 7,
    "header_length_2_63": lambda run: st_bytes(b"{}", length=2**63),
    "header_length_past_the_end": lambda run: st_bytes(b"{}", length=4096),
    "header_not_json": lambda run: st_bytes(b"{not json"),
    "header_a_list": lambda run: st_bytes([1, 2, 3]),
    "header_deeply_nested": lambda run: st_bytes(b"[" * 100000 + b"]" * 100000),
    "header_not_utf8": lambda run: st_bytes(b'{"\xff": 1}'),
    "header_100k_keys": lambda run: st_bytes(
        {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(100000)}),
    "trailing_megabyte": lambda run: (run / "weights.safetensors").read_bytes() + bytes(1 << 20),
    "truncated_data": lambda run: (run / "weights.safetensors").read_bytes()[:-16],
    "offsets_overlap": _mutated(lambda h: _first(h).update(data_offsets=[0, 0])),
    "offsets_reversed": _mutated(lambda h: _first(h).update(
        data_offsets=_first(h)["data_offsets"][::-1])),
    "offsets_negative": _mutated(lambda h: _first(h).update(data_offsets=[-8, 0])),
    "offsets_huge": _mutated(lambda h: _first(h).update(data_offsets=[0, 2**62])),
    "dtype_unknown": _mutated(lambda h: _first(h).update(dtype="F8_E4M3")),
    "dtype_bf16": _mutated(lambda h: _first(h).update(dtype="BF16")),
    "shape_negative": _mutated(lambda h: _first(h).update(shape=[-1, 4])),
    "shape_huge": _mutated(lambda h: _first(h).update(shape=[2**40, 2**40])),
    "shape_not_a_list": _mutated(lambda h: _first(h).update(shape="64")),
    "entry_extra_field": _mutated(lambda h: _first(h).update(extra=1)),
    "metadata_not_strings": _mutated(lambda h: h.update(__metadata__={"a": 1})),
    "pickle_payload": lambda run: b"\x80\x02cposix\nsystem\nq\x00X\x05\x00\x00\x00touchq\x01\x85R.",
    "torch_zip": lambda run: b"PK\x03\x04" + bytes(200),
}.items():
    _weights_case(_name, _payload)


def _weights_arrays_case(name: str, change: Callable[[dict], None]) -> None:
    def build(tmp, bases):
        run = run_copy(bases, "spiral", tmp)
        arrays = weights_of(run)
        change(arrays)
        write_weights(run / "weights.safetensors", arrays)
        unpin(run)  # the arrays' own checks, not the digest, must refuse these
        return evaluate(run)
    build.__name__ = name
    case("weights")(build)


def _first_key(arrays: dict) -> str:
    return next(iter(arrays))


for _name, _change in {
    "nan_weights": lambda a: a[_first_key(a)].flat.__setitem__(0, np.nan),
    "inf_weights": lambda a: a[_first_key(a)].flat.__setitem__(0, np.inf),
    "int64_weights": lambda a: a.update({k: v.astype(np.int64) for k, v in a.items()}),
    "float16_weights": lambda a: a.update({k: v.astype(np.float16) for k, v in a.items()}),
    "bool_weights": lambda a: a.update({k: v > 0 for k, v in a.items()}),
    "float64_weights": lambda a: a.update({k: v.astype(np.float64) for k, v in a.items()}),
    "missing_tensor": lambda a: a.pop(_first_key(a)),
    "extra_tensor": lambda a: a.update(extra=np.zeros(3, np.float32)),
    "wrong_shape": lambda a: a.update({_first_key(a): np.zeros((3, 3), np.float32)}),
    "long_key_names": lambda a: a.update({"k" * 5000: np.zeros(1, np.float32)}),
}.items():
    _weights_arrays_case(_name, _change)


for _kind, _target in {"fifo": None, "dev_zero": "/dev/zero", "outside": "/etc/passwd",
                       "dir": None, "sparse_3_gib": 3 << 30, "dangling": "/nonexistent/x"}.items():
    def _build(tmp, bases, kind=_kind, target=_target):
        run = run_copy(bases, "spiral", tmp)
        mode = {"dev_zero": "link", "outside": "link", "dangling": "link",
                "sparse_3_gib": "sparse"}.get(kind, kind)
        replace_with(run / "weights.safetensors", mode, target)
        return evaluate(run)
    _build.__name__ = f"weights_file_{_kind}"
    case("weights")(_build)


# ---- checkpoints (evaluate of an unfinished run, and resume) ----------------------------------
def _checkpoint_case(name: str, change: Callable[[Path], None], for_resume: bool = False) -> None:
    def build(tmp, bases):
        run = checkpoint_run(bases, tmp, resume=for_resume)
        change(run)
        return resume(run) if for_resume else evaluate(run)
    build.__name__ = name
    case("checkpoint")(build)


def _manifest(change: Callable[[dict], None]) -> Callable[[Path], None]:
    return lambda run: edit_json(last_manifest(run), change)


def _model_bytes(change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def apply(run: Path) -> None:
        path = model_file(run)
        path.write_bytes(change(path.read_bytes()))
        resign(run)
    return apply


for _name, _change in {
    "manifest_fifo": lambda run: replace_with(last_manifest(run), "fifo"),
    "manifest_dev_zero": lambda run: replace_with(last_manifest(run), "link", "/dev/zero"),
    "manifest_outside": lambda run: replace_with(last_manifest(run), "link", "/etc/hostname"),
    "manifest_sparse_1_gib": lambda run: replace_with(last_manifest(run), "sparse", 1 << 30),
    "manifest_not_json": lambda run: last_manifest(run).write_text("{"),
    "manifest_deep": lambda run: last_manifest(run).write_text("[" * 200000),
    "manifest_a_list": lambda run: last_manifest(run).write_text("[]"),
    "manifest_version_99": _manifest(lambda d: d.update(version=99)),
    "manifest_no_files": _manifest(lambda d: d.pop("files")),
    "model_file_parent_path": _manifest(lambda d: d["files"]["model"].update(file="../x")),
    "model_file_absolute": _manifest(lambda d: d["files"]["model"].update(file="/etc/passwd")),
    "model_bytes_1e15": _manifest(lambda d: d["files"]["model"].update(bytes=10**15)),
    "model_bytes_negative": _manifest(lambda d: d["files"]["model"].update(bytes=-1)),
    "model_sha_mismatch": _manifest(lambda d: d["files"]["model"].update(sha256="0" * 64)),
    "model_file_fifo": lambda run: replace_with(model_file(run), "fifo"),
    "model_file_dev_zero": lambda run: replace_with(model_file(run), "link", "/dev/zero"),
    "model_file_outside": lambda run: replace_with(model_file(run), "link", "/etc/passwd"),
    "model_file_missing": lambda run: model_file(run).unlink(),
    "model_file_not_safetensors": _model_bytes(lambda data: b"garbage" * 10),
    "model_file_trailing_bytes": _model_bytes(lambda data: data + bytes(4096)),
    "model_file_header_2_63": _model_bytes(lambda data: struct.pack("<Q", 2**63) + data[8:]),
    "model_nan": _model_bytes(lambda data: data[:-4] + struct.pack("<f", float("nan"))),
    "tensor_table_wrong_shape": _manifest(lambda d: next(iter(
        d["model"]["tensors"].values())).update(shape=[1, 1])),
}.items():
    _checkpoint_case(_name, _change)


for _name, _change in {
    "epoch_negative": _manifest(lambda d: d["trainer"].update(epoch=-5)),
    "step_1e30": _manifest(lambda d: d["trainer"].update(step=10**30)),
    "step_a_string": _manifest(lambda d: d["trainer"].update(step="7")),
    "batch_in_epoch_huge": _manifest(lambda d: d["trainer"].update(batch_in_epoch=10**9)),
    "history_longer_than_epochs": _manifest(lambda d: d["trainer"].update(epoch=0)),
    "trainer_version_7": _manifest(lambda d: d["trainer"].update(version=7)),
    "rng_state_garbage": _manifest(lambda d: d["trainer"].update(rng_state={"x": 1})),
    "rng_state_int_10_60": _manifest(lambda d: d["trainer"]["rng_state"]["state"].update(
        state=10**60)),
    "rng_state_inc_negative": _manifest(lambda d: d["trainer"]["rng_state"]["state"].update(
        inc=-1)),
    "rng_state_other_generator": _manifest(lambda d: d["trainer"]["rng_state"].update(
        bit_generator="MT19937")),
    "loader_rng_state_int_10_60": _manifest(lambda d: d["trainer"]["loader_state"][
        "rng_state"]["state"].update(state=10**60)),
    "rng_state_uinteger_a_string": _manifest(lambda d: d["trainer"]["rng_state"].update(
        uinteger="7")),
    "loader_state_garbage": _manifest(lambda d: d["trainer"].update(loader_state=[1])),
    "data_fingerprint_other": _manifest(lambda d: d["trainer"].update(
        data={"samples": 3, "batch_size": 1, "batches_per_epoch": 3})),
    "callback_state_missing": _manifest(lambda d: d.update(callbacks={})),
    "callback_best_a_string": _manifest(lambda d: d["callbacks"]["ModelCheckpoint"].update(
        best="abc")),
    "callback_best_epoch_negative": _manifest(lambda d: d["callbacks"]["ModelCheckpoint"].update(
        best_epoch=-3)),
    "callbacks_not_an_object": _manifest(lambda d: d.update(callbacks=[1, 2])),
    "optimizer_meta_missing": _manifest(lambda d: d["optimizer"].update(meta=None)),
    "scheduler_garbage": _manifest(lambda d: d.update(scheduler={"class": "X", "state": 1})),
    "history_garbage": _manifest(lambda d: d.update(history={"epochs": "x"})),
}.items():
    _checkpoint_case(f"resume_{_name}", _change, for_resume=True)


# ---- run.json ---------------------------------------------------------------------------------
def _run_info_case(name: str, change: Callable[[Path], None], command: str = "evaluate") -> None:
    def build(tmp, bases):
        kind = "digits" if command == "predict" else "spiral"
        run = run_copy(bases, kind, tmp)
        change(run / "run.json")
        if command == "predict":
            from PIL import Image

            Image.new("L", (40, 40), 0).save(tmp / "pic.png")
            return ["predict", str(run), str(tmp / "pic.png")]
        return evaluate(run)
    build.__name__ = name
    case("run_json")(build)


def _info(change: Callable[[dict], None]) -> Callable[[Path], None]:
    return lambda path: edit_json(path, change)


for _name, _change in {
    "fifo": lambda p: replace_with(p, "fifo"),
    "dev_zero": lambda p: replace_with(p, "link", "/dev/zero"),
    "outside": lambda p: replace_with(p, "link", "/etc/passwd"),
    "sparse_100_mib": lambda p: replace_with(p, "sparse", 100 << 20),
    "a_folder": lambda p: replace_with(p, "dir"),
    "not_json": lambda p: p.write_text("{"),
    "not_utf8": lambda p: p.write_bytes(b'{"a": "\xff"}'),
    "a_list": lambda p: p.write_text("[]"),
    "deep": lambda p: p.write_text("[" * 100000),
    "std_zero": _info(lambda d: d.update(std=0)),
    "std_negative": _info(lambda d: d.update(std=-1)),
    "std_nan": lambda p: p.write_text(p.read_text().replace('"std": 1.0', '"std": NaN')
                                      if '"std": 1.0' in p.read_text() else '{"std": NaN}'),
    "mean_a_string": _info(lambda d: d.update(mean="abc")),
    "mean_1e300": _info(lambda d: d.update(mean=1e300)),
    "input_shape_negative": _info(lambda d: d.update(input_shape=[-3])),
    "input_shape_empty": _info(lambda d: d.update(input_shape=[])),
    "input_shape_huge": _info(lambda d: d.update(input_shape=[100000, 100000])),
    "input_shape_strings": _info(lambda d: d.update(input_shape=["a"])),
    "input_shape_missing": _info(lambda d: d.pop("input_shape")),
    "classes_two_million": _info(lambda d: d.update(classes=["c"] * 2_000_000)),
    "classes_one": _info(lambda d: d.update(classes=["only"])),
    "classes_not_strings": _info(lambda d: d.update(classes=[1, 2])),
    "classes_long_names": _info(lambda d: d.update(classes=["x" * 10000, "y"])),
    "dataset_unknown": _info(lambda d: d.update(dataset="imagenet")),
    "dataset_a_number": _info(lambda d: d.update(dataset=7)),
    "status_unknown": _info(lambda d: d.update(status="exploded")),
    "format_other": _info(lambda d: d.update(format="pytorch")),
    "epoch_negative": _info(lambda d: d.update(epoch=-1)),
    "classes_terminal_escapes": _info(lambda d: d.update(classes=["\x1b[2Ja", "b\r\n"])),
    "classes_empty_name": _info(lambda d: d.update(classes=["", "b"])),
    "recipe_escape": _info(lambda d: d.update(recipe="spiral\x1b]0;x\x07")),
}.items():
    _run_info_case(_name, _change)


def _resume_folder_case(name: str, change: Callable[[Path], None]) -> None:
    """A resumable spiral run (interrupted after epoch 1) with one file of the folder changed:
    refused before any work (the refused-resume rule)."""
    def build(tmp, bases):
        run = checkpoint_run(bases, tmp, resume=True)
        change(run)
        return resume(run)
    build.__name__ = name
    case("run_json")(build)


for _name, _change in {
    "resume_epoch_10_30": lambda run: edit_json(run / "run.json",
                                                lambda d: d.update(epoch=10**30)),
    "resume_history_fifo": lambda run: replace_with(run / "history.json", "fifo"),
    "resume_metrics_a_folder": lambda run: replace_with(run / "metrics.jsonl", "dir"),
    "resume_report_dev_null": lambda run: replace_with(run / "report.html", "link", "/dev/null"),
    "resume_best_a_file": lambda run: (shutil.rmtree(run / "checkpoints" / "best"),
                                       (run / "checkpoints" / "best").write_text("x")),
}.items():
    _resume_folder_case(_name, _change)

for _name, _change in {
    "predict_std_zero": _info(lambda d: d.update(std=0)),
    "predict_classes_three": _info(lambda d: d.update(classes=["a", "b", "c"])),
    "predict_dataset_spiral": _info(lambda d: d.update(dataset="spiral")),
}.items():
    _run_info_case(_name, _change, command="predict")


# ---- config.json of a run, and --config files -------------------------------------------------
def _run_config_case(name: str, change: Callable[[Path], None]) -> None:
    def build(tmp, bases):
        run = run_copy(bases, "spiral", tmp)
        change(run / "config.json")
        return evaluate(run)
    build.__name__ = name
    case("run_config")(build)


for _name, _change in {
    "fifo": lambda p: replace_with(p, "fifo"),
    "dev_zero": lambda p: replace_with(p, "link", "/dev/zero"),
    "outside": lambda p: replace_with(p, "link", "/etc/passwd"),
    "not_json": lambda p: p.write_text("nope"),
    "no_recipe": _info(lambda d: d.pop("recipe")),
    "hidden_65536_squared": _info(lambda d: d.update(hidden=[65536, 65536])),
    "hidden_thousand_layers": _info(lambda d: d.update(hidden=[8] * 1000)),
    "hidden_strings": _info(lambda d: d.update(hidden=["8"])),
    "lr_a_string": _info(lambda d: d.update(lr="fast")),
    "epochs_10_400": lambda p: p.write_text(p.read_text().replace('"epochs": ', '"epochs": 1' +
                                                                  "0" * 400 + ", \"x_\": ")),
    "optimizer_unknown": _info(lambda d: d.update(optimizer="lion")),
    "dataset_unknown": _info(lambda d: d.update(dataset="cifar")),
    "unknown_key": _info(lambda d: d.update(learning_rate=0.1)),
    "seed_2_70": _info(lambda d: d.update(seed=2**70)),
}.items():
    _run_config_case(_name, _change)


def _config_file_case(name: str, text: str | bytes | None, suffix: str = ".json",
                      kind: str | None = None, extra: tuple[str, ...] = ()) -> None:
    def build(tmp, bases):
        path = tmp / f"settings{suffix}"
        if kind is not None:
            replace_with(path, kind, text)
        elif isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return ["train", "--config", str(path), "--out", str(tmp / "out"), "--quiet", *extra]
    build.__name__ = name
    case("config_file")(build)


for _name, _text in {
    "hidden_65536_squared": '{"recipe": "spiral", "hidden": [65536, 65536]}',
    "hidden_huge_cnn": '{"recipe": "mnist-cnn", "channels": [65536, 65536], "hidden": [65536]}',
    "epochs_10_400_onecycle": '{"recipe": "spiral", "schedule": "onecycle", "epochs": 1'
                              + "0" * 400 + "}",
    "epochs_1e9": '{"recipe": "spiral", "epochs": 1000000000}',
    "lr_inf": '{"recipe": "spiral", "lr": 1e999}',
    "lr_negative": '{"recipe": "spiral", "lr": -1}',
    "batch_zero": '{"recipe": "spiral", "batch_size": 0}',
    "batch_huge": '{"recipe": "spiral", "batch_size": 1099511627776}',
    "seed_negative": '{"recipe": "spiral", "seed": -1}',
    "seed_2_70": '{"recipe": "spiral", "seed": 1180591620717411303424}',
    "dropout_one": '{"recipe": "spiral", "dropout": 1.0}',
    "val_fraction_one": '{"recipe": "spiral", "val_fraction": 1}',
    "data_dir_not_utf8": '{"recipe": "mnist-mlp", "data_dir": "/tmp/\\udcff"}',
    "data_dir_empty": '{"recipe": "mnist-mlp", "data_dir": ""}',
    "recipe_a_number": '{"recipe": 12345}',
    "recipe_unknown": '{"recipe": "gpt-5"}',
    "unknown_key": '{"recipe": "spiral", "momentum": 0.99}',
    "a_list": "[1, 2]",
    "not_json": "{recipe: spiral}",
    "deep": "[" * 100000,
    "not_utf8_bytes": b'{"recipe": "\xff"}',
    "limit_train_one": '{"recipe": "spiral", "limit_train": 1}',
}.items():
    _config_file_case(_name, _text)

_config_file_case("toml_invalid", "recipe = ", ".toml")
_config_file_case("toml_hidden_huge", 'recipe = "spiral"\nhidden = [65536, 65536]\n', ".toml")
_config_file_case("toml_epochs_huge", 'recipe = "spiral"\nepochs = 9223372036854775807\n', ".toml")
_config_file_case("dev_zero", "/dev/zero", kind="link")
_config_file_case("fifo", None, kind="fifo")
_config_file_case("sparse_2_mib", 2 << 20, kind="sparse")
_config_file_case("a_folder", None, kind="dir")


# ---- IDX data sets (--data-dir) ---------------------------------------------------------------
def _idx_case(name: str, images: Callable[[], bytes] | None = None,
              labels: Callable[[], bytes] | None = None, compress: bool = True,
              n: int = 20, after: Callable[[Path], None] | None = None) -> None:
    def build(tmp, bases):
        folder = mnist_dir(tmp, images() if images else None, labels() if labels else None,
                           n=n, compress=compress)
        if after is not None:
            after(folder)
        return train_mnist(folder)
    build.__name__ = name
    case("idx")(build)


def _gzip_bomb(count: int) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        path = folder / "train-images-idx3-ubyte.gz"
        with gzip.open(path, "wb", compresslevel=9) as handle:
            handle.write(idx_header(8, (count // 784, 28, 28)))
            handle.write(bytes(2 << 20))
    return apply


_idx_case("gzip_bomb_1_96_gb", after=_gzip_bomb(1_960_000_000))
_idx_case("gzip_bomb_7_8_gb", after=_gzip_bomb(7_800_000_000))
_idx_case("header_claims_1e12", images=lambda: idx_header(8, (10**6, 10**6)) + bytes(1000))
_idx_case("bad_magic", images=lambda: b"\x01\x02\x08\x03" + bytes(100))
_idx_case("bad_type_code", images=lambda: b"\x00\x00\x42\x03" + bytes(100))
_idx_case("zero_dims", images=lambda: b"\x00\x00\x08\x00")
_idx_case("nine_dims", images=lambda: b"\x00\x00\x08\x09" + bytes(36))
_idx_case("truncated_payload", images=lambda: idx_header(8, (20, 28, 28)) + bytes(100))
_idx_case("trailing_payload", images=lambda: idx_header(8, (20, 28, 28)) + bytes(20 * 784 + 5))
_idx_case("images_wrong_shape", images=lambda: idx_header(8, (20, 32, 32)) + bytes(20 * 1024))
_idx_case("images_float", images=lambda: idx_header(0x0D, (20, 28, 28)) + bytes(20 * 784 * 4))
_idx_case("labels_out_of_range", labels=lambda: idx_header(8, (20,)) + bytes([200] * 20))
_idx_case("labels_count_mismatch", labels=lambda: idx_header(8, (19,)) + bytes(19))
_idx_case("labels_2d", labels=lambda: idx_header(8, (20, 1)) + bytes(20))
_idx_case("header_only", images=lambda: idx_header(8, (20, 28, 28)))
_idx_case("plain_truncated_header", images=lambda: b"\x00\x00", compress=False)
_idx_case("corrupt_gzip_stream", after=lambda folder: (
    folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(64)))
_idx_case("images_fifo", after=lambda folder: replace_with(
    folder / "train-images-idx3-ubyte.gz", "fifo"))
_idx_case("images_dev_zero", after=lambda folder: replace_with(
    folder / "train-images-idx3-ubyte.gz", "link", "/dev/zero"))
_idx_case("images_a_folder", after=lambda folder: replace_with(
    folder / "train-images-idx3-ubyte.gz", "dir"))
_idx_case("zero_images", n=0)
_idx_case("one_image", n=1)


@case("idx")
def data_dir_missing(tmp, bases):
    return train_mnist(tmp / "nowhere")


@case("idx")
def data_dir_not_utf8(tmp, bases):
    return ["train", "mnist-mlp", "--data-dir", os.fsdecode(bytes(tmp) + b"/\xff\xfe"),
            "--epochs", "1", "--out", str(tmp / "out")]


# ---- pictures (predict) -----------------------------------------------------------------------
def _picture_case(name: str, payload: Callable[[Path], None], suffix: str = ".png") -> None:
    def build(tmp, bases):
        path = tmp / f"picture{suffix}"
        payload(path)
        return ["predict", str(run_copy(bases, "digits", tmp)), str(path)]
    build.__name__ = name
    case("picture")(build)


def _save(width: int, height: int, fmt: str, mode: str = "1") -> Callable[[Path], None]:
    def write(path: Path) -> None:
        from PIL import Image

        Image.new(mode, (width, height), 0).save(path, format=fmt)
    return write


def _ztxt_bomb(path: Path) -> None:
    text = b"k\x00\x00" + zlib.compress(b"A" * (64 << 20), 9)
    path.write_bytes(png_with_chunks(40, 40, extra=_png_chunk(b"zTXt", text)))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _bmp_header(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54) + info + bytes(64)


def _gif_header(width: int, height: int) -> bytes:
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
            + b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00;")


def _jpeg_header(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + sof + b"\xff\xd9"


for _name, _payload, _suffix in [
    ("png_14000_square_header", lambda p: p.write_bytes(png_with_chunks(14000, 14000)), ".png"),
    ("png_144_mpx", lambda p: p.write_bytes(png_with_chunks(12000, 12000)), ".png"),
    ("png_30_mpx", lambda p: p.write_bytes(png_with_chunks(6000, 5000)), ".png"),
    ("bmp_14000_square_header", lambda p: p.write_bytes(_bmp_header(14000, 14000)), ".bmp"),
    ("gif_huge_header", lambda p: p.write_bytes(_gif_header(65535, 65535)), ".gif"),
    ("jpeg_huge_header", lambda p: p.write_bytes(_jpeg_header(65000, 65000)), ".jpg"),
    ("ztxt_text_bomb", _ztxt_bomb, ".png"),
    ("iccp_profile_bomb", lambda p: p.write_bytes(png_with_chunks(40, 40, extra=_png_chunk(
        b"iCCP", b"icc\x00\x00" + zlib.compress(b"A" * (16 << 20), 9)))), ".png"),
    ("eps_renamed_png", lambda p: p.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 "
                                                  b"10 10\nshowpage\n"), ".png"),
    ("pdf_renamed_png", lambda p: p.write_bytes(b"%PDF-1.4\n%\xe2\xe3\n1 0 obj<<>>endobj\n"),
     ".png"),
    ("svg_renamed_png", lambda p: p.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>"),
     ".png"),
    ("tga_not_allowed", _save(20, 20, "TGA", "L"), ".tga"),
    ("ico_not_allowed", _save(20, 20, "ICO", "L"), ".ico"),
    ("truncated_png", lambda p: p.write_bytes(png_with_chunks(40, 40)[:40]), ".png"),
    ("png_bad_idat", lambda p: p.write_bytes(png_with_chunks(40, 40, body=b"garbage")), ".png"),
    ("png_zero_width", lambda p: p.write_bytes(png_with_chunks(0, 40)), ".png"),
    ("empty_file", lambda p: p.write_bytes(b""), ".png"),
    ("text_file", lambda p: p.write_text("hello"), ".png"),
    ("blank_picture", _save(40, 40, "PNG", "L"), ".png"),
    ("one_pixel", _save(1, 1, "PNG", "L"), ".png"),
    ("fifo", lambda p: os.mkfifo(p), ".png"),
    ("dev_zero", lambda p: p.symlink_to("/dev/zero"), ".png"),
    ("a_folder", lambda p: p.mkdir(), ".png"),
    ("sparse_100_mib", lambda p: replace_with(p, "sparse", 100 << 20), ".png"),
    ("missing", lambda p: None, ".png"),
]:
    _picture_case(_name, _payload, _suffix)


# ---- command-line arguments -------------------------------------------------------------------
def _argv_case(name: str, args: Callable[[Path, dict[str, Path]], list[str]]) -> None:
    build = lambda tmp, bases: args(tmp, bases)  # noqa: E731 - a one-line adapter
    build.__name__ = name
    case("argv")(build)


for _name, _args in {
    "epochs_10_400": lambda t, b: ["train", "spiral", "--epochs", "1" + "0" * 400, "--out",
                                   str(t / "o")],
    "lr_inf": lambda t, b: ["train", "spiral", "--lr", "inf", "--out", str(t / "o")],
    "lr_nan": lambda t, b: ["train", "spiral", "--lr", "nan", "--out", str(t / "o")],
    "batch_negative": lambda t, b: ["train", "spiral", "--batch-size", "-1", "--out", str(t / "o")],
    "seed_huge": lambda t, b: ["train", "spiral", "--seed", str(2**80), "--out", str(t / "o")],
    "limit_train_one": lambda t, b: ["train", "spiral", "--limit-train", "1", "--out",
                                     str(t / "o")],
    "unknown_recipe": lambda t, b: ["train", "resnet-9000", "--out", str(t / "o")],
    "config_dev_zero": lambda t, b: ["train", "--config", "/dev/zero", "--out", str(t / "o")],
    "resume_missing": lambda t, b: ["train", "--resume", str(t / "none")],
    "resume_a_file": lambda t, b: ["train", "--resume", "/etc/hostname"],
    "resume_finished_run": lambda t, b: ["train", "--resume", str(run_copy(b, "spiral", t))],
    "resume_empty_folder": lambda t, b: ["train", "--resume", str(t)],
    "out_is_a_file": lambda t, b: ["train", "spiral", "--out", "/etc/hostname"],
    "evaluate_missing": lambda t, b: ["evaluate", str(t / "none")],
    "evaluate_empty_folder": lambda t, b: ["evaluate", str(t)],
    "evaluate_dev_null": lambda t, b: ["evaluate", "/dev/null"],
    "predict_spiral_run": lambda t, b: ["predict", str(run_copy(b, "spiral", t)), "/etc/hostname"],
    "data_dir_dev_null": lambda t, b: ["train", "mnist-mlp", "--data-dir", "/dev/null", "--out",
                                       str(t / "o")],
}.items():
    _argv_case(_name, _args)


# ---- digests in run.json, forged best/, deleted weights (issue 13, third pass) -----------------
def _best_manifest(run: Path) -> Path:
    return run / "checkpoints" / "best" / "checkpoint.json"


def _forge_best(run: Path) -> None:
    """A consistent forgery of checkpoints/best: new weights, manifest re-signed to match them;
    only the digest run.json pinned can tell."""
    import hashlib

    manifest = json.loads(_best_manifest(run).read_text())
    path = _best_manifest(run).parent / manifest["files"]["model"]["file"]
    arrays = read_model_arrays(path)
    for array in arrays.values():
        array += 0.5
    write_weights(path, arrays)
    payload = path.read_bytes()
    manifest["files"]["model"].update(bytes=len(payload),
                                      sha256=hashlib.sha256(payload).hexdigest())
    _best_manifest(run).write_text(json.dumps(manifest))


def read_model_arrays(path: Path) -> dict[str, np.ndarray]:
    from gradwise.safetensors_io import read_safetensors

    return dict(read_safetensors(path)[0])


def _info_at(key: str, value: Any) -> Callable[[Path], None]:
    return lambda run: edit_json(run / "run.json", lambda d: d.update({key: value}))


def _digest_case(name: str, change: Callable[[Path], None], args: tuple[str, ...] = (),
                 command: str = "evaluate") -> None:
    def build(tmp, bases):
        kind = "digits" if command == "predict" else "spiral"
        run = run_copy(bases, kind, tmp)
        change(run)
        if command == "predict":
            from PIL import Image, ImageDraw

            image = Image.new("L", (60, 60), 0)
            ImageDraw.Draw(image).line([(30, 10), (30, 50)], fill=255, width=6)
            image.save(tmp / "one.png")
            return ["predict", str(run), str(tmp / "one.png"), *args]
        if command == "export":
            return ["export", str(run), "--out", str(tmp / "m.onnx"), *args]
        if command == "resume":
            return ["train", "--resume", str(run), "--epochs", "4", "--quiet", *args]
        return ["evaluate", str(run), *args]
    build.__name__ = name
    case("digest")(build)


def _altered_weights(run: Path) -> None:
    arrays = weights_of(run)
    for array in arrays.values():
        array *= 1.01
    write_weights(run / "weights.safetensors", arrays)


def _resign_last_from_best_forgery(run: Path) -> None:
    # checkpoints/last replaced by a consistent forgery (the forged best's manifest and files)
    _forge_best(run)
    last = run / "checkpoints" / "last"
    shutil.rmtree(last)
    shutil.copytree(run / "checkpoints" / "best", last)


for _name, _change, _args, _command in [
    ("best_forged_consistently", _forge_best, (), "evaluate"),
    ("best_manifest_hash_broken", lambda run: edit_json(_best_manifest(run), lambda d: d[
        "files"]["model"].update(sha256="0" * 64)), (), "evaluate"),
    ("best_manifest_outside", lambda run: replace_with(_best_manifest(run), "link",
                                                       "/etc/hostname"), (), "evaluate"),
    ("best_manifest_fifo", lambda run: replace_with(_best_manifest(run), "fifo"), (), "evaluate"),
    ("best_manifest_deleted_files", lambda run: [p.unlink() for p in _best_manifest(
        run).parent.glob("model-*")], (), "evaluate"),
    ("weights_altered", _altered_weights, ("--weights", "last"), "evaluate"),
    ("weights_altered_predict", _altered_weights, ("--weights", "last"), "predict"),
    ("weights_altered_export", _altered_weights, ("--weights", "last"), "export"),
    ("weights_deleted", lambda run: (run / "weights.safetensors").unlink(),
     ("--weights", "last"), "evaluate"),
    ("weights_deleted_export", lambda run: (run / "weights.safetensors").unlink(),
     ("--weights", "last"), "export"),
    ("weights_deleted_no_best", lambda run: (shutil.rmtree(run / "checkpoints" / "best"),
                                             (run / "weights.safetensors").unlink()),
     (), "evaluate"),
    ("last_forged_resume", _resign_last_from_best_forgery, (), "resume"),
    ("digest_not_hex", _info_at("weights_sha256", "abc"), ("--weights", "last"), "evaluate"),
    ("digest_a_number", _info_at("weights_sha256", 7), ("--weights", "last"), "evaluate"),
    ("digest_zeros", _info_at("weights_sha256", "0" * 64), ("--weights", "last"), "evaluate"),
    ("digest_a_megabyte", _info_at("weights_sha256", "a" * (1 << 20)), ("--weights", "last"),
     "evaluate"),
    ("checkpoint_digests_a_list", _info_at("checkpoint_sha256", []), (), "evaluate"),
    ("checkpoint_digest_other_key", _info_at("checkpoint_sha256", {"first": "0" * 64}), (),
     "evaluate"),
    ("checkpoint_digest_zeros", _info_at("checkpoint_sha256", {"best": "0" * 64}), (),
     "evaluate"),
    ("checkpoint_digest_zeros_resume", _info_at("checkpoint_sha256", {"last": "0" * 64}), (),
     "resume"),
]:
    _digest_case(_name, _change, _args, _command)


# ---- a named data folder: incomplete, truncated, missing (never another data set) ------------
def _incomplete(keep: int) -> Callable[[Path], None]:
    def drop(folder: Path) -> None:
        for path in sorted(folder.iterdir())[keep:]:
            path.unlink()
    return drop


_idx_case("three_of_four_files", after=_incomplete(3))
_idx_case("one_of_four_files", after=_incomplete(1))
_idx_case("truncated_labels_file", after=lambda folder: (
    folder / "t10k-labels-idx1-ubyte.gz").write_bytes(
        (folder / "t10k-labels-idx1-ubyte.gz").read_bytes()[:20]))
_idx_case("three_files_in_the_mnist_subfolder", after=lambda folder: (
    (folder / "mnist").mkdir(), [p.rename(folder / "mnist" / p.name) for p in sorted(
        folder.glob("*.gz"))[:3]], [p.unlink() for p in folder.glob("*.gz")]))
_config_file_case("data_dir_nonexistent", '{"recipe": "mnist-mlp", "data_dir": "/nonexistent"}')
_config_file_case("data_dir_nonexistent_fashion",
                  '{"recipe": "fashion-mlp", "data_dir": "/nonexistent/fashion"}')


# ---- huge integers anywhere in configs (TOML hex/octal/binary have no digit limit) ----------
for _name, _text in {
    "toml_epochs_5000_hex_digits": "epochs = 0x" + "F" * 5000 + "\n",
    "toml_seed_6000_octal_digits": "seed = 0o" + "7" * 6000 + "\n",
    "toml_hidden_20000_bits": "hidden = [0b" + "1" * 20000 + "]\n",
    "toml_recipe_a_huge_int": "recipe = 0x" + "F" * 5000 + "\n",
    "toml_unknown_key_huge_value": 'recipe = "spiral"\nmomentum = 0x' + "F" * 5000 + "\n",
    "toml_limit_train_huge": 'recipe = "spiral"\nlimit_train = 0x' + "F" * 5000 + "\n",
}.items():
    _config_file_case(_name, _text, ".toml")
_config_file_case("json_epochs_5000_digits", '{"recipe": "spiral", "epochs": 1' + "0" * 5000 + "}")
_config_file_case("overridden_epochs_zero", '{"recipe": "spiral", "epochs": 0}',
                  extra=("--epochs", "2"))
_config_file_case("overridden_recipe_unknown", '{"recipe": "nope"}', extra=("spiral",))


# ---- a run folder naming an unknown recipe, for every command that reads one ---------------
for _command in ("evaluate", "predict", "export", "resume"):
    _digest_case(f"recipe_nope_{_command}", lambda run: edit_json(
        run / "config.json", lambda d: d.update(recipe="nope")), (), _command)


# ---- paths with control characters: one line, escaped, whatever the command --------------------
_CONTROL_NAMES = {"newline": "a\nb", "carriage_return": "a\rgradwise: ok", "escape_clear":
                  "a\x1b[2Jb", "escape_title": "a\x1b]0;pwned\x07b", "line_separator": "a\u2028b"}

for _key, _odd in _CONTROL_NAMES.items():
    for _name, _args in {
        f"evaluate_{_key}": lambda t, b, odd=_odd: ["evaluate", str(t / odd)],
        f"config_{_key}": lambda t, b, odd=_odd: ["train", "--config", str(t / f"{odd}.json"),
                                                  "--out", str(t / "o")],
        f"data_dir_{_key}": lambda t, b, odd=_odd: ["train", "mnist-mlp", "--data-dir",
                                                    str(t / odd), "--out", str(t / "o")],
        f"resume_{_key}": lambda t, b, odd=_odd: ["train", "--resume", str(t / odd)],
        f"predict_{_key}": lambda t, b, odd=_odd: ["predict", str(run_copy(b, "digits", t)),
                                                   str(t / f"{odd}.png")],
    }.items():
        _argv_case(_name, _args)


@case("argv")
def run_folder_named_with_escapes(tmp, bases):
    # an existing run folder whose name holds a terminal escape, with a damaged run.json
    run = tmp / "run\x1b[31mred"
    shutil.copytree(bases["spiral"], run)
    (run / "run.json").write_text("{")
    return ["evaluate", str(run)]


@case("picture")
def one_bad_picture_among_good_ones(tmp, bases):
    from PIL import Image, ImageDraw

    image = Image.new("L", (60, 60), 0)
    ImageDraw.Draw(image).line([(30, 10), (30, 50)], fill=255, width=6)
    image.save(tmp / "good.png")
    (tmp / "bad.png").write_bytes(png_with_chunks(14000, 14000))
    return ["predict", str(run_copy(bases, "digits", tmp)), str(tmp / "good.png"),
            str(tmp / "bad.png"), str(tmp / "good.png")]
