"""What a run shows while it trains: bars that fit the terminal and vanish, one line per epoch,
a bar for the final test evaluation, and plain lines when the output is not a terminal."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

from cli.cli_helpers import gradwise
from gradwise import nn, optim
from gradwise.runs.progress import EpochBar, running_numbers
from gradwise.runs.scoring import score
from gradwise.train import Trainer

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def frames(text: str) -> list[str]:
    """Every state of the bar as the terminal showed it (carriage returns start a new one)."""
    return [_ANSI.sub("", part) for part in re.split(r"[\r\n]", text) if part.strip()]


def _toy_trainer(callback, epochs_logged: list[str]):
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(2, 8, rng=rng), nn.ReLU(), nn.Linear(8, 2, rng=rng))
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.01),
                      metrics=["accuracy"], callbacks=[callback], progress=False, seed=0)
    x = rng.normal(size=(600, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    return trainer, (x, y)


@pytest.mark.parametrize("columns", [40, 80, 100])
def test_epoch_bars_fit_the_terminal_and_are_cleared(columns) -> None:
    out = io.StringIO()
    bar = EpochBar(file=out, columns=columns, refresh_seconds=0.0)
    trainer, data = _toy_trainer(bar, [])
    trainer.fit(data, data, epochs=2, batch_size=32)
    shown = frames(out.getvalue())
    bars = [frame for frame in shown if frame.startswith("epoch ")]
    assert {frame.split()[1] for frame in bars} == {"1/2", "2/2"}
    assert all(len(frame) <= columns for frame in shown), max(shown, key=len)
    if columns >= 80:  # the running loss and accuracy fit beside the bar
        assert any(re.search(r"loss \d\.\d{4} acc \d+\.\d%$", frame) for frame in bars)
        assert all(re.search(r"\|.{10,}\|", frame) for frame in bars)  # a real bar, not 1 char
    # not repeated: the epoch's validation numbers belong to the summary line, not the bar
    assert "val_" not in out.getvalue()
    last = out.getvalue().split("\r")[-1]
    assert last.strip() == "" or _ANSI.sub("", last).strip() == ""  # the last bar was cleared


def test_running_numbers_are_short() -> None:
    assert running_numbers({"loss": 0.42131, "accuracy": 0.8712}) == " loss 0.4213 acc 87.1%"
    assert running_numbers({}) == ""


def test_final_evaluation_has_a_bar(capsys) -> None:
    rng = np.random.default_rng(0)
    model = nn.Linear(4, 3, rng=rng)
    x = rng.normal(size=(2500, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=2500)
    quiet = score(model, x, y)
    assert capsys.readouterr().err == ""
    shown = score(model, x, y, progress=True)
    err = capsys.readouterr().err
    assert any(frame.startswith("test ") and "/3" in frame for frame in frames(err)), err
    assert (quiet.loss, quiet.accuracy) == (shown.loss, shown.accuracy)


def test_off_a_terminal_training_prints_plain_lines_only(capsys, tmp_path) -> None:
    result = gradwise(capsys, "train", "xor", "--epochs", "2", "--out", tmp_path / "run",
                      "--no-doctor")
    assert result.code == 0, result.err
    assert "\r" not in result.out + result.err and "\x1b" not in result.out + result.err
    epoch_lines = [line for line in result.out.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 2
