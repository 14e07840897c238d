"""Text on the user's terminal: ``llmos.term`` and every command that prints untrusted text.

Model output, device output, log lines, file names and app names may hold ESC sequences (window
title, OSC 52 clipboard, clear screen), C1 controls, bidi overrides and Rich markup. On a terminal
the commands show them, never obey them; piped, content stays byte for byte (the decision is in
``llmos/term.py``). The commands run as a user runs them (``python -m llmos``), on a pipe or on a
real pseudo-terminal.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from llmos.term import for_stream, json_safe, terminal_safe
from tests.conftest import run_llmos
from tests.reliability.strategies import FORBIDDEN, any_char, fast, hostile_text

HOSTILE = "A\x1b]0;pwned\x07B\x1b]52;c;cHduZWQ=\x07C\x1b[2JD\x9b31mE\u202eF\x00G\x08H\rI[/x][bold]J"
SHOWN = "A␛]0;pwned␇B␛]52;c;cHduZWQ=␇C␛[2JD"
RAW = (b"\x1b", b"\x07", b"\xc2\x9b", b"\xe2\x80\xae", b"\x00")
"""ESC, BEL, C1 CSI and RLO as UTF-8, NUL: none may reach a terminal."""


# -- llmos.term ----------------------------------------------------------------------------------


@fast(500)
@given(st.one_of(st.text(any_char), hostile_text()))
def test_terminal_safe_leaves_nothing_a_terminal_obeys(text):
    safe = terminal_safe(text)
    assert not FORBIDDEN.search(safe) and len(safe) == len(text)  # same length: Rich spans stay put
    safe.encode("utf-8")  # printable on any UTF-8 terminal, lone surrogates included
    assert terminal_safe(safe) == safe
    if not FORBIDDEN.search(text):
        assert safe == text  # ordinary text, RTL scripts and emoji included, is untouched
    line = terminal_safe(text, newlines=False)
    assert not FORBIDDEN.search(line) and "\n" not in line and "\r" not in line and len(line) == len(text)


def test_terminal_safe_shows_what_was_there():
    assert terminal_safe("\x1b]0;t\x07\x00\x7f\x9b\u202e\ud800") == "␛]0;t␇␀␡\ufffd\ufffd\ufffd"
    assert terminal_safe("a\r\nb\rc\td\n") == "a\r\nb␍c\td\n"  # CRLF kept, a lone CR would overwrite
    assert terminal_safe("one\ntwo", newlines=False) == "one␊two"
    assert terminal_safe("שלום \u200f مرحبا 🙂") == "שלום \u200f مرحبا 🙂"  # RTL text and its marks stay


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(any_char)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(any_char), inner, max_size=3)),
    max_leaves=10)


@fast(300)
@given(json_values)
def test_json_safe_changes_no_value(value):
    text = json.dumps(value, ensure_ascii=False)
    safe = json_safe(text)
    assert json.loads(safe) == value and not FORBIDDEN.search(safe)
    safe.encode("utf-8")


def test_content_is_exact_on_a_pipe_and_safe_on_a_terminal():
    assert for_stream(HOSTILE, io.StringIO()) == HOSTILE
    assert for_stream("a\ud800b", io.StringIO()) == "a\ufffdb"  # no UTF-8 stream takes a lone surrogate
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            assert for_stream(HOSTILE, tty) == terminal_safe(HOSTILE)
    finally:
        os.close(master)
        os.close(slave)


# -- the commands --------------------------------------------------------------------------------


def on_tty(*args: str, home, stderr_tty: bool = False, timeout: float = 120) -> tuple[int, bytes, bytes]:
    """Run ``llmos ARGS`` with stdout (and stderr) on a pseudo-terminal, as in a terminal window."""
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "llmos", *args], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave if stderr_tty else subprocess.PIPE,
                            env={**os.environ, "LLMOS_HOME": str(home), "COLUMNS": "200"})
    os.close(slave)
    shown = b""
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the program closed its end
                break
            if not chunk:
                break
            shown += chunk
        err = proc.stderr.read() if proc.stderr else b""
        proc.wait(timeout)
    finally:
        os.close(master)
    return proc.returncode, shown, err


def assert_clean(data: bytes) -> None:
    for raw in RAW:
        assert raw not in data, (raw, data)


def test_dmesg_shows_hostile_log_lines_one_per_line(llmos_home):
    from llmos.memory.journal import Journal, journal_path

    with Journal(journal_path()) as journal:
        journal.log("warn", f"{HOSTILE}\n[00:00:00] info forged line")
    proc = run_llmos("dmesg", home=llmos_home)
    assert proc.returncode == 0, proc.stderr
    assert_clean(proc.stdout)
    line = [x for x in proc.stdout.decode().splitlines() if "pwned" in x]
    assert len(line) == 1 and SHOWN in line[0] and line[0].endswith("␊[00:00:00] info forged line")
    as_json = run_llmos("dmesg", "--json", home=llmos_home)
    assert json.loads(as_json.stdout)[0]["message"] == f"{HOSTILE}\n[00:00:00] info forged line"
    assert_clean(as_json.stdout)  # C1 and bidi escaped as \\uXXXX: the same JSON value


def test_tables_show_hostile_app_names_and_markup_literally(tiny_cpu, llmos_home, monkeypatch):
    """Before the fix ``llmos ps`` (and ``free``) read "[/x]" in an app name as Rich markup and
    failed with an internal error; ESC in the name went to the terminal."""
    from llmos.kernel.kernel import Kernel

    monkeypatch.setenv("COLUMNS", "400")  # the table's columns wide enough to show the whole name
    kernel = Kernel(tiny_cpu, lock=False)
    kernel.spawn(f"evil{HOSTILE}", "x")
    kernel.close()
    for verb in ("ps", "free"):
        proc = run_llmos(verb, home=llmos_home)
        assert proc.returncode == 0, proc.stderr
        assert_clean(proc.stdout)
        assert "[/x]" in proc.stdout.decode() and "pwned" in proc.stdout.decode()


def test_device_output_is_exact_piped_and_safe_on_a_terminal(llmos_home):
    command = json.dumps({"command": r"printf 'A\033]0;pwned\007B \302\233 \342\200\256 ok\n'"})
    piped = run_llmos("device", "call", "shell", "--args", command, "--yes", home=llmos_home)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == "A\x1b]0;pwned\x07B \x9b \u202e ok\n".encode()  # a pipe gets the exact bytes
    code, shown, err = on_tty("device", "call", "shell", "--args", command, "--yes", home=llmos_home)
    assert code == 0, err
    assert_clean(shown)
    assert "A␛]0;pwned␇B \ufffd \ufffd ok" in shown.decode()


def test_an_error_quoting_hostile_text_is_one_safe_line(llmos_home):
    proc = run_llmos("mount", f"/nowhere/{HOSTILE.replace(chr(0), '')}", home=llmos_home)  # argv: no NUL
    err = proc.stderr.decode()
    assert proc.returncode not in (0, 70) and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert_clean(proc.stderr)
    assert err.startswith(f"llmos: error: cannot mount /nowhere/{SHOWN}")


def test_a_device_name_that_is_not_utf8_is_a_usage_error(llmos_home):
    proc = run_llmos("device", "call", os.fsdecode(b"calc\xff"), home=llmos_home)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "is not a device name" in err and len(err.strip().splitlines()) == 1, err


def test_mount_of_a_hostile_folder_on_a_pipe_and_on_a_terminal(llmos_home, tmp_path):
    """The summary line shows the path; on a terminal the progress bar shows each file's name
    (before the fix "[/x]" in a path crashed the bar's markup rendering)."""
    root = tmp_path / "m[" / "x]\x1b]0;pwned\x07\u202e"
    root.mkdir(parents=True)
    for name in ("note\x1b]52;c;cHduZWQ=\x07.md", "[bold]\x9b2J.md"):
        (root / name).write_text(f"a note {name}\n")
    piped = run_llmos("mount", str(root), home=llmos_home)
    assert piped.returncode == 0, piped.stderr
    assert_clean(piped.stdout)
    assert piped.stdout.decode().startswith(f"mounted {tmp_path}/m[/x]␛]0;pwned␇\ufffd: 2 files indexed")
    code, shown, _ = on_tty("mount", str(root.parent / "x]\x1b]0;pwned\x07\u202e"), home=llmos_home,
                            stderr_tty=True)
    assert code == 0, shown
    assert b"\x1b]0;pwned" not in shown and b"\x1b]52" not in shown and b"\xc2\x9b" not in shown
    assert "2 unchanged" in shown.decode()


def test_run_takes_a_prompt_that_is_not_utf8(llmos_home):
    """Argv bytes that are not UTF-8 reach Python as lone surrogates; before the fix the tokenizer
    raised UnicodeEncodeError and ``llmos run`` failed with an internal error."""
    proc = run_llmos("run", "--model", "tiny", "--max-tokens", "2", os.fsdecode(b"Say hi \xff\xfe."),
                     home=llmos_home)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
