"""Bad input to `gradwise`: one line on stderr, exit code 2, never a traceback."""

from __future__ import annotations

import pytest

from cli.cli_helpers import assert_one_line_error, gradwise
from gradwise.cli import EXIT_BUG, EXIT_CODES, EXIT_DATA, EXIT_RUN, EXIT_SYSTEM


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> str:
    from gradwise.cli import main

    run_dir = tmp_path_factory.mktemp("cli-errors") / "xor"
    assert main(["train", "xor", "--epochs", "1", "--out", str(run_dir), "--quiet"]) == 0
    return str(run_dir)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["train", "--lr", "-1"], "--lr must be > 0, got -1"),
        (["train", "--lr", "nan"], "--lr must be > 0, got nan"),
        (["train", "--epochs", "0"], "--epochs must be >= 1, got 0"),
        (["train", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["train", "--dropout", "1.5"], "--dropout must be in [0, 1), got 1.5"),
        (["train", "--weight-decay", "-1"], "--weight-decay must be >= 0"),
        (["train", "--clip-grad-norm", "0"], "--clip-grad-norm must be > 0"),
        (["train", "--limit-train", "1"], "--limit-train must be >= 2"),
        (["train", "--seed", "-3"], "--seed must be >= 0"),
        (["train", "--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
        (["train", "--optimizer", "adagradx"], "argument --optimizer: invalid choice"),
        (["train", "no-such-recipe"], "unknown recipe 'no-such-recipe'; choose from mnist-mlp"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["train", "--config", "missing.toml"], "missing.toml: no such config file"),
        (["evaluate"], "the following arguments are required: RUN_DIR"),
        (["explain", "everything"], "argument topic: invalid choice"),
        (["lr-find", "nope"], "unknown recipe 'nope'"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(capsys, args, fragment) -> None:
    assert_one_line_error(gradwise(capsys, *args), fragment=fragment)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["predict", "{run}", "missing.png"], "missing.png: no such image file"),
        (["train", "--resume", "{run}", "--lr", "0.1"], "--lr cannot be given with it"),
        (["train", "spiral", "--out", "{run}"], "already holds a run"),
    ],
)
def test_bad_input_about_an_existing_run(capsys, finished_run, args, fragment) -> None:
    args = [arg.format(run=finished_run) for arg in args]
    result = gradwise(capsys, *args)
    assert_one_line_error(result, fragment=fragment)


def test_resuming_a_finished_run_asks_for_more_epochs_before_printing_a_plan(
    capsys, finished_run
) -> None:
    for extra in ([], ["--epochs", "1"]):
        result = gradwise(capsys, "train", "--resume", finished_run, *extra)
        assert_one_line_error(result, code=2, fragment="this run already finished its 1 epoch")
        assert "1 epochs" not in result.err
        assert "--epochs 2" in result.err and result.out == ""  # no "Resuming ..." first


def test_unexpected_errors_are_short_with_a_debug_hint(capsys, monkeypatch) -> None:
    def explode(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("gradwise.runs.train_run", explode)
    result = gradwise(capsys, "train", "xor")
    assert_one_line_error(result, code=EXIT_BUG, fragment="unexpected ZeroDivisionError")
    assert "GRADWISE_DEBUG=1" in result.err
    monkeypatch.setenv("GRADWISE_DEBUG", "1")
    result = gradwise(capsys, "train", "xor")
    assert result.code == EXIT_BUG and "Traceback" in result.err


def test_help_explains_with_examples(capsys) -> None:
    for args, expected in ((["--help"], "gradwise train "), (["train", "--help"], "--resume")):
        result = gradwise(capsys, *args)
        assert result.code == 0
        assert "examples:" in result.out and expected in result.out
    no_command = gradwise(capsys)
    assert no_command.code == 2 and "COMMAND" in no_command.out


def test_absurd_model_sizes_in_a_config_fail_before_allocating(capsys, tmp_path) -> None:
    config = tmp_path / "big.json"
    config.write_text('{"hidden": [100000000000]}')
    result = gradwise(capsys, "train", "--config", str(config))
    assert_one_line_error(result, fragment="hidden allows at most 64 layers of at most 65536")


@pytest.mark.parametrize(
    ("args", "suggestion"),
    [
        (["train", "mnist-mpl"], "(did you mean 'mnist-mlp'?)"),
        (["lr-find", "fashon-cnn"], "(did you mean 'fashion-cnn'?)"),
        (["train", "--optimzer", "adam"], "(did you mean '--optimizer'?)"),
        (["train", "--label-smothing", "0.1"], "(did you mean '--label-smoothing'?)"),
        (["train", "--optimizer", "adamm"], "(did you mean 'adam'?)"),
        (["evaluate", "x", "--weights", "bets"], "(did you mean 'best'?)"),
        (["trian"], "(did you mean 'train'?)"),
    ],
)
def test_typos_get_a_suggestion(capsys, args, suggestion) -> None:
    assert_one_line_error(gradwise(capsys, *args), fragment=suggestion)


def test_far_off_typos_get_no_suggestion(capsys) -> None:
    result = gradwise(capsys, "train", "zzzzzz")
    assert_one_line_error(result, fragment="unknown recipe 'zzzzzz'; choose from")
    assert "did you mean" not in result.err


@pytest.mark.parametrize("flag", ["--bogus", "--butt"])
def test_unknown_options_are_not_matched_on_their_dashes(capsys, flag) -> None:
    # difflib's ratio counted the shared '--': '--bogus' was "did you mean '--out'?"
    result = gradwise(capsys, flag)
    assert_one_line_error(result, fragment=f"unrecognized arguments: {flag}")
    assert "did you mean" not in result.err


def test_every_option_has_help_text() -> None:
    import argparse

    from gradwise.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    undocumented = [
        f"{name} {action.option_strings or action.dest}"
        for name, command in commands.choices.items()
        for action in command._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert undocumented == []


def test_exit_codes_are_documented_in_help(capsys) -> None:
    result = gradwise(capsys, "--help")
    assert "exit codes:" in result.out
    text = " ".join(result.out.split())  # the lines are wrapped to fit 80 columns
    for code, meaning in EXIT_CODES.items():
        assert f" {code} {meaning}" in text
    assert len(set(EXIT_CODES)) == len(EXIT_CODES) == 9


@pytest.mark.parametrize(
    ("setup", "args", "code", "fragment"),
    [
        ("none", ["train", "fashion-mlp", "--data-dir", "{empty}"], EXIT_DATA,
         "holds no fashion-mnist files"),
        ("broken_weights", ["evaluate", "{run}", "--weights", "last"], EXIT_RUN,
         "not a valid safetensors file"),
        ("none", ["train", "xor", "--out", "/proc/gradwise-test"], EXIT_SYSTEM,
         "/proc/gradwise-test: cannot create the run folder"),
    ],
)
def test_each_kind_of_failure_has_its_exit_code(capsys, tmp_path, finished_run, setup, args,
                                                code, fragment) -> None:
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(finished_run, run)
    if setup == "broken_weights":
        (run / "weights.safetensors").write_bytes(b"not safetensors")
    (tmp_path / "empty").mkdir()
    args = [arg.format(run=run, empty=tmp_path / "empty") for arg in args]
    assert_one_line_error(gradwise(capsys, *args), code=code, fragment=fragment)
