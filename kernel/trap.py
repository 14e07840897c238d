"""Interrupts: stopping a process's generation from outside it.

Each process that is generating has an interrupt line (a ``threading.Event``
that the CPU checks between tokens, so it stops within one token). The shell
raises it on Ctrl-C; new input to a process that is still answering raises
it too, so the new input is not queued behind an answer nobody wants.

What this module leaves out: waking BLOCKED processes. A process blocked on
a device or an approval awaits that work directly (``kernel.py``), and is
made READY when it completes.
"""

from __future__ import annotations

import threading


class Traps:
    """The interrupt lines of all processes. Thread-safe."""

    def __init__(self) -> None:
        self._lines: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def arm(self, pid: int, line: threading.Event | None = None) -> threading.Event:
        """A fresh interrupt line for ``pid``'s next generation; an older one still armed
        (the process was answering) is raised first."""
        line = line or threading.Event()
        with self._lock:
            old = self._lines.get(pid)
            if old is not None and old is not line:
                old.set()
            self._lines[pid] = line
        return line

    def interrupt(self, pid: int) -> bool:
        """Raise ``pid``'s line. True when it was generating."""
        with self._lock:
            line = self._lines.get(pid)
        if line is None or line.is_set():
            return False
        line.set()
        return True

    def disarm(self, pid: int, line: threading.Event) -> None:
        with self._lock:
            if self._lines.get(pid) is line:
                del self._lines[pid]
