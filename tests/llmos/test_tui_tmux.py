"""End to end in a real terminal: ``llmos --model tiny`` in tmux, a question typed, the answer read
back from the screen with ``tmux capture-pane``."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def wait_for_screen(tmux, predicate, timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    while True:
        screen = tmux("capture-pane", "-p", "-t", "llmos").stdout
        if predicate(screen):
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; the screen:\n{screen}")
        time.sleep(0.2)


def test_the_shell_answers_a_question_in_a_real_terminal(tmp_path):
    socket = f"llmos-test-{os.getpid()}"

    def tmux(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=30)

    rc_file = tmp_path / "rc"
    command = shlex.join(["env", f"LLMOS_HOME={tmp_path / 'home'}", "TERM=xterm-256color", sys.executable,
                          "-m", "llmos", "--model", "tiny", "--ctx", "1024"]) + f"; echo $? > {rc_file}"
    started = tmux("new-session", "-d", "-s", "llmos", "-x", "120", "-y", "36", command)
    assert started.returncode == 0, started.stderr
    try:
        wait_for_screen(tmux, lambda s: "Ask anything" in s, 60, "the shell")
        tmux("send-keys", "-t", "llmos", "-l", "What is the capital of France?")
        tmux("send-keys", "-t", "llmos", "Enter")
        screen = wait_for_screen(tmux, lambda s: "tok/s · prompt" in s, 90, "the answer's footnote")
        assert "Paris" in screen
        assert "RAM · pid" in screen and "3 pages" in screen, "the page map shows the question and answer"
        tmux("send-keys", "-t", "llmos", "C-q")
        deadline = time.monotonic() + 15
        while tmux("has-session", "-t", "llmos").returncode == 0:
            assert time.monotonic() < deadline, "llmos did not quit on Ctrl+Q"
            time.sleep(0.2)
        assert rc_file.read_text().strip() == "0"  # a clean exit: no abort while tearing down
    finally:
        tmux("kill-server")
