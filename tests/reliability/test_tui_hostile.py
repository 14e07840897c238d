"""The shell shows hostile text and never obeys it: the real ``LlmosApp`` through Textual's pilot, a
real kernel on the tiny model, a real device call, a real mount.

Textual passes ESC, C1 controls, NUL and bidi overrides in widget content straight to the terminal
(checked here: ``test_textual_alone_would_pass_escapes_to_the_terminal``), and reads ``str`` cells
and system messages as markup (``[/x]`` raises and takes the whole screen down). So the shell makes
what it draws safe (``llmos.term.terminal_safe``). What the terminal would receive is read from the
compositor (the same update a real driver writes), and every widget's lines are read too, so text
scrolled out of view is checked as well.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from textual.app import App
from textual.geometry import Region
from textual.widgets import Markdown, Static, TextArea

from llmos.devices.base import Device, DeviceResult, Risk
from llmos.kernel import syscall
from llmos.kernel.kernel import Approval, Kernel
from llmos.memory.page import Origin
from llmos.tui.app import LlmosApp
from llmos.tui.chat import AnswerMessage, SystemMessage, UserMessage
from llmos.tui.panels import DevicesPanel, ProcPanel
from tests.kernel.test_syscall import Devices
from tests.llmos.test_tui import send, wait_for
from tests.reliability.strategies import FORBIDDEN

HOSTILE = ("A\x1b]0;pwned\x07B\x1b]52;c;cHduZWQ=\x07C\x1b[2JD\x9b31mE\u202eF\x00G\x07H\x08I\rJ"
           "\x1b]8;;http://evil/\x1b\\K[/x][bold]L")
"""Title, clipboard (OSC 52), clear screen, C1 CSI, bidi override, NUL, BEL, BS, CR, a link, markup
that raises. No whitespace: it is one argument of a slash command too."""
TYPED = HOSTILE + "\ud800M"
"""What a user can type or paste besides: a lone surrogate."""
SHOWN = "A␛]0;pwned␇B␛]52;c;cHduZWQ=␇C␛[2JD"
"""How its start looks on screen."""
OWN = re.compile(r"\x1b\[[0-9;:?<=>]*[ -/]*[@-~]|\x1b\]8;[^\x1b\x07]*(\x1b\\|\x07)")
"""What Textual itself writes: CSI sequences (colours, cursor moves) and OSC 8 links of its own."""


def drawn(app: App) -> tuple[list[str], str]:
    """The text of every segment the screen draws (each widget's lines, in view or scrolled out),
    and the byte string a terminal driver would be sent for the whole screen."""
    texts = []
    for widget in app.screen.query("*"):
        if widget.size.area:
            for strip in widget.render_lines(Region(0, 0, widget.size.width, widget.size.height)):
                texts.extend(segment.text for segment in strip if not segment.control)
    # The compositor's full update, as the driver would write it (Textual's screenshot export reads
    # the same private object).
    update = app.screen._compositor.render_full_update(simplify=True)
    texts.extend(segment.text for line in update.strips for strip in line for segment in strip
                 if not segment.control)
    return texts, update.render_segments(app.console)


def assert_safe(app: App) -> str:
    texts, terminal = drawn(app)
    for text in texts:
        assert not FORBIDDEN.search(text), repr(text)
    rest = OWN.sub("", terminal)
    for bad in ("\x1b", "\x07", "\x9b", "\x9d", "\x00", "\u202e"):
        assert bad not in rest, (bad, rest[max(0, rest.find(bad) - 60):rest.find(bad) + 60])
    return "".join(texts)


async def test_textual_alone_would_pass_escapes_to_the_terminal():
    """Why the shell sanitises at all: plain Textual widgets draw ESC, C1 and NUL as they are."""

    class Plain(App):
        def compose(self):
            yield Static(HOSTILE, markup=False)
            yield Markdown(HOSTILE)
            yield TextArea(HOSTILE)

    app = Plain()
    async with app.run_test(size=(120, 20)) as pilot:
        await pilot.pause()
        texts, _ = drawn(app)
        assert any("\x1b]0;pwned" in t for t in texts)
        assert any("\x9b" in t for t in texts)


class Hostile(Device):
    name = "hostile"
    description = "returns hostile text, or fails with it"
    schema = {"type": "object", "properties": {}, "additionalProperties": False}
    risk = Risk.SAFE
    fail = False

    def call(self, args: dict) -> DeviceResult:
        if self.fail:
            raise RuntimeError(HOSTILE)
        return DeviceResult(output=HOSTILE)


@pytest.fixture
def kernel(tiny_cpu):
    k = Kernel(tiny_cpu, lock=False, devices=Devices(Hostile()))
    yield k
    k.close()


async def test_hostile_text_everywhere_in_the_shell_is_shown_never_obeyed(kernel, tmp_path, monkeypatch):
    device = kernel.devices.get("hostile")
    monkeypatch.setattr(kernel.cpu, "name", f"model{HOSTILE}")  # a remote CPU is named by its server
    kernel.spawn(f"evil{HOSTILE}", "x")  # an app name: /ps, /free and the process table
    kernel.journal.log("warn", f"log {HOSTILE}\nforged line")  # /dmesg
    proc = kernel.spawn("chat", "You are helpful.", grants={"hostile"})
    kernel.add_page(proc, Origin.USER, f"typed {HOSTILE}")  # replayed as a user message
    kernel.add_page(proc, Origin.ASSISTANT, f"answered {HOSTILE}\n\n```\n{HOSTILE}\n```\n")  # and an answer
    word = TYPED.replace("\r", "")  # one argument of a slash command (str.split() splits at CR)
    safe_name = word.replace("/", "").replace("\x00", "").replace("\ud800", "")  # a file name
    folder = tmp_path / "m[" / f"x]{safe_name}"  # "m[/x]..." in the path: markup if misread
    folder.mkdir(parents=True)
    (folder / f"note{safe_name}.md").write_text(f"a note {safe_name}\n")

    app = LlmosApp(kernel=kernel, proc=proc, max_tokens=3)
    async with app.run_test(size=(150, 60)) as pilot:
        shell = app.shell
        await send(pilot, f"say {TYPED}")  # a real turn of the tiny model, on hostile input
        await wait_for(lambda: not shell.busy, 60, "the answer", app)
        for name, fail in (("hostile", False), ("hostile", True), (f"ghost{HOSTILE}", False)):
            device.fail = fail  # device output, a device error, a hostile device name: notices + panel
            await asyncio.to_thread(asyncio.run, kernel.dispatch(proc, syscall.Call(name, {}, "")))
        await wait_for(lambda: app.screen.query_one(DevicesPanel).total == 3, 10, "the device events")
        for command in ("/ps", "/dmesg", "/free", f"/mount {folder}", f"/mount /nowhere/{word}"):
            await send(pilot, command)
            await wait_for(lambda: not shell.busy, 120, command, app)
        shell.prompt.load_text(f"pasted {TYPED}")  # the input line, before it is sent
        await pilot.pause()

        # Kept exactly: what the user typed, the answer's source, the pages.
        typed = [m.text for m in shell.conversation.messages(UserMessage)]
        assert f"typed {HOSTILE}" in typed and f"say {TYPED}" in typed
        assert any(m.text.startswith(f"answered {HOSTILE}") for m in shell.conversation.messages(AnswerMessage))
        pages = kernel.journal.pages(proc.pid)
        assert HOSTILE in [p.text for p in pages if p.origin is Origin.DEVICE]
        assert shell.prompt.text == f"pasted {TYPED}"
        # Every command answered (a markup error would have ended the app instead).
        plain = "\n".join(m.plain for m in shell.conversation.messages(SystemMessage))
        assert f"m[/x]{safe_name}" in plain and "cannot mount /nowhere/" in plain
        assert "[/x]" in str(app.screen.query_one(ProcPanel).get_row_at(0)[1]) or \
            "[/x]" in str(app.screen.query_one(ProcPanel).get_row_at(1)[1])

        # Shown, never obeyed: nothing the terminal would act on, and the hostile text visible.
        shown = assert_safe(app)
        assert SHOWN in shown and "[/x][bold]L" in shown
        assert f"CPU · model{SHOWN}" in shown  # the CPU panel's title
        shell.conversation.scroll_home(animate=False)
        await pilot.pause()
        assert_safe(app)


async def test_a_table_cell_that_is_bad_markup_is_reported_not_fatal(kernel):
    """A renderable that cannot be drawn (a plugin's name read as markup in a table made elsewhere)
    becomes a one-line message instead of ending the shell."""
    from rich.table import Table

    table = Table("app")
    table.add_row("plugin[/x]")
    app = LlmosApp(kernel=kernel, max_tokens=3)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.shell.system(table)
        await pilot.pause()
        last = app.shell.conversation.messages(SystemMessage)[-1]
        assert last.plain.startswith("(this output cannot be shown: closing tag '[/x]'")
        assert_safe(app)


async def test_the_approval_modal_shows_hostile_arguments_safely(kernel):
    from llmos.tui.approval import ApprovalScreen

    request = Approval(1, "chat", "shell", {"command": f"echo {HOSTILE}"}, "ask",
                       [f"notes/{HOSTILE}.md:1-2"])
    app = LlmosApp(kernel=kernel, max_tokens=3)
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(ApprovalScreen(request))
        await pilot.pause()
        assert_safe(app)
