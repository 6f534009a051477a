"""TensorBoardLogger: the event files it writes, read back with TensorBoard's own reader."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import gradwise as gw
from gradwise import nn
from gradwise.data import make_spirals
from gradwise.train import Callback, TensorBoardLogger, Trainer

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def read_events(folder):
    everything = {kind: 0 for kind in ("scalars", "histograms", "tensors")}
    accumulator = event_accumulator.EventAccumulator(str(folder), size_guidance=everything)
    accumulator.Reload()
    return accumulator


class RecordGrads(Callback):
    """Copies of the gradients right after backward, per step (what the logger should see)."""

    def __init__(self):
        self.grads = {}

    def on_after_backward(self, step):
        model = self.trainer.model
        self.grads[step] = {n: np.array(p.grad) for n, p in model.named_parameters()}


def _fit(tmp_path, epochs=3, **logger_args):
    x, y = make_spirals(n_samples=160, seed=0)
    model = nn.Sequential(nn.Linear(2, 16, rng=0), nn.ReLU(), nn.Linear(16, 2, rng=1))
    optimizer = gw.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = gw.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    logger = TensorBoardLogger(tmp_path / "tb", **logger_args)
    grads = RecordGrads()
    lrs = []

    class RecordLr(Callback):
        def on_batch_end(self, step, logs):
            lrs.append(optimizer.param_groups[0]["lr"])

    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, scheduler,
                      callbacks=[grads, RecordLr(), logger], doctor=True, progress=False)
    history = trainer.fit((x[:120], y[:120]), val_data=(x[120:], y[120:]), epochs=epochs,
                          batch_size=40)
    return trainer, history, grads.grads, lrs, read_events(tmp_path / "tb")


def _values(events, tag):
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_scalars_match_the_history_and_the_steps(tmp_path):
    trainer, history, _, lrs, events = _fit(tmp_path, log_every_n_steps=1)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        steps, values = zip(*_values(events, f"epoch/{key}"), strict=True)
        assert steps == (1, 2, 3)
        np.testing.assert_allclose(values, history[key], rtol=1e-6)
    steps, losses = zip(*_values(events, "train/loss"), strict=True)
    assert steps == tuple(range(9))  # 3 batches of 40 per epoch, every step logged
    np.testing.assert_allclose([v for _, v in _values(events, "train/lr")], lrs, rtol=1e-6)
    assert lrs[0] == 0.1 and lrs[-1] == 0.025  # StepLR halves it every epoch


def test_histograms_and_norms_of_weights_and_gradients(tmp_path):
    trainer, _, grads, _, events = _fit(tmp_path, histogram_freq=2)
    for name, param in trainer.model.named_parameters():
        weights = [e for e in events.Histograms(f"weights/{name}")]
        assert [e.step for e in weights] == [1, 3]  # epochs 1 and 3 (histogram_freq=2)
        final = weights[-1].histogram_value
        values = param.detach().numpy()
        assert final.num == values.size
        np.testing.assert_allclose([final.min, final.max, final.sum],
                                   [values.min(), values.max(), values.sum()], rtol=1e-5,
                                   atol=1e-6)
        norms = _values(events, f"weight_norm/{name}")
        np.testing.assert_allclose(norms[-1][1], np.linalg.norm(values), rtol=1e-6)
        # gradients from the first step of epochs 1 and 3: steps 0 and 6
        grad_events = events.Histograms(f"grads/{name}")
        assert [e.step for e in grad_events] == [0, 6]
        for event in grad_events:
            expected = grads[event.step][name]
            assert event.histogram_value.num == expected.size
            np.testing.assert_allclose(event.histogram_value.sum, expected.sum(), rtol=1e-4,
                                       atol=1e-6)
        grad_norms = _values(events, f"grad_norm/{name}")
        np.testing.assert_allclose([v for _, v in grad_norms],
                                   [np.linalg.norm(grads[s][name]) for s, _ in grad_norms],
                                   rtol=1e-6)


def test_the_doctors_update_ratios_and_findings(tmp_path):
    trainer, _, _, _, events = _fit(tmp_path)
    stats = trainer.doctor.stats
    for name, series in stats.params.items():
        expected = [(s, r) for s, r in zip(series.steps, series.update_ratio, strict=True)
                    if np.isfinite(r)]
        got = _values(events, f"update_ratio/{name}")
        assert [s for s, _ in got] == [s for s, _ in expected]
        np.testing.assert_allclose([v for _, v in got], [r for _, r in expected], rtol=1e-6)
    texts = events.Tensors("doctor/findings/text_summary")
    last = texts[-1].tensor_proto.string_val[0].decode()
    assert last == "```\n" + trainer.doctor.format_findings() + "\n```"
    assert "gradwise doctor" in last


def _graph_ops(folder):
    graph = read_events(folder).Graph()
    return [node.op for node in graph.node if node.op not in ("Identity", "")]


def _spiral_fit(folder, callbacks, model=None, epochs=2):
    x, y = make_spirals(n_samples=40, seed=0)
    model = model or nn.Sequential(nn.Linear(2, 8, rng=0), nn.Tanh(), nn.Dropout(0.3, rng=0),
                                   nn.Linear(8, 2, rng=1))
    Trainer(model, nn.CrossEntropyLoss(), gw.optim.Adam(model.parameters()),
            callbacks=callbacks, progress=False, seed=0).fit((x, y), epochs=epochs,
                                                             batch_size=20)
    return model


def test_model_graph_from_an_example_batch(tmp_path):
    pytest.importorskip("onnx")
    x, _ = make_spirals(n_samples=4, seed=0)
    _spiral_fit(tmp_path, [TensorBoardLogger(tmp_path / "tb", example_input=x)])
    assert [op for op in _graph_ops(tmp_path / "tb") if op in ("Gemm", "Tanh")] == [
        "Gemm", "Tanh", "Gemm"
    ]


def test_model_graph_from_the_first_batch_changes_nothing_in_training(tmp_path):
    pytest.importorskip("onnx")
    logged = _spiral_fit(tmp_path, [TensorBoardLogger(tmp_path / "tb")])
    assert "Gemm" in _graph_ops(tmp_path / "tb")
    plain = _spiral_fit(tmp_path, [])
    for key, value in plain.state_dict().items():
        np.testing.assert_array_equal(value, logged.state_dict()[key], err_msg=key)


class Unexportable(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2, rng=0)

    def forward(self, x):
        return self.lin(x)[x.numpy()[:, 0] > -10]  # boolean indexing has no ONNX converter


def test_a_model_without_a_graph_still_logs_everything_else(tmp_path):
    pytest.importorskip("onnx")
    with pytest.warns(RuntimeWarning, match="no model graph: .*GetItem"):
        _spiral_fit(tmp_path, [TensorBoardLogger(tmp_path / "tb")], model=Unexportable())
    events = read_events(tmp_path / "tb")
    assert len(events.Scalars("epoch/loss")) == 2
    assert not events.Tags()["graph"]


def test_bad_settings():
    with pytest.raises(ValueError, match="log_every_n_steps must be an integer >= 1"):
        TensorBoardLogger("tb", log_every_n_steps=0)
    with pytest.raises(ValueError, match="histogram_freq must be an integer >= 0"):
        TensorBoardLogger("tb", histogram_freq=-1)


def test_missing_tensorboardx_names_the_extra():
    code = (
        "import sys; sys.modules['tensorboardX'] = None\n"
        "import gradwise\n"
        "from gradwise.train import TensorBoardLogger\n"
        "try:\n"
        "    TensorBoardLogger('never')\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert "pip install 'gradwise[tensorboard]'" in result.stdout


def test_graph_node_names_are_unique_and_edges_resolve(tmp_path):
    """Regression: tensorboardX drew the output declaration and the op writing it as two nodes
    named `output`."""
    pytest.importorskip("onnx")
    x, _ = make_spirals(n_samples=4, seed=0)
    _spiral_fit(tmp_path, [TensorBoardLogger(tmp_path / "tb", example_input=x)])
    nodes = read_events(tmp_path / "tb").Graph().node
    names = [node.name for node in nodes]
    assert len(names) == len(set(names)), names
    assert names.count("output") == 1 and "input" in names
    produced = {node.name for node in nodes}
    consumed = {name for node in nodes for name in node.input}
    assert "input" in consumed and "output" in produced


def test_missing_onnx_leaves_out_the_graph_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    logger = TensorBoardLogger(tmp_path / "tb")
    with pytest.warns(RuntimeWarning, match=r"no model graph.*pip install 'gradwise\[onnx\]'") as \
            caught:
        _spiral_fit(tmp_path, [logger])
        _spiral_fit(tmp_path, [logger], epochs=1)  # a second fit with the same logger: no repeat
    assert sum("no model graph" in str(w.message) for w in caught) == 1
    events = read_events(tmp_path / "tb")
    assert events.Scalars("epoch/loss") and not events.Tags()["graph"]
