"""The README's doctor examples print what the README says (up to measured times and overhead)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
GRADWISE = Path(sys.executable).with_name("gradwise")
_MEASURED = [(re.compile(r"overhead \d+(\.\d+)?%"), "overhead N%"),
             (re.compile(r"epochs in \d+(\.\d+)?s"), "epochs in Ns")]


def _normalised(text: str) -> str:
    for pattern, replacement in _MEASURED:
        text = pattern.sub(replacement, text)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start:end if end >= 0 else None]


def _blocks(section: str) -> list[str]:
    return [block.split("\n", 1)[1] for block in re.findall(r"```[a-z]*\n.*?```", section, re.S)]


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1")


def test_hand_written_loop_example_prints_what_the_readme_shows(tmp_path):
    code, shown = _blocks(_section("## The doctor in your own training loop"))
    script = tmp_path / "example.py"
    script.write_text(code.removesuffix("```"), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=_env(), timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert _normalised(done.stdout) == _normalised(shown.removesuffix("```"))


def test_cli_transcript_is_what_the_command_prints(tmp_path):
    transcript = _blocks(_section("## The doctor catches a planted failure"))[0]
    transcript = transcript.removesuffix("```").strip().splitlines()
    command, shown = transcript[0].removeprefix("$ ").split(), "\n".join(transcript[1:])
    assert command[0] == "gradwise"
    done = subprocess.run([str(GRADWISE), *command[1:], "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, env=_env(), timeout=300,
                          check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.split("\nRun folder:")[0]
    assert _normalised(printed) == _normalised(shown)
