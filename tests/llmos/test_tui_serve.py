"""``llmos serve``: the page and everything it loads come from 127.0.0.1 (no CDN, works offline)."""

from __future__ import annotations

import argparse
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from llmos.errors import UsageError

pytest.importorskip("textual_serve")

from llmos.tui.serve import app_command, check_port, offline_templates  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def test_each_tab_runs_the_shell_or_the_demo_with_the_model_asked_for():
    assert shlex.split(app_command(argparse.Namespace(model="tiny", ctx=1024, demo=False))) == [
        sys.executable, "-m", "llmos", "--model", "tiny", "--ctx", "1024"]
    assert shlex.split(app_command(argparse.Namespace(model=None, ctx=None, demo=True))) == [
        sys.executable, "-m", "llmos", "demo"]


def test_the_page_template_loads_its_fonts_locally(tmp_path):
    page = (offline_templates(tmp_path) / "app_index.html").read_text()
    assert "googleapis" not in page and "https://" not in page
    assert "fonts/RobotoMono-VariableFont_wght.ttf" in page


def test_a_port_in_use_is_one_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(UsageError, match=f"port {port} .* in use: try llmos serve --port {port + 1}"):
            check_port(port)


def test_the_served_page_and_its_assets_come_from_loopback_only():
    port = free_port()
    code = ("import argparse\nfrom llmos.tui.serve import run_serve\n"
            f"run_serve(argparse.Namespace(model='tiny', ctx=None, port={port}, demo=False))\n")
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = get(f"http://127.0.0.1:{port}/")
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert status == 200
        page = body.decode()
        urls = re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r'url\("([^"]+)"\)', page)
        assert len(urls) >= 4  # stylesheet, script, two fonts (and the background image)
        for url in urls:
            assert url.startswith(f"http://127.0.0.1:{port}/"), url
            assert get(url)[0] == 200, url
        assert f"ws://127.0.0.1:{port}/ws" in page
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
