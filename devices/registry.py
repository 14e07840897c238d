"""The device table: built-in drivers plus third-party ones from the ``llmos.devices`` entry points.

A plugin package declares its device in its own ``pyproject.toml``::

    [project.entry-points."llmos.devices"]
    dice = "llmos_dice:Dice"

and that is all. :meth:`Registry.list` reads entry points and package
metadata only (name, package, version, summary) and imports no plugin, so it
costs milliseconds however many are installed; a plugin is imported the
first time :meth:`Registry.get` asks for it. A broken plugin (its import
fails, it is not a ``Device``, its schema is not a JSON schema, its name is
taken) is reported by name in the listing and as a ``DeviceError`` from
``get``, and never stops anything else.

Listing, name clashes and the ``LLMOS_PLUGINS`` allow-list follow the one
entry-point table both plugin groups share (``llmos/plugins.py``).

Configuration is the ``[devices]`` table of config.toml: one sub-table per
device whose keys are the device's constructor arguments (``[devices.files]
roots = ["~/notes"]``, ``[devices.web] allow_private = true``,
``[devices.python] memory_mb = 256``), plus ``risk`` to change a device's
risk for this user (``[devices.shell] risk = "deny"``).

MCP servers listed in config.toml's ``[mcp.servers]`` table are a device bus
(``devices/mcp.py``): each tool of each server is a device named
``mcp.<server>.<tool>``. Listing never starts a server: until a server has
been used (or :meth:`Registry.discover` started it) it is one row,
``mcp.<server>.*``; ``get`` of one of its tools starts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmos.devices.base import Device, Risk
from llmos.errors import DeviceError
from llmos.plugins import Plugin, load_class, scan

GROUP = "llmos.devices"
BUILTIN = "llmos (built-in)"
BUILTINS = {
    "calc": "llmos.devices.calc:CalcDevice",
    "clock": "llmos.devices.clock:ClockDevice",
    "files": "llmos.devices.files:FilesDevice",
    "files_write": "llmos.devices.files:FilesWriteDevice",
    "plot": "llmos.devices.plot:PlotDevice",
    "python": "llmos.devices.python:PythonDevice",
    "search": "llmos.devices.search:SearchDevice",
    "shell": "llmos.devices.shell:ShellDevice",
    "web": "llmos.devices.web:WebDevice",
}
RESERVED = {"recall"}
"""Names the kernel answers itself; no device may take them."""


@dataclass
class DeviceInfo:
    """One row of ``llmos devices``."""

    name: str
    risk: Risk | None
    """None for a plugin not imported yet (its class says, and listing does not import)."""
    source: str
    """``llmos (built-in)`` or ``package version``."""
    description: str
    loaded: bool
    """Whether the device's code has been imported."""
    error: str | None = None
    """Why this device cannot be used (broken, blocked, name taken); None when it can."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "risk": self.risk.value if self.risk else None, "source": self.source,
                "description": self.description, "loaded": self.loaded, "error": self.error}


class Registry:
    """Finds devices by name. ``config`` is the ``[devices]`` table; ``disk`` goes to ``search``."""

    def __init__(self, config: dict[str, Any] | None = None, *, disk: Any = None,
                 mcp: dict[str, Any] | None = None) -> None:
        from llmos.devices.mcp import Bus

        self.config = dict(config or {})
        self.disk = disk
        self._devices: dict[str, Device] = {}
        self._broken: dict[str, str] = {}
        self._plugins: dict[str, Plugin] | None = None
        self.mcp = Bus(mcp, self.config)
        """The MCP servers (``[mcp.servers]`` of config.toml) whose tools are devices ``mcp.<server>.<tool>``."""

    @classmethod
    def from_config(cls, *, disk: Any = None) -> Registry:
        """A registry configured by the user's config.toml: ``[devices]`` and ``[mcp.servers]``."""
        from llmos.paths import load_config

        config = load_config()
        devices = config.get("devices", {})
        mcp = config.get("mcp", {})
        servers = mcp.get("servers", {}) if isinstance(mcp, dict) else {}
        return cls(devices if isinstance(devices, dict) else {}, disk=disk,
                   mcp=servers if isinstance(servers, dict) else {})

    # -- finding ---------------------------------------------------------------

    def plugins(self) -> dict[str, Plugin]:
        """Installed plugin devices by the name they are used under, from metadata only."""
        if self._plugins is None:
            self._plugins = scan(GROUP, set(BUILTINS) | RESERVED)
        return self._plugins

    def list(self) -> list[DeviceInfo]:
        """Every device: built-ins (their classes are imported: small, stdlib only), then plugins
        (read from metadata, imported only if already used)."""
        rows = []
        for name, target in BUILTINS.items():
            cls = load_class(target)
            device = self._devices.get(name)
            risk = Risk(device.risk) if device is not None else Risk(cls.risk)
            rows.append(DeviceInfo(name, risk, BUILTIN, cls.description, True, self._broken.get(name)))
        for key, plugin in sorted(self.plugins().items()):
            device = self._devices.get(key)
            if device is not None:
                rows.append(DeviceInfo(key, Risk(device.risk), plugin.source, device.description, True))
            else:
                error = plugin.error or self._broken.get(key)
                rows.append(DeviceInfo(key, None, plugin.source, plugin.summary, key in self._broken, error))
        return rows + self._mcp_rows()

    def _mcp_rows(self) -> list[DeviceInfo]:
        """One row per tool of each MCP server that is running; one ``mcp.<server>.*`` row for a server
        not started yet (listing never starts one) or one that is misconfigured."""
        from llmos.devices.mcp import PREFIX

        rows = []
        for server, why in sorted(self.mcp.broken.items()):
            rows.append(DeviceInfo(f"{PREFIX}{server}.*", None, "mcp (config)", "MCP server", False, why))
        for server, connection in sorted(self.mcp.connections.items()):
            config = connection.config
            if connection.tools is None:
                rows.append(DeviceInfo(f"{PREFIX}{server}.*", config.risk, config.where,
                                       "MCP server, not started yet: its tools are listed once it runs "
                                       "(llmos devices starts it)", False, connection.last_error))
                continue
            for tool in connection.tools:
                name = f"{PREFIX}{server}.{tool.name}"
                try:
                    risk = self.mcp.risk(config, tool.name)
                except DeviceError as exc:
                    risk, tool.error = None, str(exc)
                rows.append(DeviceInfo(name, risk, config.where, tool.description, True, tool.error))
        return rows

    def discover(self, timeout: float | None = None) -> dict[str, str]:
        """Start the configured MCP servers so that :meth:`list` shows their tools (``llmos devices``);
        {server: why} for those that did not start. Nothing else calls this: listing stays instant."""
        return self.mcp.discover(timeout)

    def names(self) -> list[str]:
        """Names of the devices that can be used (not broken or blocked as far as known)."""
        return [row.name for row in self.list() if row.error is None and not row.name.endswith(".*")]

    def get(self, name: str) -> Device:
        """The device called ``name``, imported and configured on first use; DeviceError if
        there is none, or it is blocked or broken (the message says which and why)."""
        device = self._devices.get(name)
        if device is not None:
            return device
        if name in self._broken:
            raise DeviceError(f"device {name!r} is broken: {self._broken[name]}")
        if name.startswith("mcp."):
            return self.mcp.get(name)  # not cached here: the bus caches tools and restarts crashed servers
        if name in BUILTINS:
            device = self._make(name, BUILTIN, lambda: load_class(BUILTINS[name]))
        else:
            plugin = self.plugins().get(name)
            if plugin is None:
                known = ", ".join(sorted(set(BUILTINS) | {k for k, p in self.plugins().items() if not p.error}
                                         | {f"mcp.{s}.*" for s in self.mcp.connections}))
                raise DeviceError(f"no device named {name!r}; known devices: {known} (see: llmos devices)")
            if plugin.error:
                raise DeviceError(f"device {name!r} ({plugin.source}) cannot be used: {plugin.error}")
            device = self._make(name, plugin.source, plugin.entry.load)
        self._devices[name] = device
        return device

    # -- making ----------------------------------------------------------------

    def _make(self, name: str, source: str, load) -> Device:
        """Import, check and construct one device; any failure is remembered and raised as DeviceError."""
        try:
            obj = load()
            device = self._construct(name, obj)
        except Exception as exc:  # a plugin's import may raise anything
            reason = str(exc) if isinstance(exc, DeviceError) else f"{type(exc).__name__}: {exc}"
            self._broken[name] = reason.splitlines()[0][:300] if reason else type(exc).__name__
            raise DeviceError(f"device {name!r} ({source}) is broken: {self._broken[name]}") from None
        return device

    def _construct(self, name: str, obj: Any) -> Device:
        options = dict(self.config.get(name) or {})
        risk = options.pop("risk", None)
        if name == "files_write" and "roots" not in options and "roots" in (self.config.get("files") or {}):
            options["roots"] = self.config["files"]["roots"]  # writes go where reads may, unless told
        if name == "search" and self.disk is not None:
            options.setdefault("disk", self.disk)
        if isinstance(obj, type) and issubclass(obj, Device):
            try:
                device = obj(**options)
            except TypeError as exc:
                raise DeviceError(f"bad [devices.{name}] options {sorted(options)}: {exc}") from None
        elif isinstance(obj, Device):
            if options:
                raise DeviceError(f"it is a ready-made instance and takes no [devices.{name}] options")
            device = obj
        else:
            raise DeviceError(f"{getattr(obj, '__name__', type(obj).__name__)} is not a Device subclass")
        if getattr(device, "name", None) != name:
            raise DeviceError(f"its class says its name is {getattr(device, 'name', None)!r}, not {name!r}")
        for attr in ("description", "schema"):
            if not hasattr(device, attr):
                raise DeviceError(f"it has no {attr}")
        import jsonschema

        try:
            jsonschema.validators.validator_for(device.schema).check_schema(device.schema)
        except jsonschema.exceptions.SchemaError as exc:
            raise DeviceError(f"its schema is not a JSON schema ({exc.message})") from None
        try:
            device.risk = Risk(risk if risk is not None else device.risk)
        except ValueError:
            raise DeviceError(f"risk {risk!r} is not one of safe, ask, deny") from None
        return device
