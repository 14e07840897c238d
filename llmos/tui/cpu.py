"""The CPU panel: how fast the model runs, what it costs the host, and what it predicts.

- **tokens/s now**: tokens that arrived in the last couple of seconds, over
  the time they took (the last turn's rate when idle);
- **context switches**: the scheduler's count, and the last switch's time and
  kind (``fresh``, ``restore`` of a KV snapshot, ``reprefill``); and how many
  rounds ran several processes together in one batch (no switch needed);
- **host**: this process's CPU % and resident memory (psutil), once a second;
- **next-word prediction**: the last few tokens generated, each with the
  probability the model gave it and the runners-up among its five most likely
  candidates. This is all the model does, one token at a time.
"""

from __future__ import annotations

import time
from collections import deque

import psutil
from rich.console import Group
from rich.text import Text
from textual.markup import escape
from textual.widgets import Static

from llmos.kernel.cpu import Step
from llmos.term import terminal_safe

RATE_WINDOW_S = 2.0
TRACE_TOKENS = 24
TRACE_ROWS = 5
BARS = "▁▂▃▄▅▆▇█"


def visible(piece: str) -> str:
    """A token's text with whitespace made visible (and any control character: a token may be ESC)."""
    return terminal_safe(piece.replace("\n", "⏎").replace("\t", "⇥").replace(" ", "·"), newlines=False) or "∅"


class CpuPanel(Static):
    """See the module docstring."""

    DEFAULT_CSS = """
    CpuPanel {
        height: auto;
        padding: 0 1;
        border-top: solid $primary;
        border-title-color: $text;
    }
    """

    def __init__(self, kernel, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kernel = kernel
        self.arrivals: deque[float] = deque(maxlen=512)
        self.trace: deque[Step] = deque(maxlen=TRACE_TOKENS)
        self.trace_pids: deque[int | None] = deque(maxlen=TRACE_TOKENS)
        """The pid each traced token was generated for (the CPU is shared)."""
        self.last_rate = 0.0
        self.last_switch: tuple[float, str] | None = None
        self.host = psutil.Process()
        self.host.cpu_percent(None)  # the first reading is always 0: start the clock now
        self.cpu_pct = 0.0
        self.rss = self.host.memory_info().rss
        self._pending = False
        self.show_model()

    def show_model(self) -> None:
        """Title the panel with the model the CPU runs now (after ``/model``, the new one)."""
        # A remote CPU is named after the model its server reports: shown, never read as markup.
        name = terminal_safe(str(getattr(self.kernel.cpu, "name", "model")), newlines=False)
        self.border_title = f"CPU · {escape(name)}"

    def on_mount(self) -> None:
        self.set_interval(1.0, self.sample_host)
        self.redraw()

    def sample_host(self) -> None:
        self.cpu_pct = self.host.cpu_percent(None)
        self.rss = self.host.memory_info().rss
        self.redraw()

    def step(self, step: Step, pid: int | None = None) -> None:
        self.arrivals.append(time.monotonic())
        if step.top is not None or step.text:
            self.trace.append(step)
            self.trace_pids.append(pid)
        self.refresh_soon()

    def switched(self, seconds: float, how: str) -> None:
        self.last_switch = (seconds, how)
        self.refresh_soon()

    def turn_ended(self, tok_per_s: float) -> None:
        if tok_per_s:
            self.last_rate = tok_per_s
        self.arrivals.clear()
        self.redraw()

    def rate(self) -> float:
        """Tokens per second over the last RATE_WINDOW_S (0 when nothing arrived)."""
        now = time.monotonic()
        recent = [t for t in self.arrivals if now - t <= RATE_WINDOW_S]
        if len(recent) < 2 or recent[-1] == recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])

    def refresh_soon(self) -> None:
        # Many tokens a second arrive; drawing once per frame is enough.
        if not self._pending:
            self._pending = True
            self.call_after_refresh(self._draw_pending)

    def _draw_pending(self) -> None:
        self._pending = False
        self.redraw()

    def redraw(self) -> None:
        stats = self.kernel.sched.stats
        now_rate = self.rate()
        head = Text()
        if now_rate:
            head.append(f"{now_rate:5.1f} tok/s", style="bold green")
        else:
            head.append(f"{self.last_rate:5.1f} tok/s", style="bold")
            head.append(" last", style="dim")
        head.append(f" · {stats.tokens:,} tok\n")
        head.append(f"switches {stats.switches}")
        if self.last_switch:
            seconds, how = self.last_switch
            head.append(f" · last {seconds * 1000:.1f} ms {how}", style="dim")
        if stats.batches:
            head.append(f" · batched rounds {stats.batches}", style="dim")
        head.append("\n")
        head.append(f"host {self.cpu_pct:3.0f}% cpu · {self.rss / 2**20:,.0f} MB rss\n")
        head.append("next-word prediction (top 5)", style="italic")
        self.update(Group(head, *self.trace_lines()))

    def trace_lines(self) -> list:
        """One row per recent token, newest last: the token the model chose, how likely it
        found it, and the runners-up it passed over."""
        traced = [(pid, s) for pid, s in zip(self.trace_pids, self.trace) if s.top][-TRACE_ROWS:]
        if not traced:
            return [Text("next-token candidates: none yet", style="dim")]
        shared = len({pid for pid, _ in traced}) > 1  # two processes took turns on the CPU
        rows = []
        for i, (pid, step) in enumerate(traced):
            newest = i == len(traced) - 1
            prob = next((p for piece, p in step.top if piece == step.text), None)
            row = Text(no_wrap=True, overflow="ellipsis")
            if shared:
                row.append(f"{pid}▸", style="bold yellow")
            row.append(f"{visible(step.text)[:8]:<8}", style="bold reverse" if newest else "bold")
            row.append(" ")
            row.append(BARS[min(len(BARS) - 1, int((prob or 0) * len(BARS)))], style="green")
            row.append(f"{prob:4.0%} " if prob is not None else "   ? ", style="green")
            for piece, p in step.top:
                if piece != step.text:
                    row.append(f"{visible(piece)} ", style="")
                    row.append(f"{p:.0%}  ", style="dim")
            rows.append(row)
        return rows
