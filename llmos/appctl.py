"""Apps from the command line: ``llmos apps`` lists them, ``llmos run --app NAME`` runs one,
``llmos prefs`` shows and exports the pairs ``compare`` saved.

``run_app_command`` is what ``cmd_run`` in ``cli.py`` hands ``--app`` to: it
boots the model (the app's preferred one when the user names none), runs the
app as a process and streams what it shows to stdout (or prints its result
as JSON with ``--json``). The user answers ``Sys.choose`` on the terminal;
with no terminal nobody is asked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from llmos.errors import UsageError
from llmos.term import for_stream, json_safe, terminal_safe


def cmd_apps(args: argparse.Namespace) -> int:
    from llmos.apps.launch import registry

    rows = [row.as_dict() for row in registry().list()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="apps (llmos run --app NAME; /run NAME in the shell)")
    for col in ("name", "source", "version", "devices", "description"):
        table.add_column(col)

    def shown(text) -> str:  # plugin metadata: shown, never read as markup nor obeyed by the terminal
        return escape(terminal_safe(str(text or ""), newlines=False))

    for r in rows:
        devices = "?" if r["devices"] is None else ", ".join(r["devices"]) or "-"
        description = shown(r["description"]) + (f" [red]({shown(r['error'])})[/red]" if r["error"] else "")
        table.add_row(shown(r["name"]), shown(r["source"]), shown(r["version"]), shown(devices), description)
    Console().print(table)
    return 0


def cmd_prefs(args: argparse.Namespace) -> int:
    from llmos.apps import prefs

    if args.action == "export":
        count, where = prefs.export(args.out, full=args.full)
        print(f"llmos: exported {count} preference pair(s) to {where}", file=sys.stderr)
        return 0
    rows = prefs.read()
    if args.json:
        print(json.dumps({"path": str(prefs.path()), "pairs": len(rows)}))
    else:
        print(f"{len(rows)} preference pair(s) in {prefs.path()} (llmos run --app compare adds them; "
              f"llmos prefs export FILE writes prompt/chosen/rejected JSONL)")
    return 0


def parse_opts(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--opt takes KEY=VALUE, not {pair!r}")
        out[key.strip()] = value
    return out


async def terminal_chooser(question: str, choices: list[str]) -> str | None:
    """Ask on the terminal; with no terminal, nobody answers (None)."""
    import asyncio

    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return None
    try:
        answer = await asyncio.to_thread(input, terminal_safe(f"{question} [{'/'.join(choices)}] "))
    except EOFError:
        return None
    return answer.strip().lower() or None


def run_app_command(args: argparse.Namespace, text: str) -> int:
    """``llmos run --app NAME``: one app, one process, then exit."""
    import asyncio

    from llmos.apps.launch import launch, resolve
    from llmos.kernel.boot import load_cores
    from llmos.approve import terminal_approver
    from llmos.kernel.kernel import Kernel

    cls = resolve(args.app)  # an unknown or broken app fails here, before the model loads
    options = parse_opts(args.opt or [])
    if args.budget is not None:
        options["budget"] = str(args.budget)
    from llmos.apps.sdk import coerce_options

    coerce_options(cls.manifest, options)  # a bad option fails before the model loads, too
    model = args.model or (None if os.environ.get("LLMOS_MODEL") else next(iter(cls.manifest.models), None))
    cores = load_cores(model, n_ctx=args.ctx)
    cpu = cores[0]
    kernel = Kernel(cores, ram=args.ram, lock=False, approver=terminal_approver)
    grants = {d.strip() for d in args.devices.split(",") if d.strip()}
    out = sys.stdout
    shown = [""]

    def show(pid: int, fragment: str) -> None:
        if not args.json:
            out.write(for_stream(fragment, out))  # exact when piped, safe on a terminal
            out.flush()
            shown[0] = fragment

    try:
        result = asyncio.run(launch(kernel, cls, text, options=options, on_text=show, grants=grants,
                                    chooser=terminal_chooser, system=args.system))
    finally:
        kernel.close()
    if args.json:
        print(json_safe(json.dumps({**result.as_dict(), "model": cpu.name}, indent=2, ensure_ascii=False)))
    elif shown[0] and not shown[0].endswith("\n"):
        out.write("\n")
    return 0


def add_parsers(sub) -> dict:
    p = sub.add_parser("apps", help="list apps: name, source package, version, devices they use")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("prefs", help="the preference pairs compare saved (prompt/chosen/rejected JSONL)")
    p.add_argument("action", nargs="?", choices=["show", "export"], default="show")
    p.add_argument("out", nargs="?", default=None, help="export: the file to write (default: stdout)")
    p.add_argument("--full", action="store_true", help="export: keep model, settings and time too")
    p.add_argument("--json", action="store_true")
    return {"apps": cmd_apps, "prefs": cmd_prefs}
