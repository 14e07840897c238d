"""The conversation pane and the input line.

``Conversation`` is a scrolling column of messages: what the user typed and
the assistant's answers (Markdown, code highlighted, answers streamed in as
the CPU produces them), and system messages (slash-command output, kernel
notices such as evictions). It is anchored to the bottom: it follows new
text only while the user is at the bottom, and stays put once they scroll
up to read.

What reaches the screen is made safe for the terminal first
(``llmos.term.terminal_safe``): Textual passes ESC and C1 controls in widget
content straight to the terminal, so a model, a device or a file name could
otherwise set the window title, write the clipboard or clear the screen. The
widgets keep the exact text (``UserMessage.text``, ``AnswerMessage.text``,
``SystemMessage.plain``); only what is drawn changes. A system message's
text is never read as markup (``[/x]`` in a path would crash the screen).

``Prompt`` is the input line: a ``TextArea`` where Enter sends, Ctrl+J (or
Shift/Alt+Enter where the terminal reports them) starts a new line, and Up /
Down on the first / last line walk the history.

What this module leaves out: running turns and commands (``shell.py``).
"""

from __future__ import annotations

import io

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.errors import MarkupError
from rich.measure import Measurement
from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.containers import VerticalScroll
from textual.message import Message
from textual.strip import Strip
from textual.widgets import Markdown, Static, TextArea
from textual.widgets.markdown import MarkdownStream

from llmos.term import terminal_safe


def plain_text(renderable: RenderableType, width: int = 100) -> str:
    """What a renderable looks like as plain text (kept on system messages for tests and copying)."""
    if isinstance(renderable, str):
        return renderable
    if isinstance(renderable, Text):
        return renderable.plain
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text().rstrip()


class Shown:
    """A Rich renderable drawn with ``terminal_safe`` applied to the text of its segments:
    the safety net for tables and groups whose cells were not made safe where they were made."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for segment in console.render(self.renderable, options):
            if segment.control or not segment.text:
                yield segment
            else:
                yield Segment(terminal_safe(segment.text), segment.style)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.renderable)


def displayable(renderable: RenderableType) -> RenderableType:
    """``renderable`` as it may be drawn: a string is plain text (never markup), and no text
    in it reaches the terminal as a control character (see the module docstring)."""
    if isinstance(renderable, str):
        return Text(terminal_safe(renderable))
    if isinstance(renderable, Text):
        safe = terminal_safe(renderable.plain)
        if safe == renderable.plain:
            return renderable
        shown = renderable.copy()
        shown.plain = safe  # same length: the styles' spans stay where they were
        return shown
    return Shown(renderable)


class UserMessage(Markdown):
    """What the user typed."""

    DEFAULT_CSS = """
    UserMessage {
        margin: 1 0 0 0;
        padding: 0 1;
        border-left: outer $primary;
        background: $boost;
    }
    UserMessage > *:last-child { margin-bottom: 0; }
    """

    def __init__(self, text: str) -> None:
        super().__init__(terminal_safe(text))
        self.text = text
        """What the user typed, exactly (the screen shows it made safe)."""


DRAW_EVERY_S = 0.04
"""Streamed tokens reach the Markdown at most this often: re-rendering an answer once per
token costs the UI thread more than the keys it must keep answering (``llmos bench ui``)."""


class AnswerMessage(Markdown):
    """An assistant answer, streamed token by token (drawn in small batches)."""

    DEFAULT_CSS = """
    AnswerMessage {
        margin: 1 0 0 0;
        padding: 0 1;
        border-left: outer $success;
    }
    AnswerMessage.background { border-left: outer $warning; }
    AnswerMessage > *:last-child { margin-bottom: 0; }
    """

    def __init__(self, pid: int, *, background: bool = False) -> None:
        super().__init__(classes="background" if background else "")
        self.pid = pid
        self.background = background
        """True for the answer of a process other than the shell's own (``/spawn TEXT``)."""
        self.text = ""
        """The answer so far (the Markdown source, exact), including tokens not drawn yet."""
        self._stream: MarkdownStream | None = None
        self._undrawn = ""
        self._draw_pending = False

    def feed(self, fragment: str) -> None:
        """Add a streamed token: it is drawn with the others that arrive within DRAW_EVERY_S."""
        if not fragment:
            return
        self.text += fragment
        self._undrawn += terminal_safe(fragment)  # per character: a split token is no problem
        if not self._draw_pending:
            self._draw_pending = True
            self.set_timer(DRAW_EVERY_S, self._draw)

    async def _draw(self) -> None:
        self._draw_pending = False
        fragment, self._undrawn = self._undrawn, ""
        if fragment:
            if self._stream is None:
                self._stream = Markdown.get_stream(self)
            await self._stream.write(fragment)

    async def write(self, fragment: str) -> None:
        """Add text and draw it now."""
        self.feed(fragment)
        await self._draw()

    async def finish(self) -> None:
        await self._draw()
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None


class SystemMessage(Static):
    """Output of a slash command, or a notice from the kernel."""

    DEFAULT_CSS = """
    SystemMessage {
        margin: 1 0 0 0;
        padding: 0 1;
        color: $text-muted;
        border-left: outer $secondary;
    }
    SystemMessage.error { color: $text-error; border-left: outer $error; }
    SystemMessage.notice { margin: 0; border-left: none; padding: 0 2; }
    SystemMessage.footnote { margin: 0; border-left: none; padding: 0 2; color: $text-disabled; }
    """

    def __init__(self, renderable: RenderableType, *, classes: str = "") -> None:
        try:
            plain = plain_text(renderable)
        except MarkupError as exc:  # a table cell read as markup: show why, do not take the screen down
            renderable = plain = f"(this output cannot be shown: {exc})"
        super().__init__(displayable(renderable), classes=classes)
        self.plain = plain
        """The message as plain text (exact: what is drawn is made safe for the terminal)."""


class Conversation(VerticalScroll):
    """The scrolling message column. See the module docstring."""

    DEFAULT_CSS = """
    Conversation {
        height: 1fr;
        padding: 0 1 1 0;
        scrollbar-size-vertical: 1;
    }
    """

    def on_mount(self) -> None:
        self.anchor()

    async def add(self, widget: Static | Markdown) -> None:
        if not self.is_attached:  # the app is closing (a turn ended as it quit): nowhere to show it
            return
        await self.mount(widget)

    def messages(self, kind: type | None = None) -> list:
        return [w for w in self.children if kind is None or isinstance(w, kind)]

    def transcript(self) -> str:
        """Everything shown, as plain text (tests use it; so could a future /save)."""
        out = []
        for w in self.children:
            if isinstance(w, UserMessage):
                out.append(f"> {w.text}")
            elif isinstance(w, AnswerMessage):
                out.append(w.text)
            elif isinstance(w, SystemMessage):
                out.append(w.plain)
        return "\n".join(out)


class Prompt(TextArea):
    """The input line, with history. See the module docstring."""

    DEFAULT_CSS = """
    Prompt {
        height: auto;
        min-height: 3;
        max-height: 10;
        border: tall $primary 50%;
    }
    Prompt:focus { border: tall $primary; }
    """

    NEWLINE_KEYS = ("ctrl+j", "shift+enter", "alt+enter", "ctrl+enter")
    """Keys that insert a newline. Ctrl+J works in every terminal; the others only
    where the terminal tells them apart from Enter (kitty keyboard protocol)."""

    class Submitted(Message):
        """The user pressed Enter on a non-empty input."""

        def __init__(self, prompt: Prompt, text: str) -> None:
            super().__init__()
            self.prompt = prompt
            self.text = text

    def __init__(self, **kwargs) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)
        self.past: list[str] = []
        self._at: int | None = None
        """Index into ``history`` while walking it; None when editing a fresh line."""
        self._draft = ""

    def render_line(self, y: int) -> Strip:
        """A line of the input as drawn: the text stays exact (it is sent as typed or pasted),
        but no control character in it reaches the terminal (TextArea draws them raw)."""
        strip = super().render_line(y)
        segments = list(strip)
        if all(terminal_safe(s.text) == s.text for s in segments if not s.control):
            return strip
        return Strip([s if s.control else Segment(terminal_safe(s.text), s.style) for s in segments])

    def remember(self, text: str) -> None:
        if text.strip() and (not self.past or self.past[-1] != text):
            self.past.append(text)
        self._at = None
        self._draft = ""

    def _show(self, text: str, at_end: bool) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end if at_end else (0, len(self.document[0])))

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        row = self.cursor_location[0]
        handled = True
        if key == "enter":
            text = self.text
            if text.strip():
                self.post_message(self.Submitted(self, text))
        elif key in self.NEWLINE_KEYS:
            self.insert("\n")
        elif key == "up" and row == 0 and self.past and self.selection.is_empty:
            if self._at is None:
                self._draft, self._at = self.text, len(self.past)
            if self._at > 0:
                self._at -= 1
                self._show(self.past[self._at], at_end=False)
        elif key == "down" and row == self.document.line_count - 1 and self._at is not None:
            self._at += 1
            if self._at >= len(self.past):
                self._at = None
                self._show(self._draft, at_end=True)
            else:
                self._show(self.past[self._at], at_end=True)
        else:
            handled = False
        if handled:
            # subtle: prevent_default stops TextArea's own handler (which would insert a
            # newline for Enter); stop keeps the key from reaching the cursor bindings.
            event.prevent_default()
            event.stop()
