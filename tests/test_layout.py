"""The package's shape: plain modules never import Dagster, no module imports one above it
(no import cycle, counting imports inside functions too), and only segment_cadence is
installed. Read with ast, nothing imported."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "segment_cadence"
DAGSTER = ("dagster", "dagster_dbt")

# The thin Dagster wrappers; every other module is plain logic.
DAGSTER_ALLOWED = {
    "segment_cadence.definitions",
    *(
        f"segment_cadence.platform.{m}"
        for m in (
            "resources",
            "partitions",
            "jobs",
            "schedules",
            "reaper",
            "run_origin",
            "progress",
            "instance_storage",
        )
    ),
}


def dagster_allowed(module: str) -> bool:
    parts = module.split(".")
    return (
        module in DAGSTER_ALLOWED
        or module.startswith("segment_cadence.cli")
        or (
            len(parts) == 4
            and parts[1] == "defs"
            and parts[3] in ("assets", "sensors", "dbt_assets")
        )
    )


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = ast.parse(path.read_text(), filename=str(path))
    return found


def imported(module: str, tree: ast.Module, known: set[str]) -> set[str]:
    """Every module this one imports, at module level or inside a function."""
    names: set[str] = set()
    is_package = f"{module}.__init__" in known or any(k.startswith(f"{module}.") for k in known)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                names.add(submodule if submodule in known else base)
    return names


def test_plain_modules_never_import_dagster() -> None:
    trees = modules()
    offenders = []
    for module, tree in trees.items():
        if dagster_allowed(module):
            continue
        for name in imported(module, tree, set(trees)):
            if name.split(".")[0] in DAGSTER:
                offenders.append(f"{module} imports {name}")
    assert offenders == []


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle in the graph as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_reports_the_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_among_segment_cadence_modules() -> None:
    trees = modules()
    known = set(trees)
    graph = {
        module: {name for name in imported(module, tree, known) if name in known} - {module}
        for module, tree in trees.items()
    }
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_only_segment_cadence_is_installed() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["tool"]["setuptools"]["packages"]["find"]["include"] == ["segment_cadence*"]
    for folder in ("assets", "sensors", "orchestration"):
        assert not (REPO / folder / "__init__.py").exists(), folder
    assert not list((REPO / "assets").glob("*.py"))
    assert not list((REPO / "sensors").glob("*.py"))
