"""The doctor's catalogue: training runs that fail on purpose, and healthy ones.

Each :class:`Scenario` trains a small model (an MLP, a CNN or a normalised net; SGD, momentum,
Adam, RMSprop or Adagrad; cross-entropy, BCE or MSE; digits, spirals, moons, blobs or synthetic
regression), through the real Trainer or a hand-written loop, with a Doctor that examines every
step. Its ``verify`` checks, without the doctor, that the failure really happened (it measures
the dead fraction, the gradient ratio, the loss against chance...). ``expected`` names the
findings the doctor must give; a healthy run expects none.

A run is recorded once; :func:`findings_at` replays its statistics at any sampling interval
(:func:`gradwise.doctor.subsample`), which equals a live run at that interval (tested).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

import gradwise as gw
from gradwise import nn
from gradwise.data import load_dataset, make_blobs, make_moons, make_spirals
from gradwise.doctor import Doctor, DoctorConfig, diagnose, subsample
from gradwise.doctor.config import auto_interval
from gradwise.nn import functional as F
from gradwise.optim import SGD, Adagrad, Adam, RMSprop
from gradwise.train import Callback, Trainer

#: the sampling rates every verdict must hold at ("auto" is the default interval)
RATES: tuple[int | str, ...] = (1, 16, 32, 64, "auto")


# ---- data ---------------------------------------------------------------------------------------
@cache
def digits(small: bool = False) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, ...]]:
    """The real digits (scikit-learn's, 1438 train and 359 test, MNIST-shaped), scaled to [0, 1]
    and flattened; ``small`` undoes the fallback's 3x upsampling: 8x8 = 64 features."""
    data = load_dataset("digits", fallback=True, progress=False)
    x_train, x_test = data.x_train, data.x_test
    if small:
        x_train, x_test = x_train[:, 2:26:3, 2:26:3], x_test[:, 2:26:3, 2:26:3]
    x_train = x_train.reshape(len(x_train), -1).astype(np.float32) / 255.0
    x_test = x_test.reshape(len(x_test), -1).astype(np.float32) / 255.0
    return (x_train, data.y_train), (x_test, data.y_test)


def digit_images() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The 8x8 digits as images: shape (N, 1, 8, 8)."""
    (x, y), (xt, yt) = digits(small=True)
    return (x.reshape(-1, 1, 8, 8), y), (xt.reshape(-1, 1, 8, 8), yt)


def flat_digits() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The 8x8 digits as 64 features."""
    return digits(small=True)


def regression(n: int = 1200, noise: float = 0.1, seed: int = 0, signal: bool = True):
    """y = w.x + noise over 10 standard normal features (or pure noise with signal=False)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 10)).astype(np.float32)
    w = rng.normal(size=(10, 1)).astype(np.float32)
    y = (x @ w if signal else rng.normal(size=(n, 1)) * 2.0) + noise * rng.normal(size=(n, 1))
    y = y.astype(np.float32)
    split = n * 4 // 5
    return (x[:split], y[:split]), (x[split:], y[split:])


def noisy_binary(n: int = 1200, flip: float = 0.2, seed: int = 0):
    """Two Gaussian classes in 2-D, well apart, with a fraction ``flip`` of labels flipped."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = (rng.normal(size=(n, 2)) + 2.0 * (2 * y[:, None] - 1)).astype(np.float32)
    flipped = np.where(rng.random(n) < flip, 1 - y, y)
    target = flipped[:, None].astype(np.float32)
    return (x[:960], target[:960]), (x[960:], target[960:])


def split(x: np.ndarray, y: np.ndarray, fraction: float = 0.8):
    n = int(len(x) * fraction)
    return (x[:n], y[:n]), (x[n:], y[n:])


# ---- models -------------------------------------------------------------------------------------
def mlp(sizes: list[int], activation: type = nn.ReLU, seed: int = 0, norm: type | None = None,
        ) -> nn.Sequential:
    layers: list[Any] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1], rng=seed + i))
        if i < len(sizes) - 2:
            if norm is not None:
                layers.append(norm(sizes[i + 1]))
            layers.append(activation())
    return nn.Sequential(*layers)


def cnn(seed: int = 0) -> nn.Sequential:
    """Two conv blocks on (N, 1, 8, 8) digits: conv-relu-pool, conv-relu-pool, linear."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, rng=seed), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, rng=seed + 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 2 * 2, 10, rng=seed + 2),
    )


class FunctionalNet(nn.Module):
    """A custom forward with functional activations (no activation modules to hook)."""

    def __init__(self, sizes: list[int], activation: str = "relu", norm: bool = False,
                 seed: int = 0) -> None:
        super().__init__()
        self.hidden = nn.Linear(sizes[0], sizes[1], rng=seed)
        self.norm = nn.LayerNorm(sizes[1]) if norm else None
        self.middle = nn.Linear(sizes[1], sizes[2], rng=seed + 1)
        self.out = nn.Linear(sizes[2], sizes[3], rng=seed + 2)
        self.activation = activation

    def act(self, x: Any) -> Any:
        if self.activation == "relu":
            return F.relu(x)
        if self.activation == "gelu":
            return F.gelu(x)
        return x.tanh()

    def forward(self, x: Any) -> Any:
        h = self.hidden(x)
        if self.norm is not None:
            h = self.norm(h)
        return self.out(self.act(self.middle(self.act(h))))


def set_normal(model: nn.Module, std: float, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for param in model.parameters():
        if param.ndim >= 2:
            param._data[...] = rng.normal(0.0, std, param.shape)


def set_bias(model: nn.Module, names: tuple[str, ...], value: float) -> None:
    for name, param in model.named_parameters():
        if name in names:
            param._data[...] = value


# ---- running ------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """A finished run: its doctor (examining every step), model, losses and data."""

    doctor: Doctor
    model: nn.Module
    loss_fn: Any
    losses: list[float]
    history: Any
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray] | None
    first_state: dict[str, np.ndarray] = field(default_factory=dict)


class _Losses(Callback):
    """Records every batch loss (independently of the doctor) and runs a per-step action."""

    def __init__(self, after_step: Callable[[Any, int], None] | None = None) -> None:
        self.losses: list[float] = []
        self.after_step = after_step

    def on_batch_end(self, step: int, logs: dict[str, Any] | None = None) -> None:
        self.losses.append(float((logs or {}).get("loss", math.nan)))

    def on_after_step(self, step: int) -> None:
        if self.after_step is not None:
            self.after_step(self.trainer, step)


def fit(model: nn.Module, loss_fn: Any, optimizer: Any, train, val=None, epochs: int = 4,
        batch_size: int = 64, after_step=None, config: DoctorConfig | None = None,
        metrics: Any = None) -> Outcome:
    """Train with the real Trainer and a Doctor examining every step (unless ``config`` says)."""
    doctor = Doctor(config=config or DoctorConfig(interval=1))
    losses = _Losses(after_step)
    first = {k: np.array(v) for k, v in model.state_dict().items()}
    kwargs = {} if metrics is None else {"metrics": metrics}
    trainer = Trainer(model, loss_fn, optimizer, progress=False, doctor=doctor,
                      callbacks=[losses], **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # runs that diverge stop on a NaN loss, with a warning
        history = trainer.fit(train, val, epochs=epochs, batch_size=batch_size)
    return Outcome(doctor, model, loss_fn, losses.losses, history, train, val, first)


def loop(model: nn.Module, loss_fn: Any, optimizer: Any, train, val=None, epochs: int = 4,
         batch_size: int = 64, zero_grad: bool = True, config: DoctorConfig | None = None,
         ) -> Outcome:
    """A hand-written loop with ``doctor.step(loss)``: no Trainer involved."""
    doctor = Doctor(model, optimizer, config=config or DoctorConfig(interval=1))
    first = {k: np.array(v) for k, v in model.state_dict().items()}
    x, y = train
    order_rng = np.random.default_rng(0)
    losses: list[float] = []
    for _ in range(epochs):
        order = order_rng.permutation(len(x))
        model.train()
        for begin in range(0, len(x), batch_size):
            batch = order[begin:begin + batch_size]
            loss = loss_fn(model(gw.tensor(x[batch])), gw.tensor(y[batch]))
            if zero_grad:
                optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            doctor.step(loss)
            losses.append(loss.item())
        val_loss = None
        if val is not None:
            model.eval()
            with gw.no_grad():
                val_loss = loss_fn(model(gw.tensor(val[0])), gw.tensor(val[1])).item()
        doctor.epoch_end(val_loss=val_loss)
    doctor.close()
    doctor.report()
    return Outcome(doctor, model, loss_fn, losses, None, train, val, first)


def findings_at(outcome: Outcome, rate: int | str) -> list[str]:
    """The finding names the doctor gives on this run when sampling at ``rate``."""
    doctor = outcome.doctor
    config = doctor.config
    interval = auto_interval(doctor._collector.n_parameters) if rate == "auto" else int(rate)
    stats = subsample(doctor.stats, lambda step: config.sampled(step, interval))
    found = diagnose(stats, config, lr=doctor._current_lr())
    return sorted({finding.name for finding in found})


# ---- independent measurements (no doctor involved) ----------------------------------------------
def forward_relu_outputs(model: nn.Module, x: np.ndarray) -> dict[str, np.ndarray]:
    """The output of every nn.ReLU module on ``x`` (eval mode, no grad), by module name."""
    outputs: dict[str, np.ndarray] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, nn.ReLU):
            handles.append(module.register_forward_hook(
                lambda m, i, o, name=name: outputs.__setitem__(name, np.array(o._data))))
    model.eval()
    with gw.no_grad():
        model(gw.tensor(x))
    for handle in handles:
        handle.remove()
    return outputs


def never_fired(output: np.ndarray) -> float:
    """Fraction of units (features or channels) never positive on any row."""
    axes = (0, *range(2, output.ndim))
    return float(1.0 - (output.max(axis=axes) > 0).mean())


def gradient_norms(model: nn.Module, loss_fn: Any, x: np.ndarray, y: np.ndarray,
                   ) -> dict[str, float]:
    """||dL/dw|| of every parameter on one batch (the model's weights are not changed)."""
    model.train()
    for param in model.parameters():
        param._grad = None
    loss = loss_fn(model(gw.tensor(x)), gw.tensor(y))
    loss.backward()
    norms = {name: float(np.linalg.norm(p._grad)) if p._grad is not None else 0.0
             for name, p in model.named_parameters()}
    for param in model.parameters():
        param._grad = None
    return norms


def mean_loss(model: nn.Module, loss_fn: Any, data) -> float:
    model.eval()
    with gw.no_grad():
        return float(loss_fn(model(gw.tensor(data[0])), gw.tensor(data[1])).item())


def accuracy(model: nn.Module, data) -> float:
    model.eval()
    with gw.no_grad():
        logits = model(gw.tensor(data[0]))._data
    return float((logits.argmax(axis=1) == data[1]).mean())


def relative_change(outcome: Outcome) -> float:
    """The largest ||w_end - w_start|| / ||w_start|| over the weight matrices."""
    state = outcome.model.state_dict()
    return max(float(np.linalg.norm(np.asarray(state[k]) - v) / np.linalg.norm(v))
               for k, v in outcome.first_state.items() if v.ndim >= 2)


def level(values: list[float], part: slice) -> float:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(np.median(finite[part]))


# ---- the scenarios ------------------------------------------------------------------------------
@dataclass
class Scenario:
    """One catalogue entry.

    ``expected``: the findings the doctor must give (none for a healthy run). ``allowed``:
    further findings that are also true of the run (a learning rate of 10 is too high *and*
    makes NaNs); anything else the doctor says counts as a false alarm.
    """

    name: str
    expected: tuple[str, ...]
    run: Callable[[], Outcome]
    verify: Callable[[Outcome], None]
    what: str
    allowed: tuple[str, ...] = ()


CATALOGUE: list[Scenario] = []


def scenario(expected: tuple[str, ...], what: str, allowed: tuple[str, ...] = ()):
    def register(pair):
        run, verify = pair
        CATALOGUE.append(Scenario(run.__name__, expected, run, verify, what, allowed))
        return pair
    return register


def _ce() -> nn.CrossEntropyLoss:
    return nn.CrossEntropyLoss()


# -- vanishing --------------------------------------------------------------------------------
def vanishing_sigmoid():
    model = mlp([64] + [32] * 9 + [10], activation=nn.Sigmoid)
    set_normal(model, 0.05)
    train, val = flat_digits()
    return fit(model, _ce(), SGD(model.parameters(), lr=0.1), train, val, epochs=4)


def _verify_vanishing(out: Outcome) -> None:
    x, y = out.train
    norms = gradient_norms(out.model, out.loss_fn, x[:256], y[:256])
    weights = [k for k in norms if k.endswith("weight")]
    assert norms[weights[0]] / norms[weights[-1]] < 1e-4, norms


# a net whose early layers do not learn is also not learning: plateau is true as well
scenario(("vanishing_gradients",), "10 sigmoid layers, N(0, 0.05) weights, SGD, digits",
         allowed=("plateau",))(
    (vanishing_sigmoid, _verify_vanishing))


def vanishing_tanh_adam():
    model = mlp([64] + [32] * 11 + [10], activation=nn.Tanh, seed=5)
    set_normal(model, 0.03, seed=5)
    train, val = flat_digits()
    return fit(model, _ce(), Adam(model.parameters(), lr=1e-4), train, val, epochs=4)


scenario(("vanishing_gradients",), "12 tanh layers, N(0, 0.03) weights, Adam, digits",
         allowed=("plateau",))(
    (vanishing_tanh_adam, _verify_vanishing))


# -- exploding / non-finite ---------------------------------------------------------------------
def exploding_deep_relu():
    model = mlp([64] + [64] * 6 + [10])
    set_normal(model, 1.0)
    train, _ = flat_digits()
    return fit(model, _ce(), SGD(model.parameters(), lr=10.0), train, epochs=2)


def _verify_nan(out: Outcome) -> None:
    assert any(not math.isfinite(v) for v in out.losses), out.losses[:10]


scenario(("exploding_gradients", "non_finite_values"),
         "7 ReLU layers, N(0, 1) weights (40x too large), SGD lr 10, digits",
         allowed=("lr_too_high", "dead_relus"))(
    (exploding_deep_relu, _verify_nan))


def momentum_mse_diverges():
    train, val = regression()
    model = mlp([10, 64, 1], seed=2)
    return fit(model, nn.MSELoss(), SGD(model.parameters(), lr=0.5, momentum=0.9), train, val,
               epochs=4, metrics=())


scenario(("lr_too_high", "non_finite_values"), "MLP regression, MSE, SGD momentum lr 0.5",
         allowed=("exploding_gradients",))(
    (momentum_mse_diverges, _verify_nan))


# -- dead ReLUs -----------------------------------------------------------------------------------
def dead_bias_adam():
    model = mlp([64, 128, 64, 10])
    set_bias(model, ("0.bias", "2.bias"), -5.0)
    train, val = flat_digits()
    return fit(model, _ce(), Adam(model.parameters(), lr=1e-3), train, val, epochs=4)


def _verify_dead(threshold: float = 0.5):
    def verify(out: Outcome) -> None:
        outputs = forward_relu_outputs(out.model, out.train[0])
        worst = max(never_fired(o) for o in outputs.values())
        assert worst > threshold, {k: never_fired(o) for k, o in outputs.items()}
    return verify


scenario(("dead_relus",), "MLP, hidden biases at -5, Adam, digits")(
    (dead_bias_adam, _verify_dead()))


def dead_after_spike():
    """One SGD step at lr 200, then lr 0.01 (the issue's case 2, at a rate that kills here)."""
    model = mlp([64, 128, 128, 10], seed=7)
    train, val = flat_digits()

    def lower_lr(trainer, step):
        trainer.optimizer.param_groups[0]["lr"] = 0.01

    return fit(model, _ce(), SGD(model.parameters(), lr=200.0), train, val, epochs=5,
               after_step=lower_lr)


# that one step *was* too large: lr_too_high (a warm-up step changed a weight by > 1.5x) is true
scenario(("dead_relus",), "MLP, one SGD step at lr 200 then lr 0.01, digits",
         allowed=("lr_too_high",))(
    (dead_after_spike, _verify_dead()))


def cnn_dead_bias():
    model = cnn(seed=3)
    set_bias(model, ("3.bias",), -20.0)
    train, val = digit_images()
    return fit(model, _ce(), SGD(model.parameters(), lr=0.05, momentum=0.9), train, val,
               epochs=3)


scenario(("dead_relus",), "CNN, second conv's biases at -20, SGD momentum, digits")(
    (cnn_dead_bias, _verify_dead()))


def functional_dead_relu():
    model = FunctionalNet([64, 64, 64, 10], "relu", seed=4)
    set_bias(model, ("middle.bias",), -6.0)
    train, val = flat_digits()
    return loop(model, F.cross_entropy, Adam(model.parameters(), lr=1e-3), train, val, epochs=4)


def _verify_functional_dead(out: Outcome) -> None:
    model = out.model
    with gw.no_grad():
        h = F.relu(model.hidden(gw.tensor(out.train[0])))
        middle = F.relu(model.middle(h))._data
    assert never_fired(middle) > 0.5


scenario(("dead_relus",), "custom forward with F.relu, biases at -6, hand-written loop, Adam")(
    (functional_dead_relu, _verify_functional_dead))


# -- learning rate too high -----------------------------------------------------------------------
def cnn_collapse():
    """A two-block CNN at SGD lr 2.0 (the issue's case 1): collapses to chance."""
    model = cnn()
    train, val = digit_images()
    return fit(model, _ce(), SGD(model.parameters(), lr=2.0), train, val, epochs=4)


def _verify_collapse(out: Outcome) -> None:
    x, y = out.train
    end = level(out.losses, slice(-20, None))
    assert abs(end - math.log(10)) < 0.05 * math.log(10), end
    norms = gradient_norms(out.model, out.loss_fn, x[:256], y[:256])
    assert norms["0.weight"] == 0.0 and norms["3.weight"] == 0.0, norms


scenario(("lr_too_high", "dead_relus"), "2-block CNN, SGD lr 2.0, digits: collapse to ln 10")(
    (cnn_collapse, _verify_collapse))


def adam_lr_too_high():
    model = mlp([64, 128, 64, 10])
    train, val = flat_digits()
    return fit(model, _ce(), Adam(model.parameters(), lr=0.5), train, val, epochs=4)


def _verify_worse_than_chance_level(out: Outcome) -> None:
    # a healthy lr reaches > 90% here; too high an lr stays far below
    assert accuracy(out.model, out.val) < 0.6, accuracy(out.model, out.val)


scenario(("lr_too_high",), "MLP, Adam lr 0.5, digits", allowed=("dead_relus",))(
    (adam_lr_too_high, _verify_worse_than_chance_level))


def rmsprop_lr_too_high():
    model = mlp([64, 128, 64, 10])
    train, val = flat_digits()
    return fit(model, _ce(), RMSprop(model.parameters(), lr=0.1), train, val, epochs=4)


scenario(("lr_too_high",), "MLP, RMSprop lr 0.1, digits",
         allowed=("dead_relus", "exploding_gradients"))(
    (rmsprop_lr_too_high, _verify_worse_than_chance_level))


def bn_adam_lr_too_high():
    x, y = make_blobs(1200, noise=1.0, n_classes=4, seed=0)
    train, val = split(x, y)
    model = mlp([2, 64, 64, 4], norm=nn.BatchNorm1d, seed=2)
    return fit(model, _ce(), Adam(model.parameters(), lr=2.0), train, val, epochs=6)


def _verify_update_ratio_huge(out: Outcome) -> None:
    # the weights moved by many times their initial size
    assert relative_change(out) > 10.0, relative_change(out)


scenario(("lr_too_high",), "MLP with BatchNorm1d, Adam lr 2.0, blobs", allowed=("dead_relus",))(
    (bn_adam_lr_too_high, _verify_update_ratio_huge))


def forgot_zero_grad():
    """A hand-written loop that never zeroes the gradients (the issue's case 5)."""
    model = mlp([64, 64, 10], seed=3)
    train, val = flat_digits()
    return loop(model, F.cross_entropy, SGD(model.parameters(), lr=0.5), train, val, epochs=3,
                zero_grad=False)


def _verify_climbs(out: Outcome) -> None:
    start, end = level(out.losses, slice(0, 10)), level(out.losses, slice(-10, None))
    assert end > 1.5 * start and end > math.log(10), (start, end)  # worse than guessing


scenario(("divergence",), "hand-written loop without zero_grad, SGD lr 0.5, digits: loss climbs",
         allowed=("dead_relus", "lr_too_high"))(
    (forgot_zero_grad, _verify_climbs))



def forgot_zero_grad_slow():
    """The newcomer's case: SGD lr 0.05, no zero_grad. The loss first falls well below chance,
    then the accumulated gradients push it back up (to several times its lowest level)."""
    model = mlp([64, 64, 10], seed=3)
    train, val = flat_digits()
    return loop(model, F.cross_entropy, SGD(model.parameters(), lr=0.05), train, val, epochs=4,
                zero_grad=False)


def _verify_learned_then_climbed(out: Outcome) -> None:
    chunk = max(3, len(out.losses) // 10)
    levels = [level(out.losses, slice(i, i + chunk))
              for i in range(0, len(out.losses) - chunk + 1, chunk)]
    lowest, end = min(levels), levels[-1]
    assert lowest < 0.5 * math.log(10) and end > 2.0 * lowest, (lowest, end)  # learned, lost it
    # the gradient the loop left in .grad is the sum of every step's: far above one batch's
    accumulated = max(float(np.linalg.norm(p._grad)) for p in out.model.parameters())
    x, y = out.train
    fresh = max(gradient_norms(out.model, out.loss_fn, x[:64], y[:64]).values())
    assert accumulated > 3 * fresh, (accumulated, fresh)


scenario(("divergence",), "hand loop without zero_grad, SGD lr 0.05, digits: learns, then climbs",
         )(
    (forgot_zero_grad_slow, _verify_learned_then_climbed))


def huge_init_sgd():
    """Weights N(0, 5) (the default init's std is ~0.07 here): the loss starts in the hundreds
    and, with SGD lr 0.01, stays far above the loss of guessing the class priors."""
    model = mlp([64, 64, 10], seed=4)
    set_normal(model, 5.0)
    train, val = flat_digits()
    return fit(model, _ce(), SGD(model.parameters(), lr=0.01), train, val, epochs=3)


def _verify_far_above_chance(out: Outcome) -> None:
    end = mean_loss(out.model, out.loss_fn, out.val)
    assert end > 5 * math.log(10), end  # worse than guessing, after training


scenario(("worse_than_guessing",), "MLP with N(0, 5) weights, SGD lr 0.01, digits")(
    (huge_init_sgd, _verify_far_above_chance))


def zero_init_mlp():
    """Every weight and bias 0: no hidden unit ever gets a gradient; the loss stays at ln 10."""
    model = mlp([64, 32, 10], seed=5)
    for param in model.parameters():
        param._data[...] = 0.0
    train, val = flat_digits()
    return fit(model, _ce(), SGD(model.parameters(), lr=0.1), train, val, epochs=3)


def _verify_zero_weights_stay(out: Outcome) -> None:
    state = out.model.state_dict()
    assert float(np.abs(np.asarray(state["0.weight"])).max()) == 0.0  # never moved
    x, y = out.train
    norms = gradient_norms(out.model, out.loss_fn, x[:64], y[:64])
    assert norms["0.weight"] == 0.0 and norms["2.weight"] == 0.0, norms


scenario(("zero_init",), "MLP with every weight and bias 0, SGD, digits")(
    (zero_init_mlp, _verify_zero_weights_stay))

# -- learning rate too low ------------------------------------------------------------------------
def _verify_barely_moved(out: Outcome) -> None:
    assert relative_change(out) < 1e-3, relative_change(out)


def sgd_lr_too_low():
    model = mlp([64, 128, 64, 10])
    train, val = flat_digits()
    return fit(model, _ce(), SGD(model.parameters(), lr=1e-6), train, val, epochs=4)


scenario(("lr_too_low",), "MLP, SGD lr 1e-6, digits")((sgd_lr_too_low, _verify_barely_moved))


def adagrad_lr_too_low():
    x, y = make_blobs(1000, noise=0.5, n_classes=3, seed=1)
    train, val = split(x, y)
    model = mlp([2, 32, 32, 3], seed=4)
    return fit(model, _ce(), Adagrad(model.parameters(), lr=1e-6), train, val, epochs=6)


scenario(("lr_too_low",), "MLP, Adagrad lr 1e-6, blobs")(
    (adagrad_lr_too_low, _verify_barely_moved))


def mse_lr_too_low():
    train, val = regression(seed=3)
    model = mlp([10, 32, 1], seed=5)
    return fit(model, nn.MSELoss(), SGD(model.parameters(), lr=1e-7), train, val, epochs=5,
               metrics=())


scenario(("lr_too_low",), "MLP regression, MSE, SGD lr 1e-7")(
    (mse_lr_too_low, _verify_barely_moved))


def cnn_lr_too_low():
    model = cnn(seed=6)
    train, val = digit_images()
    return fit(model, _ce(), SGD(model.parameters(), lr=1e-6, momentum=0.9), train, val,
               epochs=3)


scenario(("lr_too_low",), "CNN, SGD momentum lr 1e-6, digits")(
    (cnn_lr_too_low, _verify_barely_moved))


def spirals_adam_lr_too_low():
    x, y = make_spirals(1000, noise=0.05, seed=1)
    train, val = split(x, y)
    model = mlp([2, 64, 64, 2], seed=6)
    return fit(model, _ce(), Adam(model.parameters(), lr=1e-7), train, val, epochs=8)


scenario(("lr_too_low",), "MLP, Adam lr 1e-7, spirals")(
    (spirals_adam_lr_too_low, _verify_barely_moved))



def sgd_learning_slowly():
    """SGD lr 1e-3 on a 3-layer digits MLP: the weights move ~6e-5 of their size per step, the
    loss is still at the class priors' level after 3 epochs. Not a plateau of a net that cannot
    learn: the same net at lr 0.1 learns (the newcomer's `--lr 3e-5` case)."""
    model = mlp([64, 64, 64, 10], seed=12)
    train, val = flat_digits()
    return fit(model, _ce(), SGD(model.parameters(), lr=1e-3), train, val, epochs=3)


def _verify_slow_but_learnable(out: Outcome) -> None:
    assert accuracy(out.model, out.val) < 0.3  # has not learned yet
    model = mlp([64, 64, 64, 10], seed=12)  # the same net, 100x the rate, same steps
    train, val = flat_digits()
    fast = fit(model, _ce(), SGD(model.parameters(), lr=0.1), train, val, epochs=3,
               config=DoctorConfig(interval=64))
    assert accuracy(fast.model, fast.val) > 0.5, accuracy(fast.model, fast.val)


scenario(("lr_too_low",), "3-layer MLP, SGD lr 1e-3 (update ratio ~6e-5), digits: learning slowly")(
    (sgd_learning_slowly, _verify_slow_but_learnable))

# -- saturation -----------------------------------------------------------------------------------
def _verify_saturated(kind: str):
    def verify(out: Outcome) -> None:
        model = out.model
        model.eval()
        seen = []
        for module in model.modules():
            if type(module).__name__ == kind:
                module.register_forward_hook(lambda m, i, o: seen.append(np.array(o._data)))
        with gw.no_grad():
            model(gw.tensor(out.train[0]))
        for module in model.modules():
            module._forward_hooks.clear()
        outside = [np.mean((a < 0.01) | (a > 0.99)) if kind == "Sigmoid"
                   else np.mean(np.abs(a) > 0.99) for a in seen]
        assert max(outside) > 0.5, outside
    return verify


def sigmoid_big_inputs():
    train, val = flat_digits()
    model = mlp([64, 128, 10], activation=nn.Sigmoid)
    return fit(model, _ce(), SGD(model.parameters(), lr=0.1), (train[0] * 50.0, train[1]),
               (val[0] * 50.0, val[1]), epochs=4)


scenario(("saturated_activations",), "sigmoid MLP, inputs 50x too large, SGD, digits")(
    (sigmoid_big_inputs, _verify_saturated("Sigmoid")))


def tanh_big_weights():
    train, val = flat_digits()
    model = mlp([64, 64, 64, 10], activation=nn.Tanh, seed=8)
    set_normal(model, 2.0, seed=8)
    return fit(model, _ce(), RMSprop(model.parameters(), lr=1e-3), train, val, epochs=4)


scenario(("saturated_activations",), "tanh MLP, N(0, 2) weights, RMSprop, digits",
         allowed=("worse_than_guessing",))(
    (tanh_big_weights, _verify_saturated("Tanh")))


def functional_tanh_saturated():
    train, val = flat_digits()
    model = FunctionalNet([64, 64, 64, 10], "tanh", seed=9)
    set_normal(model, 3.0, seed=9)
    return loop(model, F.cross_entropy, SGD(model.parameters(), lr=0.01), train, val, epochs=3)


def _verify_functional_tanh(out: Outcome) -> None:
    with gw.no_grad():
        h = out.model.hidden(gw.tensor(out.train[0])).tanh()._data
    assert np.mean(np.abs(h) > 0.99) > 0.5


scenario(("saturated_activations",), "custom forward with x.tanh(), N(0, 3) weights, loop",
         allowed=("worse_than_guessing",))(
    (functional_tanh_saturated, _verify_functional_tanh))


# -- overfitting ----------------------------------------------------------------------------------
def _verify_overfit(out: Outcome) -> None:
    epochs = out.doctor.stats.epochs  # the epoch records are the Trainer's/loop's own numbers
    val = [e["val_loss"] for e in epochs]
    train = [e["loss"] for e in epochs]
    best = int(np.argmin(val))
    assert best <= len(val) - 4, val
    assert min(val[-3:]) > 1.1 * val[best] and train[-1] < train[best], (val, train)


def overfit_mlp():
    (x, y), val = flat_digits()
    model = mlp([64, 512, 512, 10])
    return fit(model, _ce(), Adam(model.parameters(), lr=1e-2), (x[:200], y[:200]), val,
               epochs=30, batch_size=32)


scenario(("overfitting",), "64-512-512-10 MLP on 200 digits, Adam lr 1e-2, 30 epochs")(
    (overfit_mlp, _verify_overfit))


def overfit_moons_loop():
    x, y = make_moons(400, noise=0.35, seed=3)
    model = mlp([2, 256, 256, 2], seed=11)
    return loop(model, F.cross_entropy, Adam(model.parameters(), lr=1e-2), (x[:40], y[:40]),
                (x[40:], y[40:]), epochs=80, batch_size=20)


scenario(("overfitting",), "2-256-256-2 MLP on 40 noisy moons, Adam, 80 epochs, hand loop")(
    (overfit_moons_loop, _verify_overfit))


# -- plateau (not learning) -----------------------------------------------------------------------
def plateau_noise_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 20)).astype(np.float32)
    y = rng.integers(0, 2, 1200)
    train, val = split(x, y)
    model = mlp([20, 16, 2])
    return fit(model, _ce(), SGD(model.parameters(), lr=0.05), train, val, epochs=5)


def _verify_chance(out: Outcome) -> None:
    assert 0.4 < accuracy(out.model, out.val) < 0.6


scenario(("plateau",), "MLP on labels that are pure noise, SGD, cross-entropy")(
    (plateau_noise_labels, _verify_chance))


def bce_noise_plateau():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1200, 8)).astype(np.float32)
    y = rng.integers(0, 2, (1200, 1)).astype(np.float32)
    train, val = split(x, y)
    model = mlp([8, 16, 1], seed=2)
    return fit(model, nn.BCEWithLogitsLoss(), Adam(model.parameters(), lr=1e-3), train, val,
               epochs=5, metrics=())


def _verify_bce_chance(out: Outcome) -> None:
    model = out.model
    with gw.no_grad():
        logits = model(gw.tensor(out.val[0]))._data
    assert 0.4 < float(((logits > 0) == (out.val[1] > 0.5)).mean()) < 0.6


scenario(("plateau",), "MLP on noise labels, BCE with logits, Adam")(
    (bce_noise_plateau, _verify_bce_chance))


def mse_noise_plateau():
    train, val = regression(signal=False, seed=6)
    model = mlp([10, 32, 1], seed=3)
    return fit(model, nn.MSELoss(), SGD(model.parameters(), lr=0.01), train, val, epochs=5,
               metrics=())


def _verify_no_better_than_mean(out: Outcome) -> None:
    val_x, val_y = out.val
    assert mean_loss(out.model, out.loss_fn, out.val) > 0.97 * float(val_y.var())


scenario(("plateau",), "MLP regression on targets that are pure noise, MSE, SGD")(
    (mse_noise_plateau, _verify_no_better_than_mean))


# -- healthy runs ---------------------------------------------------------------------------------
def _verify_learned(min_accuracy: float):
    def verify(out: Outcome) -> None:
        assert accuracy(out.model, out.val) >= min_accuracy, accuracy(out.model, out.val)
    return verify


def _verify_regression(max_ratio: float):
    def verify(out: Outcome) -> None:
        assert mean_loss(out.model, out.loss_fn, out.val) < max_ratio * float(out.val[1].var())
    return verify


def healthy_adam():
    model = mlp([64, 128, 64, 10])
    train, val = flat_digits()
    return fit(model, _ce(), Adam(model.parameters(), lr=1e-3), train, val, epochs=6)


scenario((), "MLP, Adam lr 1e-3, digits")((healthy_adam, _verify_learned(0.9)))


def healthy_sgd_momentum():
    model = mlp([64, 128, 64, 10], seed=3)
    train, val = flat_digits()
    return fit(model, _ce(), SGD(model.parameters(), lr=0.05, momentum=0.9), train, val,
               epochs=6)


scenario((), "MLP, SGD momentum lr 0.05, digits")((healthy_sgd_momentum, _verify_learned(0.9)))


def healthy_spirals():
    x, y = make_spirals(1000, noise=0.05, seed=0)
    train, val = split(x, y)
    model = mlp([2, 64, 64, 2])
    return fit(model, _ce(), Adam(model.parameters(), lr=3e-3), train, val, epochs=25)


scenario((), "MLP, Adam, spirals, 25 epochs")((healthy_spirals, _verify_learned(0.9)))


def healthy_cnn():
    model = cnn(seed=1)
    train, val = digit_images()
    return fit(model, _ce(), SGD(model.parameters(), lr=0.05, momentum=0.9), train, val,
               epochs=4)


scenario((), "CNN, SGD momentum lr 0.05, digits")((healthy_cnn, _verify_learned(0.85)))


def logistic_noise_floor(epochs: int):
    def run():
        train, val = noisy_binary()
        model = nn.Sequential(nn.Linear(2, 1, rng=0))
        return fit(model, nn.BCEWithLogitsLoss(), SGD(model.parameters(), lr=0.1), train, val,
                   epochs=epochs, metrics=())
    run.__name__ = f"logistic_noise_floor_{epochs}_epochs"
    return run


def _verify_noise_floor(out: Outcome) -> None:
    # the best a linear model can do: the Bayes rate is the 20% flip
    model = out.model
    with gw.no_grad():
        logits = model(gw.tensor(out.val[0]))._data
    assert float(((logits > 0) == (out.val[1] > 0.5)).mean()) > 0.7


for _epochs in (3, 8, 15):
    scenario((), f"logistic regression, BCE, 20% flipped labels, {_epochs} epochs: at the "
                 "noise floor")((logistic_noise_floor(_epochs), _verify_noise_floor))


def tanh_rmsprop_smooth():
    """A tanh MLP fitting a smooth noise-free function with RMSprop (the issue's case 4)."""
    rng = np.random.default_rng(2)
    x = rng.uniform(-2, 2, size=(1000, 2)).astype(np.float32)
    y = (np.sin(x[:, :1]) * np.cos(x[:, 1:])).astype(np.float32)
    model = mlp([2, 32, 32, 1], activation=nn.Tanh, seed=4)
    return fit(model, nn.MSELoss(), RMSprop(model.parameters(), lr=3e-3), (x[:800], y[:800]),
               (x[800:], y[800:]), epochs=12, metrics=())


scenario((), "tanh MLP, MSE, RMSprop, smooth noise-free target")(
    (tanh_rmsprop_smooth, _verify_regression(0.2)))


def bn_blobs_adam():
    x, y = make_blobs(1200, noise=1.0, n_classes=4, seed=0)
    train, val = split(x, y)
    model = mlp([2, 64, 64, 4], norm=nn.BatchNorm1d, seed=2)
    return fit(model, _ce(), Adam(model.parameters(), lr=1e-2), train, val, epochs=6)


scenario((), "MLP with BatchNorm1d, Adam lr 1e-2, blobs")((bn_blobs_adam, _verify_learned(0.7)))


def adagrad_moons():
    x, y = make_moons(1000, noise=0.1, seed=0)
    train, val = split(x, y)
    model = mlp([2, 64, 64, 2], seed=1)
    return fit(model, _ce(), Adagrad(model.parameters(), lr=0.05), train, val, epochs=8)


scenario((), "MLP, Adagrad lr 0.05, moons")((adagrad_moons, _verify_learned(0.9)))


def layernorm_gelu_loop():
    train, val = flat_digits()
    model = FunctionalNet([64, 96, 64, 10], "gelu", norm=True, seed=12)
    return loop(model, F.cross_entropy, Adam(model.parameters(), lr=1e-3), train, val, epochs=5)


scenario((), "custom forward, LayerNorm + F.gelu, Adam, hand-written loop, digits")(
    (layernorm_gelu_loop, _verify_learned(0.9)))


def linear_regression_noise_floor():
    train, val = regression(noise=0.5, seed=8)
    model = nn.Sequential(nn.Linear(10, 1, rng=1))
    return fit(model, nn.MSELoss(), SGD(model.parameters(), lr=0.02), train, val, epochs=6,
               metrics=())


scenario((), "linear regression, MSE, SGD, noise 0.5: converged at the noise floor")(
    (linear_regression_noise_floor, _verify_regression(0.1)))


def noisy_validation():
    (x, y), (xt, yt) = flat_digits()
    model = mlp([64, 64, 10], seed=13)
    return fit(model, _ce(), Adam(model.parameters(), lr=2e-3), (x, y), (xt[:25], yt[:25]),
               epochs=10)


scenario((), "MLP, Adam, digits, validation on 25 images (a noisy curve)")(
    (noisy_validation, _verify_learned(0.8)))


# -- held out: written after the thresholds were set, run once, right at the first try ----------
HELD_OUT_FROM = len(CATALOGUE)


def leaky_spirals_adam_too_high():
    x, y = make_spirals(1000, noise=0.05, seed=2)
    train, val = split(x, y)
    model = mlp([2, 64, 64, 2], activation=nn.LeakyReLU, seed=3)
    return fit(model, _ce(), Adam(model.parameters(), lr=1.0), train, val, epochs=8)


def _verify_big_steps(out: Outcome) -> None:
    assert relative_change(out) > 3.0, relative_change(out)


scenario(("lr_too_high",), "LeakyReLU MLP, Adam lr 1.0, spirals (held out)")(
    (leaky_spirals_adam_too_high, _verify_big_steps))


def cnn_adam_too_low():
    model = cnn(seed=9)
    train, val = digit_images()
    return fit(model, _ce(), Adam(model.parameters(), lr=1e-8), train, val, epochs=3)


scenario(("lr_too_low",), "CNN, Adam lr 1e-8, digits (held out)")(
    (cnn_adam_too_low, _verify_barely_moved))


def sigmoid_unscaled_pixels():
    train, val = flat_digits()
    model = mlp([64, 64, 64, 10], activation=nn.Sigmoid, seed=4)
    return fit(model, _ce(), Adam(model.parameters(), lr=1e-3), (train[0] * 128, train[1]),
               (val[0] * 128, val[1]), epochs=4)


scenario(("saturated_activations",), "sigmoid MLP, pixels 0-128 unscaled, Adam (held out)")(
    (sigmoid_unscaled_pixels, _verify_saturated("Sigmoid")))


def shuffled_digit_labels():
    (x, y), val = flat_digits()
    model = mlp([64, 32, 10], seed=5)
    return fit(model, _ce(), SGD(model.parameters(), lr=0.05),
               (x, np.random.default_rng(3).permutation(y)), val, epochs=4)


def _verify_digits_chance(out: Outcome) -> None:
    assert accuracy(out.model, out.val) < 0.2, accuracy(out.model, out.val)


scenario(("plateau",), "MLP on digits with shuffled labels, SGD (held out)")(
    (shuffled_digit_labels, _verify_digits_chance))


def gelu_moons_momentum():
    x, y = make_moons(1000, noise=0.15, seed=4)
    train, val = split(x, y)
    model = mlp([2, 64, 64, 2], activation=nn.GELU, seed=6)
    return fit(model, _ce(), SGD(model.parameters(), lr=0.05, momentum=0.9), train, val,
               epochs=10)


scenario((), "GELU MLP, SGD momentum, moons (held out)")(
    (gelu_moons_momentum, _verify_learned(0.9)))


def cnn_adam_healthy():
    model = cnn(seed=10)
    train, val = digit_images()
    return fit(model, _ce(), Adam(model.parameters(), lr=1e-3), train, val, epochs=4)


scenario((), "CNN, Adam lr 1e-3, digits (held out)")((cnn_adam_healthy, _verify_learned(0.7)))


def bn_rmsprop_healthy():
    train, val = flat_digits()
    model = mlp([64, 128, 64, 10], norm=nn.BatchNorm1d, seed=7)
    return fit(model, _ce(), RMSprop(model.parameters(), lr=1e-3), train, val, epochs=5)


scenario((), "MLP with BatchNorm1d, RMSprop, digits (held out)")(
    (bn_rmsprop_healthy, _verify_learned(0.95)))


def adagrad_regression_healthy():
    train, val = regression(noise=0.3, seed=11)
    model = mlp([10, 64, 1], seed=8)
    return fit(model, nn.MSELoss(), Adagrad(model.parameters(), lr=0.05), train, val, epochs=6,
               metrics=())


scenario((), "MLP regression, MSE, Adagrad (held out)")(
    (adagrad_regression_healthy, _verify_regression(0.2)))


PLANTED = [s for s in CATALOGUE if s.expected]
HEALTHY = [s for s in CATALOGUE if not s.expected]


@cache
def record(name: str) -> Outcome:
    """Run the scenario once (cached for the test session)."""
    return next(s for s in CATALOGUE if s.name == name).run()


def markdown_tables() -> str:
    """The catalogue table and the per-finding precision/recall table (for docs/DOCTOR.md).

    Run: ``PYTHONPATH=src:tests python -m doctor.planted``
    """
    lines = ["| run | planted failure | expected | also true | " + " | ".join(
        f"1/{r}" if r != "auto" else "default" for r in RATES) + " |",
             "|---|---|---|---|" + "---|" * len(RATES)]
    named: dict[str, list[int]] = {}  # finding -> [planted, also true, wrong] over runs x rates
    recall: dict[str, list[int]] = {}  # finding -> [named at every rate, runs expecting it]
    for s in CATALOGUE:
        outcome = record(s.name)
        verdicts = {rate: findings_at(outcome, rate) for rate in RATES}
        cells = []
        for rate in RATES:
            found = set(verdicts[rate])
            ok = set(s.expected) <= found <= set(s.expected) | set(s.allowed)
            cells.append("ok" if ok else "WRONG: " + (", ".join(sorted(found)) or "none"))
            for name in found:
                kind = 0 if name in s.expected else 1 if name in s.allowed else 2
                named.setdefault(name, [0, 0, 0])[kind] += 1
        for name in s.expected:
            counts = recall.setdefault(name, [0, 0])
            counts[1] += 1
            counts[0] += all(name in verdicts[rate] for rate in RATES)
        lines.append(f"| {s.name} | {s.what} | {', '.join(s.expected) or '(healthy)'} | "
                     f"{', '.join(s.allowed)} | " + " | ".join(cells) + " |")
    lines += ["", "| finding | runs planted | named at every rate | recall | times named "
              "(runs x rates) | the planted failure | also true | false alarms | precision |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name in sorted(set(named) | set(recall)):
        hit, total = recall.get(name, [0, 0])
        planted, also, wrong = named.get(name, [0, 0, 0])
        times = planted + also + wrong
        rec = f"{hit / total:.0%}" if total else "-"
        prec = f"{(planted + also) / times:.0%}" if times else "-"
        lines.append(f"| {name} | {total} | {hit} | {rec} | {times} | {planted} | {also} | "
                     f"{wrong} | {prec} |")
    return "\n".join(lines)


def threshold_margins(factors: tuple[float, ...] = (0.5, 0.8, 1.25, 2.0)) -> str:
    """Which catalogue verdicts change when one threshold is scaled by each factor.

    For each float setting of DoctorConfig and factor: "ok" when every run stays right at every
    rate, else the first run that goes wrong. Run: ``python -m doctor.planted --margins``.
    """
    import dataclasses

    base = DoctorConfig(interval=1)
    lines = ["| threshold | value | " + " | ".join(f"x{f:g}" for f in factors) + " |",
             "|---|---|" + "---|" * len(factors)]
    for item in dataclasses.fields(DoctorConfig):
        value = getattr(base, item.name)
        if not isinstance(value, float):
            continue
        cells = []
        for factor in factors:
            try:
                config = dataclasses.replace(base, **{item.name: value * factor})
            except ValueError:
                cells.append("(out of range)")
                continue
            wrong = _first_wrong(config)
            cells.append("ok" if wrong is None else f"{wrong[0]} at 1/{wrong[1]}: "
                         + (", ".join(wrong[2]) or "nothing"))
        lines.append(f"| {item.name} | {value:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _first_wrong(config: DoctorConfig) -> tuple[str, Any, list[str]] | None:
    for s in CATALOGUE:
        doctor = record(s.name).doctor
        for rate in RATES:
            interval = (auto_interval(doctor._collector.n_parameters) if rate == "auto"
                        else int(rate))
            stats = subsample(doctor.stats, lambda step, k=interval: config.sampled(step, k))
            found = {f.name for f in diagnose(stats, config, lr=doctor._current_lr())}
            if not set(s.expected) <= found <= set(s.expected) | set(s.allowed):
                return s.name, rate, sorted(found)
    return None


if __name__ == "__main__":
    import sys

    print(threshold_margins() if "--margins" in sys.argv else markdown_tables())
