"""The HTML report: one self-contained file with every section; rendered in headless Chromium."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from doctor import planted
from gradwise import nn
from gradwise.doctor import Doctor
from gradwise.optim import Adam
from gradwise.train import Trainer
from gradwise.viz.report import SECTIONS, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# a report is self-contained: the page may load nothing but data: URIs
_EXTERNAL = re.compile(r"""(src|href)\s*=\s*["'](?!data:|#)""")


@cache
def _trained():
    model = planted.mlp([784, 128, 64, 10])
    optimizer = Adam(model.parameters(), lr=1e-3)
    train, test = planted.digits()
    doctor = Doctor()
    history = Trainer(model, nn.CrossEntropyLoss(), optimizer, progress=False,
                      doctor=doctor).fit(train, test, epochs=2, batch_size=64)
    return model, doctor, history, test


def _full_report(directory: Path) -> Path:
    model, doctor, history, test = _trained()
    return write_report(directory, history=history, doctor=doctor, model=model, test_data=test,
                        class_names=[f"digit {i}" for i in range(10)], title="Digits run",
                        run_info=RUN_INFO)


def test_report_has_every_section_and_embedded_image(tmp_path):
    path = _full_report(tmp_path / "run")
    assert path == tmp_path / "run" / "report.html"
    page = path.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert page.count('src="data:image/png;base64,') == 6
    assert "No problems found." in page
    assert "misclassified" in page and "Test accuracy" in page
    assert not _EXTERNAL.search(page)
    assert not list(path.parent.glob("*.tmp*")), "written atomically, no leftovers"


def test_report_shows_findings_with_evidence(tmp_path):
    doctor = planted.record("dead_bias_adam").doctor
    history = [{"epoch": 1, "loss": 2.3}, {"epoch": 2, "loss": 2.3}]
    page = write_report(tmp_path, history=history, doctor=doctor).read_text(encoding="utf-8")
    assert 'data-name="dead_relus"' in page
    assert "dead_fraction" in page and "LeakyReLU" in page
    assert "Pass model= and test_data=(x, y)" in page


def test_tabular_data_skips_the_image_grid(tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = planted.mlp([3, 4, 2])
    page = write_report(tmp_path, history={"loss": [0.7, 0.6]}, model=model, test_data=(x, y))
    text = page.read_text(encoding="utf-8")
    assert "Skipped: the inputs are tabular, not images." in text
    assert "No doctor watched this run" in text
    assert text.count("data:image/png;base64,") == 2  # learning curves + confusion matrix


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(TypeError, match="history: expected a History"):
        write_report(tmp_path, history=42)
    model = planted.mlp([3, 2])
    x = np.zeros((4, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="x has 4 samples but y has 3"):
        write_report(tmp_path, history={"loss": [1.0]}, model=model,
                     test_data=(x, np.zeros(3, dtype=np.int64)))


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=90,
                          check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    path = _full_report(tmp_path / "run")
    # a copy with a probe that records, once everything loaded, how each image decoded
    probe = tmp_path / "probe.html"
    probe.write_text(path.read_text(encoding="utf-8").replace("</body>", """<script>
window.addEventListener("load", () => {
  for (const img of document.images) {
    img.setAttribute("data-natural-width", img.naturalWidth);
    img.setAttribute("data-complete", img.complete);
  }
  document.body.setAttribute("data-probed", "yes");
});
</script></body>"""), encoding="utf-8")
    result = _chromium("--dump-dom", "--virtual-time-budget=10000", probe.as_uri(),
                       profile=tmp_path / "profile")
    dom = result.stdout
    assert 'data-probed="yes"' in dom, result.stderr[-2000:]
    for section in SECTIONS:
        assert f'id="{section}"' in dom
    for shown in ("What ran", "fashion-mlp", "label_smoothing", '<p class="loud">No MNIST'):
        assert shown in dom, shown
    widths = [int(w) for w in re.findall(r'data-natural-width="(\d+)"', dom)]
    assert len(widths) == 6 and all(w > 100 for w in widths), widths

    shot = tmp_path / "report.png"
    result = _chromium(f"--screenshot={shot}", "--window-size=1200,3000", path.as_uri(),
                       profile=tmp_path / "profile")
    assert shot.exists(), result.stderr[-2000:]
    assert _png_size(shot) == (1200, 3000)
    pixels = shot.stat().st_size
    assert pixels > 50_000, "a blank page compresses to a few kilobytes"


RUN_INFO = {
    "recipe": "fashion-mlp", "dataset": "digits", "source": "scikit-learn digits",
    "fallback": "No MNIST files found; training on scikit-learn's 8x8 digits instead.",
    "samples": {"train": 450, "val": 50, "test": 359}, "model": "Sequential",
    "parameters": 535818, "model_summary": "Layer (type)  Output Shape  Param #",
    "hyperparameters": {"lr": 0.001, "label_smoothing": 0.1, "seed": 7},
    "seed": 7, "versions": {"numpy": "2.4.6", "gradwise": "0.1.0"},
    "seconds": 12.5, "test_accuracy": 0.8765, "test_loss": 0.4321, "best_epoch": 2,
}


def test_report_says_what_ran(tmp_path):
    model, doctor, history, test = _trained()
    page = write_report(tmp_path, history=history, doctor=doctor, model=model, test_data=test,
                        run_info=RUN_INFO).read_text(encoding="utf-8")
    run = page[page.index('<section id="run">'):page.index('<section id="learning-curves">')]
    assert '<p class="loud">No MNIST files found; training on' in run  # the fallback, loudly
    for label, value in [("recipe", "fashion-mlp"), ("data set", "digits"),
                         ("data source", "scikit-learn digits"), ("parameters", "535,818"),
                         ("label_smoothing", "0.1"), ("seed", "7"), ("numpy", "2.4.6"),
                         ("wall time (s)", "12.5"), ("test accuracy", "87.65%"),
                         ("best epoch (checkpoints/best)", "2")]:
        assert f"<tr><th>{label}</th><td>{value}</td></tr>" in run, label
    assert "<pre>Layer (type)  Output Shape  Param #</pre>" in run
    summary = page[:page.index('<section id="run">')]
    accuracy = float((planted_predictions(model, test) == test[1]).mean())
    assert f"<tr><th>test accuracy</th><td>{accuracy:.2%}</td></tr>" in summary
    assert "<tr><th>best epoch</th>" in summary


def test_report_escapes_what_it_is_given(tmp_path):
    info = {"recipe": "<script>alert(1)</script>", "hyperparameters": {"a&b": "<b>"}}
    page = write_report(tmp_path, history={"loss": [1.0]}, run_info=info,
                        title="<i>t</i>").read_text(encoding="utf-8")
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<th>a&amp;b</th><td>&lt;b&gt;</td>" in page
    assert "<title>&lt;i&gt;t&lt;/i&gt;</title>" in page
    assert 'font-family: -apple-system, "Segoe UI"' in page  # the CSS is not escaped


def planted_predictions(model, test):
    from gradwise.viz.report import _predict

    return _predict(model, test[0]).argmax(axis=1)


def test_misclassified_are_the_most_confidently_wrong():
    from gradwise.viz.report import confidently_wrong

    logits = np.array([[0.0, 1.0], [5.0, 0.0], [0.0, 3.0], [2.0, 2.5], [0.0, 9.0]])
    target = np.array([0, 1, 0, 0, 1])  # wrong: 0 (p 0.73), 1 (p 0.99), 2 (p 0.95), 3 (p 0.62)
    np.testing.assert_array_equal(confidently_wrong(logits, target, 3), [1, 2, 0])
    np.testing.assert_array_equal(confidently_wrong(logits, target, 10), [1, 2, 0, 3])
    binary = np.array([[-4.0], [0.5], [3.0]])  # predicted 0, 1, 1
    np.testing.assert_array_equal(confidently_wrong(binary, np.array([1, 0, 0]), 5), [0, 2, 1])


def test_best_epoch_follows_the_validation_result():
    from gradwise.viz.report import best_epoch

    assert best_epoch({"loss": [3, 2, 1], "val_accuracy": [0.5, 0.9, 0.9]}) == 2
    assert best_epoch({"loss": [3, 2, 1], "val_loss": [2.0, float("nan"), 1.5]}) == 3
    assert best_epoch({"epoch": [4, 5], "loss": [3, 2], "val_loss": [1.0, 2.0]}) == 4
    assert best_epoch({"loss": [3, 2, 1]}) is None


def test_learning_curves_show_the_lr_and_the_best_epoch():
    from gradwise.viz.plots import learning_curves_figure

    history = {"epoch": [1, 2, 3], "loss": [3, 2, 1], "accuracy": [0.1, 0.5, 0.7],
               "val_accuracy": [0.2, 0.6, 0.5], "lr": [0.1, 0.05, 0.01]}
    figure = learning_curves_figure(history, best_epoch=2)
    assert [axis.get_title() for axis in figure.axes] == [
        "Loss", "Metrics", "Learning rate (end of epoch)"]
    np.testing.assert_allclose(figure.axes[2].lines[0].get_ydata(), [0.1, 0.05, 0.01])
    for axis in figure.axes:
        marker = [line for line in axis.lines if line.get_label() == "best epoch (2)"]
        assert len(marker) == 1 and list(marker[0].get_xdata()) == [2, 2]


def test_gradient_flow_draws_the_sampled_steps_as_points():
    from gradwise.viz.plots import gradient_flow_figure, update_ratios_figure

    _, doctor, _, _ = _trained()
    for figure in (gradient_flow_figure(doctor.stats), update_ratios_figure(doctor.stats)):
        series = [line for line in figure.axes[0].lines if line.get_label()[:1] != "_"]
        assert series
        for line in series:
            assert line.get_linestyle() == "None" and line.get_marker() == "o"
            sampled = doctor.stats.params[line.get_label()].steps
            assert list(line.get_xdata()) == list(sampled)
