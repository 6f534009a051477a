"""The doctor's findings as a small HTML fragment, for Jupyter (``Doctor._repr_html_``).

Kept apart from the doctor's logic: it only reads the Finding fields (name, severity, summary,
evidence, remedies, step, layer) and escapes every string it shows.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

__all__ = ["findings_html"]

_COLOURS = {"error": "#c62828", "warning": "#b26a00", "info": "#1565c0"}


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def finding_html(finding: Any) -> str:
    """One finding: severity badge, name, where, summary, evidence and remedies."""
    colour = _COLOURS.get(finding.severity, "#555555")
    where = [f"step {finding.step}"] if finding.step is not None else []
    where += [f"layer {finding.layer}"] if finding.layer else []
    place = f" <small>({html.escape(', '.join(where))})</small>" if where else ""
    evidence = ", ".join(f"{html.escape(str(k))}={html.escape(_number(v))}"
                         for k, v in finding.evidence.items() if not isinstance(v, dict | list))
    remedies = "".join(f"<li>{html.escape(r)}</li>" for r in finding.remedies)
    return (
        f'<div style="border-left:4px solid {colour};padding:2px 8px;margin:6px 0">'
        f'<b style="color:{colour}">[{html.escape(finding.severity)}]</b> '
        f"<b>{html.escape(finding.name)}</b>{place}<br>{html.escape(finding.summary)}"
        + (f"<br><small>evidence: {evidence}</small>" if evidence else "")
        + (f"<br>try:<ul style='margin:0'>{remedies}</ul>" if remedies else "")
        + "</div>"
    )


def findings_html(findings: Sequence[Any], headline: str) -> str:
    """``headline`` (e.g. the first line of ``Doctor.format_findings()``) and every finding."""
    body = "".join(finding_html(f) for f in findings)
    return f"<div><b>{html.escape(headline)}</b>{body}</div>"
