"""Six teaching programs (tests/compat/tutorials/), each written once with ``import torch``, run
twice: as written, and with its imports switched to gradwise (``import gradwise as torch``,
``import gradwise.nn as nn`` ...). Nothing else in the program changes. Both runs start from the
same weights and the loss curves must match.

The harness provides what the programs cannot share through the import alone:
- ``DATA``: small synthetic arrays (the "data loading" inputs, so no downloads);
- ``SHARED(x)``: in the torch run it records ``x`` (a state dict, a list of tensors or one
  tensor) and returns it unchanged; in the gradwise run it returns the recorded values instead,
  so both libraries start from the same initial weights (and draw the same minibatch indices),
  although their random streams differ by design (docs/PORTING.md);
- ``DROPOUT``: 0, so dropout masks (random, hence different) do not split the curves.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")

TUTORIALS = Path(__file__).parent / "tutorials"

# the only lines that differ between the two runs: torch's imports -> gradwise's
IMPORTS = [
    (r"^import torch$", "import gradwise as torch"),
    (r"^import torch\.nn as nn$", "import gradwise.nn as nn"),
    (r"^import torch\.nn\.functional as F$", "import gradwise.nn.functional as F"),
    (r"^import torch\.optim as optim$", "import gradwise.optim as optim"),
    (r"^from torch\.optim\.lr_scheduler import", "from gradwise.optim.lr_scheduler import"),
    (r"^from torch\.utils\.data import", "from gradwise.utils.data import"),
]


def _as_gradwise(source: str) -> str:
    for pattern, replacement in IMPORTS:
        source, count = re.subn(pattern, replacement, source, flags=re.MULTILINE)
    assert "import torch" not in source.replace("import gradwise as torch", ""), source
    return source


class Shared:
    """Record values in the torch run; replay them, as gradwise values, in the gradwise run."""

    def __init__(self) -> None:
        self.recorded: list[object] = []
        self.replaying = False

    def __call__(self, value):
        if not self.replaying:
            self.recorded.append(_to_numpy(value))
            return value
        return _to_gradwise(self.recorded.pop(0))


def _to_numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().numpy().copy()
    if isinstance(value, dict):
        return {key: _to_numpy(v) for key, v in value.items()}
    return [_to_numpy(v) for v in value]


def _to_gradwise(value):
    if isinstance(value, np.ndarray):
        return gw.tensor(value)
    if isinstance(value, dict):
        return dict(value)  # load_state_dict takes arrays
    return [_to_gradwise(v) for v in value]


def _data(name: str) -> dict[str, object]:
    rng = np.random.default_rng(0)
    if name == "mnist_cnn":
        labels = rng.integers(0, 10, 48)
        images = rng.standard_normal((48, 1, 12, 12)).astype(np.float32) * 0.5
        images[:, 0, labels % 12, :] += 1.0  # a learnable stripe per class
        return {"images": images, "labels": labels}
    if name == "char_mlp":
        return {"words": ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia",
                          "harper", "evelyn", "abigail", "emily", "ella", "elizabeth"]}
    if name == "char_mlp_batchnorm":
        return {"X": rng.integers(0, 27, (96, 3)), "Y": rng.integers(0, 27, 96)}
    if name == "two_moons":
        from sklearn.datasets import make_moons

        X, y = make_moons(n_samples=60, noise=0.1, random_state=1)
        return {"X": X.astype(np.float32), "y": (y * 2 - 1).astype(np.float32)}
    if name == "softmax_mlp_scratch":
        labels = rng.integers(0, 5, 60)
        features = rng.standard_normal((60, 28)).astype(np.float32)
        features[np.arange(60), labels * 5] += 2.0
        return {"features": features, "labels": labels}
    if name == "cifar_cnn":
        labels = rng.integers(0, 4, 32)
        images = rng.standard_normal((32, 3, 16, 16)).astype(np.float32)
        images[np.arange(32), labels % 3] += 0.5
        return {"images": images, "labels": labels}
    if name == "char_rnn":
        return {"text": "the cat sat on the mat. the dog sat on the log. " * 3}
    if name == "tiny_transformer":
        labels = rng.integers(0, 3, 24)
        lengths = rng.integers(3, 9, 24)
        tokens = np.zeros((24, 8), dtype=np.int64)  # 0 pads
        for row, (label, length) in enumerate(zip(labels, lengths, strict=True)):
            tokens[row, :length] = rng.integers(1, 12, length)
            tokens[row, 0] = 1 + 3 * label  # a class-revealing first token
        return {"tokens": tokens, "labels": labels}
    raise KeyError(name)


def _run(source: str, data: dict, shared: Shared, filename: str) -> list[float]:
    namespace = {"DATA": data, "SHARED": shared, "DROPOUT": 0.0, "__name__": "__tutorial__"}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own test programs
    return [float(v) for v in namespace["losses"]]


NAMES = ["mnist_cnn", "char_mlp", "char_mlp_batchnorm", "two_moons", "softmax_mlp_scratch",
         "cifar_cnn", "char_rnn", "tiny_transformer"]


@pytest.mark.parametrize("name", NAMES)
def test_tutorial_runs_with_only_the_imports_changed_and_matches_torch(name, capsys):
    path = TUTORIALS / f"{name}.py"
    source = path.read_text()
    data = _data(name)
    shared = Shared()
    torch.manual_seed(0)
    expected = _run(source, data, shared, str(path))
    shared.replaying = True
    actual = _run(_as_gradwise(source), data, shared, str(path))
    assert not shared.recorded, "the gradwise run used fewer shared values than torch's"
    assert len(actual) == len(expected) and len(expected) >= 6
    np.testing.assert_allclose(actual, expected, rtol=2e-4, atol=2e-5,
                               err_msg=f"{name}: loss curves differ")
    assert expected[0] != expected[-1]  # it trained
