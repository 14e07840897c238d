"""MCP as a device bus: every tool of a configured MCP server is a device ``mcp.<server>.<tool>``.

The user lists servers in config.toml, each started as a program that speaks
MCP on stdin/stdout, or reached at a streamable-HTTP URL::

    [mcp.servers.notes]
    command = ["python", "/home/me/notes_server.py"]   # or: url = "http://127.0.0.1:8765/mcp"
    risk = "ask"                # the default; "safe" or "deny" for all of this server's tools
    tool_risk = { add = "safe" }  # per tool, over the server's risk
    env = { NOTES_DIR = "/home/me/notes" }   # stdio only; the server gets a minimal environment
    timeout_s = 30              # one call; start_timeout_s = 20 to connect and list the tools

A server is started (or connected to) on the first use of one of its tools,
its tool list is read once and cached, and the one session stays open on a
background asyncio loop thread shared by all servers, because
``Device.call`` is synchronous and runs on a worker thread. A server that does
not start, crashes, times out or reports a tool error gives the caller a
``DeviceResult`` error (or a ``DeviceError`` from the registry for a server
that cannot be reached at all), never an exception out of the bus; after a
crash the next call starts the server again. A call that was cut by a crash
is not repeated: it may have had side effects.

What a server says is untrusted: its tool descriptions are cut to one short
line before they reach the model's prompt, its tool names must be plain
identifiers, and its risk claims (MCP tool annotations) are ignored: the
risk is ``ask`` unless the user's config says otherwise.

The ``mcp`` package (and pydantic, httpx, anyio under it) is imported only
when a server is first started; configuring and listing servers imports
nothing.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import copy
import json
import re
import shlex
import tempfile
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from llmos.devices.base import Device, DeviceResult, Risk, safe_text
from llmos.errors import DeviceError

PREFIX = "mcp."
SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOOL_NAME = re.compile(r"^[A-Za-z0-9_./-]{1,128}$")
"""The MCP spec's tool-name alphabet (plus "/" some servers use)."""
MAX_DESCRIPTION = 200
"""Characters of a tool's description that reach the model's prompt."""
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_START_TIMEOUT_S = 20.0
MAX_TOOLS = 256
"""Tools read from one server (its listing is paged; a server that never ends its pages is cut here)."""


@dataclass
class ServerConfig:
    """One ``[mcp.servers.NAME]`` table, checked."""

    name: str
    command: list[str] | None = None
    url: str | None = None
    risk: Risk = Risk.ASK
    tool_risk: dict[str, Risk] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S

    @property
    def where(self) -> str:
        """How the server is reached, for the listing's source column."""
        if self.url:
            return f"mcp {self.url}"
        return f"mcp stdio: {shlex.join(self.command or [])}"[:120]


KNOWN_KEYS = {"command", "url", "risk", "tool_risk", "env", "cwd", "timeout_s", "start_timeout_s"}


def parse_server(name: str, table: Any) -> ServerConfig:
    """A server's config table as a ServerConfig; DeviceError (one line) saying what is wrong."""
    where = f"[mcp.servers.{name}]"
    if not SERVER_NAME.match(name):
        raise DeviceError(f"{where}: a server name may hold only letters, digits, '_' and '-'")
    if not isinstance(table, dict):
        raise DeviceError(f"{where} must be a table with command = [...] or url = \"...\"")
    unknown = sorted(set(table) - KNOWN_KEYS)
    if unknown:
        raise DeviceError(f"{where}: unknown keys {unknown}; known: {sorted(KNOWN_KEYS)}")
    command, url = table.get("command"), table.get("url")
    if (command is None) == (url is None):
        raise DeviceError(f"{where} needs exactly one of command = [\"program\", \"arg\", ...] or url = \"http...\"")
    if isinstance(command, str):
        command = shlex.split(command)
    if command is not None and (not command or not all(isinstance(c, str) and c for c in command)):
        raise DeviceError(f"{where}: command must be a non-empty list of strings")
    if url is not None and (not isinstance(url, str) or not re.match(r"^https?://", url)):
        raise DeviceError(f"{where}: url must start with http:// or https://")

    def risk_of(value: Any, key: str) -> Risk:
        try:
            return Risk(value)
        except ValueError:
            raise DeviceError(f"{where}: {key} {value!r} is not one of safe, ask, deny") from None

    tool_risk = table.get("tool_risk", {})
    if not isinstance(tool_risk, dict):
        raise DeviceError(f"{where}: tool_risk must be a table like {{ add = \"safe\" }}")
    env = table.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise DeviceError(f"{where}: env must be a table of strings")
    timeouts = {}
    for key, default in (("timeout_s", DEFAULT_TIMEOUT_S), ("start_timeout_s", DEFAULT_START_TIMEOUT_S)):
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
            raise DeviceError(f"{where}: {key} must be a number of seconds between 0 and 3600")
        timeouts[key] = float(value)
    return ServerConfig(name, command=command, url=url, risk=risk_of(table.get("risk", "ask"), "risk"),
                        tool_risk={k: risk_of(v, f"tool_risk.{k}") for k, v in tool_risk.items()},
                        env={str(k): v for k, v in env.items()}, cwd=table.get("cwd"), **timeouts)


def split_name(name: str) -> tuple[str, str] | None:
    """``mcp.SERVER.TOOL`` as (server, tool); None for a name that is not an MCP device's.
    The server name holds no dot, so everything after the second dot is the tool's."""
    if not name.startswith(PREFIX):
        return None
    server, dot, tool = name[len(PREFIX):].partition(".")
    return (server, tool) if dot and server and tool else None


# -- the loop thread -------------------------------------------------------------------


class _Loop:
    """One asyncio loop on a daemon thread, started on first use, for every MCP session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self.loop is None or self.loop.is_closed():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                threading.Thread(target=run, name="llmos-mcp", daemon=True).start()
                ready.wait()
                self.loop = loop
            return self.loop

    def run(self, coro, timeout: float):
        """Run ``coro`` on the loop and wait for it; TimeoutError (the coroutine is cancelled) after ``timeout``."""
        future = asyncio.run_coroutine_threadsafe(coro, self.get())
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError from None


LOOP = _Loop()


# -- one server ----------------------------------------------------------------------


@dataclass
class ToolSpec:
    name: str
    description: str
    schema: dict
    error: str | None = None
    """Why this tool cannot be used (a bad name or schema); None when it can."""


class Connection:
    """One MCP server: its session (started on demand), its cached tool list, its calls."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.tools: list[ToolSpec] | None = None
        """The server's tools as last listed; None before the first successful start."""
        self._client = None
        self._stop: asyncio.Event | None = None
        self._keeper: concurrent.futures.Future | None = None
        self._errlog = None
        self._lock = threading.Lock()
        self.last_error: str | None = None
        """Why the last start failed; None once it started."""
        self.starts = 0
        """How many times the server was started (or connected to): restarts after crashes count."""

    @property
    def connected(self) -> bool:
        return self._client is not None and self._keeper is not None and not self._keeper.done()

    # -- starting and stopping

    def ensure(self, timeout: float | None = None) -> list[ToolSpec]:
        """Start the server and list its tools unless that is done; DeviceError (one line) when it fails.
        ``timeout`` (seconds) shortens the config's ``start_timeout_s`` for this start."""
        with self._lock:
            if self.connected and self.tools is not None:
                return self.tools
            self._close_locked()
            name = self.config.name
            timeout = min(self.config.start_timeout_s, timeout or self.config.start_timeout_s)
            try:
                import mcp  # noqa: F401  (the SDK; a missing install is one clear line)
            except ImportError as exc:
                raise DeviceError(f"MCP server {name!r} needs the mcp package ({exc}); pip install mcp") from None
            loop = LOOP.get()
            ready: concurrent.futures.Future = concurrent.futures.Future()
            self._errlog = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
            self._stop = asyncio.Event()  # not bound to a loop until awaited (3.10+)
            self._keeper = asyncio.run_coroutine_threadsafe(self._keep(ready), loop)
            _OPEN.add(self)
            self.starts += 1
            try:
                self.tools = ready.result(timeout)
            except concurrent.futures.TimeoutError:
                self._close_locked()
                self.last_error = (f"MCP server {name!r} did not answer within {timeout:g} s "
                                   f"({self.config.where}); start_timeout_s sets the limit")
                raise DeviceError(self.last_error) from None
            except BaseException as exc:  # noqa: BLE001  (anything the transport raised)
                why = self._why(exc)
                self._close_locked()
                self.last_error = f"MCP server {name!r} did not start ({self.config.where}): {why}"
                raise DeviceError(self.last_error) from None
            self.last_error = None
            return self.tools

    def _transport(self):
        from mcp import StdioServerParameters, stdio_client

        if self.config.url:
            return self.config.url
        command = self.config.command or []
        params = StdioServerParameters(command=command[0], args=command[1:], env=self.config.env or None,
                                       cwd=self.config.cwd, encoding_error_handler="replace")
        return stdio_client(params, errlog=self._errlog)

    async def _keep(self, ready: concurrent.futures.Future) -> None:
        """The session's whole life in one task (anyio scopes must close in the task that opened them)."""
        from mcp import Client

        stop = self._stop
        try:
            async with Client(self._transport(), read_timeout_seconds=self.config.start_timeout_s) as client:
                tools = await self._list(client)
                self._client = client
                ready.set_result(tools)
                await stop.wait()
        except BaseException as exc:  # noqa: BLE001  (reported to whoever waits; never raised on the loop)
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(type(exc).__name__))
            if not isinstance(exc, Exception):
                raise
        finally:
            self._client = None

    async def _list(self, client) -> list[ToolSpec]:
        tools: list[ToolSpec] = []
        cursor = None
        while len(tools) < MAX_TOOLS:
            page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
            tools += [tool_spec(t.name, t.description, t.input_schema) for t in page.tools]
            cursor = getattr(page, "next_cursor", None)
            if not cursor:
                break
        return tools[:MAX_TOOLS]

    def _why(self, exc: BaseException, stderr: bool = True) -> str:
        """One line: the exception, and (``stderr``: when it did not start) the last line the
        server wrote on stderr, usually its own reason."""
        while isinstance(getattr(exc, "exceptions", None), (list, tuple)) and exc.exceptions:
            exc = exc.exceptions[0]  # an exception group from the SDK's task groups: its first cause
        text = safe_text(exc).strip().splitlines()
        why = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
        last = self._stderr_tail() if stderr else ""
        return f"{why[:200]}{f'; it said: {last}' if last else ''}"

    def _stderr_tail(self) -> str:
        if self._errlog is None or self._errlog.closed:
            return ""
        try:
            self._errlog.flush()
            self._errlog.seek(0)
            lines = [ln.strip() for ln in self._errlog.read()[-4000:].splitlines() if ln.strip()]
        except (OSError, ValueError):
            return ""
        return lines[-1][:200] if lines else ""

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        keeper, stop, loop = self._keeper, self._stop, LOOP.loop
        self._keeper = None
        if keeper is not None and not keeper.done() and loop is not None and not loop.is_closed():
            if self._client is not None and stop is not None:
                loop.call_soon_threadsafe(stop.set)  # a clean end: the SDK closes stdin, waits, then
                try:                                  # terminates the server's process tree
                    keeper.result(8)
                except BaseException:  # noqa: BLE001
                    keeper.cancel()
            else:
                keeper.cancel()  # still starting: cancel (the SDK's shutdown is shielded and kills it)
                try:
                    keeper.result(8)
                except BaseException:  # noqa: BLE001
                    pass
        self._client = None
        if self._errlog is not None:
            self._errlog.close()
            self._errlog = None

    # -- calling

    def call(self, tool: str, args: dict) -> DeviceResult:
        """Call one tool; every failure is a DeviceResult error."""
        name, timeout = self.config.name, self.config.timeout_s
        try:
            self.ensure()
        except DeviceError as exc:
            return DeviceResult(output="", error=str(exc))
        client = self._client
        if client is None:
            return DeviceResult(output="", error=f"MCP server {name!r} closed its connection; the next call restarts it")

        async def run():
            return await client.call_tool(tool, args, read_timeout_seconds=timeout)

        try:
            result = LOOP.run(run(), timeout + 5)
        except TimeoutError:
            return DeviceResult(output="", error=f"{PREFIX}{name}.{tool} timed out after {timeout:g} s "
                                                 "(timeout_s in its [mcp.servers] table sets the limit)")
        except BaseException as exc:  # noqa: BLE001  (a closed connection, a protocol error, a bad reply)
            why = self._why(exc, stderr=False)
            alive = self._keeper is not None and not self._keeper.done()
            timed_out = "timed out" in why.lower() or "timeout" in type(exc).__name__.lower()
            if timed_out:
                return DeviceResult(output="", error=f"{PREFIX}{name}.{tool} timed out after {timeout:g} s")
            self.close()  # whatever broke, the next call starts a fresh session
            state = "the server stopped during the call" if not alive or "closed" in why.lower() else "call failed"
            return DeviceResult(output="", error=f"MCP server {name!r}: {state} ({why}); "
                                                 "the call was not repeated, the next call restarts the server")
        return convert(result)


def convert(result: Any) -> DeviceResult:
    """A CallToolResult as a DeviceResult: text content joined, other content named, errors as errors."""
    parts: list[str] = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", "?")
        if kind == "text":
            parts.append(getattr(block, "text", ""))
        elif kind in ("image", "audio"):
            data = getattr(block, "data", "") or ""
            parts.append(f"[{kind} {getattr(block, 'mime_type', '?')}, about {len(data) * 3 // 4} bytes]")
        elif kind == "resource":
            resource = getattr(block, "resource", None)
            text = getattr(resource, "text", None)
            parts.append(text if isinstance(text, str) else f"[resource {getattr(resource, 'uri', '?')}]")
        elif kind == "resource_link":
            parts.append(f"[resource link {getattr(block, 'uri', '?')}]")
        else:
            parts.append(f"[{kind} content]")
    text = "\n".join(parts)
    data = getattr(result, "structured_content", None)
    if getattr(result, "is_error", False):
        first = next((ln for ln in text.splitlines() if ln.strip()), "the tool reported an error")
        return DeviceResult(output=text, data=data, error=f"tool error: {first.strip()[:300]}")
    if not text and data is not None:
        text = json.dumps(data, ensure_ascii=False, default=str)
    return DeviceResult(output=text, data=data)


# -- schemas -------------------------------------------------------------------------


def tool_spec(name: Any, description: Any, schema: Any) -> ToolSpec:
    """A tool as the server listed it, made fit for the prompt and the grammar (or marked unusable)."""
    name = safe_text(name or "")
    line = " ".join(safe_text(description or "").split())
    line = line if len(line) <= MAX_DESCRIPTION else line[:MAX_DESCRIPTION - 3] + "..."
    if not TOOL_NAME.match(name):
        return ToolSpec(name[:80], line, {"type": "object"}, f"tool name {name[:80]!r} is not a plain identifier")
    try:
        clean = inline_refs(schema if isinstance(schema, dict) else {"type": "object"})
        clean.setdefault("type", "object")
        if clean.get("type") != "object":
            raise ValueError("its input schema is not an object schema")
        import jsonschema

        jsonschema.validators.validator_for(clean).check_schema(clean)
    except Exception as exc:  # noqa: BLE001  (a server's schema may be anything)
        message = getattr(exc, "message", None) or str(exc)
        return ToolSpec(name, line, {"type": "object"}, f"bad input schema: {message.splitlines()[0][:200]}")
    return ToolSpec(name, line or f"MCP tool {name}", clean)


def inline_refs(schema: dict, *, depth: int = 8) -> dict:
    """The schema with local ``$ref``s (``#/$defs/X``, ``#/definitions/X``) replaced by their targets.

    The kernel puts every granted device's schema under one ``oneOf`` for the grammar, where a
    ``#/...`` pointer would point at the wrong root; recursive references end at ``depth``
    as an unconstrained value (the full schema still validates the call)."""
    root = copy.deepcopy(schema)
    defs = {**root.pop("definitions", {}), **root.pop("$defs", {})}

    def walk(node: Any, level: int) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                key = ref.rsplit("/", 1)[-1]
                if not ref.startswith(("#/$defs/", "#/definitions/")) or key not in defs:
                    raise ValueError(f"unsupported $ref {ref!r}")
                if level >= depth:
                    return {}
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return walk({**copy.deepcopy(defs[key]), **rest}, level + 1)
            return {k: walk(v, level) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, level) for v in node]
        return node

    return walk(root, 0)


# -- devices -------------------------------------------------------------------------


class MCPTool(Device):
    """One tool of one MCP server, as a device named ``mcp.<server>.<tool>``."""

    name = "mcp"
    description = "a tool of an MCP server"
    schema: dict = {"type": "object"}

    def __init__(self, connection: Connection, spec: ToolSpec, risk: Risk) -> None:
        self.connection = connection
        self.tool = spec.name
        self.name = f"{PREFIX}{connection.config.name}.{spec.name}"
        self.description = spec.description
        self.schema = spec.schema
        self.risk = risk

    def call(self, args: dict) -> DeviceResult:
        return self.connection.call(self.tool, args)


class Bus:
    """The configured MCP servers (``[mcp.servers]``) and the devices their tools become."""

    def __init__(self, servers: dict[str, Any] | None = None, devices_config: dict[str, Any] | None = None) -> None:
        self.connections: dict[str, Connection] = {}
        self.broken: dict[str, str] = {}
        """Servers whose config is wrong, with why."""
        self.devices_config = devices_config or {}
        for name, table in sorted((servers or {}).items()):
            try:
                self.connections[name] = Connection(parse_server(name, table))
            except DeviceError as exc:
                self.broken[name] = str(exc)

    def risk(self, config: ServerConfig, tool: str) -> Risk:
        """Config decides, most specific first: ``[devices."mcp.s.t"] risk``, then the server's
        ``tool_risk``, then its ``risk`` (default ask). The server's own hints never do."""
        override = (self.devices_config.get(f"{PREFIX}{config.name}.{tool}") or {}).get("risk")
        if override is not None:
            try:
                return Risk(override)
            except ValueError:
                raise DeviceError(f"[devices.\"{PREFIX}{config.name}.{tool}\"] risk {override!r} "
                                  "is not one of safe, ask, deny") from None
        return config.tool_risk.get(tool, config.risk)

    def get(self, name: str) -> MCPTool:
        """The device ``mcp.<server>.<tool>``, starting its server if needed; DeviceError saying why not."""
        parts = split_name(name)
        if parts is None:
            raise DeviceError(f"{name!r} is not an MCP device name (mcp.SERVER.TOOL)")
        server, tool = parts
        if server in self.broken:
            raise DeviceError(self.broken[server])
        connection = self.connections.get(server)
        if connection is None:
            known = ", ".join(sorted(self.connections)) or "none (add [mcp.servers.NAME] to config.toml)"
            raise DeviceError(f"no MCP server {server!r} is configured; configured: {known}")
        specs = {t.name: t for t in connection.ensure()}
        spec = specs.get(tool)
        if spec is None:
            raise DeviceError(f"MCP server {server!r} has no tool {tool!r}; it has: "
                              f"{', '.join(sorted(specs)) or 'no tools'}")
        if spec.error:
            raise DeviceError(f"device {name!r} cannot be used: {spec.error}")
        return MCPTool(connection, spec, self.risk(connection.config, tool))

    def discover(self, timeout: float | None = None) -> dict[str, str]:
        """Start every configured server (in parallel) so its tools can be listed; {server: error} for
        those that did not start. ``timeout`` caps each server's start time."""
        errors: dict[str, str] = {}

        def start(connection: Connection) -> None:
            try:
                connection.ensure(timeout)
            except DeviceError as exc:
                errors[connection.config.name] = str(exc)

        threads = [threading.Thread(target=start, args=(c,), daemon=True) for c in self.connections.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return errors

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()


_OPEN: weakref.WeakSet[Connection] = weakref.WeakSet()
"""Connections started by this process (a running session keeps its Connection alive)."""


@atexit.register
def _close_all() -> None:
    """Stop the servers this process started (they also exit on their own when their stdin closes)."""
    for connection in list(_OPEN):
        try:
            connection.close()
        except Exception:  # noqa: BLE001  (exiting anyway)
            pass
