"""Apps in the shell: ``/apps`` lists them, ``/run APP [--key=value ...] [INPUT]`` starts one
as a new process next to the others.

The app runs on a thread of its own through ``llmos.apps.launch`` (the same
function ``llmos run --app`` uses); what it shows streams into the
conversation as a background answer marked with its pid, every token it
generates (its forks' too) reaches the CPU panel, and Ctrl+C or closing the
shell interrupts it like any background turn. ``Sys.choose`` has no dialog
here yet: an app that asks gets no answer (``compare`` then saves nothing;
``/run compare --pick=a ...`` picks in advance).
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from llmos.errors import LlmosError, UsageError

if TYPE_CHECKING:
    from llmos.tui.shell import Shell


def apps_table(shell: Shell) -> Table:
    from llmos.apps.launch import registry

    table = Table("app", "source", "version", "devices", "description", box=None, padding=(0, 1),
                  pad_edge=False, header_style="bold")
    for row in registry().list():
        devices = "?" if row.devices is None else ", ".join(row.devices) or "-"
        table.add_row(row.name, row.source, row.version, devices,
                      Text(row.error, style="red") if row.error else row.description)
    table.caption = "/run APP [--key=value ...] INPUT starts one as a new process · llmos apps --json"
    return table


def parse(args: list[str]) -> tuple[str, dict[str, str], str]:
    """``/run`` arguments: (app, options, input). Leading ``--key=value`` (or ``--budget N``) are options."""
    if not args:
        raise UsageError("usage: /run APP [--key=value ...] INPUT (/apps lists the apps)")
    name, rest, options = args[0], list(args[1:]), {}
    while rest and rest[0].startswith("--"):
        key, eq, value = rest.pop(0)[2:].partition("=")
        if not eq:
            if not rest:
                raise UsageError(f"--{key} needs a value: --{key}=VALUE")
            value = rest.pop(0)
        options[key] = value
    return name, options, " ".join(rest)


def run(shell: Shell, args: list[str]):
    """Check the command now (unknown app, bad option, empty input: one red line), then start."""
    from llmos.apps.launch import resolve
    from llmos.apps.sdk import coerce_options

    name, options, text = parse(args)
    cls = resolve(name)
    coerce_options(cls.manifest, options)
    if cls.manifest.needs_input and not text.strip():
        raise UsageError(f"usage: /run {name} [--key=value ...] INPUT: app {name!r} needs some text")
    return start(shell, cls, text, options)


async def start(shell: Shell, cls, text: str, options: dict) -> None:
    from llmos.apps.launch import launch
    from llmos.tui.chat import AnswerMessage, UserMessage
    from llmos.tui.cpu import CpuPanel

    cancel = threading.Event()
    answer = AnswerMessage(0, background=True)
    await shell.conversation.add(UserMessage(f"**/run {cls.manifest.name}** {text}"))
    await shell.conversation.add(answer)
    app = shell.app
    # Registered before the thread starts, so the shell is busy (and Ctrl+C or closing reaches the
    # app) from now on; the key is a placeholder until the process has a pid.
    key = -id(answer)
    shell.background[key] = cancel

    def spawned(proc) -> None:
        answer.pid = proc.pid

    def step(pid: int, s) -> None:
        app.call_from_thread(lambda: shell.query_one(CpuPanel).step(s, pid))

    def work() -> None:
        result, error = None, None
        try:
            result = asyncio.run(launch(shell.kernel, cls, text, options=options, cancel=cancel,
                                        on_text=lambda pid, t: app.call_from_thread(answer.feed, t),
                                        on_step=step, on_spawn=spawned))
        except BaseException as exc:  # shown in the conversation; the shell keeps running
            error = exc
        try:
            app.call_from_thread(finish, shell, key, answer, result, error)
        except RuntimeError:
            pass  # the shell closed while the app ran

    threading.Thread(target=work, name=f"app-{cls.manifest.name}", daemon=True).start()


async def finish(shell: Shell, key: int, answer, result, error) -> None:
    await answer.finish()
    shell.background.pop(key, None)
    if error is not None:
        text = str(error) if isinstance(error, LlmosError) else f"{type(error).__name__}: {error}"
        await shell.system(f"app in pid {answer.pid} failed: {text}", error=True)
    else:
        await shell.system(Text(f"pid {answer.pid} · {result.app} exited · {result.tokens} tok · "
                                f"{result.seconds:.1f} s", style="dim"))
    shell.refresh_panels()
