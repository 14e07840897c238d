"""llmos.apps: programs that run as processes.

- ``sdk.py``       what a plugin author writes: ``App``, ``Manifest``; the ``Sys`` handle
- ``registry.py``  built-in and plugin apps (entry-point group ``llmos.apps``)
- ``launch.py``    starting an app as a process: ``launch`` (async), ``run_app`` (sync)
- ``files.py``     ``Sys.read``: files and folders as excerpts with line ranges
- ``prefs.py``     the ranked pairs ``compare`` keeps (``llmos prefs export``)
- ``chat.py``, ``ask.py``, ``think.py``, ``compare.py``, ``summarize.py``: the built-ins

Names are re-exported lazily, so ``import llmos.apps`` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"launch": "llmos.apps.launch", "run_app": "llmos.apps.launch"}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmos.apps' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
