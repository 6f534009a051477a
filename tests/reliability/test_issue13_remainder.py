"""Regression tests for what the last review of issue 13 left (docs/RELIABILITY.md, "Third
pass"): weights digests in run.json, no silent fallback when weights or data are missing, paths
with control characters, and the small leaks (huge integers, Pillow's wording, ``gw.tensor``,
unknown recipes in run folders, overridden ``--config`` values, ``predict`` with a bad picture).
The hostile corpus holds the same faults as subprocess cases (families ``digest``, ``idx``,
``config_file``, ``argv``, ``picture``)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gradwise as gw
from gradwise._shown import escape_controls, short_repr, shown
from gradwise.cli import EXIT_DATA, EXIT_RUN, EXIT_USAGE, main
from gradwise.recipes import ConfigError, TrainConfig, load_data
from gradwise.runs import RunError, load_run
from gradwise.safetensors_io import read_safetensors
from reliability.corpus import png_with_chunks, write_weights

CONTROL_PATHS = {"newline": "a\nb", "carriage_return": "a\rgradwise: ok",
                 "escape_clear": "a\x1b[2Jb", "escape_title": "a\x1b]0;x\x07b",
                 "line_separator": "a\u2028b", "tab": "a\tb", "delete": "a\x7fb"}


def _run(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gradwise: error: "), err
    assert not lines[0].startswith("gradwise: error: unexpected"), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("issue13-remainder")
    assert main(["train", "spiral", "--epochs", "2", "--no-doctor", "--quiet",
                 "--out", str(root / "spiral")]) == 0
    return root / "spiral"


@pytest.fixture
def run(trained, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def _info(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _alter_weights(run: Path) -> None:
    arrays = dict(read_safetensors(run / "weights.safetensors")[0])
    for array in arrays.values():
        array *= 1.01
    write_weights(run / "weights.safetensors", arrays)


# ---- 1. digests in run.json ----------------------------------------------------------------
def test_run_json_records_the_digest_of_every_weights_file(run):
    info = _info(run)
    assert info["weights_sha256"] == _sha(run / "weights.safetensors")
    for name in ("best", "last"):
        assert info["checkpoint_sha256"][name] == _sha(
            run / "checkpoints" / name / "checkpoint.json")


@pytest.mark.parametrize("command", ["evaluate", "predict", "export"])
def test_altered_final_weights_are_refused_naming_both_digests(capsys, run, tmp_path, command):
    recorded = _info(run)["weights_sha256"]
    _alter_weights(run)
    actual = _sha(run / "weights.safetensors")
    args = {"evaluate": ["evaluate", run], "export": ["export", run, "--out", tmp_path / "m.onnx"],
            "predict": ["predict", run, tmp_path / "x.png"]}[command]
    if command == "predict":  # a spiral run is not an image run: the digest comes first anyway
        (tmp_path / "x.png").write_bytes(png_with_chunks(30, 30))
    code, _, err = _run(capsys, *args, "--weights", "last")
    line = _one_error(err)
    assert code == EXIT_RUN
    assert "weights.safetensors" in line and recorded in line and actual in line
    assert "--ignore-digest" in line


def test_ignore_digest_loads_altered_weights_with_a_warning(capsys, run):
    _alter_weights(run)
    code, out, err = _run(capsys, "evaluate", run, "--weights", "last", "--ignore-digest")
    assert code == 0, err
    assert "Warning: " in out and "does not match" in out and "Test accuracy" in out
    loaded = load_run(run, "last", ignore_digest=True).model.state_dict()
    for name, array in read_safetensors(run / "weights.safetensors")[0].items():
        np.testing.assert_array_equal(np.asarray(loaded[name]), array)


def test_a_consistently_forged_best_checkpoint_is_refused(capsys, run):
    best = run / "checkpoints" / "best"
    manifest = json.loads((best / "checkpoint.json").read_text())
    model = best / manifest["files"]["model"]["file"]
    arrays = dict(read_safetensors(model)[0])
    for array in arrays.values():
        array += 0.5
    write_weights(model, arrays)
    manifest["files"]["model"].update(bytes=model.stat().st_size, sha256=_sha(model))
    (best / "checkpoint.json").write_text(json.dumps(manifest))
    code, _, err = _run(capsys, "evaluate", run)  # evaluate defaults to best
    line = _one_error(err)
    assert code == EXIT_RUN and "checkpoints/best/checkpoint.json: SHA-256" in line
    with pytest.raises(RunError, match="does not match"):
        load_run(run)


def test_resume_checks_the_last_checkpoint_against_run_json(capsys, run):
    info = _info(run)
    info["checkpoint_sha256"]["last"] = "0" * 64
    (run / "run.json").write_text(json.dumps(info))
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    code, _, err = _run(capsys, "train", "--resume", run, "--epochs", "3", "--quiet")
    assert code == EXIT_RUN and "checkpoints/last/checkpoint.json: SHA-256" in _one_error(err)
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before
    code, _, err = _run(capsys, "train", "--resume", run, "--epochs", "3", "--quiet",
                        "--ignore-digest")
    assert code == 0, err
    info = _info(run)  # the extended run pins its new files
    assert info["status"] == "finished" and info["epoch"] == 3
    assert info["checkpoint_sha256"]["last"] == _sha(
        run / "checkpoints" / "last" / "checkpoint.json")
    assert info["weights_sha256"] == _sha(run / "weights.safetensors")


@pytest.mark.parametrize("value", ["abc", 7, "A" * 64, ["x"]])
def test_malformed_digest_fields_are_refused(capsys, run, value):
    info = _info(run)
    info["weights_sha256"] = value
    (run / "run.json").write_text(json.dumps(info))
    code, _, err = _run(capsys, "evaluate", run)
    assert code == EXIT_RUN and "weights_sha256 must be 64 lower-case hex" in _one_error(err)


def test_deleted_final_weights_are_an_error_that_says_what_to_pass(capsys, run):
    (run / "weights.safetensors").unlink()
    code, _, err = _run(capsys, "evaluate", run, "--weights", "last")
    line = _one_error(err)
    assert code == EXIT_RUN and "weights.safetensors is missing" in line
    assert "--weights best" in line and "--weights last-checkpoint" in line
    code, out, err = _run(capsys, "evaluate", run, "--weights", "last-checkpoint")
    assert code == 0 and "checkpoints/last" in out, err
    shutil.rmtree(run / "checkpoints" / "best")
    code, _, err = _run(capsys, "evaluate", run)  # best is gone too: no fallback either
    assert code == EXIT_RUN and "--weights last-checkpoint" in _one_error(err)


def test_runs_without_digests_still_load(run):
    info = _info(run)
    del info["weights_sha256"], info["checkpoint_sha256"]
    (run / "run.json").write_text(json.dumps(info))
    assert load_run(run, "last").weights == run / "weights.safetensors"
    assert load_run(run).weights == run / "checkpoints" / "best"


# ---- 2. a named data folder ------------------------------------------------------------------
def _mnist_files(folder: Path, n: int = 20) -> None:
    from gradwise.data.idx import write_idx

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", n), ("t10k", n)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz",
                  rng.integers(0, 255, (count, 28, 28), dtype=np.uint8), gzip=True)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz",
                  (np.arange(count) % 10).astype(np.uint8), gzip=True)


@pytest.fixture
def other_copy(tmp_path, monkeypatch) -> Path:
    """A complete MNIST in GRADWISE_DATA: what a silent fallback would use instead."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _mnist_files(tmp_path / "elsewhere")
    monkeypatch.setenv("GRADWISE_DATA", str(tmp_path / "elsewhere"))
    return tmp_path / "elsewhere"


@pytest.mark.parametrize("keep", [1, 2, 3])
def test_an_incomplete_data_dir_is_an_error_naming_the_missing_files(capsys, tmp_path, other_copy,
                                                                      keep):
    folder = tmp_path / "mine"
    _mnist_files(folder)
    names = sorted(path.name for path in folder.iterdir())
    for name in names[keep:]:
        (folder / name).unlink()
    code, _, err = _run(capsys, "train", "mnist-mlp", "--data-dir", folder, "--epochs", "1",
                        "--out", tmp_path / "out", "--quiet")
    line = _one_error(err)
    assert code == EXIT_DATA and f"has {keep} of 4" in line
    assert all(name in line for name in names[keep:])
    assert not (tmp_path / "out").exists()


def test_a_truncated_file_in_data_dir_is_named(capsys, tmp_path, other_copy):
    folder = tmp_path / "mine"
    _mnist_files(folder)
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:20])
    code, _, err = _run(capsys, "train", "mnist-mlp", "--data-dir", folder, "--epochs", "1",
                        "--out", tmp_path / "out", "--quiet")
    assert code == EXIT_DATA and "t10k-labels-idx1-ubyte.gz" in _one_error(err)


def test_a_config_data_dir_that_does_not_exist_is_an_error(capsys, tmp_path, other_copy):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"recipe": "mnist-mlp", "data_dir": "/nonexistent"}))
    code, _, err = _run(capsys, "train", "--config", config, "--out", tmp_path / "out")
    line = _one_error(err)
    assert code == EXIT_DATA and "data_dir /nonexistent: no such folder" in line


def test_only_the_default_search_may_fall_back_to_digits(monkeypatch, tmp_path):
    from gradwise import data as gw_data

    def nothing(name, data_dir=None, **kwargs):
        if name == "digits":
            return real("digits")
        raise gw_data.DatasetNotFoundError(f"{name}: not found", [f"cache {tmp_path}: none"])

    real = gw_data.load_dataset
    monkeypatch.setattr(gw_data, "load_dataset", nothing)
    config = TrainConfig.from_recipe("mnist-mlp")
    notes: list[str] = []
    assert load_data(config, notify=notes.append).dataset == "digits" and notes
    for asked in ({"dataset": "mnist"}, {}):  # a run's own data set (evaluate, resume)
        named = config.updated({"data_dir": str(tmp_path)}) if not asked else config
        with pytest.raises(gw_data.DatasetNotFoundError, match="no MNIST files found"):
            load_data(named, **asked)


# ---- 3. control characters in paths ------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(CONTROL_PATHS))
@pytest.mark.parametrize("command", ["evaluate", "config", "data_dir", "resume", "predict",
                                     "export_out", "lr_find_out"])
def test_paths_with_control_characters_stay_on_one_inert_line(capsys, tmp_path, trained, kind,
                                                              command):
    odd = str(tmp_path / CONTROL_PATHS[kind])
    args = {
        "evaluate": ["evaluate", odd],
        "config": ["train", "--config", odd + ".json", "--out", tmp_path / "o"],
        "data_dir": ["train", "mnist-mlp", "--data-dir", odd, "--out", tmp_path / "o"],
        "resume": ["train", "--resume", odd],
        "predict": ["predict", trained, odd + ".png"],
        "export_out": ["export", trained, "--out", odd + "/m.onnx"],
        "lr_find_out": ["lr-find", "xor", "--out", odd + "/plot.png"],
    }[command]
    code, out, err = _run(capsys, *args)
    line = _one_error(err)
    # one code per kind (issue 17): a missing run folder is 4, a missing --data-dir 3
    assert code == {"evaluate": EXIT_RUN, "resume": EXIT_RUN, "data_dir": EXIT_DATA}.get(
        command, EXIT_USAGE)
    assert out == ""
    assert escape_controls(line) == line  # nothing a terminal acts on, nothing that breaks it
    assert repr(CONTROL_PATHS[kind])[1:-1] in line  # the name, escaped, still readable


def test_library_errors_show_odd_paths_escaped(tmp_path):
    folder = tmp_path / "run\x1b[31m"
    folder.mkdir()
    (folder / "config.json").write_text("{")
    with pytest.raises(RunError) as error:
        load_run(folder)
    assert "\x1b" not in str(error.value) and "\\x1b[31m" in str(error.value)


def test_shown_and_escape_controls():
    assert shown("runs/mnist-mlp") == "runs/mnist-mlp"
    assert shown(Path("é/ü")) == "é/ü"  # printable non-ASCII stays as it is
    assert shown("a\nb") == "'a\\nb'"
    assert shown(b"a\xff") == repr("a\udcff")
    assert escape_controls("a\x1b[2J\r\n\x9b\u2029") == "a\\x1b[2J\\r\\n\\x9b\\u2029"


# ---- 4. small leaks ------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "epochs = 0x" + "F" * 5000, "seed = 0o" + "7" * 6000, "hidden = [0b" + "1" * 20000 + "]",
    "recipe = 0x" + "F" * 5000, "limit_train = 0x" + "F" * 5000, "lr = 0x" + "F" * 5000])
def test_huge_toml_integers_are_named_errors(capsys, tmp_path, text):
    config = tmp_path / "c.toml"
    config.write_text(text + "\n")
    code, _, err = _run(capsys, "train", "spiral", "--config", config, "--out", tmp_path / "o")
    line = _one_error(err)
    assert code == EXIT_USAGE and len(line) < 400
    assert "digits>" in line or "must be" in line


def test_huge_integers_from_python_and_the_command_line_are_named(capsys, tmp_path):
    base = TrainConfig.from_recipe("spiral")
    for key, value in (("epochs", 10**5000), ("hidden", [10**5000]), ("seed", -(10**5000)),
                       ("recipe", 10**5000)):
        with pytest.raises(ConfigError, match="an integer of about"):
            base.updated({key: value}) if key != "recipe" else TrainConfig.from_dict(
                {"recipe": value})
    code, _, err = _run(capsys, "train", "spiral", "--epochs", "9" * 5000, "--out", tmp_path)
    line = _one_error(err)
    assert code == EXIT_USAGE and "invalid int value" in line and len(line) < 300
    assert short_repr(list(range(100))).endswith("(100 items)]")


@pytest.mark.parametrize(("width", "height"), [(14000, 14000), (12000, 12000), (6000, 5000)])
def test_too_many_pixels_has_one_wording_whoever_notices(tmp_path, width, height):
    from gradwise.imageprep import ImagePrepError, load_digit_image

    path = tmp_path / "big.png"
    path.write_bytes(png_with_chunks(width, height))
    with pytest.raises(ImagePrepError) as error:
        load_digit_image(path)
    message = str(error.value)
    assert message.endswith("pixels, more than the 25 million a digit picture may have")
    assert "DOS" not in message and "bomb" not in message


@pytest.mark.parametrize(("data", "kind", "fragment"), [
    ([[1, 2], [3]], ValueError, "ragged"),
    ([1, [2, 3]], ValueError, "ragged"),
    ([[[1], [2]], [[3]]], ValueError, "ragged"),
    ([1 + 2j], TypeError, "complex data"),
    (np.array([1j]), TypeError, "complex data"),
    (np.complex64(1), TypeError, "complex data"),
    (["a", "b"], TypeError, "numbers or booleans"),
])
def test_gw_tensor_names_what_is_wrong(data, kind, fragment):
    for make in (gw.tensor, gw.Tensor, lambda d: gw.tensor(d, dtype=np.float32)):
        with pytest.raises(kind, match=fragment):
            make(data)


def test_gw_tensor_of_absurd_sizes_is_a_value_error_not_a_memory_error():
    script = textwrap.dedent("""
        import resource, numpy as np, gradwise as gw
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        for data in (range(10**12), np.broadcast_to(np.zeros(1), (10**6, 10**6))):
            try:
                gw.tensor(data)
            except ValueError as error:
                print("ValueError", str(error)[:120])
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("ValueError tensor: ") for line in lines)
    assert "(1000000, 1000000)" in lines[1] and "GiB" in lines[1]


@pytest.mark.parametrize("command", ["evaluate", "predict", "export", "resume"])
def test_a_run_folder_with_an_unknown_recipe_is_refused_like_train(capsys, run, tmp_path,
                                                                   command):
    config = json.loads((run / "config.json").read_text())
    config["recipe"] = "nope"
    (run / "config.json").write_text(json.dumps(config))
    (tmp_path / "x.png").write_bytes(png_with_chunks(30, 30))
    args = {"evaluate": ["evaluate", run], "predict": ["predict", run, tmp_path / "x.png"],
            "export": ["export", run, "--out", tmp_path / "m.onnx"],
            "resume": ["train", "--resume", run, "--epochs", "4"]}[command]
    code, _, err = _run(capsys, *args)
    line = _one_error(err)
    assert code in (EXIT_USAGE, EXIT_RUN) and "unknown recipe 'nope'" in line


@pytest.mark.parametrize(("settings", "flags", "fragment"), [
    ({"epochs": 0}, ["--epochs", "2"], "c.json: epochs must be >= 1"),
    ({"lr": -1}, ["--lr", "0.1"], "c.json: lr must be > 0"),
    ({"optimizer": "lion"}, ["--optimizer", "sgd"], "c.json: optimizer must be one of"),
    ({"recipe": "nope"}, ["spiral"], "unknown recipe 'nope'"),
    ({"recipe": 5}, ["spiral"], "recipe must be a string"),
])
def test_config_values_a_flag_overrides_are_still_validated(capsys, tmp_path, settings, flags,
                                                            fragment):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"recipe": "spiral", **settings}))
    code, _, err = _run(capsys, "train", *flags, "--config", config, "--out", tmp_path / "o")
    assert code == EXIT_USAGE and fragment in _one_error(err)
    assert not (tmp_path / "o").exists()


def test_predict_classifies_the_good_pictures_and_reports_the_bad_ones(capsys, tmp_path):
    from PIL import Image, ImageDraw

    from reliability.corpus_worker import digits_run

    digits = digits_run(tmp_path / "digits")
    image = Image.new("L", (60, 60), 0)
    ImageDraw.Draw(image).line([(30, 10), (30, 50)], fill=255, width=6)
    image.save(tmp_path / "good.png")
    (tmp_path / "huge.png").write_bytes(png_with_chunks(14000, 14000))
    pictures = [tmp_path / "good.png", tmp_path / "huge.png", tmp_path / "missing.png",
                tmp_path / "good.png"]
    code, out, err = _run(capsys, "predict", digits, *pictures)
    assert code == EXIT_USAGE
    assert [line.split(":")[0] for line in out.splitlines()] == [str(tmp_path / "good.png")] * 2
    errors = err.splitlines()
    assert len(errors) == 2 and all(line.startswith("gradwise: error: ") for line in errors)
    assert "huge.png: refused" in errors[0] and "missing.png" in errors[1]
