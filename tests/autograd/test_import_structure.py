"""The engine's modules import one another one way: no cycle inside gradwise.autograd.

Read from the source with ast, counting every module-level import (at the bottom of a file too,
inside ``try`` and ``if``) and, where asked, the imports inside functions and methods, but not
those under ``if TYPE_CHECKING:`` (never run: tensor.py names the four modules of Tensor's
op-running methods there, so type checkers see the methods autograd/attach.py sets on the class).
``from package import name`` counts as an import of the submodule when ``name`` is one, else of
the package itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "src"
ENGINE = PACKAGE_ROOT / "gradwise" / "autograd"


def _module_name(path: Path, package_root: Path) -> str:
    parts = list(path.relative_to(package_root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(tree: ast.Module, module: str, is_package: bool, known: set[str],
              include_functions: bool = False, include_type_checking: bool = False) -> set[str]:
    """The modules of ``known`` that ``module`` imports when it is imported (and, with
    ``include_functions``, also those its functions and methods import when they run; with
    ``include_type_checking``, also those it names under ``if TYPE_CHECKING:``, as
    farm-studio counts them)."""
    found: set[str] = set()

    def resolve(name: str) -> None:
        parts = name.split(".")
        for end in range(len(parts), 0, -1):  # the longest known module it names
            candidate = ".".join(parts[:end])
            if candidate in known:
                found.add(candidate)
                return

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If):
                if include_type_checking or not _is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    resolve(alias.name)
            elif include_functions and isinstance(
                    node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.With
                    | ast.For | ast.While):
                visit(node.body)
                visit(getattr(node, "orelse", []))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                for alias in node.names:
                    resolve(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)

    visit(tree.body)
    found.discard(module)
    return found


def import_graph(root: Path = ENGINE, package_root: Path = PACKAGE_ROOT,
                 include_functions: bool = False,
                 include_type_checking: bool = False) -> dict[str, set[str]]:
    """module -> the modules under ``root`` it imports (names relative to ``package_root``)."""
    files = {_module_name(path, package_root): path for path in root.rglob("*.py")}
    known = set(files)
    return {name: _imported(ast.parse(path.read_text(encoding="utf-8")), name,
                            path.name == "__init__.py", known, include_functions,
                            include_type_checking)
            for name, path in files.items()}


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of two or more modules (Tarjan): each is one circle of
    imports, however many paths run around it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: each one found as a path that comes back to its start."""
    found, state = [], {}  # state: 1 on the current path, 2 finished

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                walk(target, path + [target])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            walk(start, [start])
    return found


def test_the_cycle_finder_finds_a_cycle_through_a_bottom_import(tmp_path):
    # the shape the engine had: tensor imports the ops at its bottom, function imports Tensor
    # at its bottom, the ops import function; a TYPE_CHECKING import and one inside a function
    # do not count
    package = tmp_path / "gradwise" / "autograd"
    (package / "ops").mkdir(parents=True)
    (tmp_path / "gradwise" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("from gradwise.autograd.tensor import Tensor\n")
    (package / "ops" / "__init__.py").write_text("")
    (package / "tensor.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from gradwise.autograd.function import Function\nclass Tensor: ...\n"
        "from gradwise.autograd.ops import add  # noqa: E402\n")
    (package / "function.py").write_text(
        "def late():\n    from gradwise.autograd import tensor\nclass Function: ...\n"
        "from gradwise.autograd.tensor import Tensor  # noqa: E402\n")
    (package / "ops" / "add.py").write_text("from ..function import Function\n")
    graph = import_graph(package, tmp_path)
    assert graph["gradwise.autograd.tensor"] == {"gradwise.autograd.ops.add"}
    assert graph["gradwise.autograd.ops.add"] == {"gradwise.autograd.function"}
    assert cycles(graph) == [["gradwise.autograd.tensor", "gradwise.autograd.ops.add",
                              "gradwise.autograd.function", "gradwise.autograd.tensor"]]
    (package / "function.py").write_text("class Function: ...\n")
    assert cycles(import_graph(package, tmp_path)) == []


def test_the_engine_imports_run_one_way_even_inside_functions():
    # An import inside a function runs at call time, so a circle through one breaks nothing at
    # import, but the arrows still run both ways: a reader of either module meets the other's
    # names before their use. Read over the whole package, so a circle that leaves the engine
    # and comes back (it once ran through gradwise.linalg) counts, and so does one elsewhere.
    graph = import_graph(PACKAGE_ROOT / "gradwise", include_functions=True)
    assert "gradwise.autograd.tensor" in graph and "gradwise.autograd.ops.elementwise" in graph
    found = cycles(graph)
    assert not found, "import cycles (imports inside functions counted):\n" + "\n".join(
        " -> ".join(cycle) for cycle in found)


def test_function_level_imports_count_when_asked(tmp_path):
    package = tmp_path / "gradwise"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def late():\n    from gradwise import b\n")
    (package / "b.py").write_text("import gradwise.a\n")
    assert circles(import_graph(package, tmp_path)) == []
    assert circles(import_graph(package, tmp_path, include_functions=True)) == [
        {"gradwise.a", "gradwise.b"}]
