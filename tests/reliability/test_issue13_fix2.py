"""Regression tests for the second independent attack on issue 13 (docs/RELIABILITY.md,
"Fourth pass"): ``gw.load`` trusting its structure header and reading files unguarded, a kill
between "finished" and the figures, terminal escapes from run.json, forged RNG states,
resume skipping run.json's schema and finding a bad run file only after training, and three
wordings. The CLI-facing cases are also in the hostile corpus (corpus.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.serialization import MAX_DEPTH, SaveFileError
from gradwise.cli import EXIT_RUN, _say, main
from gradwise.safetensors_io import dump_safetensors
from reliability.corpus import _png_chunk, png_with_chunks
from reliability.folders import assert_same_folders

CONTROL = "\x1b"


def _one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gradwise: error: "), err
    assert "unexpected" not in lines[0], lines[0]
    return lines[0]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}


# ---- 1. gw.load: the structure header against its schema ---------------------------------------
def _forged(tmp_path: Path, structure, raw: str | None = None, fmt="gradwise-save-1",
            arrays=None) -> Path:
    arrays = {"t0": np.arange(6, dtype=np.float32)} if arrays is None else arrays
    metadata = {"gradwise.structure": raw if raw is not None else json.dumps(structure)}
    if fmt is not None:
        metadata["gradwise.format"] = fmt
    path = tmp_path / "forged.gw"
    path.write_bytes(dump_safetensors(arrays, metadata))
    return path


T0 = {"__tensor__": "t0", "shape": [6]}
FORGED = {
    # the attacker's cases
    "unknown_tensor_ref": ({"a": {"__tensor__": "nope", "shape": [6]}}, None,
                           r"\$\['a'\]\.__tensor__: names tensor 'nope'"),
    "deep_brackets": (None, "[" * 100000 + "]" * 100000, "nested more than"),
    "int_5000_digits": (None, "1" + "0" * 5000, "an integer of 5001 digits"),
    "tuple_of_an_int": ({"a": {"__tuple__": 5}, "t": T0}, None,
                        r"\$\['a'\]\.__tuple__: must be a list"),
    "shape_other_size": ({"a": {"__tensor__": "t0", "shape": [2, 2]}}, None,
                         r"\$\['a'\]\.shape: \[2, 2\] but tensor 't0' is stored with shape \[6\]"),
    "shape_negative": ({"a": {"__tensor__": "t0", "shape": [-1, -6]}}, None,
                       r"\$\['a'\]\.shape\[0\]: must be a size >= 0, got -1"),
    "shape_missing": ({"a": {"__tensor__": "t0"}}, None, r"\$\['a'\]: .*missing shape"),
    "shape_same_size": ({"a": {"__tensor__": "t0", "shape": [3, 2]}}, None,
                        r"\[3, 2\] but tensor 't0' is stored with shape \[6\]"),
    "infinity_literal": (None, '{"a": ' + json.dumps(T0) + ', "b": Infinity}', "Infinity"),
    "nan_literal": (None, '{"a": ' + json.dumps(T0) + ', "b": NaN}', "NaN"),
    "float_1e400": (None, '{"a": ' + json.dumps(T0) + ', "b": 1e400}', "1e400 overflows"),
    "just_5_with_a_tensor": (None, "5", "1 stored tensor.* never uses"),
    # the same family, found by sweeping every node kind and field
    "tensor_used_twice": ({"a": T0, "b": T0}, None, r"\$\['b'\].*used twice"),
    "tensor_ref_a_number": ({"a": {"__tensor__": 0, "shape": [6]}}, None, "names tensor 0"),
    "shape_a_string": ({"a": {"__tensor__": "t0", "shape": "6"}}, None, r"\.shape: must be a list"),
    "shape_a_float": ({"a": {"__tensor__": "t0", "shape": [6.0]}}, None, r"shape\[0\]: must be"),
    "shape_a_bool": ({"a": {"__tensor__": "t0", "shape": [True]}}, None, r"shape\[0\]: must be"),
    "tensor_extra_key": ({"a": {**T0, "dtype": "x"}}, None, "extra"),
    "ndarray_wrong_shape": ({"a": {"__ndarray__": "t0", "shape": [7]}}, None, r"\[7\] but"),
    "unknown_kind": ({"a": {"__pickle__": "x"}, "t": T0}, None, "unknown node kind"),
    "two_kinds": ({"a": {"__tuple__": [], "__float__": "nan"}, "t": T0}, None,
                  "unknown node kind"),
    "float_word_other": ({"a": {"__float__": "1e5"}, "t": T0}, None, r"\.__float__: must be"),
    "float_word_a_number": ({"a": {"__float__": 5}, "t": T0}, None, r"\.__float__: must be"),
    "tuple_extra_key": ({"a": {"__tuple__": [], "x": 1}, "t": T0}, None, r"__tuple__: must be"),
    "dict_not_a_list": ({"a": {"__dict__": 5}, "t": T0}, None, r"__dict__: must be a list"),
    "dict_item_not_a_pair": ({"a": {"__dict__": [[1]]}, "t": T0}, None,
                             r"__dict__\[0\]: must be a \[key, value\] pair"),
    "dict_key_a_list": ({"a": {"__dict__": [[[1], 2]]}, "t": T0}, None,
                        r"__dict__\[0\]\[0\]: a key must be"),
    "dict_key_unhashable_tuple": ({"a": {"__dict__": [[{"__tuple__": [[1]]}, 2]]}, "t": T0},
                                  None, "not hashable"),
    "dict_key_twice": ({"a": {"__dict__": [[1, 2], [1, 3]]}, "t": T0}, None, "appears twice"),
    "int_over_256_bits": (None, '{"a": ' + json.dumps(T0) + f', "b": {2**300}}}',
                          "more than 256 bits"),
    "deep_65_levels": ({"a": T0, "b": json.loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))},
                       None, "nested more than 64"),
    "not_json": (None, "{", "not valid"),
}


@pytest.mark.parametrize("name", sorted(FORGED))
def test_forged_structures_are_refused_naming_the_file_and_the_field(tmp_path, name):
    structure, raw, fragment = FORGED[name]
    path = _forged(tmp_path, structure, raw)
    with pytest.raises(SaveFileError, match=fragment) as caught:
        gw.load(path)
    message = str(caught.value)
    assert message.startswith(f"load: {path}") and "\n" not in message and len(message) < 400


@pytest.mark.parametrize("fmt, fragment", [("gradwise-save-99", "'gradwise-save-99'"),
                                           (None, "'None'|None"), ("", "''")])
def test_an_unknown_format_version_is_refused(tmp_path, fmt, fragment):
    with pytest.raises(SaveFileError, match=f"gradwise.format is ({fragment}); this gradwise"):
        gw.load(_forged(tmp_path, {"a": T0}, fmt=fmt))


def test_a_format_without_a_structure_is_refused(tmp_path):
    path = tmp_path / "x.gw"
    path.write_bytes(dump_safetensors({"t0": np.zeros(2)}, {"gradwise.format": "gradwise-save-1"}))
    with pytest.raises(SaveFileError, match="gradwise.structure is missing"):
        gw.load(path)


def test_everything_save_writes_still_loads_and_the_bytes_are_deterministic(tmp_path):
    obj = {"w": gw.arange(6).reshape(2, 3), "scalar": gw.tensor(2.5), "a": np.ones((0, 3)),
           "state": {0: {"step": 3}, (1, "x"): [None, True]},
           "floats": [float("inf"), float("-inf"), float("nan"), 1e308, -0.0],
           "big": 2**200, "neg": -(2**255), "pair": (1, (2, "three")), "s": "\x1b ok",
           "nested": json.loads("[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2))}
    gw.save(obj, tmp_path / "a.gw")
    gw.save(obj, tmp_path / "b.gw")
    assert (tmp_path / "a.gw").read_bytes() == (tmp_path / "b.gw").read_bytes()
    back = gw.load(tmp_path / "a.gw")
    assert back["w"].shape == (2, 3) and back["scalar"].shape == () and back["a"].shape == (0, 3)
    assert float(back["scalar"]) == 2.5 and back["state"] == {0: {"step": 3},
                                                              (1, "x"): [None, True]}
    assert back["big"] == 2**200 and back["neg"] == -(2**255) and back["pair"] == (1, (2, "three"))
    assert np.isnan(back["floats"][2]) and back["floats"][:2] == [float("inf"), float("-inf")]
    assert back["s"] == "\x1b ok" and back["nested"] == obj["nested"]


def test_save_refuses_what_load_would_refuse(tmp_path):
    with pytest.raises(ValueError, match=r"obj\['n'\] is an integer of 301 bits"):
        gw.save({"n": 2**300}, tmp_path / "n.gw")
    deep: list = []
    for _ in range(MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(ValueError, match="nested .* more than the 64"):
        gw.save(deep, tmp_path / "d.gw")
    assert not (tmp_path / "n.gw").exists() and not (tmp_path / "d.gw").exists()


def test_a_plain_safetensors_file_still_loads_as_a_dict_of_tensors(tmp_path):
    path = tmp_path / "plain.safetensors"
    path.write_bytes(dump_safetensors({"x": np.ones(3, np.float32)}))
    assert list(gw.load(path)) == ["x"]


# ---- 2. gw.load opens the file like every untrusted loader --------------------------------------
@pytest.mark.parametrize("kind, fragment", [
    ("fifo", "a FIFO"), ("dev_zero", "a character device"), ("folder", "a folder"),
    ("sparse_3_gib", "not a valid safetensors file|more than"), ("pickle", "never unpickles"),
])
def test_load_refuses_what_is_not_a_regular_safetensors_file(tmp_path, kind, fragment):
    path = tmp_path / "x.gw"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    elif kind == "sparse_3_gib":
        with open(path, "wb") as handle:
            handle.truncate(3 << 30)
    else:
        path.write_bytes(b"\x80\x04\x95 a pickle")
    with pytest.raises(SaveFileError, match=fragment) as caught:
        gw.load(path)
    assert str(path) in str(caught.value)


def test_load_refuses_a_file_larger_than_the_memory_it_may_take(tmp_path, monkeypatch):
    import gradwise.safetensors_io as io

    gw.save({"x": gw.zeros(1000)}, tmp_path / "x.gw")
    monkeypatch.setattr(io, "available_memory", lambda: 2000)
    with pytest.raises(SaveFileError, match="more than the 1000 bytes"):
        gw.load(tmp_path / "x.gw")


def test_load_of_a_missing_file_is_still_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file at"):
        gw.load(tmp_path / "none.gw")


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_save_refuses_a_destination_that_is_not_a_file(tmp_path, kind):
    path = tmp_path / "dest"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    with pytest.raises(OSError, match="FIFO|folder"):
        gw.save({"x": gw.ones(2)}, path)


# ---- a run to attack --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("issue13-fix2")
    assert main(["train", "xor", "--epochs", "2", "--no-doctor", "--quiet",
                 "--out", str(root / "xor")]) == 0
    return root / "xor"


@pytest.fixture
def run(trained, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _interrupted(run: Path) -> None:
    """Mark the run interrupted after epoch 2 of 2 (unpinned: the forged checkpoint must reach
    the checks behind the digest)."""
    _edit(run / "run.json", lambda d: (d.update(status="interrupted"),
                                       d.pop("checkpoint_sha256", None)))


# ---- 3. a kill between the last epoch and run.json's "finished" ---------------------------------
KILLER = textwrap.dedent("""
    import os, signal, sys
    import gradwise.viz.plots as plots, gradwise.viz.report as report
    from gradwise.cli import main
    target = {"curves": (plots, "save_figure"), "report": (report, "write_report")}[sys.argv[1]]
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    setattr(*target, die)
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.parametrize("window", ["curves", "report"])
def test_a_kill_while_the_figures_are_written_is_finished_by_resume(trained, tmp_path, capsys,
                                                                    window):
    run = tmp_path / "xor"
    killed = subprocess.run([sys.executable, "-c", KILLER, window, "train", "xor", "--epochs",
                             "2", "--no-doctor", "--quiet", "--out", str(run)],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert json.loads((run / "run.json").read_text())["status"] == "running"
    assert main(["train", "--resume", str(run), "--quiet"]) == 0, capsys.readouterr().err
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    for name in ("report.html", "learning_curves.png", "weights.safetensors"):
        assert (run / name).stat().st_size > 0, name
    assert_same_folders(run, trained)


# ---- 4. terminal escapes from run.json ----------------------------------------------------------
@pytest.mark.parametrize("field, value, fragment", [
    ("classes", ["\x1b[2Ja", "b\r\n"], r"classes\[0\] holds the control character '\\x1b'"),
    ("classes", ["a", "b\r\n"], r"classes\[1\] holds the control character '\\r'"),
    ("classes", ["a", "b\u2028"], r"classes\[1\] holds the control character"),
    ("classes", ["", "b"], r"classes\[0\] must not be empty"),
    ("recipe", "xor\x1b]0;x\x07", r"recipe holds the control character"),
])
def test_names_shown_on_a_terminal_must_be_printable(capsys, run, field, value, fragment):
    _edit(run / "run.json", lambda d: d.update({field: value}))
    capsys.readouterr()
    code = main(["evaluate", str(run)])
    captured = capsys.readouterr()
    assert code == EXIT_RUN
    assert CONTROL not in captured.out + captured.err and "\r" not in captured.out
    assert re.search(fragment, _one_error(captured.err)), captured.err


def test_every_line_printed_for_people_is_escaped(capsys):
    _say("class \x1b[2Ja -> b\r\nnext\u2028line")
    out = capsys.readouterr().out
    assert out == "class \\x1b[2Ja -> b\\r\nnext\\u2028line\n"


# ---- 5. forged RNG states -----------------------------------------------------------------------
RNG_FORGERIES = {
    "state_10_60": (lambda s: s["state"].update(state=10**60), r"rng_state\.state\.state is 1000"),
    "inc_negative": (lambda s: s["state"].update(inc=-1), r"rng_state\.state\.inc is -1"),
    "inc_2_128": (lambda s: s["state"].update(inc=2**128), r"rng_state\.state\.inc is 3402"),
    "other_generator": (lambda s: s.update(bit_generator="MT19937"),
                        r"rng_state\.bit_generator is 'MT19937', this run uses 'PCG64'"),
    "uinteger_a_string": (lambda s: s.update(uinteger="7"), r"rng_state\.uinteger is '7'"),
    "has_uint32_a_float": (lambda s: s.update(has_uint32=0.5), r"rng_state\.has_uint32 is 0\.5"),
    "missing_key": (lambda s: s.pop("uinteger"), r"rng_state has keys"),
    "state_a_list": (lambda s: s.update(state=[1, 2]), r"rng_state\.state must be an object"),
    "loader_state_10_60": (None, r"loader_state\.rng_state\.state\.state is 1000"),
}


@pytest.mark.parametrize("name", sorted(RNG_FORGERIES))
def test_forged_rng_states_are_refused_naming_the_field(capsys, run, name):
    change, fragment = RNG_FORGERIES[name]
    _interrupted(run)
    if change is None:  # the data loader's generator
        _edit(run / "checkpoints" / "last" / "checkpoint.json", lambda d: d["trainer"][
            "loader_state"]["rng_state"]["state"].update(state=10**60))
    else:
        _edit(run / "checkpoints" / "last" / "checkpoint.json",
              lambda d: change(d["trainer"]["rng_state"]))
    before = _snapshot(run)
    capsys.readouterr()
    code = main(["train", "--resume", str(run), "--quiet"])
    line = _one_error(capsys.readouterr().err)
    assert code == EXIT_RUN
    assert re.search(fragment, line), line
    assert "C long" not in line and _snapshot(run) == before


def test_an_rng_state_numpy_itself_refuses_is_named_too():
    from gradwise.train.checkpoint import CheckpointError
    from gradwise.train.resume import check_generator_state

    generator = np.random.Generator(np.random.MT19937(0))
    state = generator.bit_generator.state
    saved = {**state, "state": {"key": state["state"]["key"].tolist()[:5], "pos": 3}}
    with pytest.raises(CheckpointError, match=r"rng\.state\.key must be a list of 624"):
        check_generator_state(saved, generator, "rng", "ckpt")
    for key, pos in (([2**40] * 624, 3), (state["state"]["key"].tolist(), 2**70)):
        wide = {**state, "state": {"key": key, "pos": pos}}
        with pytest.raises(CheckpointError, match="rng is not a valid MT19937 state: .*too "
                           "large"):
            check_generator_state(wide, generator, "rng", "ckpt")


# ---- 6. and 7. resume checks run.json and every run file before any work ------------------------
@pytest.mark.parametrize("change, fragment", [
    (lambda run: _edit(run / "run.json", lambda d: d.update(epoch=10**30)),
     r"run.json: epoch must be <= .*, got 1000000000000000000000000000000"),
    (lambda run: _edit(run / "run.json", lambda d: d.update(status="exploded")),
     "status must be one of"),
    (lambda run: ((run / "history.json").unlink(), os.mkfifo(run / "history.json")),
     "history.json: it is a FIFO"),
    (lambda run: ((run / "metrics.jsonl").unlink(), (run / "metrics.jsonl").mkdir()),
     "metrics.jsonl: it is a folder"),
    (lambda run: ((run / "report.html").unlink(), (run / "report.html").symlink_to("/dev/null")),
     "report.html: it is a character device"),
    (lambda run: ((run / "learning_curves.png").unlink(),
                  os.mkfifo(run / "learning_curves.png")), "learning_curves.png: it is a FIFO"),
    (lambda run: (shutil.rmtree(run / "checkpoints" / "best"),
                  (run / "checkpoints" / "best").write_text("x")), "best is not a folder"),
], ids=["epoch_10_30", "status_unknown", "history_fifo", "metrics_folder", "report_dev_null",
        "curves_fifo", "best_a_file"])
@pytest.mark.parametrize("extend", [False, True], ids=["interrupted", "finished_extend"])
def test_a_resume_refused_for_a_bad_run_file_changes_nothing(capsys, run, change, fragment,
                                                              extend):
    if not extend:
        _interrupted(run)
    change(run)
    before = _snapshot(run)
    capsys.readouterr()
    args = ["train", "--resume", str(run)] + (["--epochs", "4"] if extend else [])
    code = main(args)
    captured = capsys.readouterr()
    assert re.search(fragment, _one_error(captured.err)), captured.err
    assert code != 0 and "Resuming" not in captured.out and "10000000000" not in captured.out
    assert _snapshot(run) == before


# ---- minor: wordings ---------------------------------------------------------------------------
@pytest.mark.parametrize("text, shown_value", [("epochs = 1.0", "1.0"), ("epochs = 2.5", "2.5"),
                                               ("epochs = 1e3", "1000.0")])
def test_a_float_for_an_integer_setting_is_shown_as_written(capsys, tmp_path, text, shown_value):
    config = tmp_path / "c.toml"
    config.write_text(f'recipe = "xor"\n{text}\n')
    capsys.readouterr()
    code = main(["train", "--config", str(config), "--out", str(tmp_path / "o")])
    line = _one_error(capsys.readouterr().err)
    assert code != 0 and line.endswith(f"epochs must be an integer, got {shown_value}"), line


@pytest.mark.parametrize("chunk, payload", [
    (b"zTXt", b"k\x00\x00" + zlib.compress(b"A" * (8 << 20), 9)),
    (b"iCCP", b"icc\x00\x00" + zlib.compress(b"A" * (8 << 20), 9)),
    (b"iTXt", b"k\x00\x01\x00\x00\x00" + zlib.compress(b"A" * (8 << 20), 9)),
])
def test_a_text_or_profile_bomb_is_described_not_pillows_internals(tmp_path, chunk, payload):
    from gradwise.imageprep import ImagePrepError, load_digit_image

    path = tmp_path / "bomb.png"
    path.write_bytes(png_with_chunks(40, 40, extra=_png_chunk(chunk, payload)))
    with pytest.raises(ImagePrepError) as caught:
        load_digit_image(path)
    message = str(caught.value)
    assert "expands to more than 1 MiB" in message and "MAX_TEXT" not in message
    assert "PngImagePlugin" not in message and message.startswith(str(path))


def test_idx_files_symlinked_out_of_the_data_dir_are_followed_as_documented(tmp_path):
    """Decided: data folders of links into shared storage are followed (datasets.py); run
    folders are not (safefile.resolve_inside), and its message says only that."""
    from gradwise.data import datasets
    from gradwise.data.idx import write_idx
    from gradwise.safefile import UntrustedFileError, resolve_inside

    store, data_dir = tmp_path / "store", tmp_path / "data"
    store.mkdir()
    data_dir.mkdir()
    rng = np.random.default_rng(0)
    for name, array in {
        "train-images-idx3-ubyte": rng.integers(0, 255, (20, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(20) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 255, (10, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(10) % 10).astype(np.uint8),
    }.items():
        write_idx(store / name, array)
        (data_dir / name).symlink_to(store / name)
    (x_train, y_train), (x_test, _) = datasets.load_mnist(data_dir=data_dir, download=False,
                                                          progress=False)
    assert len(y_train) == 20 and len(x_test) == 10
    assert "followed, also to files outside them" in datasets.__doc__
    with pytest.raises(UntrustedFileError, match="out of the folder a file belongs to is not "
                       "followed") as caught:
        resolve_inside(data_dir / "train-images-idx3-ubyte", data_dir)
    assert "data folder" not in str(caught.value)
    assert x_train.shape == (20, 28, 28)
