"""Processes: one running app each.

A process has a pid (from the journal, never reused), the app it runs, a
state, a priority, its own address space (RAM pages), the devices it was
granted, and counters. Its saved CPU state (the KV snapshot) is kept by the
scheduler, keyed by pid.

States, as ``ps`` shows them:

- ``READY``: has work and waits for the CPU;
- ``RUNNING``: the CPU is generating for it now;
- ``BLOCKED``: waits for something outside the CPU: a device, an approval;
- ``SLEEPING``: idle, waiting for input from its user;
- ``ZOMBIE``: exited or killed; its pages stay in the journal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum

from llmos.memory.ram import AddressSpace


class ProcState(str, Enum):
    READY = "READY"
    RUNNING = "RUNNING"
    BLOCKED = "BLOCKED"
    SLEEPING = "SLEEPING"
    ZOMBIE = "ZOMBIE"


@dataclass
class Process:
    pid: int
    app: str
    space: AddressSpace
    priority: int = 0
    state: ProcState = ProcState.SLEEPING
    grants: set[str] = field(default_factory=set)
    """Devices the user allowed this process to use."""
    started: float = field(default_factory=time.time)
    tokens_in: int = 0
    tokens_out: int = 0
    cpu_s: float = 0.0
    switches: int = 0
    blocked_on: str = ""
    """Why a BLOCKED process waits (shown by ps)."""
    interrupted: bool = False
    """Restored after llmos died while this process was generating."""
    core: int = 0
    """Which CPU (core) the kernel placed this process on."""
    model: str = ""
    """The model its last answer came from (the CPU can be switched: ``kernel/hotswap.py``)."""
    ends_after: bool = False
    """A finished conversation taken back for one more turn (``llmos run --pid``): it ends
    again after it, and goes back to ZOMBIE even if llmos dies during it (``Journal.reap``)."""

    @property
    def alive(self) -> bool:
        return self.state is not ProcState.ZOMBIE

    def info(self) -> dict:
        """The row ``ps`` shows, and what the journal keeps for it."""
        s = self.space
        return {
            "pid": self.pid, "app": self.app, "state": self.state.value, "priority": self.priority,
            "resident_pages": sum(1 for p in s.pages if p.resident),
            "swapped_pages": sum(1 for p in s.pages if not p.resident),
            "resident_tokens": s.resident_tokens, "ram_budget": s.budget,
            "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
            "cpu_s": round(self.cpu_s, 3), "switches": self.switches,
            "page_faults": s.faults, "evictions": s.evictions, "blocked_on": self.blocked_on,
            "grants": sorted(self.grants), "interrupted": self.interrupted, "core": self.core,
            "ends_after": self.ends_after, "model": self.model,
        }
