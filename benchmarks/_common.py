"""Shared benchmark helpers: machine description, thread setup, data, interleaved timing, tables.

Every benchmark measures gradwise and its baselines in one process, interleaved and repeated,
and reports medians, so that a slow moment of the machine hits every contender alike.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import gradwise as gw

try:
    import torch
except ImportError:  # the baseline is optional; benchmarks say so and skip its rows
    torch = None


def setup_threads(threads: int | None = None) -> int:
    """Give PyTorch as many threads as NumPy's BLAS has (all cores); return that count.

    ``threads`` limits both to that many instead (gradwise's BLAS and numba kernels through
    ``gw.set_num_threads``): on a machine shared with other jobs, one thread each is the
    comparison the load disturbs least.
    """
    cores = threads or os.cpu_count() or 1
    if threads is not None:
        gw.set_num_threads(threads)  # stays in force for the process
    if torch is not None:
        torch.set_num_threads(cores)
    return cores


def blas_description() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "numpy BLAS threads: unknown (threadpoolctl not installed; default = all cores)"
    rows = [
        f"{i['internal_api']} {i.get('version')} {i.get('architecture', '')} "
        f"threads={i['num_threads']} ({os.path.basename(i['filepath'])})"
        for i in threadpool_info()
    ]
    return "; ".join(rows)


def machine_description() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    torch_version = torch.__version__ if torch is not None else "not installed"
    coretype = os.environ.get("OPENBLAS_CORETYPE", "")
    lines = [
        f"CPU: {model}, {os.cpu_count()} cores; Python {platform.python_version()}",
        f"numpy {np.__version__}, torch {torch_version} "
        f"(torch threads {torch.get_num_threads() if torch is not None else '-'})",
        f"BLAS: {blas_description()}",
        f"OPENBLAS_CORETYPE={coretype or '(unset)'}",
        kernels_description(),
    ]
    return "\n".join(lines)


def numpy_path(run: Callable[[], Any]) -> Callable[[], Any]:
    """``run`` with gradwise's numba kernels switched off (the NumPy references: gradwise before
    issue 14), to time both in the same process."""
    from gradwise.autograd.kernels._jit import set_jit_enabled

    def wrapped() -> Any:
        previous = set_jit_enabled(False)
        try:
            return run()
        finally:
            set_jit_enabled(previous)

    return wrapped


def kernels_description() -> str:
    """numba's version, threading layer and thread count, and whether gradwise's kernels are on."""
    from gradwise.autograd.kernels._jit import jit_enabled

    try:
        import numba
    except ImportError:
        return "kernels: NumPy references (numba not installed)"
    return (f"kernels: {'numba' if jit_enabled() else 'NumPy references (GRADWISE_JIT=0)'}; "
            f"numba {numba.__version__}, threading layer {numba.config.THREADING_LAYER}, "
            f"{numba.get_num_threads()} threads")


def load_fashion_mnist() -> tuple[np.ndarray, np.ndarray, str]:
    """Training images (N, 1, 28, 28) float32 in [0, 1], labels int64, and where they came from."""
    try:
        from gradwise.data import load_fashion_mnist as load

        (x, y), _ = load(download=False, progress=False)
        source = "Fashion-MNIST training set"
    except Exception as error:  # noqa: BLE001 - any failure falls back, with a note
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, size=(60000, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=60000)
        missing = error.__class__.__name__
        source = f"RANDOM data of Fashion-MNIST's shape (files not found: {missing})"
    images = (x.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return images, y.astype(np.int64), source


def interleaved(
    contenders: dict[str, Callable[[], Any]], repeats: int = 5, warmup: int = 1,
    pause: float = 0.3,
) -> dict[str, float]:
    """Median seconds per call of each contender, calls interleaved round by round.

    Before each timed call the process sleeps ``pause`` seconds: OpenBLAS (NumPy) and OpenMP
    (PyTorch) keep their worker threads spinning for a while after a call, and on a machine with
    few cores those spinning threads would steal the cores from the next contender (measured
    here: PyTorch's MLP step 1.4 ms alone, 6 to 12 ms right after NumPy work).

    The spread of the rounds (slowest / fastest round of any contender) is kept for
    :func:`verdict`, which refuses to call a target met or missed on a noisy measurement.
    """
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            time.sleep(pause)
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    spread = max((max(ts) / min(ts) for ts in times.values() if min(ts) > 0), default=1.0)
    _LAST_SPREAD[0] = max(_LAST_SPREAD[0], spread)
    return {name: statistics.median(ts) for name, ts in times.items()}


def timed_rounds(
    contenders: dict[str, Callable[[], Any]], repeats: int = 7, warmup: int = 1,
    pause: float = 0.3,
) -> dict[str, dict[str, list[float]]]:
    """Seconds of every round of each contender, interleaved as :func:`interleaved` does, on
    two clocks: ``"wall"`` (perf_counter) and ``"cpu"`` (this process's CPU time, all threads).

    With one thread per framework CPU time is the measure a shared machine disturbs least: time
    spent waiting for a core held by another job is not counted (cache and memory-bus sharing
    still are). With more threads it also counts BLAS/OpenMP threads spinning while they wait,
    so there wall time is the measure and CPU time only a hint. The wall spread is kept for
    :func:`verdict`, as :func:`interleaved` keeps it.
    """
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    rounds: dict[str, dict[str, list[float]]] = {
        name: {"wall": [], "cpu": []} for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            time.sleep(pause)
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            fn()
            rounds[name]["wall"].append(time.perf_counter() - wall_start)
            rounds[name]["cpu"].append(time.process_time() - cpu_start)
    _LAST_SPREAD[0] = max([_LAST_SPREAD[0]] + [spread(r["wall"]) for r in rounds.values()])
    return rounds


def spread(times: list[float]) -> float:
    """Slowest over fastest of ``times`` (1.0 for a single or a zero time)."""
    return max(times) / min(times) if times and min(times) > 0 else 1.0


def cpu_verdict(ratio: float, target: float, spreads: list[float],
                lower_is_better: bool = True) -> str:
    """Like :func:`verdict` for a ratio of CPU times at one thread each: the load does not
    disqualify it (waiting is not counted), but rounds spread more than :data:`MAX_SPREAD`
    (cache or memory-bus contention, frequency changes) still do."""
    sign = "<=" if lower_is_better else ">="
    worst = max(spreads, default=1.0)
    if worst > MAX_SPREAD:
        return (f"{ratio:5.2f}x (target {sign} {target}x) (not a verdict: CPU-time rounds "
                f"spread {worst:.2f}x > {MAX_SPREAD}x)")
    ok = ratio <= target if lower_is_better else ratio >= target
    return f"{ratio:5.2f}x (target {sign} {target}x: {'met' if ok else 'MISSED'}, CPU time)"


#: a verdict needs the slowest round within this factor of the fastest, for every contender
MAX_SPREAD = 1.5
_LAST_SPREAD = [1.0]  # the largest spread of any interleaved() call in this process
_PEAK_LOAD = [0.0]  # the highest 1-minute load average seen by load_line()


def load_line(when: str) -> str:
    """``load average at <when>: 1m 5m 15m (N cores)``; remembers the peak for :func:`verdict`.
    Every benchmark prints it at start and at end (issue 14: a 2-thread run printed 0.12x "met"
    while the machine's load made PyTorch take 62 s)."""
    try:
        loads = os.getloadavg()
    except OSError:  # not available on this platform
        return f"load average at {when}: unknown"
    _PEAK_LOAD[0] = max(_PEAK_LOAD[0], loads[0])
    return (f"load average at {when}: {loads[0]:.2f} {loads[1]:.2f} {loads[2]:.2f} "
            f"({os.cpu_count()} cores)")


def machine_busy() -> str | None:
    """Why the measurements so far are not a verdict (load above the core count at a
    :func:`load_line` or now, or rounds spread more than :data:`MAX_SPREAD`), or None."""
    cores = os.cpu_count() or 1
    try:
        now = os.getloadavg()[0]
    except OSError:
        now = 0.0
    load = max(_PEAK_LOAD[0], now)
    if load > cores:
        return f"load {load:.1f} > {cores} cores"
    if _LAST_SPREAD[0] > MAX_SPREAD:
        return f"rounds spread {_LAST_SPREAD[0]:.2f}x > {MAX_SPREAD}x"
    return None


def print_table(title: str, rows: list[tuple[str, str, str]]) -> None:
    """Rows of (what, value, ratio/target) as an aligned text table."""
    width = max(len(r[0]) for r in rows) + 2
    print(f"\n{title}")
    print("-" * len(title))
    for what, value, ratio in rows:
        print(f"{what:<{width}}{value:>14}   {ratio}")


def verdict(ratio: float, target: float, lower_is_better: bool = True) -> str:
    """``ratio`` against ``target``: met/MISSED, or "(machine busy: not a verdict)" when
    :func:`machine_busy` says the measurement only measured the load."""
    sign = "<=" if lower_is_better else ">="
    busy = machine_busy()
    if busy is not None:
        return f"{ratio:5.2f}x (target {sign} {target}x) (machine busy: not a verdict; {busy})"
    ok = ratio <= target if lower_is_better else ratio >= target
    return f"{ratio:5.2f}x (target {sign} {target}x: {'met' if ok else 'MISSED'})"


# ---- the models, in both frameworks, with the same initial weights ---------------------------
def torch_mlp(seed: int = 0) -> Any:
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )


def torch_cnn(seed: int = 0) -> Any:
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def initial_weights(kind: str, seed: int = 0) -> list[np.ndarray]:
    """PyTorch's default initialisation of the model, as float32 arrays in parameter order."""
    if torch is None:  # no baseline: any fixed initialisation will do
        model = gw_model(kind, None)
        return [p.data.copy() for p in model.parameters()]
    model = torch_mlp(seed) if kind == "mlp" else torch_cnn(seed)
    return [p.detach().numpy().copy() for p in model.parameters()]


def gw_model(kind: str, weights: list[np.ndarray] | None) -> Any:
    """The same model as ``gw.nn.Sequential``, its parameters set to ``weights``."""
    nn = gw.nn
    if kind == "mlp":
        model = nn.Sequential(
            nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
            nn.Linear(128, 10),
        )
    else:
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
        )
    if weights is not None:
        for param, value in zip(model.parameters(), weights, strict=True):
            param.data = value.copy()
    return model


def gw_mlp_functional(weights: list[np.ndarray]) -> tuple[list[gw.Tensor], Callable[..., Any]]:
    """The MLP with the engine and F only: parameter Tensors and a forward function."""
    params = [gw.tensor(w.copy(), requires_grad=True) for w in weights]
    w1, b1, w2, b2, w3, b3 = params
    F = gw.nn.functional

    def forward(x: gw.Tensor) -> gw.Tensor:
        h = F.relu(F.linear(x.reshape(x.shape[0], -1), w1, b1))
        h = F.relu(F.linear(h, w2, b2))
        return F.linear(h, w3, b3)

    return params, forward


class HandSGD:
    """SGD with momentum written on ``p.data`` (PyTorch's rule), for when gw.optim is absent."""

    def __init__(self, params: list[gw.Tensor], lr: float, momentum: float) -> None:
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.buffers: list[np.ndarray | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            buf = self.buffers[i]
            if buf is None:
                buf = self.buffers[i] = p.grad.copy()
            else:
                buf *= self.momentum
                buf += p.grad
            p.data -= self.lr * buf


class HandAdam:
    """Adam written on ``p.data`` (PyTorch's rule), for when gw.optim is absent."""

    def __init__(self, params: list[gw.Tensor], lr: float = 1e-3, betas=(0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = list(params), lr, betas, eps
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]
        self.t = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        step_size = self.lr / (1 - b1**self.t)
        correction2 = np.sqrt(1 - b2**self.t)
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            g = p.grad
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            denom = np.sqrt(v) / correction2 + self.eps
            p.data -= step_size * m / denom


def gw_optimizer(kind: str, params: list[gw.Tensor], **settings: Any) -> tuple[Any, str]:
    """gw.optim's SGD/Adam when it exists, else the hand-written one; and which was used."""
    try:
        from gradwise import optim

        cls = optim.SGD if kind == "sgd" else optim.Adam
        return cls(params, **settings), "gw.optim"
    except (ImportError, AttributeError):
        cls = HandSGD if kind == "sgd" else HandAdam
        return cls(params, **settings), "hand-written on p.data"


def torch_step(model: Any, optimizer: Any, x: Any, y: Any) -> float:
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def gw_step(forward: Callable[..., Any], optimizer: Any, x: np.ndarray, y: np.ndarray) -> float:
    optimizer.zero_grad()
    # from_numpy shares the batch's memory, as torch.from_numpy does on PyTorch's side
    loss = gw.nn.functional.cross_entropy(forward(gw.from_numpy(x)), y)
    loss.backward()
    with gw.no_grad():
        optimizer.step()
    return float(loss.item())
