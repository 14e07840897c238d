"""``llmos serve``: the same shell in a web browser, for projectors.

textual-serve runs a web server on 127.0.0.1; each browser tab that opens the
page starts its own ``llmos`` process (the real shell, or ``llmos demo``),
whose screen is drawn in the page by xterm.js over a websocket.

Offline: the page's script, stylesheet, image and fonts all come from
textual-serve's own package, except that its page template asks Google Fonts
for Roboto Mono. ``llmos serve`` writes a copy of the template that loads the
font files textual-serve already ships instead, so the page makes no request
beyond 127.0.0.1.

What it leaves out: listening on other interfaces (the shell can read the
user's files and will run devices: it stays on loopback; a projector is
plugged into the machine that runs it) and authentication.
"""

from __future__ import annotations

import argparse
import errno
import re
import shlex
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from llmos.errors import LlmosError, UsageError

HOST = "127.0.0.1"
PORT = 8000

LOCAL_FONTS = """<style>
      @font-face {
        font-family: "Roboto Mono";
        src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf") format("truetype");
        font-weight: 100 700;
        font-style: normal;
      }
      @font-face {
        font-family: "Roboto Mono";
        src: url("{{ config.static.url }}fonts/RobotoMono-Italic-VariableFont_wght.ttf") format("truetype");
        font-weight: 100 700;
        font-style: italic;
      }
    </style>"""
_GOOGLE_FONTS = re.compile(r'<link[^>]*href="https://fonts\.googleapis\.com[^"]*"[^>]*>', re.S)


def app_command(args: argparse.Namespace) -> str:
    """The command each browser tab runs: ``python -m llmos [demo] [--model M] [--ctx N]``."""
    argv = [sys.executable, "-m", "llmos"]
    if getattr(args, "demo", False):
        argv.append("demo")
    if getattr(args, "model", None):
        argv += ["--model", args.model]
    if getattr(args, "ctx", None):
        argv += ["--ctx", str(args.ctx)]
    return shlex.join(argv)


def offline_templates(folder: Path) -> Path:
    """A copy of textual-serve's page template in ``folder``, loading its fonts locally."""
    import textual_serve

    source = Path(textual_serve.__file__).parent / "templates"
    shutil.copytree(source, folder, dirs_exist_ok=True)
    page = folder / "app_index.html"
    page.write_text(_GOOGLE_FONTS.sub(LOCAL_FONTS, page.read_text(encoding="utf-8")), encoding="utf-8")
    return folder


def check_port(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(f"port {port} on {HOST} is in use: try llmos serve --port {port + 1}") from None
            raise UsageError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None


def run_serve(args: argparse.Namespace) -> int:
    """Serve the shell (or, with ``args.demo``, the demo) on http://127.0.0.1:PORT until Ctrl+C."""
    try:
        from textual_serve.server import Server
    except ImportError:
        raise LlmosError("llmos serve needs textual-serve: pip install textual-serve") from None
    port = getattr(args, "port", None) or PORT
    if not 0 < port < 65536:
        raise UsageError(f"not a port: {port} (1-65535)")
    check_port(port)
    from llmos.kernel.boot import resolve_model

    # Join the default model once here, with progress on this terminal, rather than
    # silently inside the first browser tab.
    resolve_model(getattr(args, "model", None))
    folder = Path(tempfile.mkdtemp(prefix="llmos-serve-"))
    try:
        title = "llmos demo" if getattr(args, "demo", False) else "llmos"
        server = Server(app_command(args), host=HOST, port=port, title=title,
                        templates_path=offline_templates(folder / "templates"))
        server.serve()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0
