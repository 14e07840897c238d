"""``python``: run a Python program in the sandbox and return what it printed (risk ask).

The program runs in a fresh process with the standard library only, no
network, a throwaway work dir, and time, CPU, memory and file-size limits;
``sandbox.py`` says how each is enforced and where. It gets no input and
keeps nothing between calls. The output is stdout and stderr interleaved; a
program that fails gives its traceback as output and its last line as the
error.
"""

from __future__ import annotations

import dataclasses
import signal

from llmos.devices.base import Device, DeviceResult, Risk
from llmos.devices.sandbox import Limits, run_python

MAX_CODE = 100_000


class PythonDevice(Device):
    name = "python"
    description = ("run a Python 3 program (standard library only, no network, no files but its own "
                   "scratch folder) and return what it prints; use print() for results")
    schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "minLength": 1, "maxLength": MAX_CODE},
            "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
        },
        "required": ["code"],
        "additionalProperties": False,
    }
    risk = Risk.ASK

    def __init__(self, limits: Limits | None = None, **overrides) -> None:
        self.limits = limits or Limits(**overrides)

    def call(self, args: dict) -> DeviceResult:
        limits = self.limits
        if "timeout_s" in args and args["timeout_s"] < limits.wall_s:
            limits = dataclasses.replace(limits, wall_s=float(args["timeout_s"]))
        run = run_python(args["code"], limits)
        output = run.output
        if run.dropped:
            output += f"\n[... {run.dropped} more bytes of output dropped]"
        data = {"returncode": run.returncode, "seconds": round(run.seconds, 3), "sandbox": run.layers}
        error = None
        if run.timed_out:
            error = f"python: timed out after {limits.wall_s:g} s (killed)"
        elif run.returncode and run.returncode < 0:
            name = signal.Signals(-run.returncode).name if -run.returncode in signal.valid_signals() else "?"
            why = {"SIGXCPU": "CPU time limit", "SIGKILL": "killed", "SIGXFSZ": "file size limit"}.get(name, name)
            error = f"python: stopped by {name} ({why})"
        elif run.returncode:
            lines = [ln for ln in output.splitlines() if ln.strip() and not ln.startswith("[... ")]
            error = f"python: {lines[-1].strip() if lines else f'exit status {run.returncode}'}"
        return DeviceResult(output=output or "(no output)", data=data, error=error)
