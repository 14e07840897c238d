"""The smaller side panels: the process table, the disk, the devices.

``ProcPanel`` is ``ps`` as a live ``DataTable``; selecting a row shows that
process's page map in the RAM panel. ``DiskPanel`` sums up swap and the
folders mounted from this shell; ``DevicesPanel`` lists the last device calls
with their status and duration.
"""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable, Static

from llmos.term import terminal_safe

STATE_STYLE = {"RUNNING": "bold green", "READY": "yellow", "BLOCKED": "red", "SLEEPING": "",
               "ZOMBIE": "dim"}
COLUMNS = (("pid", "pid"), ("app", "app"), ("state", "state"), ("pages", "pages"), ("tok", "tok"),
           ("pri", "pri"), ("cpu", "cpu s"), ("faults", "flt"), ("evict", "evict"))
"""Narrow panels show the first few; the rest scroll into view."""


def ps_cells(row: dict) -> list:
    # The app's name as Text: a DataTable reads a str cell as markup ("[/x]" would raise), and
    # made safe for the terminal (it comes from a plugin's manifest).
    return [
        str(row["pid"]), Text(terminal_safe(str(row["app"]), newlines=False)),
        Text(row["state"], style=STATE_STYLE.get(row["state"], "")),
        f"{row['resident_pages']}/{row['swapped_pages']}", str(row["tokens_out"]), str(row["priority"]),
        f"{row['cpu_s']:.1f}", str(row["page_faults"]), str(row["evictions"]),
    ]


class ProcPanel(DataTable):
    """The process table. See the module docstring."""

    DEFAULT_CSS = """
    ProcPanel {
        height: auto;
        max-height: 8;
        border-top: solid $primary;
        border-title-color: $text;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 0;
    }
    """

    class Selected(Message):
        def __init__(self, pid: int) -> None:
            super().__init__()
            self.pid = pid

    def __init__(self, kernel, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, cell_padding=1, **kwargs)
        self.kernel = kernel
        self.border_title = "Processes"

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)
        self.refresh_table()

    def refresh_table(self) -> None:
        rows = {str(r["pid"]): r for r in self.kernel.ps()}
        for key in [k.value for k in self.rows if k.value not in rows]:
            self.remove_row(key)
        for key, row in rows.items():
            cells = ps_cells(row)
            if key in self.rows:
                for (column, _), value in zip(COLUMNS, cells):
                    self.update_cell(key, column, value)
            else:
                self.add_row(*cells, key=key)
        alive = sum(1 for r in rows.values() if r["state"] != "ZOMBIE")
        self.border_title = f"Processes · {alive} alive"

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.Selected(int(event.row_key.value)))


class DiskPanel(Static):
    """Swap totals over all processes, and the folders mounted from this shell."""

    DEFAULT_CSS = """
    DiskPanel { height: auto; padding: 0 1; border-top: solid $primary; border-title-color: $text; }
    """

    def __init__(self, kernel, mounts: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kernel = kernel
        self.mounts = mounts if mounts is not None else {}
        """root -> MountReport, shared with the shell (read here, never queried: chromadb
        calls stay off the UI thread)."""
        self.border_title = "Disk"

    def on_mount(self) -> None:
        self.refresh_disk()

    def refresh_disk(self) -> None:
        pages = [p for proc in list(self.kernel.procs.values()) for p in list(proc.space.pages)
                 if not p.resident]
        tokens = sum(p.n_tokens for p in pages)
        out = Text(f"swap: {len(pages)} pages, {tokens:,} tok")
        for root, report in list(self.mounts.items()):
            files = report.files_indexed + report.files_unchanged
            name = terminal_safe(root.rsplit('/', 1)[-1], newlines=False)
            out.append(f"\nmount: {name}/ · {files} files", style="cyan")
        self.update(out)


class DevicesPanel(Static):
    """The last device calls, newest first: pid, device, status, size, duration."""

    DEFAULT_CSS = """
    DevicesPanel { height: auto; padding: 0 1; border-top: solid $primary; border-title-color: $text; }
    """
    SHOWN = 5

    def __init__(self, **kwargs) -> None:
        super().__init__(Text("no device calls yet", style="dim"), **kwargs)
        self.border_title = "Devices"
        self.calls: deque[dict] = deque(maxlen=self.SHOWN)
        self.total = 0

    def add(self, call: dict) -> None:
        """One ``device`` event of the kernel (pid, device, args, error, seconds, bytes)."""
        self.calls.appendleft(call)
        self.total += 1
        out = Text()
        for c in self.calls:
            if out:
                out.append("\n")
            error = c.get("error")
            out.append("✗ " if error else "✓ ", style="red" if error else "green")
            # The device name is whatever the model wrote; the error may quote a path or output.
            out.append(terminal_safe(f"{c['pid']} {c['device']}", newlines=False), style="bold")
            if error:
                out.append(f" {terminal_safe(str(error), newlines=False)}", style="red")
            else:
                out.append(f" {c.get('bytes', 0):,} B")
            out.append(f" {c.get('seconds', 0.0):.2f} s", style="dim")
        self.update(out)
        self.border_title = f"Devices · {self.total} call{'s' if self.total != 1 else ''}"
