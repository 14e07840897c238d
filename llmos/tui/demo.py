"""``llmos demo``: a two-minute guided tour of the OS analogy, on the real machine.

Nothing here is staged: the tour boots the chosen model, makes a kernel with a
small RAM (``DEMO_RAM`` tokens, so that it fills within a minute) and drives
the real shell. ``DemoDriver`` types into the input line and presses Enter,
so every step goes through the code a user's keystrokes go through; it then
waits until the shell is idle, shows a one-line caption saying what the
audience is looking at, and moves on after ``step_delay`` seconds (Space or N
moves on at once, P pauses the countdown). The steps themselves, and the
data they use, are in ``tour.py``.

Each run has its own journal and disk in a temporary folder, removed at the
end: the tour never touches the user's conversations or mounts, and runs the
same way every time. Its kernel has one device, the sandboxed ``python``,
used in the last step.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text
from textual import events
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Static

from llmos.errors import LlmosError
from llmos.tui.app import LlmosApp
from llmos.tui.shell import Shell
from llmos.tui.tour import NOTES, STEPS

DEMO_RAM = 400
"""RAM of each demo process, in tokens: small enough that a few notes fill it."""
DEMO_CTX = 2048
DEMO_MAX_TOKENS = 160
STEP_DELAY = 8.0
"""Seconds each step stays on screen once it is done, before the next one starts."""
TYPE_DELAY = 0.025
"""Seconds per typed character: fast, but the audience sees the command being typed."""


# -- the driver -------------------------------------------------------------------------


@dataclass
class DemoOptions:
    step_delay: float = STEP_DELAY
    type_delay: float = TYPE_DELAY
    manual: bool = False
    """Wait for Space / N at every step instead of counting down."""
    screenshots: Path | None = None
    """Save an SVG of the screen after each step here."""


@dataclass
class DemoDriver:
    """Runs ``STEPS`` on a ``DemoShell``. See the module docstring."""

    shell: DemoShell
    options: DemoOptions
    notes: Path
    facts: dict = field(default_factory=dict)
    """What each step did (evictions, faults, switches...), for tests."""
    events: list[tuple[str, dict]] = field(default_factory=list)
    """Every kernel event of the tour, in order (steps look up what their turn caused)."""
    step: int = 0
    done: bool = False
    paused: bool = False
    _next: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        def record(kind: str, data: dict) -> None:
            self.events.append((kind, data))  # on kernel threads: list.append is atomic

        self.shell.kernel.listeners.append(record)
        try:
            await self.until(lambda: self.shell.is_mounted and self.shell.conversation.children, 30)
            if not self.options.manual:
                await self.wait_next(self.options.step_delay / 2, "first step")  # the title, a moment
            for n, step in enumerate(STEPS, start=1):
                self.step = n
                self.shell.caption(f"{n}/{len(STEPS)} · {step.title}", step.caption)
                await step.run(self)
                # Let the panels redraw and the conversation scroll before the screenshot.
                await asyncio.sleep(0.3 if self.options.screenshots or self.options.step_delay else 0)
                self.screenshot(f"demo-{n}-{step.slug}.svg", f"llmos demo · {n}. {step.title}")
                await self.wait_next(self.options.step_delay, "the end" if n == len(STEPS) else "next step")
            self.shell.caption("That was llmos", "The shell is yours now: ask anything, /help lists the "
                               "OS verbs, Ctrl+Q quits.")
        except (LlmosError, TimeoutError) as exc:
            self.shell.caption("The demo stopped", str(exc), error=True)
        except Exception as exc:  # a bug: the shell stays usable, the presenter sees why
            self.shell.caption("The demo stopped", f"{type(exc).__name__}: {exc}", error=True)
        finally:
            self.shell.kernel.listeners.remove(record)
            self.done = True
            self.shell.demo_finished()

    # -- what a presenter would do --------------------------------------------------------

    async def type(self, text: str, *, wait: bool = True) -> None:
        """Type ``text`` into the input line and press Enter, as a user would. With ``wait``,
        return when the shell is idle again (answer complete, command done); else as soon
        as the input was handled (``/spawn TEXT`` returns while its answer streams)."""
        shell, prompt = self.shell, self.shell.prompt
        await self.until(lambda: not shell.generating and not shell.handling, 600, "the shell to be idle")
        prompt.focus()
        prompt.clear()
        if self.options.type_delay:
            for ch in text:
                prompt.insert(ch)
                await asyncio.sleep(self.options.type_delay)
        else:
            prompt.insert(text)
        sent = shell.inputs
        prompt.post_message(events.Key("enter", "\r"))
        await self.until(lambda: shell.inputs > sent and not shell.handling, 600, f"{text!r} to be handled")
        if wait:
            await self.until(lambda: not shell.busy, 600, f"{text!r} to finish")
        shell.refresh_panels()

    async def pause(self, seconds: float) -> None:
        if self.options.type_delay or self.options.step_delay:
            await asyncio.sleep(seconds)
        else:
            await asyncio.sleep(0)

    async def wait_next(self, seconds: float, what: str) -> None:
        """Stay on this step for ``seconds`` (a countdown on the caption bar), until Space / N,
        or until Space / N only when manual; P pauses the countdown. A Space pressed while the
        step was still running counts: the tour moves on as soon as the step is done."""
        if not seconds and not self.options.manual:
            return
        left = seconds
        while not self._next.is_set():
            if self.options.manual or self.paused:
                self.shell.hint(f"{'paused · ' if self.paused else ''}Space: {what}")
            else:
                if left <= 0:
                    break
                self.shell.hint(f"{what} in {left:.0f} s · Space: now · P: pause")
                left -= 0.25
            try:
                await asyncio.wait_for(self._next.wait(), 0.25)
            except asyncio.TimeoutError:
                pass
        self._next.clear()
        self.shell.hint("")

    def next(self) -> None:
        self._next.set()

    def toggle_pause(self) -> None:
        self.paused = not self.paused

    # -- helpers --------------------------------------------------------------------------

    async def until(self, predicate: Callable[[], object], timeout: float, what: str = "the shell") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")
            await asyncio.sleep(0.05)

    def screenshot(self, name: str, title: str) -> None:
        folder = self.options.screenshots
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(self.shell.app.export_screenshot(title=title), encoding="utf-8")


# -- the screen and the app -------------------------------------------------------------


class DemoShell(Shell):
    """The shell with a caption bar on top, driven by a ``DemoDriver``."""

    DEFAULT_CSS = """
    #demo-bar { height: auto; background: $accent 30%; padding: 0 1; }
    #demo-caption { width: 1fr; height: auto; }
    #demo-caption.error { color: $text-error; }
    #demo-hint { width: auto; height: auto; color: $text-muted; padding-left: 2; }
    """

    BINDINGS = [
        Binding("space,n", "demo_next", "Next step", priority=True),
        Binding("p", "demo_pause", "Pause", priority=True),
    ]

    chat_devices = ()
    """The tour's chat processes have no devices (their RAM is tiny); step 7 starts one that has."""

    def __init__(self, kernel, proc, **kwargs) -> None:
        super().__init__(kernel, proc, **kwargs)
        self.driver: DemoDriver | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="demo-bar"):
            yield Static(id="demo-caption")
            yield Static(id="demo-hint")
        yield from super().compose()

    def on_mount(self) -> None:
        # Textual runs Shell.on_mount too (handlers run for every class in the MRO).
        app = self.app
        self.prompt.read_only = True  # the driver owns the input line until the tour ends
        self.caption("llmos demo", "A language model run like an operating system. Space: next step · "
                     "P: pause · Ctrl+Q: quit")
        self.driver = DemoDriver(self, app.options, app.notes)
        self.run_worker(self.driver.run(), group="demo", exit_on_error=False)

    def caption(self, title: str, text: str, *, error: bool = False) -> None:
        if not self.is_attached:
            return
        out = Text.assemble((title, "bold"), "  ", text)
        caption = self.query_one("#demo-caption", Static)
        caption.update(out)
        caption.set_class(error, "error")

    def hint(self, text: str) -> None:
        if self.is_attached:
            self.query_one("#demo-hint", Static).update(text)

    def demo_finished(self) -> None:
        if not self.is_attached:  # the presenter quit during the tour
            return
        self.prompt.read_only = False
        self.hint("")
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("demo_next", "demo_pause"):
            return self.driver is not None and not self.driver.done
        return True

    def action_demo_next(self) -> None:
        if self.driver is None or self.driver.done:
            raise SkipAction()  # after the tour, Space and N are ordinary keys again
        self.driver.next()

    def action_demo_pause(self) -> None:
        if self.driver is None or self.driver.done:
            raise SkipAction()
        self.driver.toggle_pause()


class DemoApp(LlmosApp):
    """The shell, booted on a fresh kernel with a small RAM, running the tour."""

    TITLE = "llmos demo"
    shell_class = DemoShell

    def __init__(self, *, model: str | None = None, ctx: int = DEMO_CTX, ram: int = DEMO_RAM,
                 max_tokens: int = DEMO_MAX_TOKENS, options: DemoOptions | None = None) -> None:
        super().__init__(model=model, ctx=ctx, max_tokens=max_tokens)
        self.ram = ram
        self.options = options or DemoOptions()
        self.workdir = Path(tempfile.mkdtemp(prefix="llmos-demo-"))
        """This run's journal, disk and copy of the notes; removed by ``close_kernel``."""
        self.notes = self.workdir / "notes"

    def boot_kernel(self):
        from llmos.kernel.boot import load_cpu
        from llmos.devices.registry import BUILTINS, Registry
        from llmos.kernel.kernel import Kernel
        from llmos.memory.embed import embed

        if not NOTES.is_dir():
            raise LlmosError(f"the demo's notes are missing from this installation ({NOTES}): "
                             "reinstall llmos (pip install --force-reinstall llmos)")
        shutil.copytree(NOTES, self.notes)
        cpu = load_cpu(self.model, n_ctx=self.ctx, quiet=True)
        # batch=1: one process per quantum, so that step 5 shows context switches (by
        # default the scheduler runs ready processes together in one llama.cpp batch).
        # One device: python, sandboxed (no network, no user files), so that whatever the
        # model writes and whoever presses Y, the tour cannot harm the presenter's machine.
        devices = Registry({name: {"risk": "deny"} for name in BUILTINS if name != "python"})
        kernel = Kernel.in_folder(cpu, self.workdir, ram=self.ram, batch=1, devices=devices)
        try:
            # Open the disk and load the embedding model now, behind the boot screen, so that
            # the first eviction on stage does not stall for seconds.
            kernel.open_disk()
            embed(["warm up"])
        except BaseException:
            kernel.close()
            raise
        return kernel, None

    def close_kernel(self, timeout: float = 5.0) -> None:
        super().close_kernel(timeout)
        shutil.rmtree(self.workdir, ignore_errors=True)


def run_demo(args: argparse.Namespace) -> int:
    """``llmos demo``: boot the model (``args.model``), then run the tour in the shell."""
    from llmos.kernel.boot import resolve_model

    model = getattr(args, "model", None)
    fast = getattr(args, "fast", False)
    shots = getattr(args, "screenshots", None)
    options = DemoOptions(step_delay=0.0 if fast else getattr(args, "step_delay", STEP_DELAY),
                          type_delay=0.0 if fast else TYPE_DELAY, manual=getattr(args, "manual", False),
                          screenshots=Path(shots) if shots else None)
    resolve_model(model)  # first use of the default model: join it with a progress bar, before the UI
    app = DemoApp(model=model, ctx=getattr(args, "ctx", None) or DEMO_CTX, options=options)
    try:
        app.run()
    finally:
        app.close_kernel()
    if app.boot_error is not None:
        raise app.boot_error
    return app.return_code or 0
