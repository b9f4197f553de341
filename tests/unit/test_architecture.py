"""The house: the spine imports nothing above it, stages never import each other, one top floor,
no import cycle between modules — counting imports inside functions and ``TYPE_CHECKING`` blocks,
so a local import cannot hide one."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LAYERS: list[set[str]] = [
    {"lifecycle"},  # the spine
    {"registry"},  # the registry adapter
    {"intake", "optimize", "serving", "rollout", "monitoring"},  # stages, independent of each other
    {"retrain"},  # distils, then optimizes (imports optimize)
    {"control"},  # the composition root and the control-plane process
    {"cli"},
    {"demo"},  # a client of everything; nothing imports it
]
LEVEL = {package: level for level, packages in enumerate(LAYERS) for package in packages}
ALLOWED_SIDEWAYS = {("retrain", "optimize")}
ONLY_IN = {"mlflow": {"registry"}, "bentoml": {"serving"}, "fastapi": {"serving", "control"}}


def _modules() -> dict[str, Path]:
    modules = {}
    for package in LEVEL:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports (any depth in the file), as dotted names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _resolve(target: str) -> str | None:
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


GRAPH: dict[str, set[str]] = defaultdict(set)
EXTERNAL: dict[str, set[str]] = defaultdict(set)
for _name, _path in MODULES.items():
    for _target in _imports(_name, _path):
        if (module := _resolve(_target)) is not None and module != _name:
            GRAPH[_name].add(module)
        elif _target.split(".")[0] not in LEVEL:
            EXTERNAL[_name].add(_target.split(".")[0])


def test_the_checker_sees_the_whole_project() -> None:
    assert len(MODULES) > 100 and {"serving.service", "control.compose", "lifecycle.contract"} <= set(MODULES)
    assert "lifecycle.contract" in GRAPH["intake.graph_contract"]  # a from-import of a module
    assert "lifecycle.scheduling" in GRAPH["control.compose"]  # an import inside a function


def test_every_import_points_down_or_within_its_own_package() -> None:
    upward = []
    for module, targets in GRAPH.items():
        source = module.split(".")[0]
        for target in targets:
            destination = target.split(".")[0]
            if destination == source or (source, destination) in ALLOWED_SIDEWAYS:
                continue
            if LEVEL[destination] >= LEVEL[source]:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(sorted(upward))


def test_no_import_cycle_between_modules() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
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
                cycles.append(sorted(component))

    for module in MODULES:
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("library", sorted(ONLY_IN))
def test_framework_libraries_stay_at_their_edge(library: str) -> None:
    users = sorted(
        m for m, libs in EXTERNAL.items() if library in libs and m.split(".")[0] not in ONLY_IN[library]
    )
    assert not users, f"{library} imported outside {ONLY_IN[library]}: {users}"


def test_nothing_imports_the_demo() -> None:
    importers = sorted(
        m
        for m, targets in GRAPH.items()
        if not m.startswith("demo") and any(t.startswith("demo") for t in targets)
    )
    assert not importers, importers


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def test_function_local_imports_say_why() -> None:
    """An import inside a function keeps a heavy library out of start-up, and says so in a comment
    (on its line, or above its block of imports); it never hides a cycle (the test above)."""
    silent = []
    for name, path in MODULES.items():
        source = path.read_text().splitlines()
        tree = ast.parse("\n".join(source))
        top = {id(node) for node in tree.body}
        typing_only = _type_checking_lines(tree)
        imports = [
            n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) and id(n) not in top
        ]
        covered = {line for n in imports for line in range(n.lineno, (n.end_lineno or n.lineno) + 1)}
        for node in imports:
            target = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            if not target or target.split(".")[0] not in LEVEL or node.lineno in typing_only:
                continue
            first = node.lineno
            while first - 1 in covered:
                first -= 1
            last = node.lineno
            while last + 1 in covered:
                last += 1
            block = source[first - 1 : last]
            if not any("#" in text for text in block) and not source[first - 2].strip().startswith("#"):
                silent.append(f"{name}:{node.lineno}: {source[node.lineno - 1].strip()}")
    assert not silent, "function-local imports without a reason:\n" + "\n".join(silent)
