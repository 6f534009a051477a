"""Run every example in README.md and compare what it prints with what the README says.

Two kinds of blocks are checked, each in a fresh process in an empty temporary folder (so a
result that depends on the process, such as unseeded weights, shows up as a difference):

- ```python blocks: every ``print(...)`` line carries the exact line it prints as its trailing
  comment (``print(x)  # 0.965``). ``...`` in a comment stands for any text (used for the
  doctor's sampling counts and overhead, which depend on the machine's speed).
- a python block after ``<!-- output checked by TEST -->`` is left to that test.
- a python block right after the line ``<!-- fragment -->`` is a fragment that uses names from
  the reader's own code (``model``, ``X``) or files (a run folder); it is only parsed.
- transcript blocks (a plain ``` block whose first line is ``$ gradwise ...``): the command is
  run and its output (stdout then stderr) must equal the lines after it, once wall times,
  overhead percentages, sampled-step counts and run-folder dates are replaced by placeholders;
  a transcript may end before the ``Run folder:`` line.

Usage: ``.venv/bin/python tools/readme_check.py [README.md]`` prints each difference and exits 1
if there is any; ``tests/test_readme.py`` runs the same check. Run by a python that cannot import
gradwise's dependencies or has no ``gradwise`` command beside it (the system's, say), it prints
a one-line hint and exits 2.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TIMEOUT = 300

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
FRAGMENT_MARK = "<!-- fragment -->"
ELSEWHERE_MARK = "<!-- output checked by "
_PRINT_COMMENT = re.compile(r"^\s*print\(.*\)\s*#\s?(?P<expected>.*)$")
_VOLATILE = [  # (pattern, placeholder): what legitimately differs between two runs
    (re.compile(r"\b\d+(\.\d+)?s\b"), "<seconds>s"),
    (re.compile(r"overhead \d+(\.\d+)?%"), "overhead <p>%"),
    (re.compile(r"sampled \d+ of"), "sampled <n> of"),
    (re.compile(r"(runs/[\w.-]+?)-\d{8}-\d{6}(-\d+)?"), r"\1-<date>"),
]


@dataclass
class Block:
    """One checked block: ``kind`` is ``python`` or ``transcript``; ``line`` is 1-based."""

    kind: str
    line: int
    text: str


def blocks(readme: str) -> list[Block]:
    """The python and transcript blocks of ``readme``, in order."""
    found = []
    for match in _FENCE.finditer(readme):
        language, body = match.group(1), match.group(2)
        line = readme.count("\n", 0, match.start()) + 1
        before = readme[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if language == "python" and before.startswith(ELSEWHERE_MARK):
            continue  # its whole output is compared by the test the marker names
        if language == "python" and before.strip() == FRAGMENT_MARK:
            found.append(Block("fragment", line, body))
        elif language == "python":
            found.append(Block("python", line, body))
        elif language == "" and body.startswith("$ gradwise "):
            found.append(Block("transcript", line, body))
    return found


def _run(args: list[str], folder: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONHASHSEED="0", COLUMNS="100")
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "") if env.get(
        "PYTHONPATH") else src
    return subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)


def _matches(expected: str, actual: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual) is not None


def check_python(block: Block) -> list[str]:
    """Differences between a python block's print comments and what it prints."""
    expected = [m.group("expected").rstrip() for m in map(_PRINT_COMMENT.match,
                                                           block.text.splitlines()) if m]
    prints = sum(1 for line in block.text.splitlines() if line.lstrip().startswith("print("))
    problems = []
    if prints != len(expected):
        problems.append(f"README.md:{block.line}: {prints - len(expected)} print line(s) "
                        "without the expected output as a trailing comment")
    with tempfile.TemporaryDirectory() as folder:
        result = _run([sys.executable, "-c", block.text], folder)
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["?"]
        return [*problems, f"README.md:{block.line}: the block fails: {tail[0]}"]
    actual = result.stdout.rstrip("\n").splitlines()
    if len(actual) != len(expected):
        problems.append(f"README.md:{block.line}: {len(expected)} commented print(s) but "
                        f"{len(actual)} printed line(s): {actual}")
    for wanted, got in zip(expected, actual, strict=False):
        if not _matches(wanted, got):
            problems.append(f"README.md:{block.line}: README says {wanted!r}, the code prints "
                            f"{got!r}")
    return problems


def normalise(text: str) -> str:
    """``text`` with the volatile parts (times, overhead, sample counts, dates) replaced."""
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    return text


def check_transcript(block: Block) -> list[str]:
    """Differences between a ``$ gradwise ...`` transcript and what the command prints."""
    command, _, shown = block.text.partition("\n")
    args = shlex.split(command[2:])
    gradwise = Path(sys.executable).with_name("gradwise")
    with tempfile.TemporaryDirectory() as folder:
        result = _run([str(gradwise), *args[1:]], folder)
    actual = normalise((result.stdout + result.stderr).rstrip("\n")).splitlines()
    wanted = normalise(shown.rstrip("\n")).splitlines()
    if not any(line.startswith("Run folder: ") for line in wanted):
        # a transcript may stop before the closing lines that name the (temporary) run folder
        actual = actual[:next((i for i, line in enumerate(actual)
                               if line.startswith("Run folder: ")), len(actual))]
    if actual == wanted:
        return []
    first = next((i for i, (a, b) in enumerate(zip(wanted, actual, strict=False)) if a != b),
                 min(len(wanted), len(actual)))
    return [f"README.md:{block.line}: `{command[2:]}` output differs from line {first + 1} of "
            f"the transcript:\n  README: {wanted[first:first + 3]}\n  actual: "
            f"{actual[first:first + 3]}"]


def check(readme_path: Path = README) -> dict[int, list[str]]:
    """Block line -> its differences (an empty list when the block matches)."""
    readme = readme_path.read_text(encoding="utf-8")
    checks = {"python": check_python, "transcript": check_transcript,
              "fragment": check_fragment}
    return {block.line: checks[block.kind](block) for block in blocks(readme)}


def check_fragment(block: Block) -> list[str]:
    """A fragment is not run (it needs the reader's names or files); it must parse."""
    try:
        compile(block.text, f"README.md:{block.line}", "exec")
    except SyntaxError as error:
        return [f"README.md:{block.line}: the fragment does not parse: {error.msg}"]
    return []


def environment_problem(python: str = sys.executable) -> str | None:
    """Why ``python`` cannot run the README's examples (gradwise, its dependencies or the
    ``gradwise`` command beside it missing), or None when it can."""
    if not Path(python).with_name("gradwise").is_file():
        return f"no gradwise command beside {python}"
    with tempfile.TemporaryDirectory() as folder:
        result = _run([python, "-c", "import gradwise, numpy, scipy, sklearn, matplotlib"],
                      folder)
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["?"]
        return f"{python} cannot import gradwise's dependencies ({tail[0]})"
    return None


def main(argv: list[str]) -> int:
    """Check the README named in ``argv`` (default the repository's); 1 when anything drifted,
    2 (with a one-line hint) when this python cannot run the examples."""
    problem = environment_problem()
    if problem is not None:
        print(f"readme_check: {problem}; run it with the project's environment: "
              ".venv/bin/python tools/readme_check.py (see the README's Quick start)",
              file=sys.stderr)
        return 2
    path = Path(argv[0]) if argv else README
    problems = [problem for found in check(path).values() for problem in found]
    print("\n".join(problems) or f"{path}: every example prints what it says")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
