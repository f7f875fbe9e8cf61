"""The package's shape, as docs/architecture.md states it: layers import downward only, no cycles,
no module outside a layer, no class over 400 lines. Imports are read from the source (lazy ones
inside functions and under TYPE_CHECKING count too), so nothing is imported to check."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "labviz"

#: Each module's layer, by folder (docs/architecture.md); the face's modules sit at the top.
LAYERS = {"core": 1, "compute": 2, "zoo": 2, "classroom": 2, "studies": 3, "figures": 3,
          "widgets": 4, "servers": 5}
FACE = {"labviz", "labviz.cli", "labviz.report", "labviz._moved"}
#: Within layer 2, the order the folders may import each other in (lower first).
LAYER_2_ORDER = ("compute", "zoo", "classroom")
MAX_CLASS_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def imports(tree: ast.Module) -> set[str]:
    """The labviz modules a module imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "labviz":
            for alias in node.names:  # `from labviz.x import y`: y may be a module or a name in x
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in SOURCES else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "labviz"}
    return {m for m in found if m in SOURCES}


GRAPH = {name: imports(tree) - {name} for name, tree in SOURCES.items()}


def rank(module: str) -> tuple[int, int]:
    if module in FACE:
        return (6, 0)
    folder = module.split(".")[1]
    return (LAYERS[folder], LAYER_2_ORDER.index(folder) if folder in LAYER_2_ORDER else 0)


def test_every_module_sits_in_a_layer():
    unplaced = [m for m in SOURCES if m not in FACE and (m.count(".") < 1 or m.split(".")[1] not in LAYERS)]
    assert unplaced == []


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_module_imports_one_above_it(module):
    above = sorted(d for d in GRAPH[module] if rank(d) > rank(module))
    assert above == [], f"{module} (layer {rank(module)}) imports {above}"


def test_no_import_cycles():
    cycles, state = [], {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = "open"
        for d in sorted(GRAPH[m]):
            if state.get(d) == "open":
                cycles.append(path[path.index(d):] + [d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = "done"

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_no_class_over_400_lines():
    large = [(m, n.name, n.end_lineno - n.lineno) for m, tree in SOURCES.items()
             for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.end_lineno - n.lineno > MAX_CLASS_LINES]
    assert large == []


def test_the_checker_sees_imports_inside_functions():
    tree = ast.parse("def f():\n    from labviz.compute import calibration\n")
    assert imports(tree) == {"labviz.compute.calibration"}
