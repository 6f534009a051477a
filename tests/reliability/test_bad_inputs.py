"""Bad values from users: each is refused with an error that names the problem.

Every case is one row of BAD_INPUTS: what the user did, the call, the exception type and words
the message must contain (the layer/argument and the offending value or shape).
docs/RELIABILITY.md lists the same rows with the messages they produce.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gradwise as gw
import gradwise.nn.functional as F
from gradwise import nn, optim
from gradwise.cli import main as cli_main
from gradwise.data import DataLoader
from gradwise.train import CheckpointError, Trainer, load_model_weights

RNG_SEED = 0


def _mlp(hidden: int = 8, n_in: int = 2, n_out: int = 3) -> nn.Module:
    rng = np.random.default_rng(RNG_SEED)
    return nn.Sequential(nn.Linear(n_in, hidden, rng=rng), nn.ReLU(),
                         nn.Linear(hidden, n_out, rng=rng))


def _data(n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED)
    return rng.standard_normal((n, 2)).astype(np.float32), rng.integers(0, 3, n)


def _fit(x: Any = None, y: Any = None, loss: Any = None, **fit_args: Any) -> Any:
    default_x, default_y = _data()
    model = _mlp()
    trainer = Trainer(model, loss or nn.CrossEntropyLoss(),
                      optim.SGD(model.parameters(), lr=0.1), progress=False)
    return trainer.fit((default_x if x is None else x, default_y if y is None else y),
                       **fit_args)


def _with(array: np.ndarray, index: tuple[int, ...], value: float) -> np.ndarray:
    changed = array.copy()
    changed[index] = value
    return changed


def _load_other_architecture(tmp_path: Path) -> None:
    model = _mlp(hidden=8)
    Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
            progress=False).save_checkpoint(tmp_path / "ckpt")
    other = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3), nn.ReLU(),
                          nn.Linear(3, 3))
    load_model_weights(tmp_path / "ckpt", other)


X, Y = _data()
LOGITS = gw.tensor(np.zeros((4, 3), np.float32))

BAD_INPUTS: dict[str, tuple[Callable[[Path], Any], type[Exception], tuple[str, ...]]] = {
    "Linear(4, 3) given (2, 5) input": (
        lambda _: nn.Linear(4, 3)(gw.zeros(2, 5)), ValueError, ("Linear", "(2, 5)", "4")),
    "Conv2d(3, 4) given 1-channel images": (
        lambda _: nn.Conv2d(3, 4, 3)(gw.zeros(1, 1, 8, 8)), ValueError,
        ("Conv2d", "(1, 1, 8, 8)")),
    # (3, 8, 8) is torch's unbatched input, accepted; a 2-D picture has no channel axis
    "Conv2d given a 2-D tensor (no channel axis)": (
        lambda _: nn.Conv2d(3, 4, 3)(gw.zeros(8, 8)), ValueError, ("Conv2d", "(8, 8)")),
    "cross_entropy label 3 with 3 classes": (
        lambda _: F.cross_entropy(LOGITS, gw.tensor(np.array([0, 1, 2, 3]))), ValueError,
        ("label 3", "3 classes")),
    "cross_entropy label -1": (
        lambda _: F.cross_entropy(LOGITS, gw.tensor(np.array([0, 1, 2, -1]))), ValueError,
        ("label -1",)),
    "cross_entropy float labels": (
        lambda _: F.cross_entropy(LOGITS, gw.tensor(np.array([0.5, 1, 2, 1]))), RuntimeError,
        ("cross_entropy", "Long or Byte", "Double")),
    "cross_entropy 3 labels for 4 rows": (
        lambda _: F.cross_entropy(LOGITS, gw.tensor(np.array([0, 1, 2]))), ValueError,
        ("(3,)", "(4, 3)")),
    "mse_loss (4, 3) vs (4,)": (
        lambda _: F.mse_loss(gw.zeros(4, 3), gw.zeros(4)), ValueError, ("(4, 3)", "(4,)")),
    "fit: NaN in x": (
        lambda _: _fit(x=_with(X, (3, 1), np.nan)), ValueError, ("x", "non-finite", "(3, 1)")),
    "fit: +inf in x": (
        lambda _: _fit(x=_with(X, (5, 0), np.inf)), ValueError, ("x", "non-finite", "(5, 0)")),
    "fit: NaN targets (regression)": (
        lambda _: _fit(y=np.full((20, 3), np.nan, np.float32), loss=nn.MSELoss()), ValueError,
        ("y", "non-finite")),
    "fit: labels out of range": (
        lambda _: _fit(y=Y + 5), ValueError, ("out of range", "3 classes")),
    "fit: empty data set": (
        lambda _: _fit(x=X[:0], y=Y[:0]), ValueError, ("empty",)),
    "fit: x and y of different lengths": (
        lambda _: _fit(y=Y[:10]), ValueError, ("(20, 2)", "(10,)")),
    "fit: wrong number of features": (
        lambda _: _fit(x=np.zeros((20, 5), np.float32)), ValueError, ("Linear", "(20, 5)")),
    "fit: batch_size=0": (
        lambda _: _fit(batch_size=0), ValueError, ("batch_size", "0")),
    "fit: epochs=0": (lambda _: _fit(epochs=0), ValueError, ("epochs", "0")),
    "DataLoader: batch_size=0": (
        lambda _: DataLoader((X, Y), batch_size=0), ValueError, ("batch_size", "0")),
    "DataLoader: empty data set": (
        lambda _: DataLoader((X[:0], Y[:0])), ValueError, ("empty",)),
    "SGD: lr=-0.1": (
        lambda _: optim.SGD(_mlp().parameters(), lr=-0.1), ValueError, ("SGD", "lr", "-0.1")),
    "Adam: lr=-0.1": (
        lambda _: optim.Adam(_mlp().parameters(), lr=-0.1), ValueError, ("Adam", "lr", "-0.1")),
    "AdamW: lr=NaN": (
        lambda _: optim.AdamW(_mlp().parameters(), lr=float("nan")), ValueError,
        ("AdamW", "lr", "nan")),
    "Adam: betas=(1.5, 0.9)": (
        lambda _: optim.Adam(_mlp().parameters(), betas=(1.5, 0.9)), ValueError,
        ("betas", "1.5")),
    "SGD: no parameters": (
        lambda _: optim.SGD([], lr=0.1), ValueError, ("SGD", "empty")),
    "checkpoint of a 2-8-3 MLP loaded into a 2-16-3-3 MLP": (
        _load_other_architecture, CheckpointError,
        ("does not fit", "shape mismatch", "(8, 2)", "(16, 2)", "missing")),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gets_an_error_naming_the_problem(tmp_path: Path, case: str) -> None:
    call, error_type, fragments = BAD_INPUTS[case]
    with pytest.raises(error_type) as caught:
        call(tmp_path)
    message = str(caught.value)
    missing = [fragment for fragment in fragments if fragment not in message]
    assert not missing, f"{case}: message {message!r} lacks {missing}"


BAD_COMMAND_LINES: dict[str, tuple[list[str], str]] = {
    "unknown recipe": (["train", "nope"], "unknown recipe 'nope'"),
    "unknown command": (["bogus"], "invalid choice: 'bogus'"),
    "negative learning rate": (["train", "spiral", "--lr", "-1"], "--lr must be > 0"),
    "learning rate not a number": (["train", "spiral", "--lr", "abc"], "invalid float value"),
    "zero epochs": (["train", "spiral", "--epochs", "0"], "--epochs must be >= 1"),
    "batch size 0": (["train", "spiral", "--batch-size", "0"], "--batch-size must be >= 1"),
    "dropout 1.5": (["train", "spiral", "--dropout", "1.5"], "--dropout must be in [0, 1)"),
    "unknown optimizer": (["train", "spiral", "--optimizer", "foo"], "invalid choice: 'foo'"),
    "missing config file": (["train", "--config", "/nonexistent.json"], "no such config file"),
    # a missing or foreign run folder exits 4 (tests/cli/test_everyday.py's table of codes)
}


@pytest.mark.parametrize("case", sorted(BAD_COMMAND_LINES))
def test_bad_command_line_exits_2_with_one_line(case: str, capsys: pytest.CaptureFixture) -> None:
    argv, fragment = BAD_COMMAND_LINES[case]
    assert cli_main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("gradwise: error: "), err
    assert fragment in err and "Traceback" not in err


def test_installed_command_reports_bad_values_without_traceback() -> None:
    """The real entry point, in a fresh process: exit 2, one line on stderr."""
    result = subprocess.run([sys.executable, "-m", "gradwise.cli", "train", "nope"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
