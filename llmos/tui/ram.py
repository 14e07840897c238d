"""The RAM panel: one process's address space as a page map, and its pressure bar.

One cell per page, in address order, coloured by origin:

- ``■`` a resident page, ``▣`` a pinned one (never evicted), ``▨`` untrusted
  text (device output, file excerpts);
- ``□`` (dim) a page swapped out to disk;
- a cell flashes red for a moment when its page is evicted and green when a
  page fault brings it back.

Under the map, the pressure bar: resident tokens against the RAM budget, with
the marks where the pager warns (75 %) and evicts (90 %).

The panel reads the address space when it redraws (on kernel events and on
a timer); it never changes it.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from llmos.memory.page import Origin, Trust
from llmos.memory.ram import EVICT_AT, WARN_AT

ORIGIN_STYLE = {
    Origin.SYSTEM: "magenta",
    Origin.USER: "blue",
    Origin.ASSISTANT: "green",
    Origin.DEVICE: "yellow",
    Origin.FILE: "cyan",
    Origin.SUMMARY: "bright_magenta",
    Origin.KERNEL: "red",
}
"""ANSI colour names: Textual maps them through the theme, so both light and dark read well."""
ORIGIN_LABEL = {
    Origin.SYSTEM: "sys", Origin.USER: "you", Origin.ASSISTANT: "answer", Origin.DEVICE: "dev",
    Origin.FILE: "file", Origin.SUMMARY: "summary", Origin.KERNEL: "kernel",
}
FLASH_S = 1.5
"""How long an evicted or paged-in cell stays highlighted."""
MAX_MAP_LINES = 6


def cell(page) -> str:
    if not page.resident:
        return "□"
    if page.pinned:
        return "▣"
    if page.trust is Trust.UNTRUSTED:
        return "▨"
    return "■"


def pressure_bar(usage: float, width: int) -> Text:
    """``█`` up to usage, ``░`` after, with ``┃`` marks at WARN_AT and EVICT_AT."""
    width = max(10, width)
    filled = min(width, round(usage * width))
    level = "red" if usage >= EVICT_AT else "yellow" if usage >= WARN_AT else "green"
    marks = {int(WARN_AT * width): "yellow", min(width - 1, int(EVICT_AT * width)): "red"}
    bar = Text()
    for i in range(width):
        if i in marks:
            bar.append("┃", style=f"bold {marks[i]}")
        elif i < filled:
            bar.append("█", style=level)
        else:
            bar.append("░", style="bright_black")
    return bar


class RamPanel(Static):
    """See the module docstring. ``pid`` selects the process shown."""

    DEFAULT_CSS = """
    RamPanel {
        height: auto;
        padding: 0 1;
        border-top: solid $primary;
        border-title-color: $text;
    }
    """

    def __init__(self, kernel, pid: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kernel = kernel
        self.pid = pid
        self.flashes: dict[str, tuple[str, float]] = {}
        """page id -> ("evict" | "page_in", when): cells drawn highlighted for FLASH_S."""
        self.border_title = "RAM"

    def show(self, pid: int) -> None:
        self.pid = pid
        self.flashes.clear()
        self.refresh_map()

    def flash(self, kind: str, page_ids: list[str]) -> None:
        now = time.monotonic()
        for page_id in page_ids:
            self.flashes[page_id] = (kind, now)
        self.refresh_map()
        self.set_timer(FLASH_S + 0.05, self.refresh_map)

    def cells(self) -> list[str]:
        """The map as glyphs, one per page (tests read it)."""
        proc = self.kernel.procs.get(self.pid)
        return [cell(p) for p in list(proc.space.pages)] if proc else []

    def on_mount(self) -> None:
        self.refresh_map()

    def on_resize(self) -> None:
        self.refresh_map()

    def refresh_map(self) -> None:
        proc = self.kernel.procs.get(self.pid)
        if proc is None:
            self.update(Text("no process", style="dim"))
            return
        space = proc.space
        pages = list(space.pages)
        width = max(10, self.content_region.width or 30)
        now = time.monotonic()
        self.flashes = {k: v for k, v in self.flashes.items() if now - v[1] < FLASH_S}
        swapped = sum(1 for p in pages if not p.resident)
        self.border_title = f"RAM · pid {proc.pid} · {len(pages)} page{'s' if len(pages) != 1 else ''}"

        out = Text(no_wrap=False)
        shown = pages
        capacity = width * MAX_MAP_LINES
        if len(pages) > capacity:
            hidden = len(pages) - capacity + 2
            shown = pages[hidden:]
            out.append(f"+{hidden}", style="dim")
        for page in shown:
            style = ORIGIN_STYLE[page.origin]
            if not page.resident:
                style += " dim"
            flash = self.flashes.get(page.id)
            if flash:
                style = "bold reverse red" if flash[0] == "evict" else "bold reverse green"
            out.append(cell(page), style=style)
        out.append("\n")
        pct = f" {space.usage:4.0%}"
        out.append_text(pressure_bar(space.usage, width - len(pct)))
        out.append(pct, style="bold red" if space.usage >= EVICT_AT else "")
        out.append(f"\n{space.resident_tokens:,}/{space.budget:,} tok resident")
        if space.evictions:
            out.append(f" · {space.evictions} evicted", style="dim")
        if space.faults:
            out.append(f" · {space.faults} faults", style="dim")
        out.append("\n")
        present = [o for o in Origin if any(p.origin is o for p in pages)]
        for origin in present:
            out.append("■", style=ORIGIN_STYLE[origin])
            out.append(f"{ORIGIN_LABEL[origin]} ")
        if any(p.pinned for p in pages):
            out.append("▣pinned ")
        if any(p.trust is Trust.UNTRUSTED for p in pages):
            out.append("▨untrusted ")
        if swapped:
            out.append(f"□swapped×{swapped}")
        self.update(out)
