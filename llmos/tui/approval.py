"""The approval modal: a risky device call waits here for the user's yes or no.

The kernel asks before every ``ask``-risk call (``Kernel(approver=...)``); the
process is BLOCKED meanwhile. This screen shows exactly what would run: the
process and app asking, the device, every argument as JSON (highlighted,
nothing abbreviated), the risk, and, in a warning box, where untrusted text
in the process's context came from, because an instruction hidden in a file
or web page is the usual reason a model proposes a call nobody asked for.

Deny is focused and is what Esc, N, Ctrl+C and closing the shell answer:
nothing runs unless the user says Y (or clicks Allow).

``ShellApprover`` is the bridge from the kernel's thread to this screen: the
kernel awaits it on the turn thread's event loop, it pushes the modal on the
UI thread, and the modal's answer resolves the future the kernel awaits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading

from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from llmos.kernel.kernel import Approval
from llmos.term import terminal_safe


def describe(request: Approval) -> Group:
    """The call as the modal shows it (also used by tests and the demo)."""
    # Everything shown here may come from the model or from untrusted text: made safe for the
    # terminal (no escapes, no bidi reordering), so the user approves exactly what they read.
    head = Text.assemble(("pid ", "dim"), (str(request.pid), "bold"),
                         (f" ({terminal_safe(request.app)}) wants to run ", "dim"),
                         (terminal_safe(request.device), "bold"), ("  risk ", "dim"), (request.risk, "bold red"))
    args = terminal_safe(json.dumps(request.args, ensure_ascii=False, indent=2))
    parts = [head, Syntax(args, "json", word_wrap=True, background_color="default")]
    if request.untrusted_sources:
        warning = Text("Untrusted text has entered this process's context, from: ", style="bold yellow")
        warning.append(terminal_safe(", ".join(request.untrusted_sources)), style="yellow")
        warning.append("\nIf you did not ask for this call, an instruction hidden in that text may have.",
                       style="yellow")
        parts.append(warning)
    return Group(*parts)


class ApprovalScreen(ModalScreen[bool]):
    """One pending call. Dismissed with True (allow) or False (deny)."""

    DEFAULT_CSS = """
    ApprovalScreen { align: center middle; }
    ApprovalScreen > Vertical {
        width: 90%;
        max-width: 96;
        height: auto;
        max-height: 90%;
        border: thick $warning;
        background: $surface;
        padding: 0 1;
    }
    ApprovalScreen #call { height: auto; max-height: 20; overflow-y: auto; }
    ApprovalScreen Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    ApprovalScreen Button { margin-left: 2; }
    """

    BINDINGS = [
        Binding("y", "answer(True)", "Allow"),
        Binding("n,escape", "answer(False)", "Deny"),
    ]

    def __init__(self, request: Approval) -> None:
        super().__init__()
        self.request = request
        self.answered = False
        """Set when the request was answered elsewhere (Ctrl+C, closing) while this screen
        was under another one: it closes itself as soon as it is on top again."""

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Approve this device call?"
            box.border_subtitle = "Y allow · N / Esc deny"
            yield Static(describe(self.request), id="call")
            with Horizontal():
                yield Button("Allow (Y)", id="allow", variant="warning")
                yield Button("Deny (N)", id="deny", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#deny", Button).focus()

    def on_screen_resume(self) -> None:
        if self.answered:
            self.dismiss(False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "allow")

    def action_answer(self, allow: bool) -> None:
        self.dismiss(allow)


class ShellApprover:
    """The kernel's approver for a shell: each request becomes an ``ApprovalScreen``.

    ``on_request`` is told of each request as it is shown (the shell notes it in
    the conversation). ``deny_all`` answers every open request with no, for
    Ctrl+C and for closing the shell.
    """

    def __init__(self, app: App, on_request=None) -> None:
        self.app = app
        self.on_request = on_request
        self.pending: dict[concurrent.futures.Future, tuple[Approval, ApprovalScreen | None]] = {}
        self._lock = threading.Lock()

    async def __call__(self, request: Approval) -> bool:
        future: concurrent.futures.Future[bool] = concurrent.futures.Future()
        with self._lock:
            self.pending[future] = (request, None)
        try:
            if threading.get_ident() == getattr(self.app, "_thread_id", None):
                self._show(request, future)
            else:
                self.app.call_from_thread(self._show, request, future)
            return bool(await asyncio.wrap_future(future))
        except RuntimeError:  # the app is gone (closing): nobody can say yes
            return False
        finally:
            with self._lock:
                self.pending.pop(future, None)

    def _show(self, request: Approval, future: concurrent.futures.Future) -> None:
        if future.done():
            return
        screen = ApprovalScreen(request)
        with self._lock:
            self.pending[future] = (request, screen)

        def answered(allow: bool | None) -> None:
            if not future.done():
                future.set_result(bool(allow))

        self.app.push_screen(screen, answered)
        if self.on_request is not None:
            self.on_request(request)

    def deny_all(self, pid: int | None = None) -> int:
        """Answer no to the open requests (of ``pid``, or all). Returns how many. UI thread."""
        with self._lock:
            items = [(f, r, s) for f, (r, s) in self.pending.items() if pid is None or r.pid == pid]
        for future, _, screen in items:
            if screen is not None and self.app.screen is screen:
                screen.dismiss(False)
                continue
            if screen is not None:
                screen.answered = True  # under another screen: it closes when it is on top again
            if not future.done():
                future.set_result(False)
        return len(items)
