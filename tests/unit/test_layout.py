"""The package's layout rules (docs/ARCHITECTURE.md): no import cycle between modules,
no module importing another module's private name, and each stage in its own folder."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "farm"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import of a farm module,
    at module level or inside a function."""
    found = []
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "farm":
                    found.append((alias.name, [], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "farm":
                continue
            plain = []
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in modules:  # `from package import module`
                    found.append((sub, [], node.lineno))
                else:
                    plain.append(alias.name)
            if plain or not node.names:
                found.append((target, plain, node.lineno))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for target, _names, _line in _imports(name, path, modules):
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def test_no_import_cycle_between_modules() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles (each line one set of modules that import each other):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_no_module_imports_another_modules_private_name() -> None:
    modules = _modules()
    offences = []
    for name, path in modules.items():
        for target, names, line in _imports(name, path, modules):
            for imported in names:
                if imported.startswith("_") and not imported.startswith("__"):
                    offences.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {imported} from {target}")
    assert not offences, "private names imported across modules:\n" + "\n".join(offences)


def test_no_module_at_the_package_top_but_the_entry_points() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py"], f"modules outside a stage folder: {top}"


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert _cycles(graph) == expected


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "farm"


def test_the_stage_folders_form_a_one_way_pipeline() -> None:
    """Not only modules: no stage folder reaches back into a stage that depends on it
    (e.g. board -> measure -> board), so the stages can be read in one order."""
    stages: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        stages.setdefault(_stage(module), set())
        for target in targets:
            if _stage(target) != _stage(module):
                stages[_stage(module)].add(_stage(target))
                stages.setdefault(_stage(target), set())
    cycles = _cycles(stages)
    assert not cycles, "stage folders that import each other: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_test_files_have_unique_names() -> None:
    """pytest imports test files by basename (no packages under tests/): two files of one name
    in tests/unit and tests/e2e stop the whole collection (farm/hil is collected apart, by
    `farm nightly`)."""
    tests = PACKAGE.parent / "tests"
    names = [p.name for folder in ("unit", "e2e") for p in (tests / folder).rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
