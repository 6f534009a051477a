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
                        class_names=[f"digit {i}" for i in range(10)], title="Digits run")


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
    widths = [int(w) for w in re.findall(r'data-natural-width="(\d+)"', dom)]
    assert len(widths) == 6 and all(w > 100 for w in widths), widths

    shot = tmp_path / "report.png"
    result = _chromium(f"--screenshot={shot}", "--window-size=1200,3000", path.as_uri(),
                       profile=tmp_path / "profile")
    assert shot.exists(), result.stderr[-2000:]
    assert _png_size(shot) == (1200, 3000)
    pixels = shot.stat().st_size
    assert pixels > 50_000, "a blank page compresses to a few kilobytes"
