"""The layer rules of docs/architecture.md, checked on the source (no import is run).

Layers, top to bottom: ``main``/``cli``/``demo``/``docgen`` -> ``routers`` -> ``deps`` (request dependencies)
-> ``composition`` (the one place services are built) -> ``services`` -> ``schemas`` -> ``models`` -> ``core`` ->
``config``. A module may import its own layer and the
layers below it, never one above; imports under ``if TYPE_CHECKING:`` count too (they name a dependency), and
so do imports inside functions (a late import is still a dependency). There is no import cycle between modules
(type-checking-only imports excepted: they never run), and no module of ``app/`` is longer than ~400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
ORDER = ["config", "core", "models", "schemas", "services", "composition", "deps", "routers", "top"]
TOP = {"main", "cli", "demo", "docgen"}  # entry points: they may import anything
MAX_LINES = 430  # "about 400": a module that grows past this is split by concern


def _modules() -> dict[str, Path]:
    found = {}
    for path in APP.rglob("*.py"):
        name = ".".join(path.relative_to(APP.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _layer(module: str) -> str:
    part = module.split(".")[1] if "." in module else "top"
    return "top" if part in TOP or part == "app" else part


def _imports(path: Path, *, runtime_only: bool) -> set[str]:
    """The app modules ``path`` imports (``from app.x import y`` counts app.x.y when y is a module)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip |= {id(n) for child in node.body for n in ast.walk(child)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "app":
            named = {f"{node.module}.{a.name}" for a in node.names} & MODULES.keys()
            found |= named or ({node.module} & MODULES.keys())  # `from app import composition` is app.composition
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in MODULES}
    return found


def test_no_module_imports_a_layer_above_its_own():
    wrong = []
    for module, path in MODULES.items():
        layer = _layer(module)
        for target in _imports(path, runtime_only=False):
            if ORDER.index(_layer(target)) > ORDER.index(layer):
                wrong.append(f"{module} ({layer}) imports {target} ({_layer(target)})")
    assert not wrong, "\n".join(sorted(wrong))


def test_there_is_no_import_cycle():
    graph = {m: _imports(p, runtime_only=True) for m, p in MODULES.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert not cycles, cycles


def test_no_module_is_longer_than_about_400_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_the_rules_see_a_violation():
    """The checks above would catch a service importing a router, and a real cycle."""
    assert ORDER.index(_layer("app.routers.orders")) > ORDER.index(_layer("app.services.orders"))
    assert _layer("app.demo.orders") == "top" and _layer("app.main") == "top"
    assert "app.services.order_lifecycle" in _imports(MODULES["app.services.refunds"], runtime_only=False)
    assert "app.services.order_lifecycle" not in _imports(MODULES["app.services.refunds"], runtime_only=True)
