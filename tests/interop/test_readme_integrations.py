"""The README's "Working with the tools you already use" section: its Python snippets run as
written, and the extras it lists are the ones pyproject.toml installs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Working with the tools you already use")
    return text[start : text.index("\n## ", start + 1)]


def _python_block(containing: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", _section(), flags=re.S)
    matches = [block for block in blocks if containing in block]
    assert len(matches) == 1, (containing, len(matches))
    return matches[0]


def test_the_sklearn_snippet_defines_what_it_uses_and_runs(capsys):
    """Regression: it used X and y without defining them."""
    pytest.importorskip("sklearn")
    exec(compile(_python_block("from gradwise.sklearn import"), "README", "exec"), {})
    assert float(capsys.readouterr().out) > 0.9


def test_the_run_snippet_rebuilds_a_trained_run(tmp_path, capsys):
    from gradwise.cli import main

    run_dir = tmp_path / "mlp"
    config = tmp_path / "small.toml"
    config.write_text('recipe = "digits-mlp"\nhidden = [8]\n')
    assert main(["train", "--config", str(config), "--epochs", "1", "--limit-train", "32",
                 "--no-doctor", "--quiet", "--out", str(run_dir)]) == 0
    capsys.readouterr()
    code = _python_block("load_run(")
    assert '"runs/fashion-cnn-20240101-120000"' in code
    code = code.replace('"runs/fashion-cnn-20240101-120000"', repr(str(run_dir)))
    namespace: dict = {}
    exec(compile(code, "README", "exec"), namespace)
    assert capsys.readouterr().out.strip() in namespace["classes"]
    keys = list(namespace["run"].model.state_dict())
    assert keys[0] == "1.weight", keys  # the MLP's layer 0 is a Flatten, as the README says


def test_the_extras_table_is_what_pyproject_installs():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    rows = re.findall(r"\| `pip install 'gradwise\[(\w+)\]'` \| ([^|]+) \|", _section())
    assert {name for name, _ in rows} == {"onnx", "tensorboard", "notebook"}
    for name, packages in rows:
        installed = {re.split(r"[<>=!~ ]", requirement)[0] for requirement in extras[name]}
        assert installed == {p.strip() for p in packages.split(",")}, name
    # regression: no onnxruntime, no tensorboard app, no way to open the notebook
    assert "onnxruntime" in str(extras["onnx"]) and "tensorboard>" in str(extras["tensorboard"])
    assert "notebook>" in str(extras["notebook"])
