"""The python device's sandbox: escape attempts fail cleanly, and nothing is left running.

Each attempt must come back as an error result (never an exception here),
leave no process behind, and never return a secret. Which layer stops each
attempt depends on the OS and on being root; ``result.data["sandbox"]`` says,
and the last tests check the kernel layers on their own, without the audit hook.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import psutil
import pytest

from llmos.devices.base import invoke
from llmos.devices.python import PythonDevice
from llmos.devices.sandbox import BOOT, Limits, _read_roots, _system_roots

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="rlimits and namespaces as on Linux")
SECRET = "FAKE-PRIVATE-KEY-7f3a9c"


def sandbox_processes() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if str(BOOT) in " ".join(proc.info["cmdline"] or ()):
            found.append(proc)
    return found


@pytest.fixture(autouse=True)
def nothing_left_running():
    yield
    deadline = time.monotonic() + 2
    while sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_processes() == []


def py(code: str, **limits):
    return invoke(PythonDevice(Limits(**limits)), {"code": code}, max_output=20_000)


def test_ordinary_code_runs_with_the_standard_library():
    result = py("import json, hashlib, decimal, fractions\nprint(json.dumps({'sum': sum(range(10))}))\n"
                "open('scratch.txt', 'w').write('kept in the work dir')\nprint(open('scratch.txt').read())")
    assert result.error is None, result.output
    assert result.output == '{"sum": 45}\nkept in the work dir\n'
    assert result.data["returncode"] == 0 and "audit" in result.data["sandbox"]


def test_a_traceback_is_the_output_and_its_last_line_the_error():
    result = py("def f():\n    return 1 / 0\nf()")
    assert result.error == "python: ZeroDivisionError: division by zero"
    assert 'File "<sandbox>", line 2, in f' in result.output and "sandbox_boot" not in result.output


def test_an_infinite_loop_is_killed_at_the_wall_time_limit():
    started = time.monotonic()
    result = py("while True:\n    pass", wall_s=1.0)
    assert result.error == "python: timed out after 1 s (killed)"
    assert time.monotonic() - started < 5


@linux_only
def test_cpu_time_limit():
    result = py("while True:\n    pass", wall_s=20, cpu_s=1)
    assert result.error == "python: stopped by SIGXCPU (CPU time limit)"


@linux_only
def test_a_memory_bomb_gets_memory_error():
    started = time.monotonic()
    result = py("blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))", memory_mb=256)
    assert result.error == "python: MemoryError"
    assert time.monotonic() - started < 10
    assert py("x = bytearray(2**40)").error == "python: MemoryError"


def test_a_fork_bomb_is_refused():
    result = py("import os\nwhile True:\n    os.fork()")
    assert "starting processes is not allowed" in result.error
    assert "subprocess" in py("import subprocess\nsubprocess.run(['sh', '-c', 'echo hi'])").error or \
        "starting processes" in py("import subprocess").error


@linux_only
def test_a_fork_bomb_with_processes_allowed_is_bounded_by_the_kernel():
    """With processes allowed, the kernel bound (cgroup pids.max as root, RLIMIT_NPROC otherwise)
    stops the bomb after ``tasks`` forks; where no kernel bound exists, processes stay refused."""
    code = ("import os, time\nn = 0\ntry:\n    for _ in range(10_000):\n        if os.fork() == 0:\n"
            "            time.sleep(60)\n            os._exit(0)\n        n += 1\nexcept OSError as exc:\n"
            "    print('stopped after', n, 'forks:', exc.strerror)\n")
    result = py(code, processes=True, tasks=8)
    layers = result.data["sandbox"]
    if "processes" in layers:  # no kernel bound here: the audit hook refuses instead
        assert "starting processes is not allowed" in result.error
        return
    assert result.error is None, result.output
    forks = int(result.output.split()[2])
    assert 1 <= forks <= 8, result.output
    # the sleeping children were killed with the run; the autouse fixture checks that


@linux_only
def test_an_unbounded_fork_loop_is_cleaned_up_at_the_time_limit():
    result = py("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
                processes=True, tasks=8, wall_s=1.5)
    assert result.error is not None


def test_sockets_are_refused():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        result = py(f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                    "print('connected')")
        assert result.error == "python: PermissionError: sandbox: network access is not allowed"
        assert "connected" not in result.output
        assert "network access" in py("import urllib.request\nurllib.request.urlopen('http://example.com')").error
    finally:
        listener.close()


def test_the_users_ssh_key_never_comes_back(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    key = home / ".ssh" / "id_rsa"
    key.write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{SECRET}\n-----END OPENSSH PRIVATE KEY-----\n")
    monkeypatch.setenv("HOME", str(home))
    attempts = [
        f"print(open({str(key)!r}).read())",
        "import os\nprint(open(os.path.expanduser('~/.ssh/id_rsa')).read())",
        f"import os\nos.symlink({str(key)!r}, 'k')\nprint(open('k').read())",
        f"import os\nos.link({str(key)!r}, 'k')\nprint(open('k').read())",
        f"import shutil\nshutil.copy({str(key)!r}, 'k')\nprint(open('k').read())",
        f"import os\nprint(os.listdir({str(home / '.ssh')!r}))",
        f"import pathlib\nprint(pathlib.Path({str(key)!r}).read_bytes())",
        f"import sqlite3\nsqlite3.connect({str(key)!r}).execute('select 1')",
    ]
    for code in attempts:
        result = py(code)
        assert result.error is not None, code
        assert SECRET not in result.output and SECRET not in result.error, code
    assert py(attempts[0]).error.startswith("python: PermissionError: sandbox: reading")
    assert str(home) not in py("import os\nprint(os.path.expanduser('~'), dict(os.environ))").output


def test_writing_outside_the_work_dir_is_refused(tmp_path):
    target = tmp_path / "planted.txt"
    for code in (f"open({str(target)!r}, 'w').write('x')",
                 f"import os\nos.close(os.open({str(target)!r}, os.O_CREAT | os.O_WRONLY))",
                 f"import pathlib\npathlib.Path({str(target)!r}).write_text('x')",
                 f"import os\nos.mkdir({str(tmp_path / 'newdir')!r})",
                 f"import os\nos.rename('/etc/hostname', {str(target)!r})"):
        result = py(code)
        assert result.error is not None and "not allowed" in result.error, code
    assert not target.exists() and not (tmp_path / "newdir").exists()


def test_output_is_capped_and_the_work_dir_is_removed():
    result = py("import os\nprint(os.getcwd())\nprint('x' * 1_000_000)", output_bytes=10_000)
    workdir = result.output.splitlines()[0]
    assert "[... " in result.output and result.data["returncode"] == 0
    assert not os.path.exists(workdir)


def test_the_environment_is_empty():
    result = py("import os\nprint(sorted(os.environ))")
    assert result.output.strip() == "['HOME', 'LC_ALL', 'PATH', 'TMPDIR']"


@linux_only
def test_kernel_layers_hold_without_the_audit_hook(tmp_path):
    """Landlock and the network namespace on their own (as if the audit hook were bypassed)."""
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    work = tmp_path / "work"
    work.mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    config = {"workdir": str(work), "read_roots": _read_roots(), "system_roots": _system_roots()}
    probe = f"""
import json, os, socket, sys
sys.path.insert(0, {str(BOOT.parent)!r})
import sandbox_boot
notes = {{}}
sandbox_boot.kernel_layers({config!r}, notes)
out = {{"notes": notes}}
def attempt(name, fn):
    try:
        out[name] = repr(fn())
    except OSError as exc:
        out[name] = "refused: " + (exc.strerror or type(exc).__name__)
attempt("read", lambda: open({str(secret)!r}).read())
attempt("write", lambda: open({str(tmp_path / 'planted')!r}, "w"))
attempt("connect", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
attempt("work", lambda: open({str(work / 'ok.txt')!r}, "w").write("fine"))
print(json.dumps(out))
"""
    try:
        run = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=30)
    finally:
        listener.close()
    out = json.loads(run.stdout)
    if not out["notes"].get("landlock", "").startswith("ABI"):
        pytest.skip(f"no Landlock here: {out['notes']}")
    assert out["read"].startswith("refused") and SECRET not in run.stdout
    assert out["write"].startswith("refused") and not (tmp_path / "planted").exists()
    assert out["connect"].startswith("refused")
    assert out["work"] == "4"


def test_layers_are_reported():
    layers = py("print(1)").data["sandbox"]
    assert "audit" in layers
    if sys.platform.startswith("linux"):
        assert {"rlimits", "namespace", "landlock"} <= set(layers)
        assert "RLIMIT_AS" in layers["rlimits"]


def test_raw_bytes_from_the_program_come_back_as_valid_text():
    result = py("import sys\nsys.stdout.buffer.write(b'raw \\xff\\xfe bytes\\n')\nimport os\nprint(os.cpu_count() > 0)")
    assert result.error is None and result.output == "raw \ufffd\ufffd bytes\nTrue\n"


def test_the_work_dir_cannot_shadow_the_standard_library():
    result = py("open('json.py', 'w').write('raise SystemExit(99)')\nimport json\nprint(json.dumps([1]))")
    assert result.error is None and result.output == "[1]\n"
