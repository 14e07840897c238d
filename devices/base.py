"""The driver interface: a ``Device`` is one small class with one ``call`` method.

A device declares what it is (``name``, ``description``), what it accepts
(``schema``, a JSON schema of the argument object, which the kernel also turns
into the grammar that constrains the model's calls) and how dangerous it is
(``risk``): ``safe`` devices run at once, ``ask`` devices run only after the
user approved the exact call, ``deny`` devices never run. A plugin author
writes one subclass::

    class Dice(Device):
        name = "dice"
        description = "roll an n-sided die"
        schema = {"type": "object", "properties": {"sides": {"type": "integer", "minimum": 2}},
                  "required": ["sides"], "additionalProperties": False}
        risk = Risk.SAFE

        def call(self, args: dict) -> DeviceResult:
            return DeviceResult(output=str(random.randint(1, args["sides"])))

Callers never call ``device.call`` directly: :func:`invoke` validates the
arguments against the schema first, times the call, turns every exception of
the driver into an error result (a driver fault must never take the kernel
down), makes the output valid UTF-8 and cuts it to a size a context window can
hold. What a device returns is untrusted data; fencing it in the prompt is the
kernel's job, not this module's.

Stdlib only at import time (jsonschema is imported on the first call).
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

MAX_ARGS_BYTES = 256 * 1024
"""Arguments bigger than this (as JSON) are refused before validation."""
MAX_OUTPUT = 4000
"""Characters of output :func:`invoke` keeps by default."""


class Risk(str, Enum):
    """How a device call is approved."""

    SAFE = "safe"
    """Runs without asking (pure computation, reading what the user mounted)."""
    ASK = "ask"
    """Runs only after the user approved the exact call."""
    DENY = "deny"
    """Never runs."""


@dataclass
class DeviceResult:
    """What one device call gave back."""

    output: str
    """Text for the model (and the terminal)."""
    data: Any = None
    """The same result as structured data, for programs (JSON-serialisable)."""
    error: str | None = None
    """One line saying why the call failed; None on success."""
    duration_s: float = 0.0
    """Wall time of the call, set by :func:`invoke`."""
    truncated: int = 0
    """Characters of output cut by :func:`invoke`."""


class Device(ABC):
    """A tool the model (or the user) can call. Subclasses set the four class
    attributes and implement :meth:`call`; configuration goes to ``__init__``."""

    name: ClassVar[str]
    """Unique, short, lowercase: what the model writes in a call."""
    description: ClassVar[str]
    """One line for the model: what the device does."""
    schema: ClassVar[dict]
    """JSON schema of the argument object."""
    risk: Risk = Risk.ASK
    """Default risk; the user's config may override it per instance."""

    @abstractmethod
    def call(self, args: dict) -> DeviceResult:
        """Do the work. ``args`` is already valid against ``schema``. Raise
        ``DeviceError`` (or anything) for failures; :func:`invoke` reports them."""


def check_args(device: Device, args: Any) -> str | None:
    """Why ``args`` is not a valid call of ``device`` (one line), or None when it is."""
    if not isinstance(args, dict):
        return f"arguments must be a JSON object, not {type(args).__name__}"
    try:
        size = len(json.dumps(args, ensure_ascii=False, default=str).encode("utf-8", "replace"))
    except (TypeError, ValueError, RecursionError) as exc:
        return f"arguments are not JSON data ({exc})"
    if size > MAX_ARGS_BYTES:
        return f"arguments are {size} bytes, more than the {MAX_ARGS_BYTES} allowed"
    import jsonschema

    validator = jsonschema.validators.validator_for(device.schema)(device.schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(args))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    message = error.message
    if len(message) > 200:  # the message quotes a big value: name it by its size instead
        size = f"{len(error.instance)} " if hasattr(error.instance, "__len__") else ""
        message = message.replace(repr(error.instance), f"the {type(error.instance).__name__} of {size}items"
                                  if size and not isinstance(error.instance, str) else f"the {size}characters")
        message = message if len(message) <= 200 else message[:200] + "..."
    return f"{where + ': ' if where else ''}{message}"


def safe_text(value: Any) -> str:
    """Any output as valid UTF-8 text: bytes decoded with replacement, lone
    surrogates (undecodable file names, ``surrogateescape``) replaced."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    text = value if isinstance(value, str) else str(value)
    return text.encode("utf-8", "replace").decode("utf-8")


def invoke(device: Device, args: dict, *, max_output: int = MAX_OUTPUT) -> DeviceResult:
    """Validate ``args``, run ``device.call(args)`` and return its result. Never raises
    for anything the arguments or the driver do: those become ``result.error``."""
    started = time.perf_counter()
    name = getattr(device, "name", type(device).__name__)
    problem = check_args(device, args)
    if problem is not None:
        return DeviceResult(output="", error=f"bad arguments for {name}: {problem}")
    try:
        result = device.call(args)
        if not isinstance(result, DeviceResult):
            result = DeviceResult(output="", error=f"device {name} returned {type(result).__name__}, "
                                                   "not a DeviceResult")
    except Exception as exc:  # a driver fault is the call's failure, never the caller's crash
        text = safe_text(exc) or "no message"
        detail = text if type(exc).__module__ == "llmos.errors" else f"{type(exc).__name__}: {text}"
        result = DeviceResult(output="", error=f"{name}: {detail.splitlines()[0][:300]}")
    result.output = safe_text(result.output if result.output is not None else "")
    if result.error is not None:
        result.error = safe_text(result.error)
    cut = len(result.output) - max_output
    if cut > 0:
        result.output = f"{result.output[:max_output]}\n[... {cut} more characters cut]"
        result.truncated += cut
    result.duration_s = time.perf_counter() - started
    return result
