"""Layering rules of DESIGN.md, checked on the real import graph."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules_of(folder: str) -> list[str]:
    return [f"llmos.{folder}.{m.name}" for m in pkgutil.iter_modules([str(ROOT / folder)])]


def imported_after(modules: list[str]) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_kernel_memory_devices_never_import_textual():
    mods = modules_of("kernel") + modules_of("memory") + modules_of("devices")
    assert len(mods) >= 3
    loaded = imported_after(mods)
    assert not any(m == "textual" or m.startswith("textual.") for m in loaded)


def test_memory_and_devices_never_import_the_kernel():
    loaded = imported_after(modules_of("memory") + modules_of("devices"))
    assert not any(m.startswith("llmos.kernel") for m in loaded)


def test_no_bare_top_level_imports():
    for path in ROOT.glob("*/*.py"):
        if path.parts[-2] in {"kernel", "memory", "devices", "apps", "llmos"}:
            for line in path.read_text().splitlines():
                stripped = line.strip()
                for bare in ("kernel", "memory", "devices", "apps"):
                    assert not stripped.startswith((f"import {bare}", f"from {bare} ")), f"{path}: {line}"


# -- the import graph: no circles, nothing imported from a higher layer ------------------------

PACKAGES = {"llmos": "llmos", "llmos.kernel": "kernel", "llmos.memory": "memory", "llmos.devices": "devices",
            "llmos.apps": "apps"}
BASE = {"llmos", "llmos.errors", "llmos.paths", "llmos.term", "llmos.plugins"}
"""The shared base every layer may use: the package itself (``__version__``; its SDK names are
re-exported lazily), the error family, the data and config paths, terminal-safe text, and the
entry-point table of plugins (llmos/__init__.py says why they live in the package folder)."""


def layer(module: str) -> int:
    if module in BASE:
        return 0
    if module.startswith(("llmos.memory", "llmos.devices")):
        return 1
    if module.startswith("llmos.kernel"):
        return 2
    if module.startswith("llmos.apps"):
        return 3
    return 4  # the shell: CLI, TUI, benchmarks


def import_graph() -> dict[str, set[str]]:
    """Module -> the llmos modules it imports, at any depth of its code (function-level imports
    count; ``if TYPE_CHECKING:`` blocks do not: they are never run)."""
    import ast

    modules: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            if package == "llmos" and parts and parts[0] in ("kernel", "memory", "devices", "apps"):
                continue
            modules[".".join([package, *parts])] = path
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
                found |= subs
                if len(subs) < len(node.names):
                    found.add(node.module)
        targets = set()
        for target in found:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def test_no_import_circles_anywhere():
    graph = import_graph()
    assert len(graph) > 60
    circles, index, low, stack, on_stack, counter = [], {}, {}, [], set(), [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                circles.append(sorted(part))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == []


def test_no_layer_imports_a_higher_one():
    graph = import_graph()
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer(b) > layer(a))
    assert upward == []
