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
