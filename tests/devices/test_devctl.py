"""``llmos devices`` and ``llmos device call``: listing, approval, deny, audit, one-line errors."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys

import pytest

from llmos import devctl
from llmos.errors import DeviceError, UsageError


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="llmos")
    sub = parser.add_subparsers(dest="command")
    handlers = devctl.add_parsers(sub)
    args = parser.parse_args(list(argv))
    return handlers[args.command](args)


def audit() -> list[dict]:
    from llmos.memory.journal import Journal, journal_path

    with Journal(journal_path()) as journal:
        return journal.audit_log()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_devices_lists_name_risk_source_description(capsys):
    assert run("devices", "--json") == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["calc"]["risk"] == "safe" and rows["shell"]["risk"] == "ask"
    assert rows["web"]["source"] == "llmos (built-in)" and rows["plot"]["description"]
    assert run("devices") == 0
    table = capsys.readouterr().out
    assert "calc" in table and "files_write" in table


def test_a_safe_call_prints_the_result_and_is_audited(capsys):
    assert run("device", "call", "calc", "--args", '{"expr": "0.1 + 0.2"}') == 0
    assert capsys.readouterr().out == "0.3 (= 3/10)\n"
    last = audit()[0]
    assert last["device"] == "calc" and last["pid"] == 0 and last["approved_by"] == "auto (safe)"
    assert last["args"] == {"expr": "0.1 + 0.2"} and last["error"] is None and last["result_bytes"] > 0


def test_json_output_and_errors_exit_non_zero(capsys):
    with pytest.raises(DeviceError, match="calc: division by zero"):
        run("device", "call", "calc", "--args", '{"expr": "1/0"}', "--json")
    shown = json.loads(capsys.readouterr().out)
    assert shown["error"] == "calc: division by zero" and shown["approved_by"] == "auto (safe)"
    assert audit()[0]["error"] == "calc: division by zero"
    with pytest.raises(UsageError, match="--args is not JSON"):
        run("device", "call", "calc", "--args", "{expr: 1}")
    with pytest.raises(DeviceError, match="bad arguments for calc"):
        run("device", "call", "calc", "--args", '{"expression": "1"}')
    with pytest.raises(DeviceError, match="no device named 'warp'"):
        run("device", "call", "warp")


def test_ask_devices_refuse_without_a_terminal_or_yes(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    marker = tmp_path / "ran"
    with pytest.raises(DeviceError, match="stdin is not a terminal; to approve it, run: llmos device call shell"):
        run("device", "call", "shell", "--args", json.dumps({"command": f"touch {marker}"}))
    assert not marker.exists()
    assert audit()[0]["approved_by"] == "" and "not a terminal" in audit()[0]["error"]


def test_ask_devices_run_with_yes(capsys, tmp_path):
    assert run("device", "call", "shell", "--args", '{"command": "echo approved"}', "--yes") == 0
    assert capsys.readouterr().out == "approved\n"
    assert audit()[0]["approved_by"] == "--yes"


def test_the_terminal_prompt_shows_the_exact_call(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert run("device", "call", "shell", "--args", '{"command": "echo from-user"}') == 0
    captured = capsys.readouterr()
    assert 'shell {"command": "echo from-user"}' in captured.err and "from-user" in captured.out
    assert audit()[0]["approved_by"] == "user"
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    marker = tmp_path / "declined"
    with pytest.raises(DeviceError, match="not approved"):
        run("device", "call", "shell", "--args", json.dumps({"command": f"touch {marker}"}))
    assert not marker.exists()


def test_deny_never_runs_even_with_yes(llmos_home, tmp_path):
    (llmos_home / "config.toml").write_text('[devices.shell]\nrisk = "deny"\n')
    marker = tmp_path / "ran"
    with pytest.raises(DeviceError, match="denied by policy"):
        run("device", "call", "shell", "--args", json.dumps({"command": f"touch {marker}"}), "--yes")
    assert not marker.exists()
    assert audit()[0]["error"].startswith("device 'shell' is denied")


def test_info_shows_the_schema(capsys):
    assert run("device", "info", "plot", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["risk"] == "safe" and "values" in info["schema"]["properties"]


def test_a_real_process_without_a_terminal_gets_one_line_and_a_non_zero_exit(llmos_home):
    """As cli.main will wire it: a LlmosError is one line on stderr and the exit code."""
    code = ("import argparse, sys\nfrom llmos import devctl\nfrom llmos.errors import LlmosError\n"
            "p = argparse.ArgumentParser(prog='llmos'); s = p.add_subparsers(dest='command')\n"
            "h = devctl.add_parsers(s); a = p.parse_args(sys.argv[1:])\n"
            "try:\n    sys.exit(h[a.command](a))\nexcept LlmosError as e:\n"
            "    print(f'llmos: error: {e}', file=sys.stderr); sys.exit(e.exit_code)\n")
    proc = subprocess.run([sys.executable, "-c", code, "device", "call", "python", "--args",
                           '{"code": "print(1)"}'], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "not a terminal" in proc.stderr
    ok = subprocess.run([sys.executable, "-c", code, "device", "call", "python", "--args",
                         '{"code": "print(6 * 7)"}', "--yes"], stdin=subprocess.DEVNULL, capture_output=True,
                        text=True)
    assert ok.returncode == 0 and ok.stdout == "42\n"
