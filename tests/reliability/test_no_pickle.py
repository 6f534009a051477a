"""No pickle anywhere: the source never deserialises code, and crafted pickles are refused.

The source scan walks the AST of every module in the package (so ``model.eval()`` and the word
"pickle" in a docstring are fine) and fails on: importing pickle-family modules or torch,
calling the builtins eval/exec/compile/__import__, ``np.load`` without ``allow_pickle=False``,
``allow_pickle=True`` anywhere, ``torch.load`` and ``yaml.load``.

The payload tests hand every loader of untrusted files a pickle whose GLOBAL+REDUCE opcodes would
run ``os.system("touch MARKER")``; each loader must refuse it with its own error, and the marker
must never appear. The payloads are built byte by byte; nothing here ever unpickles them.
"""

from __future__ import annotations

import ast
import gzip
from pathlib import Path

import pytest

import gradwise
from reliability.harness import load_targets, pickle_payloads, torch_style_zip

PACKAGE_ROOT = Path(gradwise.__file__).parent

FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal",
                     "joblib", "torch", "copyreg"}
FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__"}


def unsafe_constructs(source: str, filename: str = "<source>") -> list[str]:
    """Every construct in ``source`` that could deserialise or run code, as 'file:line: what'."""
    problems = []

    def report(node: ast.AST, what: str) -> None:
        problems.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                    report(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
                report(node, f"from {node.module} import ...")
        elif isinstance(node, ast.keyword):
            if node.arg == "allow_pickle" and not (
                isinstance(node.value, ast.Constant) and node.value.value is False
            ):
                report(node.value, "allow_pickle not literally False")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_BUILTINS:
                report(node, f"call to builtin {func.id}()")
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                dotted = f"{func.value.id}.{func.attr}"
                if dotted in {"np.load", "numpy.load"} and not any(
                    k.arg == "allow_pickle" for k in node.keywords
                ):
                    report(node, f"{dotted}() without allow_pickle=False")
                elif dotted in {"torch.load", "yaml.load", "yaml.unsafe_load", "pd.read_pickle"}:
                    report(node, f"{dotted}()")
    return problems


def test_scanner_catches_every_unsafe_construct() -> None:
    """The scan is only worth something if it fires: one line per forbidden construct."""
    snippet = "\n".join(
        [
            "import pickle",
            "from dill import loads",
            "import torch",
            "x = eval('1')",
            "exec('pass')",
            "a = np.load(path)",
            "b = np.load(path, allow_pickle=True)",
            "c = torch.load(path)",
            "d = yaml.load(text)",
            "model.eval()",  # a method, fine
            "e = np.load(path, allow_pickle=False)",  # fine
        ]
    )
    assert len(unsafe_constructs(snippet)) == 9


def test_package_source_has_no_pickle_eval_or_unsafe_load() -> None:
    modules = sorted(PACKAGE_ROOT.rglob("*.py"))
    assert len(modules) > 10
    problems = [
        problem
        for module in modules
        for problem in unsafe_constructs(module.read_text(encoding="utf-8"), str(module))
    ]
    assert not problems, "unsafe constructs in the package:\n" + "\n".join(problems)


TARGETS = load_targets()


def _payload_files(marker: Path) -> dict[str, bytes]:
    payloads = pickle_payloads(marker)
    payloads["gzip_protocol2"] = gzip.compress(payloads["protocol2"])
    payloads["torch_zip"] = torch_style_zip(marker)
    return payloads


@pytest.mark.parametrize("target_name", sorted(TARGETS))
@pytest.mark.parametrize("payload_name", sorted(_payload_files(Path("m"))))
def test_crafted_pickle_is_refused_and_never_runs(
    tmp_path: Path, target_name: str, payload_name: str
) -> None:
    """Every loader refuses every payload, in place of its real file, with its own error."""
    target = TARGETS[target_name]
    marker = tmp_path / "PAYLOAD_RAN"
    path = target.write_valid(tmp_path)
    path.write_bytes(_payload_files(marker)[payload_name])
    if target.finalize is not None:  # re-sign, so the payload reaches the parser itself
        target.finalize(path)
    with pytest.raises(target.errors):
        target.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("payload_name", sorted(_payload_files(Path("m"))))
def test_checkpoint_loader_refuses_a_pickle_given_instead_of_a_checkpoint(
    tmp_path: Path, payload_name: str
) -> None:
    """A user pointing load_checkpoint at a 'model.pt' file gets a CheckpointError."""
    checkpoint = pytest.importorskip("gradwise.train.checkpoint")
    marker = tmp_path / "PAYLOAD_RAN"
    weights = tmp_path / "model.pt"
    weights.write_bytes(_payload_files(marker)[payload_name])
    with pytest.raises(checkpoint.CheckpointError, match="model.pt"):
        checkpoint.load_checkpoint(weights)
    assert not marker.exists()
