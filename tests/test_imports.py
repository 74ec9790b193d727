"""Modules do one thing and data flows one way: no import circles among prewarm's modules.

The graph is built from the source (ast), every import counted, those inside functions too: a
lazy import that closes a circle is still a circle (it only hides it from the interpreter).
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

from .conftest import REPO

# Source folders by the package they install as (pyproject.toml, [tool.setuptools] package-dir).
PACKAGES = {"prewarm": REPO / "prewarm", "prewarm.forecasters": REPO / "forecasters",
            "prewarm.providers": REPO / "providers"}
# Circles known and being removed on another branch. Each entry is one circle's modules;
# a circle not listed here, or larger than its entry, fails the test.
KNOWN_CIRCLES: list[set[str]] = []  # none left: a new circle fails the test


def modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The prewarm modules `name` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from a import b`: b is a module of a, or a name in a.
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` where c is a name
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles_among_prewarm_modules():
    found = [c for c in circles(import_graph()) if c not in KNOWN_CIRCLES]
    assert not found, "import circles: " + "; ".join(" <-> ".join(sorted(c)) for c in found)


def test_the_circle_finder_finds_a_circle_through_a_lazy_import(tmp_path):
    # The finder itself: a function-level import closing a circle is found, a one-way chain is not.
    (tmp_path / "a.py").write_text("from .b import x\n")
    (tmp_path / "b.py").write_text("def x():\n    from .c import y\n    return y\n")
    (tmp_path / "c.py").write_text("from . import a\n")
    (tmp_path / "d.py").write_text("from .a import z\n")
    known = {f"pkg.{n}" for n in "abcd"}
    graph = {f"pkg.{n}": imports_of(f"pkg.{n}", tmp_path / f"{n}.py", known) for n in "abcd"}
    assert circles(graph) == [{"pkg.a", "pkg.b", "pkg.c"}]


def test_every_core_module_imports():
    # The core (not the providers' and forecasters' optional SDKs): each imports on its own.
    for name in sorted(modules()):
        if not name.startswith(("prewarm.providers", "prewarm.forecasters")):
            importlib.import_module(name)
