"""Devices from the command line: ``llmos devices`` lists them, ``llmos device call`` is the ioctl.

``llmos device call NAME --args JSON`` runs one device call exactly as the
kernel would for a process (same validation, limits and truncation), with
the user as the approver: a ``safe`` device runs at once, an ``ask`` device
first shows the exact call and waits for ``y`` on the terminal (or runs with
``--yes``; with no terminal and no ``--yes`` it refuses), a ``deny`` device
never runs. Every attempt, refused ones included, goes to the journal's
device audit with who approved it (the caller shows as ``user (llmos device
call)`` in ``llmos dmesg``). ``llmos device info NAME`` shows a device's
argument schema.

MCP tools are devices ``mcp.<server>.<tool>`` (``devices/mcp.py``): ``llmos
devices`` starts the configured MCP servers, each within ``--start-timeout``
seconds, to list their tools (``--no-start`` lists each server as one row
instead); ``llmos device call mcp.notes.add --args ...`` starts the one server
it needs.
"""

from __future__ import annotations

import argparse
import json
import sys

from llmos.errors import DeviceError, UsageError
from llmos.term import for_stream, json_safe, terminal_safe


def _registry():
    from llmos.devices.registry import Registry

    return Registry.from_config()


def cmd_devices(args: argparse.Namespace) -> int:
    registry = _registry()
    if not args.no_start:
        # MCP servers say what tools they have only once they run: start them (all at once, each
        # within --start-timeout); one that does not start is one row with the reason.
        registry.discover(args.start_timeout)
    rows = [row.as_dict() for row in registry.list()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="devices")
    for col in ("name", "risk", "source", "description"):
        table.add_column(col)

    def shown(text) -> str:  # plugin metadata: shown, never read as markup nor obeyed by the terminal
        return escape(terminal_safe(str(text or ""), newlines=False))

    for row in rows:
        risk = row["risk"] or "(not loaded)"
        description = shown(row["description"]) + (f" [red]({shown(row['error'])})[/red]" if row["error"] else "")
        table.add_row(shown(row["name"]), risk, shown(row["source"]), description)
    Console().print(table)
    return 0


def approve(device, call_args: dict, yes: bool) -> str:
    """Who approves this call: "auto (safe)", "--yes" or "user"; DeviceError when no one does."""
    from llmos.devices.base import Risk

    risk = Risk(device.risk)
    if risk is Risk.SAFE:
        return "auto (safe)"
    if risk is Risk.DENY:
        raise DeviceError(f"device {device.name!r} is denied by policy (risk deny) and never runs")
    if yes:
        return "--yes"
    shown = json.dumps(call_args, ensure_ascii=False)
    if not sys.stdin.isatty():
        raise DeviceError(f"device {device.name!r} needs approval (risk ask) and stdin is not a terminal; "
                          f"to approve it, run: llmos device call {device.name} --args '{shown}' --yes")
    print(terminal_safe(f"device {device.name} (risk {risk.value}) wants to run:\n  {device.name} {shown}"),
          file=sys.stderr)
    try:
        answer = input("run it? [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise DeviceError(f"call of {device.name!r} not approved")
    return "user"


def _audit(name: str, call_args: dict, approved_by: str, result_bytes: int, duration_s: float,
           error: str | None) -> None:
    from llmos.memory.journal import Journal, journal_path

    with Journal(journal_path()) as journal:
        journal.audit(0, name, call_args, approved_by, result_bytes, duration_s, error)


def cmd_device_call(args: argparse.Namespace) -> int:
    from llmos.devices.base import invoke

    try:
        call_args = json.loads(args.args)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--args is not JSON ({exc.msg} at {exc.pos}); example: --args '{{\"expr\": \"1+2\"}}'")
    if not isinstance(call_args, dict):
        raise UsageError("--args must be a JSON object, like '{\"expr\": \"1+2\"}'")
    try:
        args.name.encode("utf-8")
    except UnicodeEncodeError:  # argv bytes that are not UTF-8: no device has that name, and no journal takes it
        raise UsageError(f"{args.name!r} is not a device name (llmos devices lists them)") from None
    try:
        device = _registry().get(args.name)
    except DeviceError as exc:  # unknown, broken, or an MCP server that did not start: audited too
        _audit(args.name, call_args, "", 0, 0.0, str(exc))
        raise
    try:
        approved_by = approve(device, call_args, args.yes)
    except DeviceError as exc:
        _audit(args.name, call_args, "", 0, 0.0, str(exc))
        raise
    result = invoke(device, call_args, max_output=args.max_output)
    _audit(args.name, call_args, approved_by, len(result.output.encode("utf-8")), result.duration_s, result.error)
    if args.json:
        print(json_safe(json.dumps({"device": args.name, "args": call_args, "approved_by": approved_by,
                                    "output": result.output, "data": result.data, "error": result.error,
                                    "duration_s": round(result.duration_s, 4), "truncated": result.truncated},
                                   indent=2, default=str, ensure_ascii=False)))
    elif result.output:
        # The device's output is content: exact when piped, made safe on a terminal (llmos/term.py).
        print(for_stream(result.output, sys.stdout), end="" if result.output.endswith("\n") else "\n")
    if result.error is not None:
        raise DeviceError(result.error)
    return 0


def cmd_device_info(args: argparse.Namespace) -> int:
    registry = _registry()
    device = registry.get(args.name)
    row = next(r for r in registry.list() if r.name == args.name)
    info = {**row.as_dict(), "schema": device.schema}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(terminal_safe(f"{row.name} (risk {info['risk']}, {row.source})\n{row.description}\n\narguments:"))
    print(json.dumps(device.schema, indent=2))
    return 0


def cmd_device(args: argparse.Namespace) -> int:
    return {"call": cmd_device_call, "info": cmd_device_info}[args.action](args)


def add_parsers(sub) -> dict:
    p = sub.add_parser("devices", help="list devices (tools): name, risk, source package, description")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-start", action="store_true",
                   help="do not start MCP servers to list their tools (each is one row, mcp.SERVER.*)")
    p.add_argument("--start-timeout", type=float, default=10.0, metavar="S",
                   help="seconds each MCP server may take to start and list its tools (default 10)")
    p = sub.add_parser("device", help="use one device: call it (the ioctl of llmos) or show its arguments")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    call = actions.add_parser("call", help="call a device once and print its result")
    call.add_argument("name")
    call.add_argument("--args", default="{}", help="the arguments as a JSON object (default {})")
    call.add_argument("--yes", "-y", action="store_true", help="approve an ask-risk device without a prompt")
    call.add_argument("--json", action="store_true", help="print the whole result as JSON")
    call.add_argument("--max-output", type=int, default=100_000, help="characters of output kept (default 100000)")
    info = actions.add_parser("info", help="a device's risk, source and argument schema")
    info.add_argument("name")
    info.add_argument("--json", action="store_true")
    return {"devices": cmd_devices, "device": cmd_device}
