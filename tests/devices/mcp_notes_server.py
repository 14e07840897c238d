"""A small real MCP server for the tests: a notes store with a few tools, run by the ``mcp`` package.

    python mcp_notes_server.py                      # stdio (the client starts it)
    python mcp_notes_server.py --http PORT          # streamable HTTP on 127.0.0.1:PORT/mcp

mcp 2.x renamed v1's ``FastMCP`` to ``MCPServer`` (same decorator API).
Tools: ``add`` (integers), ``echo`` (text, optionally repeated), ``save_note``
(writes a note into a folder given by NOTES_DIR, a side effect a test can see),
``stash`` (a property without a type: any JSON value), ``fail`` (a tool error), ``crash`` (the server process dies), ``sleep`` (for
timeouts) and ``pid`` (which process answers, to see restarts).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer

server = MCPServer("notes")


@server.tool(description="add two integers")
def add(a: int, b: int) -> int:
    return a + b


@server.tool(description="say the text back, optionally several times")
def echo(text: str, times: int = 1) -> str:
    return text * times


@server.tool(description="save a note under a name")
def save_note(name: str, text: str) -> str:
    folder = Path(os.environ.get("NOTES_DIR", "."))
    (folder / f"{name}.txt").write_text(text)
    return f"saved {name}"


@server.tool(description="keep any JSON value (its schema has a property without a type)")
def stash(value: Any) -> str:
    return f"stashed {value!r}"


@server.tool(description="always fails")
def fail(reason: str) -> str:
    raise ValueError(f"failing on purpose: {reason}")


@server.tool(description="the server process exits at once")
def crash() -> str:
    os._exit(3)


@server.tool(description="wait some seconds")
def sleep(seconds: float) -> str:
    time.sleep(seconds)
    return f"slept {seconds}"


@server.tool(description="the server's process id")
def pid() -> str:
    return str(os.getpid())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
