"""Starting an app: one process, its system calls, its end.

``launch`` is what every front end calls: ``llmos run --app``, the shell's
``/run``, ``Sys.spawn`` and plugin tests. It finds the app, checks its input
and options, grants its devices (loading the device table if the kernel has
none), spawns the process with the manifest's priority and RAM quota, runs
``main`` and always ends the process (and its forks) as ZOMBIE, whatever
happened. A plugin's bug becomes one ``AppError`` line, never a traceback
through the shell.

``run_app`` is the synchronous form for scripts and plugin tests: it boots a
CPU and a kernel, runs one app and closes them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from llmos.apps.sdk import App, AppError, AppResult, Chooser, Exit, Sys, TextSink, coerce_options
from llmos.errors import LlmosError, UsageError

_registry = None


def registry():
    """The process-wide app table (listing and loading are cached)."""
    global _registry
    if _registry is None:
        from llmos.apps.registry import AppRegistry

        _registry = AppRegistry()
    return _registry


def resolve(app: str | type[App]) -> type[App]:
    if isinstance(app, type):
        from llmos.apps.registry import _check

        return _check(getattr(getattr(app, "manifest", None), "name", "?"), app)
    return registry().get(app)


async def launch(kernel, app: str | type[App], input: str = "", *, options: dict | None = None,
                 on_text: TextSink | None = None, on_step=None, chooser: Chooser | None = None,
                 cancel: threading.Event | None = None, grants: set[str] | frozenset = frozenset(),
                 system: str | None = None, parent: Sys | None = None, on_spawn=None) -> AppResult:
    """Run ``app`` as a new process on ``kernel`` and return how it ended.

    ``on_text(pid, text)`` receives what the user should see, ``on_step(pid, step)`` every
    token (the CPU panel), ``chooser(question, choices)`` answers ``Sys.choose``;
    ``grants`` adds devices to the manifest's; ``on_spawn(proc)`` is told the new process.
    """
    cls = resolve(app)
    m = cls.manifest
    opts = coerce_options(m, dict(options or {}))
    if m.needs_input and not input.strip():
        raise UsageError(f"empty input: app {m.name!r} needs some text (e.g. llmos run --app {m.name} \"...\")")
    grants = set(m.devices) | set(grants)
    if grants:
        if kernel.devices is None:
            from llmos.devices.registry import Registry

            kernel.devices = Registry.from_config()
        for name in sorted(grants):
            kernel.devices.get(name)  # an unknown or broken device: one line now, not mid-run
    started = time.perf_counter()
    proc = kernel.spawn(m.name, cls.system if system is None else system, priority=m.priority,
                        grants=grants, ram=m.memory)
    if on_spawn is not None:
        on_spawn(proc)

    async def spawner(name: str, text: str, *, options: dict, parent: Sys) -> AppResult:
        return await launch(kernel, name, text, options=options, on_text=parent._on_text, on_step=on_step,
                            chooser=chooser, cancel=parent.cancel, parent=parent)

    sys = Sys(kernel, proc, app=m.name, input=input, options=opts, on_text=on_text, on_step=on_step,
              chooser=chooser, cancel=cancel, show=parent is None, spawner=spawner, manifest=m)
    try:
        try:
            output = await cls().main(sys)
        except Exit as stop:
            output = stop.output
        except LlmosError:
            raise
        except Exception as exc:  # a plugin's bug: one line, the process ends, the caller goes on
            kernel.journal.log("warn", f"pid {proc.pid} ({m.name}) failed: {type(exc).__name__}: {exc}", pid=proc.pid)
            raise AppError(f"app {m.name!r} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                           .rstrip(": ")) from None
    finally:
        _end(kernel, sys)
    tokens = sys.tokens + sum(c.tokens for c in _family(sys) if c is not sys)
    return AppResult(m.name, proc.pid, "" if output is None else str(output), sys.data, tokens,
                     time.perf_counter() - started)


def _family(sys: Sys) -> list[Sys]:
    out = [sys]
    for child in sys.children:
        out += _family(child)
    return out


def _end(kernel, sys: Sys) -> None:
    for member in _family(sys):
        member.close()


def run_app(app: str | type[App], input: str = "", *, model: str | None = "tiny", n_ctx: int = 2048,
            options: dict | None = None, echo: bool = False, **kwargs: Any) -> AppResult:
    """Boot a CPU and a kernel, run one app, close them: for scripts and plugin tests.

    ``echo=True`` prints what the user would see.
    """
    from llmos.kernel.boot import load_cores
    from llmos.kernel.kernel import Kernel

    kernel = Kernel(load_cores(model, n_ctx=n_ctx, quiet=True), lock=False)
    on_text = (lambda pid, text: print(text, end="", flush=True)) if echo else None
    try:
        return asyncio.run(launch(kernel, app, input, options=options, on_text=on_text, **kwargs))
    finally:
        kernel.close()
