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
from gradwise.train import Trainer, format_epoch_summary

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


def render_terminal(text: str, columns: int) -> tuple[list[str], list[str]]:
    """What a ``columns``-wide terminal shows after ``text``: its rows, and every row where
    something was written past the last column (the terminal would have wrapped it)."""
    rows: list[list[str]] = [[]]
    row = col = 0
    overflow: list[str] = []
    i = 0
    while i < len(text):
        escape = _ANSI.match(text, i)
        if escape:
            code = escape.group()
            if code.endswith("A"):  # cursor up
                row = max(0, row - int(code[2:-1] or 1))
            elif code.endswith("K"):  # erase to the end of the line
                del rows[row][col:]
            i = escape.end()
            continue
        char = text[i]
        if char == "\r":
            col = 0
        elif char == "\n":
            row += 1
            col = 0
            while len(rows) <= row:
                rows.append([])
        else:
            if col >= columns:
                overflow.append("".join(rows[row]))
            line = rows[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = char
            col += 1
        i += 1
    return ["".join(line).rstrip() for line in rows], overflow


def run_in_terminal(args: list[str], columns: int, cwd) -> str:
    """Run ``gradwise ARGS`` on a pseudo-terminal ``columns`` wide; everything it wrote."""
    pty = pytest.importorskip("pty")
    import fcntl
    import os
    import select
    import struct
    import subprocess
    import termios

    from cli.cli_helpers import GRADWISE

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = dict(os.environ, COLUMNS=str(columns), LINES="24")
    process = subprocess.Popen([str(GRADWISE), *args], stdin=follower, stdout=follower,
                               stderr=follower, env=env, cwd=cwd, close_fds=True)
    os.close(follower)
    chunks = []
    try:
        while select.select([leader], [], [], 120)[0]:
            try:
                data = os.read(leader, 1 << 16)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
        process.wait(timeout=60)
    assert process.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode()


def test_in_an_80_column_terminal_nothing_wraps_and_each_epoch_shows_once(tmp_path) -> None:
    shown = run_in_terminal(["train", "xor", "--epochs", "3", "--out", "run", "--no-doctor"],
                            80, tmp_path)
    assert "\r" in shown and "0/23" in shown  # it did draw bars: this is the terminal path
    screen, overflow = render_terminal(shown, 80)
    assert overflow == [], overflow
    epoch_rows = [row for row in screen if row.startswith("epoch ")]
    # one summary row per epoch, the bars cleared (no "|" left), the metrics written once
    assert [row.split()[1] for row in epoch_rows] == ["1/3", "2/3", "3/3"], screen
    assert all("|" not in row and row.count("val_loss") == 1 for row in epoch_rows), epoch_rows
    assert not any(row.startswith("test ") for row in screen)  # the evaluation bar cleared too
    assert any(row.startswith("Test accuracy: ") for row in screen)


RECORD = {"epoch": 12, "loss": 0.61123, "accuracy": 0.60561, "top5_accuracy": 0.9, "f1": 0.5,
          "val_loss": 0.49411, "val_accuracy": 0.83751, "val_top5_accuracy": 0.95,
          "val_f1": 0.55, "lr": 0.02, "epoch_time": 0.034, "samples": 800, "steps": 23}


@pytest.mark.parametrize("width", [20, 40, 60, 80, 100, 200, None])
@pytest.mark.parametrize("keys", [("loss", "val_loss"), ("loss", "accuracy", "val_loss",
                                                        "val_accuracy"), tuple(RECORD)])
def test_epoch_lines_fit_the_width_without_cutting_a_number(width, keys) -> None:
    record = {key: RECORD[key] for key in ("epoch", *keys, "lr", "epoch_time", "samples")}
    full = format_epoch_summary(record, 100)
    line = format_epoch_summary(record, 100, width)
    if width is None or len(full) <= width:
        assert line == full
        return
    assert len(line) <= max(width, len("epoch 12/100")), line
    assert line.startswith("epoch 12/100")
    full_values = dict(zip(full.split()[2::2], full.split()[3::2], strict=False))
    shown = line.split("  ")[1:]
    for part in shown:  # every number shown is whole and is the full line's number
        if part == "..." or part.endswith("s"):
            continue
        name, value = part.split(" ")
        long_name = {"acc": "accuracy", "val_acc": "val_accuracy"}.get(name, name)
        assert full_values[long_name] == value, (part, full)
