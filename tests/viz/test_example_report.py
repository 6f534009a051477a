"""docs/example-report.html must be what the current code renders (issue 17 item 9)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("example_report",
                                                  ROOT / "tools" / "example_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_report_has_every_section_the_code_renders() -> None:
    missing, extra = _tool().stale_sections()
    assert (missing, extra) == ([], []), (
        "docs/example-report.html is stale; regenerate it: .venv/bin/python "
        "tools/example_report.py")


def test_the_staleness_check_catches_a_missing_section(tmp_path) -> None:
    tool = _tool()
    page = (ROOT / "docs" / "example-report.html").read_text(encoding="utf-8")
    stale = tmp_path / "old.html"
    stale.write_text(page.replace("<h2>What ran</h2>", "").replace(
        "<h2>Summary</h2>", "<h2>Summary</h2><h2>Old section</h2>"), encoding="utf-8")
    missing, extra = tool.stale_sections(stale)
    assert missing == ["What ran"] and extra == ["Old section"]
