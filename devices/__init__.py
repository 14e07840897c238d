"""llmos.devices: the tools a process may call. Knows nothing of the kernel.

- ``base.py``         the ``Device`` interface, ``DeviceResult``, ``Risk`` and ``invoke``
- ``registry.py``     built-in and plugin devices by name (entry points ``llmos.devices``)
- ``mcp.py``          MCP servers as a device bus: each tool a device ``mcp.<server>.<tool>``
- ``sandbox.py``      the locked-down process the python device runs code in
- ``sandbox_boot.py`` the sandbox's first code (runs in the child, never imported)
- built-in drivers, one file each: ``calc.py``, ``clock.py``, ``files.py``
  (``files``, ``files_write``), ``plot.py``, ``python.py``, ``search.py``,
  ``shell.py``, ``web.py``
"""

from llmos.devices.base import Device as Device, DeviceResult as DeviceResult, Risk as Risk, invoke as invoke
