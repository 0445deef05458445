"""The package reads one way: no module imports, even inside a function or for type checking only, a module
that imports it back."""

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "src" / "linreg"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """This package's modules that `path` imports anywhere in its text (`from linreg.x import y`: linreg.x, and
    linreg.x.y where y is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found & modules


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, as the modules along it, or None."""
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for other in sorted(graph[module]):
            if state.get(other) == "open":
                return [*path[path.index(other) :], other]
            if other not in state and (found := visit(other, [*path, other])):
                return found
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module, [module])):
            return found
    return None


def test_the_import_graph_has_no_cycle():
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {module: imported_modules(path, set(paths)) - {module} for module, path in paths.items()}

    assert cycle_in(graph) is None, " → ".join(cycle_in(graph))
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # (the check finds one)
