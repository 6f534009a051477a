"""No float64 leaks and no hidden copies on the training path (issue 14): every array an MLP
training step makes stays float32, and the memory the step holds at its peak is at most the
arrays it must hold (activations, their gradients, the parameter gradients), derived from the
layer sizes, plus a small allowance for the graph's Python objects.

The CNN case adds its model here with the same helper (tests/step_audit.py)."""

import numpy as np
import pytest

import gradwise as gw
from step_audit import audit_step

FLOAT32 = 4
GRAPH_ALLOWANCE = 48 * 1024  # the nodes, tuples and small index arrays of one step


def _mlp_step(sizes, batch, optimizer_name):
    rng = np.random.default_rng(0)
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(gw.nn.Linear(fan_in, fan_out, rng=i))
        if i < len(sizes) - 2:
            layers.append(gw.nn.ReLU())
    model = gw.nn.Sequential(gw.nn.Flatten(), *layers)
    optimizer = (gw.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
                 if optimizer_name == "sgd" else gw.optim.Adam(model.parameters(), lr=1e-3))
    x = rng.random((batch, 1, 28, 28 * sizes[0] // 784), dtype=np.float32)
    y = rng.integers(0, sizes[-1], batch)

    def step():
        optimizer.zero_grad()
        loss = gw.nn.functional.cross_entropy(model(gw.from_numpy(x)), y)  # no copy
        loss.backward()
        with gw.no_grad():
            optimizer.step()

    return step


def _mlp_budget(sizes, batch):
    """Bytes an MLP step must hold at its peak, at most: every activation (the fused
    Linear+ReLU overwrites its pre-activation in place), the softmax probabilities and per-row
    losses, every parameter gradient, and two gradients of the widest activation (the incoming
    one and the masked one: the engine frees each gradient once its node has used it)."""
    activations = sum(batch * width for width in sizes[1:])
    gradients_of_activations = 2 * batch * max(sizes[1:])
    parameter_grads = sum((fan_in + 1) * fan_out
                          for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True))
    softmax = batch * sizes[-1] + batch
    return FLOAT32 * (activations + gradients_of_activations + parameter_grads + softmax)


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
def test_mlp_step_stays_float32_and_makes_no_hidden_copies(jit_path, monkeypatch,
                                                            optimizer_name):
    sizes, batch = (784, 256, 128, 10), 64
    step = _mlp_step(sizes, batch, optimizer_name)
    for _ in range(3):  # optimizer state and scratch buffers exist from here on
        step()
    audit = audit_step(step, monkeypatch)
    assert audit.dtypes, "the audit saw no op"
    assert audit.non_float32() == []
    budget = _mlp_budget(sizes, batch) + GRAPH_ALLOWANCE
    assert audit.peak_bytes <= budget, (
        f"the step held {audit.peak_bytes} bytes at its peak, more than the {budget} its "
        f"arrays need: a hidden copy or a float64 temporary")
