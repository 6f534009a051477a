"""README.md's examples print what the README says they print (tools/readme_check.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_checker():
    path = ROOT / "tools" / "readme_check.py"
    spec = importlib.util.spec_from_file_location("readme_check", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


readme_check = _load_checker()
BLOCKS = readme_check.blocks(readme_check.README.read_text(encoding="utf-8"))
# blocks known to differ, by their first characters -> why (strict: a fixed block says so)
PENDING: dict[str, str] = {}


def _params():
    for block in BLOCKS:
        marks = [pytest.mark.xfail(reason=reason, strict=True)
                 for prefix, reason in PENDING.items() if block.text.startswith(prefix)]
        yield pytest.param(block, id=f"{block.kind}-line-{block.line}", marks=marks)


def test_the_readme_has_examples_of_both_kinds() -> None:
    kinds = [block.kind for block in BLOCKS]
    assert kinds.count("python") >= 3 and kinds.count("transcript") >= 1


@pytest.mark.parametrize("block", list(_params()))
def test_readme_example_prints_what_the_readme_says(block) -> None:
    check = {"python": readme_check.check_python, "transcript": readme_check.check_transcript,
             "fragment": readme_check.check_fragment}[block.kind]
    problems = check(block)
    assert problems == [], "\n".join(problems)


def test_the_checker_catches_drift(tmp_path) -> None:
    drifted = tmp_path / "README.md"
    drifted.write_text("```python\nprint(1 + 1)  # 3\nprint('x')\n```\n"
                       "```python\nprint('doctor: 5 of 9')  # doctor: ... of 9\n```\n"
                       "<!-- fragment -->\n```python\nmodel.fit(X)\n```\n"
                       "<!-- fragment -->\n```python\nprint(X\n```\n")
    found = readme_check.check(drifted)
    assert sorted(found) == [1, 5, 9, 13] and found[5] == found[9] == [], found
    assert "does not parse" in found[13][0]
    problems = found[1]
    assert any("README says '3', the code prints '2'" in p for p in problems), problems
    assert any("1 print line(s) without the expected output" in p for p in problems), problems
    assert readme_check.normalise("in 10.6s, overhead 1.0%, sampled 55 of 63, "
                                  "runs/xor-20240101-120000") == (
        "in <seconds>s, overhead <p>%, sampled <n> of 63, runs/xor-<date>")
