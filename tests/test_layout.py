"""The package reads one way: no module imports, even inside a function or for type checking only, a module
that imports it back."""

import ast
import re
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "src" / "linreg"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_in(tree: ast.AST, when_run: bool = False) -> set[str]:
    """Every module a file's text imports, anywhere in it (`from linreg.x import y`: linreg.x and linreg.x.y);
    `when_run`: leaving out those for type checkers only (`if TYPE_CHECKING:`)."""
    if when_run and isinstance(tree, ast.If) and getattr(tree.test, "id", "") == "TYPE_CHECKING":
        return set()
    if isinstance(tree, ast.Import):
        return {alias.name for alias in tree.names}
    if isinstance(tree, ast.ImportFrom) and tree.module and tree.level == 0:
        return {tree.module, *(f"{tree.module}.{alias.name}" for alias in tree.names)}
    return set().union(*(imports_in(child, when_run) for child in ast.iter_child_nodes(tree)))


def imported_modules(path: Path, modules: set[str], when_run: bool = False) -> set[str]:
    """This package's modules that `path` imports."""
    return imports_in(ast.parse(path.read_text()), when_run) & modules


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


def import_graph(when_run: bool = False) -> tuple[dict[str, Path], dict[str, set[str]]]:
    """Each module's file, and the package's modules it imports."""
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {module: imported_modules(path, set(paths), when_run) - {module} for module, path in paths.items()}
    return paths, graph


def test_the_import_graph_has_no_cycle():
    _, graph = import_graph()

    assert cycle_in(graph) is None, " → ".join(cycle_in(graph))
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # (the check finds one)


def test_importing_the_model_imports_no_table_reader():
    paths, graph = import_graph(when_run=True)
    reached, waiting = set(), ["linreg.model"]
    while waiting:
        module = waiting.pop()
        reached.add(module)
        waiting += graph[module] - reached

    assert not any(module.startswith("linreg.data") for module in reached), sorted(reached)
    for module in reached:
        packages = {name.partition(".")[0] for name in imports_in(ast.parse(paths[module].read_text()), when_run=True)}
        assert not packages & {"pandas", "pyarrow"}, module


def headings(path: Path) -> list[str]:
    """The section titles of a Markdown file (code blocks' comment lines are not headings)."""
    titles, in_code = [], False
    for line in path.read_text().splitlines():
        in_code ^= line.startswith("```")
        if not in_code and line.startswith("#"):
            titles.append(line.lstrip("#").strip())
    return titles


def test_every_section_that_a_message_or_a_config_cites_exists():
    cited = re.compile(r'(README|docs/[\w-]+\.md)[:,] "([^"]+)"')
    sources = [*PACKAGE.rglob("*.py"), *(ROOT / "configs").rglob("*.yaml"), ROOT / "README.md"]
    citations = {match.groups() for path in sources for match in cited.finditer(path.read_text())}

    assert len(citations) >= 4  # (the sections that messages and configs point to)
    for file, section in citations:
        titles = headings(ROOT / ("README.md" if file == "README" else file))
        assert any(title.startswith(section) for title in titles), f'{file}: "{section}" is no section of it'


def test_the_readme_is_an_entrance_that_links_every_page_of_the_manual():
    readme = (ROOT / "README.md").read_text()

    assert len(readme.encode()) <= 15_000 and "make train" in readme and "make test" in readme
    for page in (ROOT / "docs").glob("*.md"):
        assert f"](docs/{page.name})" in readme, page.name
