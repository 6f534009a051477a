"""No import cycle anywhere in gradwise, counting every import farm-studio counts.

STYLE.md: imports run one way (autograd <- nn, optim, data <- train <- doctor, viz <- runs <-
cli) and there are no circles. The graph is test_import_structure's ``import_graph`` over all of
src/gradwise, with the imports inside functions and methods (they run at call time, but the
arrow still runs both ways) and those under ``if TYPE_CHECKING:`` (never run, but the module's
types still name the other; farm-studio counts them too).

One exclusion, to drop when branch ``engine-circle`` lands: the engine's own circle (the Tensor
methods import the ops inside their bodies; ops -> function.py -> tensor.py) is being taken
apart there, so circles that lie wholly inside the engine are not reported here: every module
in ``gradwise.autograd``, plus ``gradwise.linalg``, the engine's ``gw.linalg`` face that the
Tensor methods import (``Tensor.det`` ...) and so the one module outside autograd on that
circle. A circle with any other module in it fails, naming one path around it.
"""

from __future__ import annotations

from pathlib import Path

from tests.autograd.test_import_structure import PACKAGE_ROOT, circles, import_graph

ENGINE_PACKAGE = "gradwise.autograd"
ENGINE_FACES = {"gradwise.linalg"}
"""Outside autograd but on the engine's circle (see the module docstring)."""

ABOVE_TRAIN = ("gradwise.doctor", "gradwise.viz", "gradwise.runs", "gradwise.cli")
"""The layers above the training loop (STYLE.md), which gradwise.train must not import."""


def package_graph(root: Path = PACKAGE_ROOT / "gradwise",
                  package_root: Path = PACKAGE_ROOT) -> dict[str, set[str]]:
    """Every import of every module under ``root``: module level, inside functions and
    methods, and under ``if TYPE_CHECKING:``."""
    return import_graph(root, package_root, include_functions=True, include_type_checking=True)


def _in_engine(module: str) -> bool:
    return (module == ENGINE_PACKAGE or module.startswith(ENGINE_PACKAGE + ".")
            or module in ENGINE_FACES)


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


def circles_outside_the_engine(graph: dict[str, set[str]]) -> list[str]:
    """Each circle with a module outside the engine, as ``a -> b -> ... -> a (N modules: ...)``."""
    found = []
    for group in circles(graph):
        if all(_in_engine(module) for module in group):
            continue
        found.append(" -> ".join(a_cycle(graph, group))
                     + f"   ({len(group)} modules in this circle: {', '.join(sorted(group))})")
    return found


def test_gradwise_has_no_import_cycle_outside_the_engine():
    graph = package_graph()
    assert {"gradwise.train.trainer", "gradwise.doctor.doctor", "gradwise.cli"} <= set(graph)
    found = circles_outside_the_engine(graph)
    assert not found, "import circles in gradwise (imports inside functions and under " \
        "TYPE_CHECKING counted):\n" + "\n".join(found)


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


def test_the_checker_names_the_old_train_doctor_circle(tmp_path):
    # the shape main had: doctor -> doctor.doctor -> train.callbacks, which names Trainer under
    # TYPE_CHECKING, and the trainer imports the doctor inside a function; plus a circle
    # wholly inside the engine, which is not reported
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
    graph = package_graph(tmp_path / "gradwise", tmp_path)
    assert circles_outside_the_engine(graph) == [
        "gradwise.doctor -> gradwise.doctor.doctor -> gradwise.train.callbacks -> "
        "gradwise.train.trainer -> gradwise.doctor   (4 modules in this circle: "
        "gradwise.doctor, gradwise.doctor.doctor, gradwise.train.callbacks, "
        "gradwise.train.trainer)"]
    # the fix: the Callback base below both, the trainer not importing the doctor
    _write_package(tmp_path, {
        "gradwise/train/events.py": "class Callback: ...\n",
        "gradwise/train/callbacks.py": "from gradwise.train.events import Callback\n",
        "gradwise/doctor/doctor.py": "from gradwise.train.events import Callback\n",
        "gradwise/train/trainer.py": "from gradwise.train.events import Callback\n",
    })
    assert circles_outside_the_engine(package_graph(tmp_path / "gradwise", tmp_path)) == []
    # an engine circle that reaches out of the engine (here into nn) is reported
    _write_package(tmp_path, {
        "gradwise/nn/__init__.py": "from gradwise.autograd.tensor import Tensor\n",
        "gradwise/autograd/tensor.py": "def det():\n    from gradwise import linalg, nn\n",
    })
    found = circles_outside_the_engine(package_graph(tmp_path / "gradwise", tmp_path))
    assert len(found) == 1 and found[0].startswith(
        "gradwise.autograd.tensor -> gradwise.linalg -> gradwise.autograd.tensor   (3 modules")
