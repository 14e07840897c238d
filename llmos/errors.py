"""The one exception family of llmos.

Every error a user can cause (a bad path, a corrupt model, an empty prompt, a
server that is down) is an :class:`LlmosError` whose message says what is wrong
and what to do next. The CLI prints it as one line and exits non-zero; nothing
else should reach the user as a traceback.

This module is the base layer: stdlib only, importable from every layer.
"""

from __future__ import annotations


class LlmosError(Exception):
    """Base class: a problem the user can act on. ``str(err)`` is the one line shown."""

    exit_code: int = 1


class UsageError(LlmosError):
    """The command line or the input was wrong (empty prompt, bad JSON, ...)."""

    exit_code = 2


class ModelError(LlmosError):
    """A model file is missing, not a GGUF, truncated, or failed verification."""


class ContextOverflow(LlmosError):
    """The input does not fit in the context window."""


class DiskError(LlmosError):
    """The disk (chromadb) or the embedding model could not be used."""


class DeviceError(LlmosError):
    """A device call was malformed, denied or failed."""


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line for the user: its first line, or its type's name."""
    lines = str(exc).strip().splitlines()
    return (lines[0][:limit] if lines else "") or type(exc).__name__
