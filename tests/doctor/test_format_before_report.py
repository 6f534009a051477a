"""Issue 14: format_findings() before report() evaluates (it said "no problems found" for a
planted dead ReLU layer that report() finds)."""

from doctor import planted
from gradwise.doctor import Doctor


def test_format_findings_evaluates_a_fresh_recording(monkeypatch):
    monkeypatch.setattr(Doctor, "report", lambda self: "")  # the loop ends with report()
    outcome = planted.functional_dead_relu()
    assert outcome.doctor.findings == []  # nothing evaluated yet
    text = outcome.doctor.format_findings(overhead=False)
    assert "no problems found" not in text
    assert "dead_relus" in {f.name for f in outcome.doctor.findings}
    monkeypatch.undo()
    outcome.doctor.report()
    assert outcome.doctor.format_findings(overhead=False) == text


def test_format_findings_with_nothing_recorded():
    assert "examined 0 of 0 steps" in Doctor().format_findings()
