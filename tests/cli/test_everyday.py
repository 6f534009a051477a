"""Issue 17's fresh-clone walkthrough: each finding as a regression test, by kind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli.cli_helpers import assert_one_line_error, gradwise
from gradwise.cli import (
    EXIT_CODES,
    EXIT_DATA,
    EXIT_RUN,
    EXIT_SYSTEM,
    EXIT_USAGE,
    HELP_WIDTH,
    build_parser,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    from gradwise.cli import main

    run_dir = tmp_path_factory.mktemp("everyday") / "xor"
    assert main(["train", "xor", "--epochs", "1", "--out", str(run_dir), "--quiet"]) == 0
    return run_dir


# ---- 1. an option before its command ------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "fixed"),
    [
        (["--quiet", "train", "spiral"], "gradwise train spiral --quiet"),
        (["--out", "r17o", "train", "spiral"], "gradwise train spiral --out r17o"),
        (["--out=r17o", "train"], "gradwise train --out=r17o"),
        (["--epochs", "3", "--quiet", "train", "xor"], "gradwise train xor --epochs 3 --quiet"),
        (["--weights", "best", "evaluate", "runs/x"], "gradwise evaluate runs/x --weights best"),
    ],
)
def test_an_option_before_its_command_says_where_it_belongs(capsys, args, fixed) -> None:
    result = gradwise(capsys, *args)
    assert_one_line_error(result, EXIT_USAGE, f"put it after the command, as in: {fixed}")
    assert "did you mean" not in result.err and "invalid choice" not in result.err


def test_another_commands_option_is_named_never_suggested_as_itself(capsys) -> None:
    result = gradwise(capsys, "evaluate", "runs/x", "--quiet")
    assert_one_line_error(result, EXIT_USAGE, "--quiet is an option of train, lr-find only")
    assert "did you mean '--quiet'" not in result.err
    assert "see 'gradwise evaluate --help'" in result.err


# ---- 3. one exit code per kind of failure -----------------------------------------------------
@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        # usage: options, values, output paths a file stands in the way of
        (["train", "--lr", "-1"], EXIT_USAGE, "--lr must be > 0"),
        (["--quiet", "train"], EXIT_USAGE, "put it after the command"),
        (["train", "xor", "--out", "{file}"], EXIT_USAGE, "cannot be a folder"),
        (["train", "xor", "--out", "{file}/sub"], EXIT_USAGE, "cannot be a folder"),
        (["train", "xor", "--out", "{file}/a/b"], EXIT_USAGE, "is a file"),
        (["train", "xor", "--tensorboard", "{file}/tb"], EXIT_USAGE, "cannot be a folder"),
        (["export", "{run}", "--out", "{tmp}/missing/m.onnx"], EXIT_USAGE, "no such folder"),
        # data: the data set or the --data-dir named
        (["train", "fashion-mlp", "--data-dir", "{tmp}/missing"], EXIT_DATA, "no such folder"),
        (["train", "fashion-mlp", "--data-dir", "{file}"], EXIT_DATA, "is a file"),
        (["train", "fashion-mlp", "--data-dir", "{empty}"], EXIT_DATA,
         "holds no fashion-mnist files"),
        (["lr-find", "fashion-mlp", "--data-dir", "{tmp}/missing"], EXIT_DATA, "no such folder"),
        (["evaluate", "{run}", "--data-dir", "{tmp}/missing"], EXIT_DATA, "no such folder"),
        # run folder: missing, not a folder, not a run, damaged
        (["evaluate", "{tmp}/missing"], EXIT_RUN, "no such run folder"),
        (["evaluate", "{empty}"], EXIT_RUN, "not a gradwise run folder"),
        (["evaluate", "{file}"], EXIT_RUN, "is a file, not a run folder"),
        (["evaluate", "/"], EXIT_RUN, "not a gradwise run folder"),
        (["predict", "{tmp}/missing", "a.png"], EXIT_RUN, "no such run folder"),
        (["export", "{empty}"], EXIT_RUN, "not a gradwise run folder"),
        (["train", "--resume", "{tmp}/missing"], EXIT_RUN, "no such folder"),
        (["train", "--resume", "{file}"], EXIT_RUN, "is a file"),
        (["train", "--resume", "{empty}"], EXIT_RUN, "config.json: missing"),
        # the system refused
        (["train", "xor", "--out", "/proc/gradwise-test"], EXIT_SYSTEM,
         "cannot create the run folder"),
    ],
)
def test_each_kind_of_failure_has_one_exit_code(capsys, tmp_path, finished_run, args, code,
                                                fragment) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    args = [arg.format(tmp=tmp_path, file=tmp_path / "file", empty=tmp_path / "empty",
                       run=finished_run) for arg in args]
    assert_one_line_error(gradwise(capsys, *args), code, fragment)
    assert not (tmp_path / "empty").exists() or not any((tmp_path / "empty").iterdir())


def test_readme_lists_the_exit_codes_of_help() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", readme, re.M))
    assert {int(code): meaning for code, meaning in rows.items()} == EXIT_CODES
    module_doc = sys.modules["gradwise.cli"].__doc__
    assert all(re.search(rf"^{code}\s", module_doc, re.M) for code in EXIT_CODES)


# ---- 2. an empty --data-dir is never searched past --------------------------------------------
def test_an_empty_data_dir_is_an_error_even_with_a_copy_elsewhere(capsys, tmp_path,
                                                                   monkeypatch) -> None:
    from data.conftest import write_tiny_dataset

    write_tiny_dataset(tmp_path / "elsewhere")
    monkeypatch.setenv("GRADWISE_DATA", str(tmp_path / "elsewhere"))
    (tmp_path / "emptyd").mkdir()
    result = gradwise(capsys, "train", "mnist-mlp", "--data-dir", tmp_path / "emptyd",
                      "--epochs", "1", "--out", tmp_path / "run")
    assert_one_line_error(result, EXIT_DATA, f"{tmp_path / 'emptyd'} holds no mnist files")
    assert "train-images-idx3-ubyte.gz" in result.err  # what it should hold
    assert not (tmp_path / "run").exists() and not any((tmp_path / "emptyd").iterdir())


# ---- 11. hints ----------------------------------------------------------------------------------
def test_a_config_typo_gets_a_suggestion(capsys, tmp_path) -> None:
    (tmp_path / "my.toml").write_text("epoch = 5\n")
    result = gradwise(capsys, "train", "xor", "--config", tmp_path / "my.toml")
    assert_one_line_error(result, EXIT_USAGE, "unknown setting 'epoch' (did you mean 'epochs'?)")


@pytest.mark.parametrize("command", ["train", "evaluate", "lr-find", "export"])
def test_an_unknown_option_points_to_its_commands_help(capsys, command) -> None:
    result = gradwise(capsys, command, *(["x"] if command in ("evaluate", "export") else []),
                      "--lrr", "0.1")
    assert_one_line_error(result, EXIT_USAGE, f"(see 'gradwise {command} --help')")


def test_counts_are_singular_for_one(capsys, tmp_path, finished_run) -> None:
    result = gradwise(capsys, "train", "xor", "--epochs", "1", "--out", tmp_path / "one")
    assert result.code == 0, result.err
    assert "1 epochs" not in result.out and ", 1 epoch," in result.out
    assert re.search(r"\), 1 epoch in [\d.]+s", result.out), result.out
    again = gradwise(capsys, "train", "--resume", finished_run)
    assert_one_line_error(again, EXIT_USAGE, "already finished its 1 epoch;")


# ---- 6, 4, 5: the header, the doctor and the epoch lines at 80 columns -------------------------
def _is_new_element(line: str) -> bool:
    text = line.strip()
    return not text or text[0] in "[-" or text.startswith(("evidence:", "try:", "epoch "))


def test_at_80_columns_each_line_fits_once_wrapped_with_stable_columns(capsys, tmp_path,
                                                                       monkeypatch) -> None:
    from gradwise import cli as gw_cli

    monkeypatch.setattr(gw_cli, "_terminal_width", lambda: 80)
    result = gradwise(capsys, "train", "digits-mlp", "--optimizer", "sgd", "--lr", "1e-6",
                      "--schedule", "none", "--epochs", "3", "--limit-train", "400",
                      "--dropout", "0", "--out", tmp_path / "run")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    # 6: the header describes what runs, after the flags, never the recipe's defaults
    assert lines[1].strip() == "784-128-10 MLP"
    assert lines[2].startswith("  sgd lr 1e-06, constant lr, 3 epochs"), lines[2]
    assert "adam" not in "\n".join(lines[:3]).lower()
    assert "lr_too_low" in result.out  # the doctor spoke: its advice is part of the check
    assert all(len(line) <= 80 for line in lines), [x for x in lines if len(x) > 80]
    # 4: wrapped once: a short line is followed by a new element, never by its own remainder
    for line, following in zip(lines, lines[1:], strict=False):
        if len(line) < 50 and line.startswith("  ") and not line.rstrip().endswith(":"):
            assert _is_new_element(following) or len(following) - len(following.lstrip()) < 2 \
                or not following.startswith(line[: len(line) - len(line.lstrip())] + "  "), \
                (line, following)
    # 5: every epoch line has the same columns
    columns = {tuple(re.findall(r"([a-z_/]+) [\d.e-]+", line))
               for line in lines if line.startswith("epoch ")}
    assert len(columns) == 1, columns


def test_epoch_lines_keep_their_columns_when_values_change_width() -> None:
    from gradwise.train.callbacks import EpochSummary

    printed: list[str] = []
    summary = EpochSummary(print_fn=printed.append, width=80)
    summary.trainer = type("T", (), {"epochs_target": 12})()
    base = {"loss": 0.5, "accuracy": 0.9, "val_loss": 0.5, "val_accuracy": 0.9}
    for epoch, (lr, seconds) in enumerate([(0.001, 0.5), (1.23e-05, 123.4), (0.1, 1.0)], 1):
        summary.on_epoch_end(epoch, {"epoch": epoch, **base, "lr": lr, "epoch_time": seconds,
                                     "samples": 1000})
    shapes = {(tuple(re.findall(r"([a-z_/]+) [\d.e-]+", line)), len(line.split("  ")))
              for line in printed}
    assert len(shapes) == 1, printed
    assert all(len(line) <= 80 for line in printed)


# ---- 7. after a resume: this session and the whole run ----------------------------------------
def test_after_a_resume_the_summary_tells_session_from_total(capsys, tmp_path,
                                                              finished_run) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    result = gradwise(capsys, "train", "--resume", run, "--epochs", "2", "--quiet")
    assert result.code == 0, result.err
    total = json.loads((run / "run.json").read_text())["seconds"]
    match = re.search(r"2 epochs in ([\d.]+)s this session, ([\d.]+)s in all", result.out)
    assert match, result.out
    assert float(match.group(2)) == pytest.approx(total, abs=0.051)
    assert float(match.group(1)) <= float(match.group(2))  # printed to 0.1 s: a fast session is 0.0


# ---- 8. the final score is that of the weights evaluate uses ----------------------------------
@pytest.mark.parametrize("distributed", [False, True])
def test_the_summary_scores_the_weights_evaluate_uses(capsys, tmp_path, distributed) -> None:
    if distributed:
        pytest.importorskip("mpi4py")
    run = tmp_path / "run"
    args = ["train", "spiral", "--epochs", "4", "--no-doctor", "--quiet", "--out", run]
    result = gradwise(capsys, *args, *(["--distributed"] if distributed else []))
    assert result.code == 0, result.err
    trained = re.search(r"Test accuracy: ([\d.]+%) \(loss ([\d.]+); weights (best: epoch \d+)",
                        result.out)
    assert trained, result.out
    evaluated = gradwise(capsys, "evaluate", run)
    assert evaluated.code == 0, evaluated.err
    assert f"Weights: {trained.group(3)}" in evaluated.out
    assert f"Test accuracy: {trained.group(1)} " in evaluated.out
    assert f"loss {trained.group(2)}" in evaluated.out


# ---- 12. help and listings fit 80 columns ------------------------------------------------------
@pytest.mark.parametrize("columns", ["60", "80", "200"])
def test_every_help_fits_80_columns(monkeypatch, columns) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    parser = build_parser()
    subcommands = next(a for a in parser._actions if hasattr(a, "choices") and a.choices)
    for command in [parser, *subcommands.choices.values()]:
        long = [line for line in command.format_help().splitlines() if len(line) > HELP_WIDTH]
        assert long == [], (command.prog, long)


def test_recipes_fit_80_columns_and_show_label_smoothing(capsys) -> None:
    result = gradwise(capsys, "recipes")
    assert result.code == 0
    assert all(len(line) <= 80 for line in result.out.splitlines()), result.out
    blocks = re.split(r"\n(?=\S)", result.out)
    fashion = [block for block in blocks if block.startswith("fashion-")]
    assert len(fashion) == 2, blocks
    assert all("label smoothing 0.1" in " ".join(block.split()) for block in fashion), fashion


# ---- 10. tools/readme_check.py with the wrong python -------------------------------------------
def test_readme_check_with_another_python_gives_a_one_line_hint(tmp_path) -> None:
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.symlink_to(sys.executable)  # no gradwise command beside it
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([str(python), str(ROOT / "tools" / "readme_check.py")],
                            capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert ".venv/bin/python tools/readme_check.py" in result.stderr
