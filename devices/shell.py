"""``shell``: run one command line, after the user approved it (risk ask).

The command runs with ``/bin/sh -c`` (``cmd.exe /c`` on Windows) in a new
session, in a throwaway folder unless ``cwd`` names one, with the user's
environment: this is the user's own shell, used with their approval, not a
sandbox (``python`` is the sandboxed device). What it bounds is the call:

- time: after ``timeout_s`` the whole process group is killed (SIGKILL), and
  so is anything the command left running in it when it exits;
- output: stdout and stderr are read together, in order, and only the first
  ``max_bytes`` are kept; the rest is drained and counted, never buffered;
- encoding: output bytes are decoded as UTF-8 with replacement characters.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmos.devices.base import Device, DeviceResult, Risk
from llmos.errors import DeviceError

MAX_BYTES = 64 * 1024
TIMEOUT_S = 30.0


@dataclass
class Captured:
    """A finished child process as the caller sees it."""

    output: bytes
    dropped: int
    """Bytes of output read and thrown away past the limit."""
    returncode: int | None
    """None when it was killed at the time limit."""
    seconds: float


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``'s process group (it leads its own session), or just ``proc``."""
    if os.name == "posix":
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    else:
        proc.kill()


def run_captured(argv: list[str], *, cwd: str, env: dict | None, timeout_s: float, max_bytes: int,
                 stdin: bytes | None = None, cleanup: Callable[[], None] | None = None,
                 **popen: Any) -> Captured:
    """Run ``argv`` in its own session; stdout+stderr capped at ``max_bytes``; killed at the limit.

    ``cleanup`` runs once the child is gone, before waiting for the output to end
    (the sandbox kills its cgroup there).
    """
    started = time.perf_counter()
    session = {"start_new_session": True} if os.name == "posix" else {
        "creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE if stdin is not None else
                            subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            **session, **popen)
    kept = bytearray()
    dropped = 0

    def drain() -> None:  # reads until EOF so the child never blocks on a full pipe
        nonlocal dropped
        while chunk := proc.stdout.read1(65536):
            room = max_bytes - len(kept)
            kept.extend(chunk[:room])
            dropped += max(0, len(chunk) - room)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    if stdin is not None:
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
        except BrokenPipeError:
            pass
    try:
        returncode: int | None = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        returncode = None
    finally:
        kill_group(proc)  # the command's leftovers (background jobs) go with it
        proc.wait()
    if cleanup is not None:
        cleanup()
    reader.join(timeout=2.0)
    if not reader.is_alive():  # else a grandchild that left the group still holds the pipe
        proc.stdout.close()
    return Captured(bytes(kept), dropped, returncode, time.perf_counter() - started)


class ShellDevice(Device):
    name = "shell"
    description = "run a shell command line (in a scratch folder unless cwd is given); the user approves it"
    schema = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "minLength": 1, "maxLength": 10_000},
            "cwd": {"type": "string", "maxLength": 4096},
            "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
        },
        "required": ["command"],
        "additionalProperties": False,
    }
    risk = Risk.ASK

    def __init__(self, timeout_s: float = TIMEOUT_S, max_bytes: int = MAX_BYTES) -> None:
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes

    def call(self, args: dict) -> DeviceResult:
        timeout = min(float(args.get("timeout_s", self.timeout_s)), self.timeout_s)
        scratch = None
        if args.get("cwd"):
            cwd = Path(args["cwd"]).expanduser()
            if not cwd.is_dir():
                raise DeviceError(f"cwd {args['cwd']!r} is not a folder")
        else:
            cwd = Path(scratch := tempfile.mkdtemp(prefix="llmos-shell-"))
        argv = ["cmd.exe", "/c", args["command"]] if sys.platform == "win32" else ["/bin/sh", "-c", args["command"]]
        try:
            run = run_captured(argv, cwd=str(cwd), env=None, timeout_s=timeout, max_bytes=self.max_bytes)
        finally:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
        output = run.output.decode("utf-8", "replace")
        if run.dropped:
            output += f"\n[... {run.dropped} more bytes of output dropped]"
        data = {"returncode": run.returncode, "seconds": round(run.seconds, 3), "dropped_bytes": run.dropped}
        if run.returncode is None:
            return DeviceResult(output=output, data=data, error=f"shell: timed out after {timeout:g} s (killed)")
        error = f"shell: exit status {run.returncode}" if run.returncode else None
        return DeviceResult(output=output or "(no output)", data=data, error=error)
