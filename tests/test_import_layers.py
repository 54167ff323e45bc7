"""The package has no import cycle between its files and no import up the layers of docs/architecture.md
(function-level and type-only imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "distill"


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_graph() -> dict[Path, set[Path]]:
    """file → the package files it imports (``from pkg import submodule`` points at the submodule)."""
    graph: dict[Path, set[Path]] = {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        targets: set[Path] = set()
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{a.name}" if _module_file(f"{node.module}.{a.name}") else node.module
                         for a in node.names]  # fmt: skip
            for name in names:
                target = _module_file(name) if name.split(".")[0] == "distill" else None
                if target is not None and target != path:
                    targets.add(target)
        graph[path] = targets
    return graph


def test_no_import_cycle_between_files():
    graph = import_graph()
    state: dict[Path, int] = {}  # 1: on the current path, 2: done
    stack: list[Path] = []

    def visit(node: Path) -> list[Path] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            raise AssertionError("import cycle: " + " -> ".join(str(p.relative_to(ROOT)) for p in cycle))


def documented_layers() -> list[list[str]]:
    """The layer list of docs/architecture.md (between the ``layers`` markers), top layer first."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("<!-- layers", 1)[1].split("<!-- /layers -->", 1)[0]
    body = block.split("```", 2)[1]
    return [line.split() for line in body.splitlines() if line.strip()]


def layer_of(path: Path, layers: list[list[str]]) -> int:
    """The index of the layer that holds ``path`` (0: the top); a file no layer names is an error."""
    for index, names in enumerate(layers):
        if _holds(names, path):
            return index
    raise AssertionError(f"{path.relative_to(ROOT)}: in no layer of docs/architecture.md; add it to one")


def upward_imports(graph: dict[Path, set[Path]], layers: list[list[str]]) -> list[str]:
    return [
        f"{src.relative_to(ROOT)} (layer {layer_of(src, layers) + 1}) imports {dst.relative_to(ROOT)} "
        f"(layer {layer_of(dst, layers) + 1})"
        for src, targets in sorted(graph.items())
        for dst in sorted(targets)
        if layer_of(dst, layers) < layer_of(src, layers)
    ]


def test_every_import_goes_down_the_documented_layers():
    layers = documented_layers()
    assert layers[0] == ["cli.py", "__main__.py"] and "registry.py" in layers[-1]
    graph = import_graph()
    for path in graph:  # every file is in exactly one layer
        assert sum(_holds(names, path) for names in layers) == 1, path
    assert upward_imports(graph, layers) == []


def _holds(names: list[str], path: Path) -> bool:
    top = path.relative_to(PACKAGE).parts[0]
    return f"{top}/" in names or top in names


def test_the_layer_check_fails_on_an_upward_import():
    layers = documented_layers()
    engine, tasks = PACKAGE / "engine" / "trainer.py", PACKAGE / "tasks" / "base.py"
    found = upward_imports({engine: {tasks}, tasks: {engine}}, layers)
    assert found == ["distill/engine/trainer.py (layer 6) imports distill/tasks/base.py (layer 4)"]
