"""The app table: built-in apps plus third-party ones from the ``llmos.apps`` entry points.

The same rules as the device table (``devices/registry.py``), so a plugin
author learns them once: a package declares

    [project.entry-points."llmos.apps"]
    hello = "llmos_hello:HelloApp"

:meth:`AppRegistry.list` reads entry points and package metadata and imports
no plugin. What a plugin's manifest says (description, devices) is read from
its source without running it (``ast``: only literal values), so listing a
broken or slow plugin costs nothing and cannot fail; a manifest built at
run time shows as unknown until the app is first used. :meth:`get` imports
the plugin the first time; a broken one (its import fails, it is not an
``App``, its manifest is missing or names another app) is reported by name,
never fatal. Listing, name clashes and the ``LLMOS_PLUGINS`` allow-list follow
the entry-point table both plugin groups share (``llmos/plugins.py``).
"""

from __future__ import annotations

import ast
import inspect
import sys
from dataclasses import dataclass
from importlib.machinery import PathFinder
from typing import Any

from llmos.apps.sdk import App, AppError, Manifest
from llmos.plugins import Plugin, load_class, scan

GROUP = "llmos.apps"
BUILTIN = "llmos (built-in)"
BUILTINS = {
    "chat": "llmos.apps.chat:ChatApp",
    "ask": "llmos.apps.ask:AskApp",
    "think": "llmos.apps.think:ThinkApp",
    "compare": "llmos.apps.compare:CompareApp",
    "summarize": "llmos.apps.summarize:SummarizeApp",
}


@dataclass
class AppInfo:
    """One row of ``llmos apps``."""

    name: str
    source: str
    """``llmos (built-in)`` or the distribution's name."""
    version: str
    description: str
    devices: list[str] | None
    """None when unknown without running the plugin."""
    loaded: bool
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "version": self.version,
                "description": self.description, "devices": self.devices, "loaded": self.loaded,
                "error": self.error}


class AppRegistry:
    """Finds apps by name."""

    def __init__(self) -> None:
        self._apps: dict[str, type[App]] = {}
        self._broken: dict[str, str] = {}
        self._plugins: dict[str, Plugin] | None = None

    def plugins(self) -> dict[str, Plugin]:
        """Installed plugin apps by the name they are used under, from metadata only."""
        if self._plugins is None:
            self._plugins = scan(GROUP, set(BUILTINS))
        return self._plugins

    def list(self) -> list[AppInfo]:
        from llmos import __version__

        rows = []
        for name, target in BUILTINS.items():
            m = load_class(target).manifest
            rows.append(AppInfo(name, BUILTIN, __version__, m.description, list(m.devices), True))
        for key, plugin in sorted(self.plugins().items()):
            cls = self._apps.get(key)
            if cls is not None:
                m = cls.manifest
                rows.append(AppInfo(key, plugin.package, plugin.version, m.description, list(m.devices), True))
                continue
            peek = _peek(plugin.entry.value)
            rows.append(AppInfo(key, plugin.package, plugin.version, str(peek.get("description", "")),
                                list(peek["devices"]) if "devices" in peek else None, key in self._broken,
                                plugin.error or self._broken.get(key)))
        return rows

    def names(self) -> list[str]:
        return [row.name for row in self.list() if row.error is None]

    def get(self, name: str) -> type[App]:
        """The app class called ``name``, imported on first use; AppError (one line) when
        there is none or it is blocked or broken."""
        cls = self._apps.get(name)
        if cls is not None:
            return cls
        if name in self._broken:
            raise AppError(f"app {name!r} is broken: {self._broken[name]}")
        if name in BUILTINS:
            source, load = BUILTIN, lambda: load_class(BUILTINS[name])
        else:
            plugin = self.plugins().get(name)
            if plugin is None:
                known = ", ".join(sorted(set(BUILTINS) | {k for k, p in self.plugins().items() if not p.error}))
                raise AppError(f"no app named {name!r}; known apps: {known} (see: llmos apps)")
            if plugin.error:
                raise AppError(f"app {name!r} ({plugin.package}) cannot be used: {plugin.error}")
            source, load = plugin.package, plugin.entry.load
        try:
            cls = _check(name, load())
        except Exception as exc:  # a plugin's import may raise anything
            reason = str(exc) if isinstance(exc, AppError) else f"{type(exc).__name__}: {exc}"
            self._broken[name] = (reason.splitlines() or [type(exc).__name__])[0][:300]
            raise AppError(f"app {name!r} ({source}) is broken: {self._broken[name]}") from None
        self._apps[name] = cls
        return cls


def _check(name: str, obj: Any) -> type[App]:
    if not (isinstance(obj, type) and issubclass(obj, App)):
        raise AppError(f"{getattr(obj, '__name__', type(obj).__name__)} is not an App subclass")
    manifest = getattr(obj, "manifest", None)
    if not isinstance(manifest, Manifest):
        raise AppError(f"{obj.__name__} has no manifest (manifest = Manifest(name=...))")
    if manifest.name != name:
        raise AppError(f"its manifest says its name is {manifest.name!r}, not {name!r}")
    if not inspect.iscoroutinefunction(obj.main) or obj.main is App.main:
        raise AppError(f"{obj.__name__}.main must be an async def main(self, sys)")
    return obj


def _find_source(module: str) -> str | None:
    """The source file of ``module`` found without importing it or its parents."""
    path = None
    spec = None
    parts = module.split(".")
    for i in range(len(parts)):
        name = ".".join(parts[:i + 1])
        if i == 0:
            for finder in sys.meta_path:  # editable installs add finders of their own
                try:
                    spec = finder.find_spec(name, None)
                except Exception:
                    spec = None
                if spec is not None:
                    break
        else:
            spec = PathFinder.find_spec(name, path)
        if spec is None:
            return None
        path = spec.submodule_search_locations
    return spec.origin if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def _peek(target: str) -> dict[str, Any]:
    """The literal keyword arguments of ``manifest = Manifest(...)`` in the plugin's class,
    read from its source without running it; {} when that is not possible."""
    module, _, attr = target.partition(":")
    try:
        origin = _find_source(module)
        if origin is None:
            return {}
        with open(origin, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == attr.split(".")[-1]:
                for stmt in node.body:
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else \
                        [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
                    value = getattr(stmt, "value", None)
                    if any(isinstance(t, ast.Name) and t.id == "manifest" for t in targets) \
                            and isinstance(value, ast.Call):
                        out = {}
                        for kw in value.keywords:
                            try:
                                out[kw.arg] = ast.literal_eval(kw.value)
                            except ValueError:
                                continue
                        return out
    except (OSError, SyntaxError, ValueError, ImportError):
        return {}
    return {}
