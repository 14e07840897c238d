"""Bad calls end to end, through the real command and a real kernel: schema violations, unknown devices,
huge arguments and non-UTF-8 program output are one-line errors (or valid text), audited, never a crash.
(``test_base.py`` checks the same at the level of ``invoke``.)"""

from __future__ import annotations

import asyncio
import json

from llmos.devices.base import MAX_ARGS_BYTES
from llmos.devices.registry import Registry
from llmos.kernel import syscall
from llmos.kernel.kernel import Kernel
from llmos.memory.page import Origin
from tests.conftest import run_llmos


def one_line_error(proc, *words: str) -> None:
    err = proc.stderr.decode("utf-8")
    assert proc.returncode != 0 and proc.stdout == b"", (proc.returncode, proc.stdout)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)


def test_the_command_refuses_bad_calls_in_one_line(llmos_home):
    one_line_error(run_llmos("device", "call", "calc", "--args", '{"expr": 5}', home=llmos_home),
                   "bad arguments for calc", "expr: 5 is not of type 'string'")
    one_line_error(run_llmos("device", "call", "teleport", home=llmos_home), "no device named 'teleport'")
    # (arguments over MAX_ARGS_BYTES do not fit in one argv string on Linux: the kernel test has them)
    one_line_error(run_llmos("device", "call", "calc", "--args", "[1, 2]", home=llmos_home), "JSON object")
    log = json.loads(run_llmos("dmesg", "--devices", "--json", home=llmos_home).stdout)
    assert [r["device"] for r in log][::-1] == ["calc", "teleport"]  # --args that is no object: refused earlier
    assert all(r["error"] and r["approved_by"] in ("", "auto (safe)") for r in log)  # never reaches a device


def test_non_utf8_output_of_a_program_comes_back_as_valid_text(llmos_home):
    code = "import sys; sys.stdout.buffer.write(b'caf\\xe9 \\xff\\xfe ok\\n'); sys.stdout.flush()"
    proc = run_llmos("device", "call", "python", "--args", json.dumps({"code": code}), "--yes", "--json",
                     home=llmos_home)
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout.decode("utf-8"))  # strict UTF-8: would raise on a raw byte
    assert shown["output"] == "caf\ufffd \ufffd\ufffd ok\n" and shown["error"] is None
    shell = run_llmos("device", "call", "shell", "--args", json.dumps({"command": r"printf 'a\377b\n'"}), "--yes",
                      home=llmos_home)
    assert shell.returncode == 0 and shell.stdout.decode("utf-8") == "a\ufffdb\n"


def test_the_kernel_turns_bad_calls_into_error_pages_and_audits_them(tiny_cpu):
    kernel = Kernel(tiny_cpu, lock=False, devices=Registry({}))
    try:
        proc = kernel.spawn("chat", "You are helpful.", grants={"calc", "clock"})

        def call(device, args):
            return asyncio.run(kernel.dispatch(proc, syscall.Call(device, args, "")))

        page = call("calc", {"expr": "1", "precision": 3})
        assert page.origin is Origin.KERNEL and "Additional properties are not allowed" in page.text
        page = call("calc", {"expr": "9" * (MAX_ARGS_BYTES + 10)})
        assert page.origin is Origin.KERNEL and "more than the 262144 allowed" in page.text
        assert len(page.text) < 500  # the huge argument is not echoed into RAM
        page = call("teleport", {})
        assert page.origin is Origin.KERNEL and "not granted" in page.text
        page = call("clock", {"tz": "Mars/Olympus_Mons"})
        assert page.origin is Origin.KERNEL and "unknown time zone" in page.text
        audit = kernel.journal.audit_log()
        assert [a["device"] for a in audit][::-1] == ["calc", "calc", "teleport", "clock"]
        assert all(a["error"] and a["result_bytes"] == 0 for a in audit)
        assert audit[1]["approved_by"] == ""  # refused, so nobody approved it
    finally:
        kernel.close()
