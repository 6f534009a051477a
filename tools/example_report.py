"""Regenerate docs/example-report.html from the default ``gradwise train`` run, or check it.

The example report is the one a newcomer opens first, so it must be what the current code
renders. ``--check`` compares it with a small run's report without training the default run:
every section (``<h2>``) the current template renders must be in the example, and the example
must hold none the code no longer renders; ``tests/viz/test_example_report.py`` runs that check.

Usage:
    .venv/bin/python tools/example_report.py            # train the default run (a few
                                                         # minutes), copy its report.html
    .venv/bin/python tools/example_report.py --check     # exit 1 and name the sections if stale
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "example-report.html"
SMALL_RUN = ["train", "digits-mlp", "--epochs", "2", "--limit-train", "300", "--quiet"]
"""A run on images (so every section, confusion matrix and misclassified images included,
is rendered) that takes seconds."""

_H2 = re.compile(r"<h2[^>]*>(.*?)</h2>", re.S)


def section_titles(page: str) -> list[str]:
    """The ``<h2>`` titles of a report page, unescaped, in order."""
    return [html.unescape(re.sub(r"<[^>]+>", "", title)).strip() for title in _H2.findall(page)]


def _train(args: list[str], folder: Path) -> Path:
    """Run ``gradwise ARGS --out folder/run`` with this checkout's code; the run folder."""
    gradwise = Path(sys.executable).with_name("gradwise")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"),
                                                    env.get("PYTHONPATH")) if p)
    run = folder / "run"
    subprocess.run([str(gradwise), *args, "--out", str(run)], cwd=folder, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return run


def stale_sections(example: Path = EXAMPLE) -> tuple[list[str], list[str]]:
    """(sections the code renders that the example lacks, sections the example has that the
    code no longer renders), from a small run's report."""
    with tempfile.TemporaryDirectory() as folder:
        current = section_titles((_train(SMALL_RUN, Path(folder)) / "report.html").read_text())
    shown = section_titles(example.read_text(encoding="utf-8"))
    return ([t for t in current if t not in shown], [t for t in shown if t not in current])


def main(argv: list[str]) -> int:
    """Regenerate (no arguments) or ``--check`` the example report; 1 when it is stale."""
    if argv == ["--check"]:
        missing, extra = stale_sections()
        if missing or extra:
            print(f"{EXAMPLE.relative_to(ROOT)} is stale: missing sections {missing}, sections "
                  f"no longer rendered {extra}; regenerate it with: .venv/bin/python "
                  "tools/example_report.py")
            return 1
        print(f"{EXAMPLE.relative_to(ROOT)}: every current section is there")
        return 0
    with tempfile.TemporaryDirectory() as folder:
        run = _train(["train"], Path(folder))  # the default run, as the README says
        shutil.copyfile(run / "report.html", EXAMPLE)
    print(f"wrote {EXAMPLE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
