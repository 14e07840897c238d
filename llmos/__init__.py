"""llmos: an operating-system shell for a local language model.

This folder is two things. It is the shell, the top layer (``cli.py``, ``appctl.py``,
``devctl.py``, ``modelctl.py`` (``llmos model ...``), ``verbs.py``, ``transcript.py`` (a conversation as ``llmos log`` and ``/export``
show it), ``approve.py``, ``tui/``, ``bench/``). And it holds the shared
base that every layer may import, because the package itself is the one place all of
them already depend on: ``errors.py`` (the error family), ``paths.py`` (data and config
paths), ``term.py`` (terminal-safe text) and ``plugins.py`` (the entry-point table of apps
and devices). ``tests/test_layers.py`` checks both rules.

This file stays light: ``import llmos.kernel`` runs it first, and ``llmos
--help`` must answer instantly. The SDK names a plugin author needs are
re-exported lazily, on first attribute access, so nothing heavy (textual,
llama_cpp, chromadb) is imported here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    "LlmosError": "llmos.errors",
    "Page": "llmos.memory.page",
    "Origin": "llmos.memory.page",
    "Trust": "llmos.memory.page",
    "CPU": "llmos.kernel.cpu",
    "LlamaCPU": "llmos.kernel.llama",
    # the plugin SDK (docs/plugins.md): an app ...
    "App": "llmos.apps.sdk",
    "Manifest": "llmos.apps.sdk",
    "Sys": "llmos.apps.sdk",
    "Reply": "llmos.apps.sdk",
    "DeviceReply": "llmos.apps.sdk",
    "AppResult": "llmos.apps.sdk",
    "AppError": "llmos.apps.sdk",
    "launch": "llmos.apps.launch",
    "run_app": "llmos.apps.launch",
    # ... and a device
    "Device": "llmos.devices.base",
    "DeviceResult": "llmos.devices.base",
    "Risk": "llmos.devices.base",
    "DeviceError": "llmos.errors",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from llmos.apps.launch import launch as launch, run_app as run_app
    from llmos.apps.sdk import (App as App, AppError as AppError, AppResult as AppResult,
                                DeviceReply as DeviceReply, Manifest as Manifest, Reply as Reply, Sys as Sys)
    from llmos.devices.base import Device as Device, DeviceResult as DeviceResult, Risk as Risk
    from llmos.errors import DeviceError as DeviceError, LlmosError as LlmosError
    from llmos.kernel.cpu import CPU as CPU
    from llmos.kernel.llama import LlamaCPU as LlamaCPU
    from llmos.memory.page import Origin as Origin, Page as Page, Trust as Trust


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmos' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
