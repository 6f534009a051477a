"""lr_find: the range test sweeps geometrically, stops on divergence, restores everything it
touched, and reads three suggestions off the smoothed curve; the plot shows the useful range."""

from __future__ import annotations

import math
import re
from functools import cache

import numpy as np
import pytest

import gradwise as gw
from gradwise import nn
from gradwise.autograd.tensor import Tensor
from gradwise.data import DataLoader, load_dataset
from gradwise.doctor import LRFindResult, lr_find
from gradwise.doctor.lr_find import DIVERGENCE_FACTOR, SUGGESTION_METHODS, suggest_lrs
from gradwise.optim import SGD, Adam


@cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits at their own 8x8 (64 features), scaled to [0, 1]."""
    data = load_dataset("digits", fallback=True, progress=False)
    x = data.x_train[:, 2:26:3, 2:26:3].reshape(len(data.x_train), -1)
    return x.astype(np.float32) / 255.0, data.y_train


def _mlp(seed: int = 0, *extra: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 64, rng=seed), nn.ReLU(), *extra,
                         nn.Linear(64, 10, rng=seed + 1))


def _setup():
    return _mlp(), nn.CrossEntropyLoss(), _digits()


# ---- suggestions on curves with known answers -------------------------------------------------
# A hand-made curve over lr = 1e-6 .. 1 (20 points per decade, x = log10 lr): flat at 2 up to
# x = -4, a half-cosine fall to 0.5 between x = -4 and x = -2 (steepest exactly at x = -3), then a
# parabola rising from its minimum at x = -2. So steep = 1e-3, minimum/10 = 1e-2 / 10 = 1e-3, and
# the valley runs from 10% of the fall (cos(pi t / 2) = 0.8, t = 0.4097: x = -3.590) to the
# minimum (x = -2): its middle in log lr is x = -2.795, lr = 1.60e-3.
_X = np.linspace(-6.0, 0.0, 121)
_KNOWN = {"steep": 1e-3, "minimum": 1e-3, "valley": 10 ** ((-3.590 + -2.0) / 2)}
_GRID = 10 ** 0.05  # one step of the sweep


def _known_curve(x: np.ndarray = _X) -> np.ndarray:
    t = np.clip(x + 4.0, 0.0, 2.0) / 2.0
    fall = 2.0 - 0.75 * (1.0 - np.cos(np.pi * t))
    return np.where(x <= -2.0, fall, 0.5 + 4.0 * (x + 2.0) ** 2)


def _smoothed(raw: np.ndarray, beta: float) -> np.ndarray:
    average, out = 0.0, []
    for i, value in enumerate(raw):
        average = beta * average + (1 - beta) * value
        out.append(average / (1 - beta ** (i + 1)))
    return np.asarray(out)


def test_suggestions_on_a_curve_with_known_answers():
    suggestions = suggest_lrs(10**_X, _known_curve())
    assert set(suggestions) == set(SUGGESTION_METHODS)
    for method, expected in _KNOWN.items():
        ratio = suggestions[method] / expected
        assert 1 / _GRID <= ratio <= _GRID, (method, suggestions[method], expected)


def test_suggestions_survive_noise_and_smoothing():
    """Batch noise of 0.05, smoothed as lr_find does: valley and minimum/10 stay within
    0.8x-2.5x of the truth (the moving average lags, which moves points right); steep, the
    derivative of a noisy curve, within 0.5x-3x."""
    lrs = 10 ** np.linspace(-6.0, 0.0, 241)
    bounds = {"valley": (0.8, 2.5), "minimum": (0.8, 2.5), "steep": (0.5, 3.0)}
    for seed in range(8):
        raw = _known_curve(np.log10(lrs)) + np.random.default_rng(seed).normal(0, 0.05, lrs.size)
        suggestions = suggest_lrs(lrs, _smoothed(raw, 0.9))
        for method, expected in _KNOWN.items():
            low, high = bounds[method]
            assert low <= suggestions[method] / expected <= high, (seed, method, suggestions)


def test_suggestions_scale_with_the_curve():
    """Moving the whole curve a decade to the right moves every suggestion a decade."""
    lrs = 10**_X
    base = suggest_lrs(lrs, _known_curve())
    shifted = suggest_lrs(lrs, _known_curve(_X - 1.0))
    for method in SUGGESTION_METHODS:
        assert shifted[method] / base[method] == pytest.approx(10.0, rel=0.13)


@pytest.mark.parametrize(
    ("losses", "why"),
    [
        (np.linspace(1.0, 3.0, 50), "the loss only rises"),
        (np.full(50, 2.0), "the loss is flat"),
        (np.array([2.0, 1.5, 1.0, 0.5]), "too few points"),
        (np.array([2.0, 1.9, math.nan, 1.0, 0.5, 0.2, 0.1]), "a NaN ends the curve early"),
    ],
)
def test_no_suggestion_when_the_loss_never_falls(losses, why):
    lrs = 10 ** np.linspace(-5, 0, losses.size)
    assert suggest_lrs(lrs, losses) == dict.fromkeys(SUGGESTION_METHODS), why


def test_suggestions_ignore_what_follows_a_nan():
    x = _X
    losses = _known_curve(x)
    cut = losses.copy()
    cut[np.searchsorted(x, -1.0):] = math.inf  # diverged after the minimum
    assert suggest_lrs(10**x, cut) == pytest.approx(suggest_lrs(10**x[:100], losses[:100]))


def test_suggest_lrs_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match=r"lrs \(3,\) and losses \(2,\)"):
        suggest_lrs([1e-3, 1e-2, 1e-1], [1.0, 0.5])


# ---- the sweep on a real model ----------------------------------------------------------------
def test_sweep_suggestions_and_divergence_stop(tmp_path):
    model, loss_fn, data = _setup()
    result = lr_find(model, loss_fn, data, num_steps=100, start_lr=1e-5, end_lr=10.0,
                     progress=False)
    lrs = np.array(result.lrs)
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], (10.0 / 1e-5) ** (1 / 99), rtol=1e-6)
    assert len(result.losses) == len(result.lrs) == len(result.raw_losses)
    # SGD with momentum 0.9 diverges well before lr 10: the sweep stopped at the first step whose
    # smoothed loss passed 4x the best, and not before
    assert result.stopped_early and len(result.lrs) < 100
    assert "exceeded 4x" in result.stop_reason
    losses = np.array(result.losses)
    assert losses[-1] > DIVERGENCE_FACTOR * losses[:-1].min()
    best_so_far = np.minimum.accumulate(losses)
    assert np.all(losses[:-1] <= DIVERGENCE_FACTOR * best_so_far[:-1])
    # good SGD (momentum 0.9) rates for this MLP, measured as in the Adam test below: 3e-3 55-70%,
    # 1e-2 82-89%, 3e-2 94%, 0.1 96-97%, 0.3 98%
    assert result.method == "valley" and result.suggested_lr == result.suggestions["valley"]
    for method in SUGGESTION_METHODS:
        assert 3e-3 < result.suggestions[method] < 1.0, (method, result.suggestions)
    path = result.plot(tmp_path / "lr.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.to_dict()["suggestions"] == result.suggestions


def test_a_non_finite_loss_stops_the_sweep_at_once():
    model, _, data = _setup()
    calls = []

    def loss_fn(output, target):
        calls.append(1)
        loss = nn.functional.cross_entropy(output, target)
        return loss * math.nan if len(calls) == 30 else loss

    result = lr_find(model, loss_fn, data, num_steps=80, progress=False)
    assert len(calls) == 30 and len(result.lrs) == 29
    assert result.stopped_early and "became nan" in result.stop_reason


def test_suggested_adam_rate_is_in_adams_range():
    """Adam's good rates for this MLP, measured (5 epochs, test accuracy, seeds 0 and 1): 3e-4
    70%, 1e-3 89%, 3e-3 94%, 1e-2 97%, 3e-2 97%, 0.1 95-97%, 0.3 collapses."""
    model, loss_fn, data = _setup()
    result = lr_find(model, loss_fn, data, optimizer_cls=Adam, end_lr=1.0, progress=False)
    assert 3e-3 <= result.suggested_lr <= 0.1, result.suggestions


def test_accepts_a_data_loader_and_optimizer_kwargs():
    model, loss_fn, (x, y) = _setup()
    loader = DataLoader((x, y), batch_size=32, shuffle=True, seed=0)
    result = lr_find(model, loss_fn, loader, optimizer_cls=SGD, num_steps=30, momentum=0.5,
                     progress=False)
    assert len(result.lrs) >= 2


# ---- everything is put back -------------------------------------------------------------------
def _bytes(arrays) -> list[bytes]:
    return [np.ascontiguousarray(a).tobytes() for a in arrays]


def _optimizer_snapshot(optimizer) -> tuple:
    state = optimizer.state_dict()
    arrays = [(i, k, np.asarray(v).tobytes()) for i, entry in state["state"].items()
              for k, v in sorted(entry.items()) if isinstance(v, gw.Tensor)]
    scalars = [(i, k, v) for i, entry in state["state"].items()
               for k, v in sorted(entry.items()) if not isinstance(v, gw.Tensor)]
    groups = [{k: v for k, v in g.items()} for g in state["param_groups"]]
    return arrays, scalars, groups


def _trained_model_with_state():
    """A model with batch norm and dropout, some training done, gradients left in .grad, in eval
    mode, and its Adam optimizer part-way through: everything lr_find must put back."""
    model = _mlp(3, nn.BatchNorm1d(64), nn.Dropout(0.2, rng=7))
    optimizer = Adam(model.parameters(), lr=1e-3)
    x, y = _digits()
    for start in range(0, 320, 64):
        loss = nn.functional.cross_entropy(model(Tensor(x[start:start + 64])),
                                           Tensor(y[start:start + 64]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model, optimizer, (x, y)


def _snapshot(model, optimizer):
    return (
        _bytes(model.state_dict().values()),
        [None if p._grad is None else p._grad.tobytes() for p in model.parameters()],
        model.rng_state(),
        model.training,
        [m.training for m in model.modules()],
        _optimizer_snapshot(optimizer),
    )


def test_model_and_optimizer_are_restored_bitwise():
    model, optimizer, data = _trained_model_with_state()
    before = _snapshot(model, optimizer)
    result = lr_find(model, nn.CrossEntropyLoss(), data, optimizer=optimizer, num_steps=60,
                     end_lr=100.0, progress=False)
    assert len(result.lrs) > 10
    assert _snapshot(model, optimizer) == before
    # and the optimizer still works from where it was: one more step moves the weights
    weights = _bytes(model.state_dict().values())
    x, y = data
    loss = nn.functional.cross_entropy(model(Tensor(x[:64])), Tensor(y[:64]))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert _bytes(model.state_dict().values()) != weights


def test_restored_also_when_the_sweep_raises():
    model, optimizer, data = _trained_model_with_state()
    before = _snapshot(model, optimizer)
    calls = []

    def failing_loss(output, target):
        calls.append(1)
        if len(calls) == 12:
            raise RuntimeError("the loss broke")
        return nn.functional.cross_entropy(output, target)

    with pytest.raises(RuntimeError, match="the loss broke"):
        lr_find(model, failing_loss, data, optimizer=optimizer, num_steps=40, progress=False)
    assert _snapshot(model, optimizer) == before


def test_a_fresh_optimizer_leaves_the_weights_and_gradients_as_they_were():
    model, loss_fn, data = _setup()
    before = _bytes(model.state_dict().values())
    lr_find(model, loss_fn, data, num_steps=40, progress=False)
    assert _bytes(model.state_dict().values()) == before
    assert all(p._grad is None for p in model.parameters())


# ---- progress bar -----------------------------------------------------------------------------
def test_progress_bar_and_quiet(capsys):
    model, loss_fn, data = _setup()
    lr_find(model, loss_fn, data, num_steps=20, progress=True)
    assert "lr_find" in capsys.readouterr().err
    lr_find(model, loss_fn, data, num_steps=20, progress=False)
    assert capsys.readouterr().err == ""


# ---- the plot ---------------------------------------------------------------------------------
def _diverged_result() -> LRFindResult:
    """The known curve up to lr 0.3, then a blow-up to 40 (the step that stopped the sweep)."""
    x = _X[: np.searchsorted(_X, np.log10(0.3), side="right")]
    losses = _known_curve(x)
    losses[-1] = 40.0
    lrs = list(10**x)
    suggestions = suggest_lrs(lrs, losses)
    return LRFindResult(lrs=lrs, losses=list(losses), suggested_lr=suggestions["valley"],
                        raw_losses=list(losses + 0.3), stopped_early=True,
                        suggestions=suggestions, method="valley", stop_reason="diverged")


def test_plot_is_clipped_to_the_useful_range_with_the_suggestions_marked():
    from gradwise.viz.plots import lr_find_figure

    result = _diverged_result()
    axis = lr_find_figure(result).axes[0]
    low, high = axis.get_ylim()
    # the floor is 0.5, the starting level 2.0: 10% of that span on each side, not up to 40
    assert low == pytest.approx(0.5 - 0.15) and high == pytest.approx(2.0 + 0.15)
    assert axis.get_xscale() == "log"
    assert axis.get_xlim() == pytest.approx((result.lrs[0], result.lrs[-1]))
    labels = axis.get_legend_handles_labels()[1]
    for method in SUGGESTION_METHODS:
        label = next(text for text in labels if text.startswith(method))
        assert f"{result.suggestions[method]:.2g}" in label
    assert sum("(suggested)" in text for text in labels) == 1
    # each marker sits on the smoothed curve, inside the visible range
    for line in axis.get_lines():
        if line.get_marker() in ("o", "s", "^"):
            (lr,), (loss,) = line.get_data()
            assert low < loss < high and result.lrs[0] <= lr <= result.lrs[-1]


def test_plot_of_a_curve_that_never_fell():
    from gradwise.viz.plots import lr_find_figure

    lrs = list(10 ** np.linspace(-5, 0, 30))
    losses = list(np.linspace(2.0, 2.6, 30))
    result = LRFindResult(lrs=lrs, losses=losses, suggested_lr=None,
                          suggestions=dict.fromkeys(SUGGESTION_METHODS))
    axis = lr_find_figure(result).axes[0]
    low, high = axis.get_ylim()
    # the whole rise is shown: 2.0 to 2.6 with 10% margins
    assert low == pytest.approx(2.0 - 0.06) and high == pytest.approx(2.6 + 0.06)
    with pytest.raises(ValueError, match="took no steps"):
        lr_find_figure(LRFindResult(lrs=[], losses=[], suggested_lr=None))


# ---- arguments --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"start_lr": 1.0, "end_lr": 0.1}, ValueError, "start_lr < end_lr"),
        ({"end_lr": math.inf}, ValueError, "start_lr < end_lr"),
        ({"num_steps": 1}, ValueError, "num_steps must be an int >= 2"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive int"),
        ({"smooth": 1.0}, ValueError, r"smooth must be in \[0, 1\)"),
        ({"suggest": "best"}, ValueError, "suggest must be one of valley, steep, minimum"),
        ({"optimizer": object(), "optimizer_cls": SGD}, TypeError, "not both"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    model, loss_fn, data = _setup()
    with pytest.raises(error, match=message):
        lr_find(model, loss_fn, data, progress=False, **kwargs)


def test_bad_data():
    model, loss_fn, (x, y) = _setup()
    with pytest.raises(ValueError, match="x has 1438 samples but y has 10"):
        lr_find(model, loss_fn, (x, y[:10]), progress=False)
    with pytest.raises(TypeError, match="data must be"):
        lr_find(model, loss_fn, 42, progress=False)


# ---- the command ------------------------------------------------------------------------------
def test_cli_options(capsys, tmp_path, monkeypatch):
    from gradwise.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(["lr-find", "spiral", "--start-lr", "1e-5", "--end-lr", "1", "--num-steps", "60",
                 "--suggest", "minimum", "--quiet", "--out", "lr.png"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Swept 60 steps of adam from lr 1e-05 to 1" in out
    for method in SUGGESTION_METHODS:
        assert f"  {method}" in out
    assert "minimum" in out.split("<- suggested")[0].splitlines()[-1]
    assert "(minimum; the recipe uses 0.01)" in out
    assert (tmp_path / "lr.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--start-lr", "0"], "--start-lr must be > 0, got 0"),
        (["--start-lr", "1e-3", "--end-lr", "1e-4"],
         r"--end-lr must be greater than --start-lr \(0.001\), got 0.0001"),
        (["--num-steps", "3"], "--num-steps must be >= 10, got 3"),
        (["--suggest", "best"], "invalid choice: 'best'"),
    ],
)
def test_cli_rejects_bad_options(capsys, tmp_path, monkeypatch, flags, message):
    from gradwise.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["lr-find", "spiral", "--quiet", *flags]) == 2
    assert __import__("re").search(message, capsys.readouterr().err)
    assert not (tmp_path / "runs").exists()


def test_cli_every_option_is_explained(capsys):
    from gradwise.cli import main

    assert main(["lr-find", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for option, words in [
        ("--start-lr LR", "the first learning rate of the sweep (default 1e-7)"),
        ("--end-lr LR", "the last learning rate of the sweep (default 10)"),
        ("--num-steps N", "training steps in the sweep, one batch each (default 200)"),
        ("--suggest {valley,steep,minimum}", "which rule gives the suggested rate"),
        ("--quiet", "no progress bar"),
        ("--batch-size N", "samples per sweep step"),
        ("--seed SEED", "seed for the weights"),
        ("--limit-train N", "sweep on N training samples only"),
        ("--data-dir DIR", "folder holding the data set's IDX files"),
    ]:
        assert f"{option} {words}" in text, option


def test_a_bump_before_the_descent_does_not_move_the_valley():
    """A bump above the starting level (one unlucky stretch of batches) is not a fall: the valley
    still runs from 10% of the fall to the minimum. (steep does move: the bump's sharp edge is
    the steepest fall of all, which is why steep is not the default.)"""
    bumped = _known_curve() + np.where((_X > -5.0) & (_X < -4.5), 0.3, 0.0)
    plain, moved = suggest_lrs(10**_X, _known_curve()), suggest_lrs(10**_X, bumped)
    assert moved["valley"] == plain["valley"] and moved["minimum"] == plain["minimum"]
    assert moved["steep"] == pytest.approx(10**-4.5, rel=0.13)


def test_repr_is_one_line_with_the_suggestions():
    """print(result) showed ~600 floats (review item 5); now the range and the suggestions."""
    lrs = list(np.geomspace(1e-4, 1.0, 200))
    losses = [2.0 - 1.5 / (1 + math.exp(-(math.log10(lr) + 2) * 3)) for lr in lrs]
    result = LRFindResult(lrs, losses, 0.01, suggestions={"valley": 0.01, "steep": 0.02,
                                                          "minimum": None})
    text = repr(result)
    assert "\n" not in text and len(text) < 200
    assert text == ("LRFindResult(suggested_lr=0.01 (valley), 200 steps, lr 0.0001 to 1, "
                    "suggestions: valley=0.01, steep=0.02, minimum=None)")


def test_cli_says_which_optimizer_it_swept_and_takes_optimizer(capsys, tmp_path, monkeypatch):
    from gradwise.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(["lr-find", "spiral", "--optimizer", "sgd", "--num-steps", "60", "--quiet",
                 "--out", "lr.png"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert re.search(r"Swept \d+ steps of sgd from lr", out)
    assert "Suggested learning rate for spiral with sgd:" in out
    assert "try: gradwise train spiral --optimizer sgd --lr" in out


def test_spirals_momentum_suggestion_is_not_at_the_edge_of_divergence():
    """Review item 5: on README's spirals 2-64-64-2 MLP with the default SGD momentum 0.9, the
    old suggestion (1.89, the smoothed minimum right before the blow-up) collapsed to chance. The
    suggestion must train well, and clearly better than that edge rate."""
    from gradwise.data import make_spirals, train_val_split
    from gradwise.nn import functional as F
    from gradwise.train import Trainer

    x, y = make_spirals(n_samples=1000, seed=0)
    (xt, yt), (xv, yv) = train_val_split(x, y, val_fraction=0.2, seed=0)

    def net():
        return nn.Sequential(nn.Linear(2, 64, rng=0), nn.ReLU(), nn.Linear(64, 64, rng=1),
                             nn.ReLU(), nn.Linear(64, 2, rng=2))

    result = lr_find(net(), F.cross_entropy, (xt, yt), progress=False, seed=0)
    assert result.suggested_lr is not None and result.suggested_lr < 1.0

    def trained(lr):
        model = net()
        trainer = Trainer(model, nn.CrossEntropyLoss(), SGD(model.parameters(), lr=lr,
                                                             momentum=0.9), progress=False)
        return trainer.fit((xt, yt), val_data=(xv, yv), epochs=30, batch_size=32,
                           )["val_accuracy"][-1]

    good, edge = trained(result.suggested_lr), trained(1.89)
    assert good > 0.75 and good > edge + 0.15, (result.suggested_lr, good, edge)
