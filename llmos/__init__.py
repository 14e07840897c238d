"""llmos: an operating-system shell for a local language model.

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
    "LlamaCPU": "llmos.kernel.cpu",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from llmos.errors import LlmosError as LlmosError
    from llmos.kernel.cpu import CPU as CPU, LlamaCPU as LlamaCPU
    from llmos.memory.page import Origin as Origin, Page as Page, Trust as Trust


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmos' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
