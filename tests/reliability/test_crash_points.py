"""kill -9 at the points where llmos is busy, and what every reader shows afterwards.

After each crash, ``llmos ps``, ``llmos log`` and a restarted shell must agree with
what had been shown on screen, and nothing shown may be lost. Real parts: the
installed ``llmos`` command, the real models, the real shell (Textual, driven by
its pilot in a child process that is killed), a real (hung) server on 127.0.0.1.
The crash points: while ``llmos run`` streams, while the shell streams, while a
device call waits for the user's approval, and during a page fault. (``model
pull``, the fourth point the issue names, does not exist yet.)
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from llmos.kernel.kernel import Kernel
from tests.conftest import run_llmos

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and pty are POSIX")

STORY = "Write a long story about a lighthouse named Zephyrine-42."


def _json(*args: str):
    proc = run_llmos(*args)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr.decode()
    return json.loads(proc.stdout)


def _row(pid: int) -> dict:
    return next(r for r in _json("ps", "-a", "--json") if r["pid"] == pid)


def _read_until(fd: int, predicate, timeout: float) -> str:
    """Read a pipe or pty until ``predicate(text so far)``; the text."""
    seen, deadline = b"", time.monotonic() + timeout
    while not predicate(seen.decode("utf-8", "replace")):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out; read so far: {seen.decode('utf-8', 'replace')!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # a pty whose other end closed
                chunk = b""
            assert chunk, f"the stream ended; read: {seen.decode('utf-8', 'replace')!r}"
            seen += chunk
    return seen.decode("utf-8", "replace")


def _kill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(30)


def _last_answer(log: dict) -> dict:
    return [e for e in log["entries"] if e["kind"] == "page" and e["origin"] == "assistant"][-1]


def _restarted_kernel_agrees(cpu, log: dict) -> None:
    """A restarted shell's kernel takes the process back with the pages ``llmos log`` showed."""
    pid = log["process"]["pid"]
    kernel = Kernel(cpu)
    try:
        proc = next(p for p in kernel.restore() if p.pid == pid)
        assert proc.interrupted and proc.tokens_out == log["process"]["tokens_out"]
        assert [p.text for p in proc.space.pages] == [e["text"] for e in log["entries"] if e["kind"] == "page"]
    finally:
        kernel.close()


def test_kill_9_while_llmos_run_streams(tiny_cpu):
    child = subprocess.Popen([sys.executable, "-m", "llmos", "run", "--model", "tiny", "--max-tokens", "600",
                              "--temperature", "0", STORY], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        shown = _read_until(child.stdout.fileno(), lambda s: len(s) > 300, 120)
        # Two live llmos programs on one data dir: neither marks the other's process dead.
        live = [r for r in _json("ps", "--json") if r["app"] == "run"]
        assert [(r["state"], r["interrupted"]) for r in live] == [("RUNNING", False)], live
        pid = live[0]["pid"]
        beside = Kernel(tiny_cpu, lock=False)  # a shell starting meanwhile
        try:
            assert pid not in [p.pid for p in beside.restore()]
        finally:
            beside.close()
    finally:
        _kill(child)

    row = _row(pid)
    assert (row["state"], row["interrupted"], row["interrupted_while"]) == ("SLEEPING", True, "running")
    assert row["tokens_in"] > 0  # the prompt it read is counted, too
    log = _json("log", str(pid), "--json")
    answer = _last_answer(log)
    assert answer["ended"] == "interrupted"
    assert answer["text"].startswith(shown)  # all that was shown, and what was streamed after it
    # tokens_out counts what was generated; the text's own tokens agree with it.
    retokenized = len(tiny_cpu.tokenize(answer["text"], special=False))
    assert abs(row["tokens_out"] - retokenized) <= max(3, retokenized // 20), (row["tokens_out"], retokenized)
    said = run_llmos("log", str(pid)).stdout.decode()
    assert "assistant · interrupted" in said and STORY in said
    _restarted_kernel_agrees(tiny_cpu, log)


SHELL_CHILD = r"""
import asyncio, json, sys
from llmos.tui.app import LlmosApp
from llmos.tui.chat import AnswerMessage

async def main():
    app = LlmosApp(model="tiny", ctx=1024, max_tokens=600)
    async with app.run_test() as pilot:
        while getattr(app, "shell", None) is None or not app.shell.query("Prompt"):
            await asyncio.sleep(0.05)
        await pilot.pause(0.2)
        app.shell.prompt.load_text(sys.argv[1])
        await pilot.press("enter")
        while True:
            answers = app.shell.conversation.messages(AnswerMessage)
            if answers and len(answers[-1].text) > 250:
                print(json.dumps({"pid": app.shell.proc.pid, "shown": answers[-1].text}), flush=True)
                await asyncio.sleep(3600)  # streaming on, until the test kills us
            await asyncio.sleep(0.02)

asyncio.run(main())
"""


async def test_kill_9_while_the_shell_streams_and_the_restarted_shell_shows_it():
    from llmos.tui.app import LlmosApp
    from llmos.tui.chat import AnswerMessage

    child = subprocess.Popen([sys.executable, "-c", SHELL_CHILD, STORY], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        seen = json.loads(_read_until(child.stdout.fileno(), lambda s: s.endswith("\n"), 180))
    finally:
        _kill(child)
    pid, shown = seen["pid"], seen["shown"]

    row = _row(pid)
    assert row["state"] == "SLEEPING" and row["interrupted"] and row["tokens_out"] > 0
    text = _last_answer(_json("log", str(pid), "--json"))["text"]
    assert text.startswith(shown)

    app = LlmosApp(model="tiny", ctx=1024)
    async with app.run_test() as pilot:
        deadline = time.monotonic() + 120
        while getattr(app, "shell", None) is None or not app.shell.query("Prompt"):
            assert time.monotonic() < deadline, "the shell did not start"
            await pilot.pause(0.05)
        await pilot.pause(0.5)
        assert app.shell.proc.pid == pid  # the conversation it was in comes back, focused
        replayed = app.shell.conversation.messages(AnswerMessage)[-1].text
        assert replayed.startswith(text) and replayed.endswith("*(interrupted)*")


def _qwen_path(shared_home) -> str:
    """The default model's file, joined once for the session in ``shared_home``."""
    from llmos.kernel.models import resolve

    old = os.environ.get("LLMOS_HOME")
    os.environ["LLMOS_HOME"] = str(shared_home)
    try:
        return str(resolve("qwen"))
    finally:
        os.environ["LLMOS_HOME"] = old


def test_kill_9_while_a_device_call_waits_for_approval(shared_home, tiny_cpu):
    model = _qwen_path(shared_home)
    question = "Use the python device to run this code: print(sum(range(1, 101)))"
    main, other = pty.openpty()  # the approval is asked on a terminal only
    child = subprocess.Popen([sys.executable, "-m", "llmos", "run", "--model", model, "--temperature", "0",
                              "--devices", "python", question], stdin=other, stdout=other, stderr=other)
    os.close(other)
    try:
        screen = _read_until(main, lambda s: "allow this call?" in s, 240)
    finally:
        _kill(child)
        os.close(main)
    assert "python" in screen

    row = next(r for r in _json("ps", "-a", "--json") if r["app"] == "run")
    assert (row["state"], row["interrupted"]) == ("SLEEPING", True)
    assert row["interrupted_while"] == "blocked (approval: python)"
    log = _json("log", str(row["pid"]), "--json")
    pages = [e for e in log["entries"] if e["kind"] == "page"]
    assert [p["text"] for p in pages if p["origin"] == "user"] == [question]
    call = _last_answer(log)
    assert call["ended"] == "interrupted" and '"python"' in call["text"] and "sum(range(1, 101))" in call["text"]
    assert not [e for e in log["entries"] if e["kind"] == "device"]  # the call never ran
    assert not any(p["origin"] == "device" for p in pages)
    _restarted_kernel_agrees(tiny_cpu, log)


class HungServer:
    """A server on 127.0.0.1 that takes connections and never answers (a disk server that hung)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connected = threading.Event()
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            self.connected.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_kill_9_during_a_page_fault_keeps_the_question(tiny_cpu):
    server = HungServer()
    question = "What is the code for my locker at the gym?"
    child = subprocess.Popen([sys.executable, "-m", "llmos", "run", "--model", "tiny",
                              "--disk-url", f"http://127.0.0.1:{server.port}", question],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert server.connected.wait(120), "llmos never reached the disk"
        # The first connection may come before the turn's page fault (a loaded machine was seen
        # still SLEEPING 0.5 s after it); the hung disk holds the fault, once it starts, for good.
        deadline = time.monotonic() + 60
        while True:
            live = next((r for r in _json("ps", "--json") if r["app"] == "run"), None)
            if (live and live["state"] == "BLOCKED") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert live is not None and (live["state"], live["blocked_on"]) == ("BLOCKED", "page fault")  # ps, live
    finally:
        _kill(child)
        server.close()
    row = _row(live["pid"])
    assert (row["state"], row["interrupted"], row["interrupted_while"]) == \
        ("SLEEPING", True, "blocked (page fault)")
    log = _json("log", str(row["pid"]), "--json")
    assert [e["text"] for e in log["entries"] if e["kind"] == "page" and e["origin"] == "user"] == [question]
    _restarted_kernel_agrees(tiny_cpu, log)
