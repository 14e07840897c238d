"""Who owns a process: the llmos program (an OS process) that is running it now.

Every llmos command that runs a process (the shell, ``llmos run``, an app)
stamps it with its owner when it saves it: the host, the OS pid and that OS
process's start time. Any reader of the journal (``llmos ps``, ``log``, a
restarting shell) can then tell a process that is still being run from one
whose owner died (``kill -9``, an OOM kill, a power cut) and that was left
RUNNING in the table: see ``Journal.reap``.

Why the start time: OS pids are reused, so a pid alone could name a new,
unrelated program; psutil's create time tells the two apart. Why the boot id
(Linux): after a reboot (a power cut) every owner of the boot before is dead.
Why the host and the pid namespace (Linux): a data dir on a shared file system,
or one mounted into a container, may be used by programs whose pids mean
nothing here; an owner llmos cannot see is taken as alive, never reaped (``llmos run --pid`` and ``llmos kill`` then refuse its process,
naming it). What it cannot survive: a wall-clock step larger than
``START_SLACK_S`` moves create times; a live owner misread as dead is reaped
once, and its next save puts its process back as it is.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from functools import cache

import psutil

START_SLACK_S = 2.0
"""Create times are floats read from /proc (or the OS's equivalent): equal within this."""


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    started: float
    boot: str = ""
    """The boot the pid belongs to (Linux's boot id), else ""."""
    ns: str = ""
    """The pid namespace the pid is counted in (Linux), else ""."""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data) -> Owner | None:
        try:
            return cls(str(data["host"]), int(data["pid"]), float(data["started"]),
                       str(data.get("boot", "")), str(data.get("ns", "")))
        except (TypeError, KeyError, ValueError, AttributeError):
            return None


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:  # not Linux, or /proc hidden
        return ""


def _ns() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


@cache
def me() -> Owner:
    """This program as an owner (one value for its whole life)."""
    return Owner(socket.gethostname(), os.getpid(), psutil.Process().create_time(),
                 _read("/proc/sys/kernel/random/boot_id"), _ns())


def alive(owner: Owner | None) -> bool:
    """Whether ``owner`` may still be running its processes. None (a row written before
    owners were recorded, or unreadable) counts as dead: nobody can be running it."""
    if owner is None:
        return False
    if owner == me():
        return True
    here = me()
    if owner.host != here.host:
        return True  # another machine: its programs cannot be seen from here
    if owner.boot and here.boot and owner.boot != here.boot:
        return False  # the machine rebooted since (a power cut): nothing of then still runs
    if owner.ns != here.ns:
        return True  # another container's pids: not these
    try:
        proc = psutil.Process(owner.pid)
        # A zombie (dead, not yet waited for by its parent) runs nothing any more.
        return (abs(proc.create_time() - owner.started) <= START_SLACK_S
                and proc.status() != psutil.STATUS_ZOMBIE)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.Error:  # access denied and the like: it exists, so it may be running
        return True
