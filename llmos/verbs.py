"""The OS verbs as plain subcommands, for scripts: ps, kill, free, df, mount, dmesg, log.

They read the journal and the disk directly, so they work whether or not a
shell is running (the journal is SQLite in WAL mode: readers never block the
writer). Each prints a table, or JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from llmos.errors import UsageError
from llmos.term import json_safe, terminal_safe


def _journal():
    from llmos.memory.journal import Journal, journal_path

    return Journal(journal_path())


def _print(rows, as_json: bool, columns: list[str], title: str, whole: tuple[str, ...] = ()) -> None:
    """``whole``: columns never cut or folded (the rest give way on a narrow terminal)."""
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, box=None, padding=(0, 1), pad_edge=False, header_style="bold")  # ps fits 80 columns
    for col in columns:
        width = max([len(col)] + [len(str(row.get(col, ""))) for row in rows]) if col in whole else None
        table.add_column(col, min_width=width, no_wrap=col in whole)
    for row in rows:
        # Text, not str: a value is shown, never read as Rich markup ("[/x]" in an app name
        # would raise), and never obeyed by the terminal (ESC in a file name).
        table.add_row(*(Text(terminal_safe(str(row.get(c, "")), newlines=False)) for c in columns))
    Console().print(table)


def process_rows(journal, include_dead: bool = False) -> list[dict]:
    return [rec.row() for rec in journal.processes(include_dead=include_dead)]


def cmd_ps(args: argparse.Namespace) -> int:
    from llmos.transcript import state_label

    with _journal() as journal:
        rows = process_rows(journal, include_dead=args.all)
    if args.json:
        _print(rows, True, [], "")
        return 0
    # The table fits 80 columns: short headers, pages as resident/swapped; JSON has every field.
    shown = [{"pid": r["pid"], "app": r["app"],
              "state": state_label(r),
              "pri": r["priority"], "core": r.get("core", ""),
              "pages": f"{r.get('resident_pages', 0)}/{r.get('swapped_pages', 0)}",
              "tok": r.get("tokens_out", ""), "cpu s": r.get("cpu_s", ""), "sw": r.get("switches", ""),
              "faults": r.get("page_faults", ""), "model": r.get("model", ""),
              "blocked": r.get("blocked_on", "")} for r in rows]
    _print(shown, False, ["pid", "app", "state", "pri", "core", "pages", "tok", "cpu s", "sw", "faults",
                          "model", "blocked"],
           "processes (pages: resident/swapped, tok: generated, model: of the last answer)",
           whole=("pid", "app", "state"))
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    with _journal() as journal:
        rec = next((r for r in journal.processes() if r.pid == args.pid), None)
        if rec is None:
            raise UsageError(f"no running process with pid {args.pid} (see: llmos ps)")
        if rec.held_elsewhere:  # its llmos would write it back as it sees it: the table would lie
            raise rec.held_error(f"end it there (/kill {args.pid} in the shell, Ctrl-C for llmos run)")
        journal.acquire_lock()
        journal.set_state(args.pid, "ZOMBIE")
        journal.log("info", f"kill pid {args.pid} (from the command line); its pages stay in the journal",
                    pid=args.pid)
    print(f"killed {args.pid}")
    return 0


def free_rows(journal) -> list[dict]:
    from llmos.kernel.kernel import pressure_level

    rows = []
    for rec in journal.processes():
        regions: dict[str, dict[str, int]] = {}
        resident_tokens = 0
        for page in journal.pages(rec.pid):
            r = regions.setdefault(page.origin.value, {"resident_pages": 0, "resident_tokens": 0, "swapped_pages": 0})
            if page.resident:
                r["resident_pages"] += 1
                r["resident_tokens"] += page.n_tokens
                resident_tokens += page.n_tokens
            else:
                r["swapped_pages"] += 1
        budget = int(rec.info.get("ram_budget") or 0)
        usage = resident_tokens / budget if budget else 0.0
        rows.append({"pid": rec.pid, "app": rec.app, "budget": budget, "resident_tokens": resident_tokens,
                     "usage": round(usage, 3), "pressure": pressure_level(usage), "regions": regions})
    return rows


def cmd_free(args: argparse.Namespace) -> int:
    with _journal() as journal:
        rows = free_rows(journal)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    flat = []
    for row in rows:
        for origin, r in row["regions"].items():
            flat.append({"pid": row["pid"], "app": row["app"], "region": origin, **r,
                         "usage": f"{row['usage']:.0%} of {row['budget']}", "pressure": row["pressure"]})
    _print(flat, False, ["pid", "app", "region", "resident_pages", "resident_tokens", "swapped_pages",
                         "usage", "pressure"], "RAM (tokens of the context window)")
    return 0


def open_disk(args: argparse.Namespace):
    from llmos.memory.disk import Disk

    url = getattr(args, "disk_url", None)
    return Disk(url=url) if url else Disk()


def cmd_df(args: argparse.Namespace) -> int:
    disk = open_disk(args)
    rows = [s.__dict__ if hasattr(s, "__dict__") else dict(s) for s in disk.stats()]
    _print(rows, args.json, list(rows[0].keys()) if rows else ["name", "records", "bytes"], "disk (chromadb)")
    return 0


def cmd_mount(args: argparse.Namespace) -> int:
    from llmos.memory.fs import mount

    disk = open_disk(args)
    if args.json or not sys.stderr.isatty():
        report = mount(disk, args.path)
    else:
        from rich.markup import escape
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("mounting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      TextColumn("{task.description}"), transient=True) as bar:
            task = bar.add_task("", total=None)

            def progress(done: int, total: int, path: str) -> None:
                # A file name is shown, never read as markup nor obeyed by the terminal.
                shown = escape(terminal_safe(str(path)[-40:], newlines=False))
                bar.update(task, completed=done, total=total, description=shown)

            report = mount(disk, args.path, progress=progress)
    data = report.__dict__
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(f"mounted {terminal_safe(data['root'], newlines=False)}: {data['files_indexed']} files indexed, "
              f"{data['files_unchanged']} unchanged, {data['files_removed']} removed, "
              f"{data['skipped_binary']} binary and {data['skipped_unreadable']} unreadable skipped; "
              f"{data['chunks_added']} chunks in {data['seconds']:.1f} s ({data['chunks_per_s']:.0f}/s)")
    return 0


def device_line(row: dict) -> str:
    """One device call of the audit as a dmesg line: who, what, arguments, approved by whom, result, time."""
    shown = json.dumps(row["args"], ensure_ascii=False)
    shown = shown if len(shown) <= 160 else shown[:157] + "..."
    approved = row["approved_by"] or "nobody"
    outcome = f"error: {row['error']}" if row["error"] else f"{row['result_bytes']} bytes"
    return (f"device {row['device']} {shown} by {row['who']}, approved by {approved}: "
            f"{outcome} in {row['duration_s']:.3f} s")


def dmesg_rows(journal, limit: int, devices_only: bool = False) -> list[dict]:
    """The kernel log and the device audit merged by time, newest first, at most ``limit`` rows.
    Each row has kind ("log" or "device"), time, level and message; device rows add the audit's fields."""
    rows = [] if devices_only else [{"kind": "log", **r} for r in journal.dmesg(limit)]
    for r in journal.audit_log(limit):
        rows.append({"kind": "device", "time": r["time"], "level": "warn" if r["error"] else "info",
                     "message": device_line(r), **{k: v for k, v in r.items() if k != "time"}})
    rows.sort(key=lambda r: r["time"], reverse=True)  # stable: same-time rows keep their table's order
    return rows[:limit]


def cmd_dmesg(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    with _journal() as journal:
        rows = dmesg_rows(journal, args.limit, args.devices)
    if args.json:
        print(json_safe(json.dumps(rows, indent=2, ensure_ascii=False, default=str)))
        return 0
    for row in reversed(rows):
        stamp = time.strftime("%H:%M:%S", time.localtime(row["time"]))
        # One line each, whatever the message holds: no forged lines, no terminal escapes.
        print(f"[{stamp}] {terminal_safe(str(row['level']), newlines=False):5} "
              f"{terminal_safe(str(row['message']), newlines=False)}")
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    from llmos import transcript

    with _journal() as journal:
        pid = args.pid
        if pid is None:
            pid = journal.last_conversation()
            if pid is None:
                raise UsageError("no conversation in the journal yet (start one: llmos run \"...\")")
        log = transcript.data(journal, pid)
    if args.json:
        print(json_safe(json.dumps(log, indent=2, ensure_ascii=False, default=str)))
    elif args.markdown:
        sys.stdout.write(transcript.markdown(log))
    else:
        sys.stdout.write(transcript.text(log))
    return 0


def add_parsers(sub) -> dict:
    p = sub.add_parser("ps", help="list processes")
    p.add_argument("--all", "-a", action="store_true", help="include exited processes")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("kill", help="end a process (its pages stay in the journal)")
    p.add_argument("pid", type=int)
    p = sub.add_parser("free", help="RAM per process and region")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("df", help="the disk: collections, records, bytes")
    p.add_argument("--json", action="store_true")
    p.add_argument("--disk-url", help="a Chroma server (http://host:port) instead of the embedded disk")
    p = sub.add_parser("mount", help="index a folder onto the disk so apps can page it in")
    p.add_argument("path")
    p.add_argument("--json", action="store_true")
    p.add_argument("--disk-url", help="a Chroma server (http://host:port) instead of the embedded disk")
    p = sub.add_parser("dmesg", help="the kernel log, with every device call (who, what, approved by whom)")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--devices", action="store_true", help="only the device calls (the audit trail)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("log", help="a process's conversation as the journal has it (pages, device calls, paging)")
    p.add_argument("pid", type=int, nargs="?", help="default: the conversation written to last")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true")
    form.add_argument("--markdown", action="store_true", help="Markdown, for a file (like /export in the shell)")
    return {"ps": cmd_ps, "kill": cmd_kill, "free": cmd_free, "df": cmd_df, "mount": cmd_mount, "dmesg": cmd_dmesg,
            "log": cmd_log}
