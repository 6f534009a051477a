"""No import cycle anywhere in gradwise, counting every import farm-studio counts.

STYLE.md: imports run one way (autograd <- nn, optim, data <- train <- doctor, viz <- runs <-
cli) and there are no circles. The graph is test_import_structure's ``import_graph`` over all of
src/gradwise, with the imports inside functions and methods (they run at call time, but the
arrow still runs both ways) and those under ``if TYPE_CHECKING:`` (never run, but the module's
types still name the other; farm-studio counts them too).

One exception, declared arrow by arrow: tensor.py names the four method mixins under
``if TYPE_CHECKING:`` so that type checkers see Tensor's methods (autograd/attach.py sets them on
the class at import, above the ops; the arrow never runs). Those arrows, and only those, are
taken out before the search; every other circle fails, naming one path around it. A test below
keeps them type-only (they must not appear in the graph of imports that run).
"""

from __future__ import annotations

from pathlib import Path

from tests.autograd.test_import_structure import PACKAGE_ROOT, circles, import_graph

TYPE_ONLY_ARROWS = {("gradwise.autograd.tensor", f"gradwise.autograd.{mixin}")
                    for mixin in ("tensor_methods", "tensor_extras", "tensor_more", "tensor_ops")}
"""tensor.py -> the method mixins, under TYPE_CHECKING only (see the module docstring)."""

ABOVE_TRAIN = ("gradwise.doctor", "gradwise.viz", "gradwise.runs", "gradwise.cli")
"""The layers above the training loop (STYLE.md), which gradwise.train must not import."""


def package_graph(root: Path = PACKAGE_ROOT / "gradwise",
                  package_root: Path = PACKAGE_ROOT) -> dict[str, set[str]]:
    """Every import of every module under ``root``: module level, inside functions and
    methods, and under ``if TYPE_CHECKING:``."""
    return import_graph(root, package_root, include_functions=True, include_type_checking=True)


def without_type_only_arrows(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``graph`` less the declared :data:`TYPE_ONLY_ARROWS`."""
    return {module: {t for t in targets if (module, t) not in TYPE_ONLY_ARROWS}
            for module, targets in graph.items()}


def a_cycle(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """One shortest path around the circle ``group`` (a strongly connected group of
    ``graph``), from its first module (sorted) back to it."""
    start = min(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"{sorted(group)} is not a circle of the graph")


def import_circles(graph: dict[str, set[str]]) -> list[str]:
    """Each circle of ``graph``, as ``a -> b -> ... -> a (N modules: ...)``."""
    return [" -> ".join(a_cycle(graph, group))
            + f"   ({len(group)} modules in this circle: {', '.join(sorted(group))})"
            for group in circles(graph)]


def test_gradwise_has_no_import_cycle():
    graph = package_graph()
    assert {"gradwise.train.trainer", "gradwise.doctor.doctor", "gradwise.cli"} <= set(graph)
    found = import_circles(without_type_only_arrows(graph))
    assert not found, "import circles in gradwise (imports inside functions and under " \
        "TYPE_CHECKING counted):\n" + "\n".join(found)


def test_the_declared_type_only_arrows_exist_and_never_run():
    with_types = package_graph()
    running = import_graph(PACKAGE_ROOT / "gradwise", PACKAGE_ROOT, include_functions=True)
    for module, target in TYPE_ONLY_ARROWS:
        assert target in with_types[module], f"{module} -> {target} is gone: take it off the list"
        assert target not in running[module], f"{module} imports {target} where it runs"


def test_the_training_layer_imports_nothing_above_it():
    graph = package_graph()
    upward = sorted(f"{module} -> {target}" for module, targets in graph.items()
                    if module.startswith("gradwise.train") for target in targets
                    if target.startswith(ABOVE_TRAIN))
    assert not upward, "gradwise.train imports a layer above it (STYLE.md: train <- doctor, " \
        "viz <- runs <- cli):\n" + "\n".join(upward)


def _write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_names_the_old_circles(tmp_path):
    # the shape main had: doctor -> doctor.doctor -> train.callbacks, which names Trainer under
    # TYPE_CHECKING, and the trainer imports the doctor inside a function; and the engine's
    # Tensor method importing gradwise.linalg inside its body
    _write_package(tmp_path, {
        "gradwise/__init__.py": "",
        "gradwise/doctor/__init__.py": "from gradwise.doctor.doctor import Doctor\n",
        "gradwise/doctor/doctor.py": "from gradwise.train.callbacks import Callback\n",
        "gradwise/train/__init__.py": "",
        "gradwise/train/callbacks.py":
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from gradwise.train.trainer import Trainer\nclass Callback: ...\n",
        "gradwise/train/trainer.py":
            "class Trainer:\n    def doctor(self):\n        from gradwise.doctor import Doctor\n",
        "gradwise/autograd/__init__.py": "",
        "gradwise/autograd/tensor.py": "def det():\n    from gradwise import linalg\n",
        "gradwise/linalg.py": "from gradwise.autograd.tensor import Tensor\n",
    })
    graph = without_type_only_arrows(package_graph(tmp_path / "gradwise", tmp_path))
    assert import_circles(graph) == [
        "gradwise.autograd.tensor -> gradwise.linalg -> gradwise.autograd.tensor   (2 modules "
        "in this circle: gradwise.autograd.tensor, gradwise.linalg)",
        "gradwise.doctor -> gradwise.doctor.doctor -> gradwise.train.callbacks -> "
        "gradwise.train.trainer -> gradwise.doctor   (4 modules in this circle: "
        "gradwise.doctor, gradwise.doctor.doctor, gradwise.train.callbacks, "
        "gradwise.train.trainer)"]
    # the fixes: the Callback base below both, the trainer not importing the doctor; the
    # Tensor methods in a mixin above linalg, named by tensor.py under TYPE_CHECKING only
    _write_package(tmp_path, {
        "gradwise/train/events.py": "class Callback: ...\n",
        "gradwise/train/callbacks.py": "from gradwise.train.events import Callback\n",
        "gradwise/doctor/doctor.py": "from gradwise.train.events import Callback\n",
        "gradwise/train/trainer.py": "from gradwise.train.events import Callback\n",
        "gradwise/autograd/tensor.py":
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from gradwise.autograd.tensor_methods import TensorMethods\n",
        "gradwise/autograd/tensor_methods.py": "from gradwise import linalg\n",
    })
    graph = package_graph(tmp_path / "gradwise", tmp_path)
    assert len(import_circles(graph)) == 1  # the type-only arrow closes one, until taken out
    assert import_circles(without_type_only_arrows(graph)) == []
