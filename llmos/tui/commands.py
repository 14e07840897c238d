"""The OS verbs: slash commands typed in the input line, and the same verbs in the
command palette (Ctrl+P).

Each verb is a function ``(shell, args) -> renderable | None``; what it returns
is shown in the conversation as a system message (a verb that starts UI work
of its own, ``/spawn``, returns a coroutine the shell awaits). A verb whose subsystem does
not exist yet says so in one line instead of failing. Errors a user can cause
(``/kill 99``) are ``LlmosError``s and are shown as one red line.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider

from llmos.errors import UsageError
from llmos.term import terminal_safe

if TYPE_CHECKING:
    from llmos.tui.shell import Shell


@dataclass
class Verb:
    name: str
    usage: str
    help: str
    run: Callable[[Shell, list[str]], RenderableType | None]
    slow: bool = False
    """Runs on a worker thread (it touches the disk), never on the UI loop."""


def _table(*columns: str, title: str | None = None) -> Table:
    return Table(*columns, title=title, box=None, padding=(0, 1), pad_edge=False, header_style="bold",
                 title_justify="left")


def _cell(value) -> Text:
    """A table cell for a value the user or a plugin chose: shown as it is (Text, never markup:
    "[/x]" in a str cell would raise) and made safe for the terminal, on one line."""
    return Text(terminal_safe(str(value), newlines=False))


def ps(shell: Shell, args: list[str]) -> RenderableType:
    from llmos.transcript import state_label

    table = _table("pid", "app", "state", "pri", "pages", "tok", "cpu", "model")
    table.columns[2].min_width = 8
    for r in shell.kernel.ps():
        table.add_row(str(r["pid"]), _cell(r["app"]), state_label(r), str(r["priority"]),
                      f"{r['resident_pages']}/{r['swapped_pages']}", str(r["tokens_out"]), f"{r['cpu_s']:.1f}",
                      _cell(r.get("model", "")))
    table.caption = "pages: resident/swapped · tok: generated · cpu: seconds · model: of the last answer"
    return table


def free(shell: Shell, args: list[str]) -> RenderableType:
    parts: list[RenderableType] = []
    for r in shell.kernel.free():
        app = terminal_safe(r["app"], newlines=False)
        parts.append(Text(f"pid {r['pid']} {app}: {r['resident_tokens']}/{r['budget']} tok resident, "
                          f"{r['usage']:.0%} ({r['pressure']})", style="bold"))
        table = _table("region", "pages", "tokens", "swapped")
        for region, v in r["regions"].items():
            table.add_row(region, str(v["resident_pages"]), str(v["resident_tokens"]), str(v["swapped_pages"]))
        parts.append(table)
    return Group(*parts)


def _pid(arg: str) -> int:
    try:
        return int(arg)
    except ValueError:
        raise UsageError(f"not a pid: {arg!r} (see /ps)") from None


def kill(shell: Shell, args: list[str]) -> RenderableType:
    if len(args) != 1:
        raise UsageError("usage: /kill PID")
    pid = _pid(args[0])
    if pid == shell.proc.pid:
        shell.interrupt()
    shell.kernel.kill(pid)
    if pid != shell.proc.pid:
        return f"killed pid {pid}"
    new = shell.respawn()
    return f"killed pid {pid}; this shell now talks to a new chat process, pid {new.pid}"


def new(shell: Shell, args: list[str]) -> RenderableType:
    """A fresh conversation: a new chat process; the old one sleeps on (``/ps``, the journal)."""
    if args:
        raise UsageError("usage: /new")
    old = shell.proc.pid
    shell.interrupt()
    proc = shell.respawn()
    shell.clear()
    return (f"a new conversation: pid {proc.pid}. pid {old} keeps its pages and sleeps "
            f"(/ps lists it; /kill {old} ends it)")


def nice(shell: Shell, args: list[str]) -> RenderableType:
    if len(args) != 2:
        raise UsageError("usage: /nice PID PRIORITY (higher runs first under the priority policy)")
    pid = _pid(args[0])
    try:
        priority = int(args[1])
    except ValueError:
        raise UsageError(f"not a priority: {args[1]!r} (an integer)") from None
    old = shell.kernel.procs[pid].priority if pid in shell.kernel.procs else 0
    shell.kernel.nice(pid, priority)
    return f"pid {pid}: priority {old} → {priority} (applies from its next request for the CPU)"


def df(shell: Shell, args: list[str]) -> RenderableType:
    table = _table("collection", "records", "bytes")
    for row in shell.kernel.df():
        table.add_row(_cell(row.name), f"{row.records:,}", f"{row.bytes:,}")
    return table


def mount(shell: Shell, args: list[str]) -> RenderableType:
    if len(args) != 1:
        raise UsageError("usage: /mount PATH")
    r = shell.kernel.mount(args[0])
    shell.mounts[r.root] = r
    return (f"mounted {r.root}: {r.files_indexed} files indexed, {r.files_unchanged} unchanged, "
            f"{r.skipped_binary} binary and {r.skipped_unreadable} unreadable skipped; "
            f"{r.chunks_added} chunks in {r.seconds:.1f} s")


def spawn(shell: Shell, args: list[str]) -> RenderableType | Awaitable[None]:
    from llmos.apps.chat import spawn_chat

    proc = spawn_chat(shell.kernel, shell.chat_devices)
    if not args:
        return f"spawned pid {proc.pid} (chat); /ps lists it, /kill {proc.pid} ends it"
    return shell.ask_in_background(proc, " ".join(args))


def dmesg(shell: Shell, args: list[str]) -> RenderableType:
    limit = int(args[0]) if args and args[0].isdigit() else 20
    lines = Text()
    for row in reversed(shell.kernel.journal.dmesg(limit)):
        stamp = time.strftime("%H:%M:%S", time.localtime(row["time"]))
        lines.append(f"{stamp} ", style="dim")
        lines.append(f"{row['level']:<5} ", style="yellow" if row["level"] != "info" else "dim")
        lines.append(terminal_safe(str(row["message"]), newlines=False) + "\n")  # one line each
    return lines if lines.plain else "the kernel log is empty"


def devices(shell: Shell, args: list[str]) -> RenderableType:
    registry = shell.kernel.devices
    if registry is None:
        return "this kernel has no device table (started without devices)"
    grants = shell.proc.grants
    table = _table("device", "risk", "pid " + str(shell.proc.pid), "source", "description")
    table.columns[4].overflow = "fold"
    for row in registry.list():
        risk = row.risk.value if row.risk else "?"
        style = {"safe": "green", "ask": "yellow", "deny": "red"}.get(risk, "dim")
        table.add_row(_cell(row.name), Text(risk, style=style), "granted" if row.name in grants else "",
                      _cell(row.source), Text(terminal_safe(row.error, newlines=False), style="red")
                      if row.error else _cell(row.description))
    table.caption = "ask: every call waits for your approval · deny: never runs · llmos devices --json"
    return table


def grant(shell: Shell, args: list[str]) -> RenderableType:
    if not args:
        raise UsageError("usage: /grant DEVICE [DEVICE...] (/devices lists them)")
    new = shell.kernel.grant(shell.proc, args)
    shell.show_title()  # the prompt's title counts the grants
    if not new:
        return f"pid {shell.proc.pid} already has {', '.join(args)}"
    risks = {r.name: r.risk.value if r.risk else "?" for r in shell.kernel.devices.list()}
    asks = sorted(n for n in new if risks.get(n) != "safe")
    return (f"pid {shell.proc.pid} may now call {', '.join(sorted(new))}"
            + (f"; each call of {', '.join(asks)} waits for your approval" if asks else ""))


def model(shell: Shell, args: list[str]) -> RenderableType | Awaitable[None]:
    if len(args) > 1:
        raise UsageError("usage: /model [NAME] (names: llmos model list)")
    if args:
        return switch_model(shell, args[0])
    info = shell.kernel.cpu.info()
    w, r = info.get("weights", {}), info.get("runtime", {})
    table = _table("", "", title="A model is two files: the weights, and the program that runs them")
    table.columns[1].overflow = "fold"
    if w:
        table.add_row("weights", _cell(w.get("path", "")))
        table.add_row("", _cell(f"{w.get('name', '')} · {w.get('parameters', 0):,} parameters · "
                          f"{w.get('quantization', '')} · {w.get('size_bytes', 0) / 1e6:,.0f} MB"))
    if r:
        table.add_row("runtime", f"{r.get('engine', '')} {r.get('llama_cpp_python', '')}")
        table.add_row("", f"context {r.get('context_window', shell.kernel.cpu.n_ctx):,} tokens · "
                          f"{r.get('threads', '?')} threads")
    return table


async def switch_model(shell: Shell, name: str) -> None:
    """``/model NAME``: load NAME, then move every process onto it (``kernel/hotswap.py``).
    Loading comes first, so a model that fails to load leaves the old one running."""
    import asyncio

    from llmos.kernel.boot import cpu_urls, load_cores
    from llmos.kernel.sampling import choose

    kernel = shell.kernel
    if cpu_urls():
        raise UsageError("the CPU is a server (--cpu-url / [cpu] url): its model is chosen there")
    if shell.generating or shell.background:
        raise UsageError("an answer is being generated: wait for it or interrupt it (Ctrl+C), then /model")
    before = {p.pid: p.space.resident_tokens for p in kernel.procs.values() if p.alive}
    old = kernel.cpu.name
    await shell.system(f"/model {name}: loading...")
    cores = await asyncio.to_thread(load_cores, name, n_ctx=getattr(shell.app, "ctx", None), quiet=True, disk=False)
    try:
        await asyncio.to_thread(kernel.switch_cpu, cores)
    except BaseException:
        for cpu in cores:  # not switched: the old model runs on, the new one is freed now
            getattr(cpu, "close", lambda: None)()
        raise
    shell.sampling = choose(kernel.cpu, None)
    counts = ", ".join(f"pid {pid} {n:,} → {kernel.procs[pid].space.resident_tokens:,} tok"
                       for pid, n in before.items() if pid in kernel.procs)
    await shell.system(Text(terminal_safe(
        f"CPU: {old} → {kernel.cpu.name} (context {kernel.cpu.n_ctx:,} tokens, RAM {kernel.ram:,}); "
        f"pages counted again with its tokenizer: {counts or 'no processes'}", newlines=False)))


def apps(shell: Shell, args: list[str]) -> RenderableType:
    from llmos.tui.apprun import apps_table

    return apps_table(shell)


def run(shell: Shell, args: list[str]) -> Awaitable[None]:
    from llmos.tui.apprun import run as run_app

    return run_app(shell, args)


def export(shell: Shell, args: list[str]) -> RenderableType:
    """The focused conversation as Markdown, as ``llmos log PID --markdown`` prints it."""
    from llmos import transcript

    if not args:
        raise UsageError("usage: /export FILE (a .md file, or a folder to write llmos-pid-N.md in)")
    name = " ".join(args)
    if len(name) > 1 and name[0] == name[-1] and name[0] in "'\"":
        name = name[1:-1]  # a quoted name with spaces: /export "my chat.md"
    path = Path(name).expanduser()
    if path.is_dir():
        path = path / f"llmos-pid-{shell.proc.pid}.md"
    if path.exists():
        raise UsageError(f"{path} exists; /export does not overwrite a file (give another name)")
    body = transcript.markdown(transcript.data(shell.kernel.journal, shell.proc.pid))
    try:
        with path.open("x", encoding="utf-8") as fh:  # "x": never over a file made meanwhile
            fh.write(body)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return f"wrote pid {shell.proc.pid}'s conversation to {path} ({len(body):,} characters of Markdown)"


def clear(shell: Shell, args: list[str]) -> None:
    shell.clear()


def help_(shell: Shell, args: list[str]) -> RenderableType:
    table = _table("command", "what it does")
    for verb in VERBS.values():
        table.add_row(verb.usage, verb.help)
    keys = Text("\nkeys: Enter send · Ctrl+J newline · Up/Down history · Ctrl+C or Esc interrupt "
                "(Ctrl+C twice when idle quits) · Ctrl+P commands · Ctrl+T light/dark · F1 help",
                style="dim")
    return Group(table, keys)


def quit_(shell: Shell, args: list[str]) -> None:
    shell.app.exit()


VERBS: dict[str, Verb] = {v.name: v for v in [
    Verb("ps", "/ps", "processes: state, priority, pages, tokens, CPU time", ps),
    Verb("kill", "/kill PID", "end a process (its pages stay in the journal)", kill),
    Verb("new", "/new", "start a fresh conversation (the old process sleeps, kept in /ps and the journal)", new),
    Verb("nice", "/nice PID N", "set a process's priority", nice),
    Verb("spawn", "/spawn [TEXT]", "start another chat process; with TEXT it answers in the background, "
                                   "sharing the CPU with this one", spawn),
    Verb("free", "/free", "RAM per process and region", free),
    Verb("df", "/df", "the disk: collections, records, bytes", df, slow=True),
    Verb("mount", "/mount PATH", "index a folder so the model can page it in", mount, slow=True),
    Verb("dmesg", "/dmesg [N]", "the last N kernel log lines", dmesg),
    Verb("model", "/model [NAME]", "the CPU: weights file and runtime; with NAME, switch to that model "
                                   "(processes keep their pages; names: llmos model list)", model),
    Verb("devices", "/devices", "the devices, their risk, and which this process may call", devices),
    Verb("grant", "/grant DEVICE...", "let this process call more devices (risky ones still ask each "
                                      "time)", grant),
    Verb("apps", "/apps", "the apps: built-in and plugins, with the devices they use", apps),
    Verb("run", "/run APP [INPUT]", "start an app as a new process next to the others (e.g. /run think "
                                    "--budget=3 What is 17*23?)", run),
    Verb("export", "/export FILE", "write this conversation to FILE as Markdown (as llmos log PID --markdown)",
         export, slow=True),
    Verb("clear", "/clear", "clear the screen (the process keeps its memory)", clear),
    Verb("help", "/help", "this list", help_),
    Verb("quit", "/quit", "leave llmos", quit_),
]}

def parse(line: str) -> tuple[Verb, list[str], str]:
    """(verb, args, name) for a slash command line. Raises LlmosError for unknown verbs."""
    name, *args = line.strip().lstrip("/").split() or [""]
    name = name.lower()
    verb = VERBS.get(name)
    if verb is None:
        raise UsageError(f"unknown command /{name} (/help lists them)")
    return verb, args, name


def dispatch(shell: Shell, line: str) -> RenderableType | None:
    """Run one slash command line on this thread. Raises LlmosError for the user's mistakes."""
    verb, args, _ = parse(line)
    return verb.run(shell, args)


class OsCommands(Provider):
    """The OS verbs in the command palette."""

    def entries(self) -> list[tuple[str, str, Callable[[], object]]]:
        shell = self.app.shell
        if shell is None:
            return []
        out = []
        for verb in VERBS.values():
            if verb.name in ("kill", "nice"):
                continue
            out.append((f"{verb.name}: {verb.help}", verb.usage, lambda n=verb.name: shell.command(f"/{n}")))
        for row in shell.kernel.ps():
            if row["state"] != "ZOMBIE":
                pid = row["pid"]
                out.append((f"kill {pid}: end process {pid} ({row['app']})", f"/kill {pid}",
                            lambda p=pid: shell.command(f"/kill {p}")))
                out.append((f"ram {pid}: show the page map of process {pid}", "",
                            lambda p=pid: shell.show_ram(p)))
        out.append(("interrupt: stop the answer being generated", "Ctrl+C", shell.interrupt))
        out.append(("theme: switch light / dark", "Ctrl+T", self.app.action_toggle_theme))
        return out

    async def discover(self) -> Hits:
        for label, usage, run in self.entries():
            yield DiscoveryHit(label, run, help=usage or None)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for label, usage, run in self.entries():
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), run, text=label, help=usage or None)
