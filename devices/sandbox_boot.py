"""The first code that runs inside a sandbox process; it locks the process down, then runs the user's code.

``sandbox.py`` starts ``python -I -S -B sandbox_boot.py CONFIG`` with the code
on stdin. This file is never imported by llmos itself (importing it does
nothing), and it imports nothing but the standard library, because ``-S``
leaves site-packages off ``sys.path``.

The order matters, each step needing what the next one takes away:

1. read the code from stdin (before any file is off limits);
2. join the cgroup the parent made (root only: needs root's powers);
3. lower the rlimits (soft = hard, so the code cannot raise them back);
4. Linux: ``unshare`` a new user + network namespace (drops root's powers
   over the host, leaves only a loopback that is down), else a network
   namespace alone; then Landlock: from here on the kernel lets this process
   read only the standard library and system libraries, write only the work
   dir, make no TCP connection, execute nothing and signal no process outside;
5. forget ctypes (used for 4) and install the audit hook, which refuses the
   same things at the Python level, with clearer messages, on every OS, plus
   what no kernel layer above covers (starting processes, ctypes);
6. tell the parent which layers took (one JSON line on the notes pipe) and
   run the code as ``__main__``, its traceback printed without this frame.

The audit hook alone is not a security boundary (PEP 578 says so): it is the
portable fallback and the early, readable refusal. The kernel layers are the
boundary where they apply; ``sandbox.py`` documents which apply where.
"""

import json
import os
import sys

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
PR_SET_NO_NEW_PRIVS = 38
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1, 2, 4, 8
FS_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | (1 << 14) | (1 << 15)  # + TRUNCATE, IOCTL_DEV
PROCESS_EVENTS = {"os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system",
                  "subprocess.Popen", "os.startfile", "pty.spawn"}
WRITE_EVENTS = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link",
                "os.symlink", "os.truncate", "os.utime", "os.chflags", "os.lchflags", "os.setxattr",
                "os.removexattr", "os.mkfifo", "os.mknod", "shutil.rmtree", "shutil.move"}
BLOCKED_IMPORTS = {"ctypes", "_ctypes"}


def inside(path, roots):
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def set_rlimits(config, notes):
    try:
        import resource
    except ImportError:
        notes["rlimits"] = "none: this OS has no resource module"
        return
    wanted = [("RLIMIT_AS", config["memory_bytes"]), ("RLIMIT_CPU", config["cpu_s"]),
              ("RLIMIT_FSIZE", config["file_bytes"]), ("RLIMIT_NOFILE", config["open_files"]),
              ("RLIMIT_CORE", 0)]
    if config.get("nproc") is not None:
        wanted.append(("RLIMIT_NPROC", config["nproc"]))
    done, failed = [], []
    for name, value in wanted:
        limit = getattr(resource, name, None)
        try:
            # RLIMIT_CPU: SIGXCPU at the soft limit (Python dies of it), SIGKILL one second later.
            soft, hard = (value, value + 1) if name == "RLIMIT_CPU" else (value, value)
            resource.setrlimit(limit, (soft, hard))
            done.append(name)
        except (TypeError, ValueError, OSError):  # e.g. RLIMIT_AS on macOS
            failed.append(name)
    notes["rlimits"] = " ".join(done) + (f" (refused by this OS: {' '.join(failed)})" if failed else "")


def kernel_layers(config, notes):
    """Linux: namespaces and Landlock through raw syscalls (ctypes; os.unshare is 3.12+)."""
    import ctypes
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def syscall(*args):
        return libc.syscall(*(a if a is None or isinstance(a, ctypes.Array) else ctypes.c_long(a) for a in args))

    for flags, label in ((CLONE_NEWUSER | CLONE_NEWNET, "user+network namespace"),
                         (CLONE_NEWNET, "network namespace")):
        if libc.unshare(ctypes.c_int(flags)) == 0:
            notes["namespace"] = f"new {label}: no interfaces but a loopback that is down"
            break
    else:
        notes["namespace"] = f"none: unshare refused ({os.strerror(ctypes.get_errno())})"

    abi = syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, 1)  # 1: LANDLOCK_CREATE_RULESET_VERSION
    if abi < 1:
        notes["landlock"] = f"none: not available in this kernel ({os.strerror(ctypes.get_errno())})"
        return
    # bits 0-12 since ABI 1; REFER (13) since 2, TRUNCATE (14) since 3, IOCTL_DEV (15) since 5
    fs_all = ((1 << 13) - 1) | (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0) | \
        (1 << 15 if abi >= 5 else 0)
    net_all = 3 if abi >= 4 else 0  # BIND_TCP | CONNECT_TCP
    scoped = 3 if abi >= 6 else 0  # abstract unix sockets | signals, to outside this sandbox
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset_attr = ctypes.create_string_buffer(struct.pack("=QQQ", fs_all, net_all, scoped)[:size], size)
    ruleset = syscall(SYS_LANDLOCK_CREATE_RULESET, ruleset_attr, size, 0)
    if ruleset < 0:
        notes["landlock"] = f"none: ruleset refused ({os.strerror(ctypes.get_errno())})"
        return
    read = FS_READ_FILE | FS_READ_DIR
    rules = [(p, read) for p in config["read_roots"] + config["system_roots"]]
    rules += [(config["workdir"], fs_all & ~FS_EXECUTE), ("/dev/null", FS_READ_FILE | FS_WRITE_FILE)]
    for path, access in rules:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue  # a folder this system does not have
        if not os.path.isdir(path):
            access &= FS_FILE_RIGHTS
        rule = ctypes.create_string_buffer(struct.pack("=Qi", access & fs_all, fd), 12)
        syscall(SYS_LANDLOCK_ADD_RULE, ruleset, 1, rule, 0)  # 1: LANDLOCK_RULE_PATH_BENEATH
        os.close(fd)
    libc.prctl(ctypes.c_int(PR_SET_NO_NEW_PRIVS), ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0),
               ctypes.c_ulong(0))
    if syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
        notes["landlock"] = f"none: restrict_self refused ({os.strerror(ctypes.get_errno())})"
    else:
        notes["landlock"] = (f"ABI {abi}: files (read: stdlib and system libraries; write: work dir; "
                             f"exec: nothing)" + (", TCP bind/connect" if net_all else "")
                             + (", signals and abstract sockets outside" if scoped else ""))
    os.close(ruleset)


def audit_hook(config):
    """The Python-level layer: refuse files outside the allowed folders, sockets, processes, ctypes."""
    workdir = config["workdir"]
    write_roots = [workdir, "/dev/null"]
    read_roots = [workdir] + config["read_roots"]
    processes = config["processes"]
    me = os.getpid()
    realpath, fspath, fsdecode = os.path.realpath, os.fspath, os.fsdecode

    def refuse(what, allowed=""):
        raise PermissionError(f"sandbox: {what} is not allowed{allowed}")

    def check_path(path, write):
        if path is None or isinstance(path, int):
            return  # an open file descriptor: it was checked when it was opened
        real = realpath(fsdecode(fspath(path)))
        if not inside(real, write_roots if write else read_roots):
            refuse(f"{'writing' if write else 'reading'} {real}",
                   " (only the work dir" + (" is writable)" if write else " and the standard library are readable)"))

    # No lock or re-entrancy flag: realpath, fspath and fsdecode raise no audit events, and a
    # flag shared by threads would let one thread's check wave another's call through.
    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            if isinstance(mode, str):
                write = any(c in mode for c in "wax+")
            else:
                write = bool((flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND))
            check_path(path, write)
        elif event in ("os.listdir", "os.scandir"):
            check_path(args[0] or ".", False)
        elif event in WRITE_EVENTS or event == "sqlite3.connect":
            for arg in args[:2]:
                if isinstance(arg, (str, bytes, os.PathLike)) and arg not in (":memory:", b":memory:"):
                    check_path(arg, True)
        elif event.startswith("socket."):
            refuse("network access")
        elif event.startswith("ctypes."):
            refuse("ctypes")
        elif event == "import" and args[0] in BLOCKED_IMPORTS:
            refuse(f"importing {args[0]}")
        elif event == "import" and args[0] == "_posixsubprocess" and not processes:
            refuse("starting processes")
        elif event in PROCESS_EVENTS and not processes:
            refuse("starting processes")
        elif event in ("os.kill", "os.killpg") and not processes and args[0] not in (0, me):
            refuse("signalling other processes")
        elif event in ("resource.setrlimit", "resource.prlimit"):
            refuse("changing resource limits")

    sys.addaudithook(hook)


def run(code):
    import traceback

    glb = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(code, "<sandbox>", "exec"), glb)
    except SystemExit:
        raise
    except BaseException as exc:  # the user's error: print it as Python would, minus this file's frames
        report = traceback.TracebackException(type(exc), exc, exc.__traceback__)
        part, seen = report, set()
        while part is not None and id(part) not in seen:  # the chain: raise ... from / during handling
            seen.add(id(part))
            part.stack = traceback.StackSummary.from_list([f for f in part.stack if f.filename != __file__])
            part = part.__cause__ or part.__context__
        sys.stderr.write("".join(report.format()))
        sys.stderr.flush()
        os._exit(1)


def main():
    config = json.loads(sys.argv[1])
    code = sys.stdin.buffer.read().decode("utf-8", "replace")
    notes = {}
    if config.get("cgroup"):
        try:
            with open(os.path.join(config["cgroup"], "cgroup.procs"), "w") as fh:
                fh.write(str(os.getpid()))
            notes["cgroup"] = f"pids.max {config['tasks']} in {config['cgroup']}"
        except OSError as exc:
            notes["cgroup"] = f"none: could not join ({exc.strerror})"
    set_rlimits(config, notes)
    if sys.platform.startswith("linux"):
        try:
            kernel_layers(config, notes)
        except Exception as exc:  # a libc without unshare/syscall: say so, keep the other layers
            notes["kernel"] = f"none: {type(exc).__name__}: {exc}"
        for name in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
            del sys.modules[name]
    os.chdir(config["workdir"])
    sys.argv = ["<sandbox>"]
    sys.path[:] = [p for p in sys.path if p]  # never the work dir: the code cannot shadow stdlib modules
    audit_hook(config)
    notes["audit"] = "open/listdir/file changes outside the work dir, sockets, ctypes, rlimit changes" + (
        "" if config["processes"] else ", processes, signals")
    if config["notes_fd"] is not None:  # None on Windows (no pass_fds)
        os.write(config["notes_fd"], json.dumps(notes).encode() + b"\n")
        os.close(config["notes_fd"])
    run(code)


if __name__ == "__main__":
    main()
