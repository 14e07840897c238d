"""The main screen: conversation and input on the left, the machine on the right.

A turn, in plain words:

    the input becomes a user message on screen and a turn on a worker thread;
    that thread runs ``kernel.turn`` on its own asyncio loop (the pager's work
        before and after a turn, journal writes, swap to chromadb, all stay
        off the UI thread) and posts each token back as a message;
    the UI appends each token to the answer (Markdown stream) and to the CPU
        trace; kernel events (evictions, page faults, switches) arrive as
        messages too and redraw the panels that show them;
    Ctrl+C / Esc sets the turn's cancel event: the CPU stops within one token.

``/spawn TEXT`` runs a turn of another process the same way, beside the
foreground one: its answer streams into the conversation marked with its pid,
and the two share the CPU as the scheduler decides.

The UI thread never waits for the model, the pager or the disk.
"""

from __future__ import annotations

import asyncio
import inspect
import threading

from rich.console import RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer

from llmos.apps.chat import CHAT_DEVICES, NO_FILE, spawn_chat
from llmos.errors import LlmosError
from llmos.kernel.cpu import Generation, Step
from llmos.kernel.proc import Process
from llmos.term import terminal_safe
from llmos.tui import commands
from llmos.tui.approval import ShellApprover
from llmos.tui.chat import AnswerMessage, Conversation, Prompt, SystemMessage, UserMessage
from llmos.tui.cpu import CpuPanel
from llmos.tui.panels import DevicesPanel, DiskPanel, ProcPanel
from llmos.tui.ram import RamPanel

MAX_TOKENS = 512


class KernelEvent(Message):
    """A kernel listener call, carried to the UI thread."""

    def __init__(self, kind: str, data: dict) -> None:
        super().__init__()
        self.kind = kind
        self.data = data


class TurnStep(Message):
    def __init__(self, answer: AnswerMessage, step: Step) -> None:
        super().__init__()
        self.answer = answer
        self.step = step


class TurnEnded(Message):
    def __init__(self, answer: AnswerMessage, result: Generation, error: BaseException | None,
                 no_file: bool = False) -> None:
        super().__init__()
        self.answer = answer
        self.result = result
        self.error = error
        self.no_file = no_file
        """Files are mounted and none was in RAM for this answer (``Kernel.no_file_used``)."""


def call_line(data: dict) -> str:
    """A device call as the conversation shows it: device, arguments, result, ✓/✗, time."""
    import json

    from llmos.term import terminal_safe

    args = json.dumps(data.get("args", {}), ensure_ascii=False)
    args = args if len(args) <= 120 else args[:117] + "..."
    if data.get("error"):
        result = f"✗ failed: {data['error']}"
    else:
        output = " ".join(terminal_safe(str(data.get("output", ""))).split())  # device text: shown, never obeyed
        result = f"✓ {output[:160] + ('…' if len(output) > 160 else '')}" if output else \
            f"✓ {data.get('bytes', 0):,} B"
    return f"⚙ pid {data['pid']} {data['device']} {args} → {result} · {data.get('seconds', 0):.2f} s"


def cited(pages) -> list[str]:
    """How the footnote names file excerpts a page fault brought in: ``notes.md:3-9``."""
    out = []
    for page in pages:
        if page.origin.value == "file":
            path, _, lines = (page.source or "?").rpartition(":")
            out.append(f"{path.rsplit('/', 1)[-1]}:{lines}" if path else page.source)
    return out


class Shell(Screen):
    """See the module docstring."""

    DEFAULT_CSS = """
    Shell { layout: vertical; }
    #body { height: 1fr; }
    #left { width: 1fr; }
    #side {
        width: 38%;
        min-width: 34;
        max-width: 72;
        scrollbar-size-vertical: 1;
        border-left: vkey $panel;
    }
    """

    chat_devices: tuple[str, ...] = CHAT_DEVICES
    """What the chat processes this shell starts may call."""

    def __init__(self, kernel, proc: Process, *, max_tokens: int = MAX_TOKENS) -> None:
        super().__init__()
        self.kernel = kernel
        self.proc = proc
        self.max_tokens = max_tokens
        self.cancel: threading.Event | None = None
        self.generating = False
        """True from sending the input until its answer is complete on screen."""
        self.worker_idle = threading.Event()
        """Set while no turn thread runs (the app waits on it before closing the kernel)."""
        self.worker_idle.set()
        self.answer: AnswerMessage | None = None
        """The answer being streamed, or the last one."""
        self.background: dict[int, threading.Event] = {}
        """pid -> cancel event of each turn running in the background (``/spawn TEXT``)."""
        self.inputs = 0
        """Inputs submitted so far (the demo driver waits on it and on ``busy``)."""
        self.mounts: dict[str, object] = {}
        """Folders mounted from this shell: root -> ``MountReport`` (the Disk panel lists them)."""
        self.handling = 0
        """Inputs and commands being handled right now (a slow command runs on a thread)."""
        self._turns = 0
        self._turns_lock = threading.Lock()
        self._paged_in: dict[int, list[str]] = {}
        """pid -> ids of the pages its current turn's page faults brought in."""
        self.mode = "auto"
        """How turns use devices: "auto" (the model decides) or "required" (the first answer
        must be a device call; the demo uses it)."""
        self._calling: set[int] = set()
        """pids whose answer is writing a device call right now (drawn once, as a call)."""
        from llmos.kernel.sampling import choose

        self.sampling = choose(kernel.cpu, None)
        """How answers are sampled: the model's recommended sampling (``kernel/sampling.py``)."""
        self.approver: ShellApprover | None = None
        """Asks the user before risky device calls (installed on the kernel at mount,
        unless whoever made the kernel gave it an approver of its own)."""

    # -- layout -----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield Conversation(id="conversation")
                yield Prompt(id="prompt")
            with VerticalScroll(id="side"):
                yield RamPanel(self.kernel, self.proc.pid, id="ram")
                yield ProcPanel(self.kernel, id="procs")
                yield CpuPanel(self.kernel, id="cpu")
                yield DiskPanel(self.kernel, self.mounts, id="disk")
                yield DevicesPanel(id="devices")
        yield Footer()

    @property
    def conversation(self) -> Conversation:
        return self.query_one(Conversation)

    @property
    def prompt(self) -> Prompt:
        return self.query_one(Prompt)

    async def on_mount(self) -> None:
        self.kernel.listeners.append(self._listen)
        if self.kernel.approver is None:
            self.approver = ShellApprover(self.app)
            self.kernel.approver = self.approver
        self.show_title()
        self.prompt.focus()
        self.set_interval(1.0, self.refresh_panels)
        await self.replay()
        await self.system(Text.assemble(
            ("llmos", "bold"), f" · CPU {self.kernel.cpu.name} · RAM {self.kernel.ram:,} tokens · "
            f"pid {self.proc.pid} ({self.proc.app})\n",
            "Ask anything. /help lists the OS verbs, F1 the keys."))

    async def replay(self) -> None:
        """Show a restored process's conversation, swapped pages included (from the journal)."""
        from llmos.memory.page import Origin

        shown = 0
        for page in self.kernel.journal.pages(self.proc.pid):
            if page.origin is Origin.USER:
                await self.conversation.add(UserMessage(page.text))
            elif page.origin is Origin.ASSISTANT:
                answer = AnswerMessage(self.proc.pid)
                await self.conversation.add(answer)
                await answer.write(page.text + ("\n\n*(interrupted)*" if page.source == "interrupted" else ""))
                await answer.finish()
            else:
                continue
            shown += 1
        if shown:
            await self.system(f"restored pid {self.proc.pid} from the journal: {shown} messages")

    def on_unmount(self) -> None:
        self.interrupt_all()
        if self._listen in self.kernel.listeners:
            self.kernel.listeners.remove(self._listen)
        if self.approver is not None and self.kernel.approver is self.approver:
            self.kernel.approver = None

    def show_title(self) -> None:
        grants = sorted(self.proc.grants)
        devices = f" · {grants[0]}" if len(grants) == 1 else f" · {len(grants)} devices" if grants else ""
        self.prompt.border_title = f"pid {self.proc.pid} {self.proc.app}{devices}"
        self.prompt.border_subtitle = "Enter send · Ctrl+J newline · F1 help"

    # -- kernel events (any thread) -----------------------------------------------------

    def _listen(self, kind: str, data: dict) -> None:
        # Called from the CPU thread or the turn thread; post_message is thread-safe.
        self.post_message(KernelEvent(kind, dict(data)))

    async def on_kernel_event(self, event: KernelEvent) -> None:
        kind, data = event.kind, event.data
        ram = self.query_one(RamPanel)
        if kind == "cpu":  # /model switched the CPU
            self.query_one(CpuPanel).show_model()
            self.show_title()
        if kind == "switch":
            if data.get("old") is not None:  # the first job ever is not a switch
                self.query_one(CpuPanel).switched(data.get("seconds", 0.0), data.get("how", ""))
            return
        if kind in ("evict", "page_in") and data.get("pid") == ram.pid:
            ram.flash(kind, data.get("page_ids", []))
        if kind == "page_in" and data.get("pid") in self._paged_in:
            self._paged_in[data["pid"]] += data.get("page_ids", [])
        if kind == "evict":
            await self.notice(f"⇣ evicted {len(data['page_ids'])} page(s), {data['tokens']} tok of pid "
                              f"{data['pid']} to swap")
        elif kind == "page_in":
            await self.notice(f"⇡ page fault: {len(data['page_ids'])} page(s), {data['tokens']} tok of pid "
                              f"{data['pid']} paged back in")
        elif kind == "pressure":
            await self.notice(f"! memory pressure in pid {data['pid']}: RAM {data.get('detail', '')} full")
        elif kind == "approval":
            request = data["request"]
            await self.notice(f"? pid {request.pid} asks to run {request.device}: waiting for your approval")
        elif kind == "device":
            self.query_one(DevicesPanel).add(data)
            self._calling.discard(data.get("pid"))
            await self.notice(call_line(data))
        elif kind == "swap_error":
            await self.system(f"swap failed for pid {data['pid']}; its pages stay in RAM: "
                              f"{data.get('detail', '')}", error=True)
        self.refresh_panels()

    def refresh_panels(self) -> None:
        self.query_one(RamPanel).refresh_map()
        self.query_one(ProcPanel).refresh_table()
        self.query_one(DiskPanel).refresh_disk()
        self.query_one(CpuPanel).redraw()

    # -- messages on screen -----------------------------------------------------------

    async def system(self, renderable: RenderableType, *, error: bool = False) -> None:
        await self.conversation.add(SystemMessage(renderable, classes="error" if error else ""))

    async def notice(self, text: str) -> None:
        """A one-line kernel notice. One that arrives before the answer's first token (a
        page fault while the turn is prepared) goes above the answer, where it happened."""
        note = SystemMessage(Text(text), classes="notice")
        if self.generating and self.answer is not None and not self.answer.text and self.answer.is_attached:
            await self.conversation.mount(note, before=self.answer)
        else:
            await self.conversation.add(note)

    def clear(self) -> None:
        self.conversation.remove_children()

    def show_ram(self, pid: int) -> None:
        self.query_one(RamPanel).show(pid)

    def respawn(self, proc: Process | None = None) -> Process:
        """Talk to ``proc`` from now on, or to a fresh chat process (after this one was killed)."""
        self.proc = proc or spawn_chat(self.kernel, self.chat_devices)
        self.query_one(RamPanel).show(self.proc.pid)
        self.show_title()
        return self.proc

    # -- input ------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while an input is being handled: a command runs, or an answer (in the
        foreground or the background) is being generated."""
        return self.generating or self.handling > 0 or bool(self.background)

    @on(Prompt.Submitted)
    async def submitted(self, event: Prompt.Submitted) -> None:
        text = event.text
        is_command = text.strip().startswith("/")
        if self.generating and not is_command:
            self.notify("The CPU is still answering: Ctrl+C interrupts it. Your input is kept.",
                        severity="warning", timeout=3)
            return
        self.inputs += 1
        self.handling += 1
        try:
            event.prompt.remember(text)
            event.prompt.clear()
            self.conversation.anchor()
            if is_command:
                await self.command(text)
            else:
                await self.ask(text)
        finally:
            self.handling -= 1

    async def command(self, line: str) -> None:
        self.handling += 1
        try:
            verb, args, _ = commands.parse(line)
            if verb is not None and verb.slow:
                await self.system(f"/{verb.name} {' '.join(args)}: working...".strip())
                out = await asyncio.to_thread(verb.run, self, args)
            else:
                out = commands.dispatch(self, line)
            if inspect.isawaitable(out):  # a verb that starts UI work of its own (/spawn)
                out = await out
            if out is not None:
                await self.system(out)
        except LlmosError as exc:
            await self.system(str(exc), error=True)
        finally:
            self.handling -= 1
            self.refresh_panels()

    async def ask(self, text: str) -> None:
        await self.conversation.add(UserMessage(text))
        answer = AnswerMessage(self.proc.pid)
        await self.conversation.add(answer)
        self.answer = answer
        self.cancel = threading.Event()
        self.generating = True
        self._start_turn(self.proc, text, answer, self.cancel)

    async def ask_in_background(self, proc: Process, text: str) -> None:
        """Run one turn of another process beside the foreground one (``/spawn TEXT``): its
        answer streams into the conversation, marked with its pid, and both share the CPU."""
        cancel = threading.Event()
        self.background[proc.pid] = cancel
        await self.conversation.add(UserMessage(f"**pid {proc.pid}** ({proc.app}, in the background): {text}"))
        answer = AnswerMessage(proc.pid, background=True)
        await self.conversation.add(answer)
        self._start_turn(proc, text, answer, cancel)

    def _start_turn(self, proc: Process, text: str, answer: AnswerMessage, cancel: threading.Event) -> None:
        with self._turns_lock:
            self._turns += 1
            self.worker_idle.clear()
        self._paged_in[proc.pid] = []
        self._turn(proc, text, answer, cancel)

    def interrupt(self) -> bool:
        """Stop the answer being generated. True if one was."""
        if self.cancel is not None and self.generating:
            self.cancel.set()
            if self.approver is not None:
                self.approver.deny_all(self.proc.pid)  # a call waiting for approval does not run
            return True
        return False

    def interrupt_all(self) -> None:
        """Stop every answer this shell started, background ones included (before closing)."""
        self.interrupt()
        for cancel in list(self.background.values()):
            cancel.set()
        if self.approver is not None:
            self.approver.deny_all()

    # -- the turn (worker thread) -----------------------------------------------------

    @work(thread=True, group="turn", exit_on_error=False)
    def _turn(self, proc: Process, text: str, answer: AnswerMessage, cancel: threading.Event) -> None:
        result, error, no_file = Generation(), None, False

        async def consume() -> None:
            async for step in self.kernel.turn(proc, text, max_tokens=self.max_tokens, top_n=5,
                                               sampling=self.sampling, cancel=cancel, result=result,
                                               mode=self.mode):
                self.post_message(TurnStep(answer, step))

        try:
            asyncio.run(consume())
            no_file = self.kernel.no_file_used(proc)
        except BaseException as exc:  # shown in the conversation; the shell keeps running
            error = exc
        finally:
            with self._turns_lock:
                self._turns -= 1
                if not self._turns:
                    self.worker_idle.set()
            self.post_message(TurnEnded(answer, result, error, no_file))

    async def on_turn_step(self, message: TurnStep) -> None:
        step = message.step
        self.query_one(CpuPanel).step(step, message.answer.pid)
        if step.call:  # a device call, drawn as one when the kernel reports it ("device" event)
            if step.text.strip() and message.answer.pid not in self._calling:
                self._calling.add(message.answer.pid)
                await self.notice(f"⚙ pid {message.answer.pid} is calling a device…")
            return
        message.answer.feed(step.text)

    async def on_turn_ended(self, message: TurnEnded) -> None:
        answer, result, error = message.answer, message.result, message.error
        try:
            await answer.finish()
        finally:  # whatever drawing the answer's end did, the shell takes input again
            if answer.background:
                self.background.pop(answer.pid, None)
            else:
                self.generating = False
        self.query_one(CpuPanel).turn_ended(result.tok_per_s)
        if error is not None:
            text = str(error) if isinstance(error, LlmosError) else f"{type(error).__name__}: {error}"
            await self.system(f"the turn of pid {answer.pid} failed: {text}", error=True)
        else:
            parts = [result.stop_reason, f"{len(result.tokens)} tok", f"{result.tok_per_s:.0f} tok/s",
                     f"prompt {result.prompt_tokens} tok ({result.reused_tokens} cached)"]
            if answer.background:
                parts.insert(0, f"pid {answer.pid}")
            proc = self.kernel.procs.get(answer.pid)
            if proc is not None and proc.model:
                parts.append(terminal_safe(proc.model, newlines=False))  # which model answered
            ids = set(self._paged_in.pop(answer.pid, []))
            sources = cited(p for p in proc.space.pages if p.id in ids) if proc and ids else []
            if sources:
                parts.append(f"read from disk: {', '.join(sources)} (untrusted)")
            elif message.no_file:
                parts.append(NO_FILE)
            if result.stop_reason == "interrupted" and not answer.text:
                await answer.write("*(interrupted)*")
            await self.conversation.add(SystemMessage(Text(" · ".join(parts)), classes="footnote"))
        self.refresh_panels()

    @on(ProcPanel.Selected)
    def proc_selected(self, event: ProcPanel.Selected) -> None:
        self.show_ram(event.pid)
