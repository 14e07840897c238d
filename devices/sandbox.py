"""The sandbox the ``python`` device runs code in: a separate, locked-down process.

``run_python(code, limits)`` starts ``sys.executable -I -S -B`` (isolated
from the user's environment and site-packages, so only the standard library
is importable) on ``sandbox_boot.py``, which locks the process down before it
runs the code. The layers, and where each one applies:

=================  ==========================================  =====================================
limit              how                                         where it holds
=================  ==========================================  =====================================
wall time          parent waits, then SIGKILLs the process     everywhere (Windows: the process)
                   group (its own session), and the cgroup
CPU time           RLIMIT_CPU (SIGXCPU, then SIGKILL)          POSIX
memory             RLIMIT_AS (allocations fail: MemoryError)   Linux; macOS refuses RLIMIT_AS
file size          RLIMIT_FSIZE (also caps stdout/stderr)      POSIX
open files         RLIMIT_NOFILE                               POSIX
processes          audit hook refuses fork/exec/spawn and      everywhere (Python 3.8+)
                   ``_posixsubprocess`` unless allowed;
                   kernel bound on tasks: cgroup ``pids.max``  Linux as root, with a writable pids
                   (kills escapees too) or RLIMIT_NPROC        cgroup; Linux non-root (NPROC is not
                                                               enforced for root, so not used there)
network            new user+network namespace (no             Linux where unshare is permitted:
                   interfaces); else a network namespace;      root, or unprivileged user namespaces
                   Landlock TCP bind/connect denied;           Linux >= 6.7 (Landlock ABI 4)
                   audit hook refuses every ``socket.*``       everywhere
files              Landlock: read only stdlib + system libs,   Linux >= 5.13, root or not
                   write only the work dir, exec nothing;
                   audit hook: open/listdir/rename/...         everywhere
                   outside the work dir (writes) or outside
                   work dir + stdlib (reads) refused
signals            Landlock scope: no signal to processes      Linux >= 6.12 (ABI 6); audit hook
                   outside the sandbox                         refuses os.kill of others everywhere
environment        PATH, LC_ALL, and HOME = TMPDIR = work dir  everywhere
work dir           a fresh temp folder, removed afterwards     everywhere
=================  ==========================================  =====================================

As root the user namespace also takes root's powers over the host away
(CAP_DAC_OVERRIDE, CAP_SYS_RESOURCE...), so the code cannot raise its
rlimits back or read other users' files. On Windows only the time limit, the
audit hook, the temp work dir and the empty environment apply; on macOS add
the rlimits but RLIMIT_AS. ``SandboxResult.layers`` says what took on this
run, and the ``python`` device prints it with ``--json``.

What it does not do: seccomp filtering, a separate mount namespace (the code
can *see* paths it may not open), limits on total memory across the
processes of a run (RLIMIT_AS is per process; with processes refused there
is one). Landlock covers TCP only: UDP and other sockets are stopped by the
network namespace and the audit hook. Without a cgroup (non-root), child
processes, when allowed, that leave the process group are bounded by
RLIMIT_NPROC but not killed at the end of the run.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from llmos.devices.shell import run_captured

BOOT = Path(__file__).with_name("sandbox_boot.py")
THREADS = 16
"""Tasks (threads and processes) allowed besides those asked for: the code may use threads."""


@dataclass
class Limits:
    """What one sandboxed run may use."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 512
    """Address space per process (RLIMIT_AS)."""
    file_mb: int = 16
    """Largest file the code may write; stdout/stderr too."""
    open_files: int = 64
    output_bytes: int = 64 * 1024
    """stdout+stderr kept; the rest is drained and counted."""
    processes: bool = False
    """Whether the code may start child processes at all (only where the kernel bounds them)."""
    tasks: int = THREADS
    """Kernel bound on the run's threads plus processes at once (cgroup or RLIMIT_NPROC)."""


@dataclass
class SandboxResult:
    output: str
    """stdout and stderr as they interleaved, decoded as UTF-8 with replacement."""
    returncode: int | None
    """None when the run was killed at the wall-time limit."""
    seconds: float
    dropped: int = 0
    """Bytes of output past ``Limits.output_bytes``."""
    layers: dict[str, str] = field(default_factory=dict)
    """Which protections took on this run, in words."""

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def _read_roots() -> list[str]:
    """What sandboxed code may read besides its work dir: the standard library and the tz database."""
    import sysconfig

    roots = {os.path.dirname(os.__file__)}
    for key in ("stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(path)
    try:
        import zoneinfo

        roots.update(zoneinfo.TZPATH)
    except ImportError:
        pass
    roots.update({"/etc/localtime", "/dev/urandom", "/dev/zero"})
    return sorted({os.path.realpath(r) for r in roots})


def _system_roots() -> list[str]:
    """Read-only for the kernel layer only: shared libraries that extension modules load."""
    prefix_lib = os.path.join(sys.base_prefix, "lib")
    paths = ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib", "/etc/ld.so.cache", prefix_lib]
    return sorted({os.path.realpath(p) for p in paths if os.path.exists(p)})


def _user_tasks() -> int | None:
    """Tasks (threads) this uid runs now, as RLIMIT_NPROC counts them on Linux."""
    uid, total = os.getuid(), 0
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                total += int(fields["Threads"])
        except (OSError, KeyError, ValueError):
            continue  # gone meanwhile
    return total


def _pids_hierarchy() -> Path | None:
    """Our own cgroup in a hierarchy that has the pids controller, if root can use it."""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
        own = dict(line.split(":", 2)[1:] for line in Path("/proc/self/cgroup").read_text().splitlines())
    except OSError:
        return None
    for line in mountinfo:
        fields = line.split()
        dash = fields.index("-")
        fstype, options = fields[dash + 1], fields[dash + 3].split(",")
        if fstype == "cgroup" and "pids" in options:
            controllers = next((k for k in own if "pids" in k.split(",")), None)
            if controllers is not None:
                return Path(fields[4]) / own[controllers].lstrip("/")
        elif fstype == "cgroup2" and "" in own:
            base = Path(fields[4]) / own[""].lstrip("/")
            try:
                if "pids" in (base / "cgroup.subtree_control").read_text().split():
                    return base
            except OSError:
                continue
    return None


class _Cgroup:
    """A pids cgroup for one run: bounds its tasks, and finds every one of them to kill."""

    def __init__(self, tasks: int) -> None:
        parent = _pids_hierarchy()
        if parent is None:
            raise OSError("no pids cgroup hierarchy")
        self.path = parent / f"llmos-sandbox-{os.getpid()}-{secrets.token_hex(4)}"
        self.path.mkdir()
        try:
            (self.path / "pids.max").write_text(str(tasks))
        except OSError:
            self.path.rmdir()
            raise

    def kill_all(self) -> None:
        kill_file = self.path / "cgroup.kill"  # cgroup v2, Linux 5.14+
        for _ in range(100):  # each round kills what is there; pids.max bounds what can appear
            try:
                if kill_file.exists():
                    kill_file.write_text("1")
                pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            except OSError:
                return
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        for _ in range(50):  # the killed tasks leave the cgroup once the kernel has reaped them
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)


def run_python(code: str, limits: Limits | None = None) -> SandboxResult:
    """Run ``code`` in a fresh sandbox and return what it printed. Never leaves a process behind."""
    limits = limits or Limits()
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="llmos-sandbox-"))
    layers: dict[str, str] = {}
    cgroup = nproc = None
    posix, linux = os.name == "posix", sys.platform.startswith("linux")
    if linux and os.geteuid() == 0:
        try:
            cgroup = _Cgroup(limits.tasks + 1)
        except OSError as exc:
            layers["tasks"] = f"no kernel bound for root (RLIMIT_NPROC does not apply; {exc})"
    elif linux:
        current = _user_tasks()
        nproc = None if current is None else current + limits.tasks
    processes = limits.processes
    if processes and cgroup is None and nproc is None:
        processes = False
        layers["processes"] = "refused: nothing in this kernel would bound them"
    read_fd, write_fd = os.pipe() if posix else (None, None)
    config = {
        "workdir": workdir, "read_roots": _read_roots(), "system_roots": _system_roots(),
        "memory_bytes": limits.memory_mb << 20, "cpu_s": int(limits.cpu_s), "file_bytes": limits.file_mb << 20,
        "open_files": limits.open_files, "nproc": nproc, "processes": processes, "tasks": limits.tasks + 1,
        "cgroup": str(cgroup.path) if cgroup else None, "notes_fd": write_fd,
    }
    env = {"PATH": os.defpath, "HOME": workdir, "TMPDIR": workdir, "LC_ALL": "C.UTF-8"}
    if sys.platform == "win32":
        env.update(SYSTEMROOT=os.environ.get("SYSTEMROOT", ""), TEMP=workdir, TMP=workdir)
        config["notes_fd"] = None
    argv = [sys.executable, "-I", "-S", "-B", str(BOOT), json.dumps(config)]
    try:
        run = run_captured(argv, cwd=workdir, env=env, timeout_s=limits.wall_s, max_bytes=limits.output_bytes,
                           stdin=code.encode("utf-8", "replace"),
                           cleanup=cgroup.kill_all if cgroup else None,
                           pass_fds=(write_fd,) if posix else ())
    finally:
        if write_fd is not None:
            os.close(write_fd)
        if cgroup is not None:
            cgroup.kill_all()
            cgroup.remove()
        shutil.rmtree(workdir, ignore_errors=True)
    if read_fd is not None:
        with os.fdopen(read_fd, "rb") as fh:
            line = fh.read(65536)
        try:
            layers.update(json.loads(line or b"{}"))
        except ValueError:
            layers["boot"] = "the sandbox did not report its layers (it died while starting)"
    return SandboxResult(run.output.decode("utf-8", "replace"), run.returncode, run.seconds, run.dropped, layers)
