"""The Textual application: boot, then the shell.

``LlmosApp()`` boots by itself: a loading screen while the model loads on a
worker thread, then a kernel and a ``chat`` process, then the ``Shell``
screen. ``LlmosApp(kernel=k, proc=p)`` skips the boot and shows the shell on
a kernel someone else made and will close (tests do this). A subclass changes
how the machine boots (``boot_kernel``) and which screen it shows
(``shell_class``): ``demo.py`` does both.

App-wide keys live here (Ctrl+C, help, theme, quit); everything about
conversations and panels lives in ``shell.py``.
"""

from __future__ import annotations

import time

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Center, Middle
from textual.screen import Screen
from textual.widgets import Label, LoadingIndicator

from llmos.kernel.proc import Process
from llmos.tui.commands import OsCommands
from llmos.tui.help import HelpScreen
from llmos.apps.chat import spawn_chat
from llmos.tui.shell import Shell

QUIT_WINDOW_S = 3.0
"""A second Ctrl+C within this many seconds of the first, when idle, quits."""


class BootScreen(Screen):
    DEFAULT_CSS = """
    BootScreen LoadingIndicator { height: 3; }
    BootScreen Label { width: 100%; content-align: center middle; }
    """

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Middle():
            with Center():
                yield Label(f"llmos: loading {self.what}", id="boot-label")
            yield LoadingIndicator()


class LlmosApp(App[None]):
    TITLE = "llmos"
    shell_class: type[Shell] = Shell
    """The main screen's class."""
    COMMANDS = App.COMMANDS | {OsCommands}
    BINDINGS = [
        Binding("ctrl+c", "interrupt", "Interrupt", priority=True),
        Binding("escape", "stop", "Stop", show=False),
        Binding("f1", "help", "Help", priority=True),
        Binding("question_mark", "help", "Help", show=False),
        Binding("ctrl+t", "toggle_theme", "Theme"),
        Binding("ctrl+l", "clear", "Clear", show=False),
    ]

    def __init__(self, kernel=None, proc: Process | None = None, *, model: str | None = None,
                 ctx: int | None = None, max_tokens: int | None = None) -> None:
        super().__init__()
        self.kernel = kernel
        self.proc = proc
        self.model = model
        self.ctx = ctx
        self.max_tokens = max_tokens
        self.owns_kernel = kernel is None
        """True when the app booted the kernel itself (and so must close it)."""
        self.shell: Shell | None = None
        self.boot_error: BaseException | None = None
        self._quit_armed = 0.0

    def on_mount(self) -> None:
        if self.kernel is not None:
            self._start_shell(self.kernel, self.proc)
        else:
            from llmos.kernel import models

            ctx = f" (context {self.ctx:,} tokens)" if self.ctx else ""
            self.push_screen(BootScreen(f"{models.effective_name(self.model)}{ctx}"))
            self._boot()

    @work(thread=True, exit_on_error=False)
    def _boot(self) -> None:
        try:
            kernel, proc = self.boot_kernel()
        except BaseException as exc:
            self.call_from_thread(self._boot_failed, exc)
            return
        self.call_from_thread(self._start_shell, kernel, proc)

    def boot_kernel(self):
        """Load the CPU and make the kernel (on the boot thread). Returns the kernel and the
        process the shell talks to (None: a fresh chat process)."""
        from llmos.kernel.boot import load_cores
        from llmos.devices.registry import Registry
        from llmos.kernel.kernel import Kernel

        # quiet: run_shell already joined the default model, with its progress bar,
        # before the UI took the terminal.
        kernel = Kernel(load_cores(self.model, n_ctx=self.ctx, quiet=True), devices=Registry.from_config())
        try:
            # Conversations and processes come back from the journal, as after a reboot.
            restored = [p for p in kernel.restore() if p.app == "chat"]
        except BaseException:
            kernel.close()
            raise
        return kernel, restored[-1] if restored else None

    def _boot_failed(self, exc: BaseException) -> None:
        self.boot_error = exc
        self.exit(return_code=1)

    def _start_shell(self, kernel, proc: Process | None) -> None:
        self.kernel = kernel
        self.proc = proc or spawn_chat(kernel, self.shell_class.chat_devices)
        kwargs = {"max_tokens": self.max_tokens} if self.max_tokens else {}
        self.shell = self.shell_class(kernel, self.proc, **kwargs)
        if isinstance(self.screen, BootScreen):
            self.switch_screen(self.shell)
        else:
            self.push_screen(self.shell)

    # -- app-wide actions -------------------------------------------------------------

    def action_interrupt(self) -> None:
        """Ctrl+C: interrupt generation; when idle, a second press quits."""
        if self.shell is not None and self.shell.interrupt():
            self._quit_armed = 0.0
            self.notify("interrupted", timeout=2)
            return
        now = time.monotonic()
        if self.shell is None or now - self._quit_armed < QUIT_WINDOW_S:
            self.exit()
            return
        self._quit_armed = now
        self.notify("Press Ctrl+C again to quit", timeout=QUIT_WINDOW_S)

    def action_stop(self) -> None:
        if self.shell is not None and self.shell.interrupt():
            self.notify("interrupted", timeout=2)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def action_clear(self) -> None:
        if self.shell is not None:
            self.shell.clear()

    def close_kernel(self, timeout: float = 5.0) -> None:
        """After ``run()``: let a running turn stop, then close the kernel if we made it."""
        if self.shell is not None:
            self.shell.interrupt_all()
            self.shell.worker_idle.wait(timeout)
        if self.owns_kernel and self.kernel is not None:
            self.kernel.close()
            self.kernel = None
