"""The entry-point table that serves both plugin groups, ``llmos.apps`` and ``llmos.devices``.

One set of rules, so a plugin author learns them once:

- listing reads entry points and package metadata only and imports no plugin
  (milliseconds, however many are installed);
- a plugin whose name is a built-in's (or the kernel's own ``recall``), or
  another plugin's, is listed under ``NAME (package)`` with the reason, and
  never replaces what had the name first;
- ``LLMOS_PLUGINS`` (a comma list of entry-point names) allow-lists the
  plugins that may load; unset, all may; set to "", none may. Blocked
  plugins are still listed, marked blocked.

The registries (``devices/registry.py``, ``apps/registry.py``) add what is
particular to devices and apps: configuring, checking and caching them.
It lives in the shared base (beside errors.py and paths.py) because both the
device layer and the app layer use it.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib import metadata

ENV_ALLOW = "LLMOS_PLUGINS"


@dataclass
class Plugin:
    """One installed plugin, known from its metadata."""

    entry: metadata.EntryPoint
    package: str
    version: str
    summary: str = ""
    error: str | None = None
    """Why it cannot be used (its name is taken, it is blocked); None when it can."""

    @property
    def source(self) -> str:
        return f"{self.package} {self.version}".strip()


def load_class(target: str) -> type:
    """``module:attr`` imported (the built-ins' targets)."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def allowed() -> set[str] | None:
    """The entry-point names ``LLMOS_PLUGINS`` lets load; None when it is not set."""
    value = os.environ.get(ENV_ALLOW)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def scan(group: str, taken: set[str]) -> dict[str, Plugin]:
    """The plugins of entry-point ``group`` by the name they are listed and used under;
    ``taken``: the built-in names (and any reserved ones) no plugin may have."""
    found: dict[str, Plugin] = {}
    allow = allowed()
    for entry in metadata.entry_points(group=group):
        dist = getattr(entry, "dist", None)
        package, version = (dist.name, dist.version) if dist is not None else (entry.value, "")
        summary = (dist.metadata.get("Summary") or "") if dist is not None else ""
        plugin, key = Plugin(entry, package, version, summary), entry.name
        if entry.name in taken:
            plugin.error = f"name taken by the built-in {entry.name!r}; this plugin is ignored"
            key = f"{entry.name} ({package})"
        elif entry.name in found:
            plugin.error = f"name taken by {found[entry.name].source}; this plugin is ignored"
            key = f"{entry.name} ({package})"
        elif allow is not None and entry.name not in allow:
            plugin.error = f"blocked: not in {ENV_ALLOW}={','.join(sorted(allow))}"
        found[key] = plugin
    return found
