"""Every subcommand exits cleanly, run after run, in a data dir with a disk, a mounted folder
and a hibernated prefix: exit 0 and nothing on stderr but llmos's own lines on success, the
documented code and one ``llmos: error:`` line on failure. (The shell's exit code is checked
by tests/llmos/test_tui_tmux.py, the demo by test_demo.py; benchmarks by their own tests.)

Why several runs each: the failure this guards against was a race. ``llmos model --json``
exited 134 about one run in two, after printing its JSON, because a background thread was
still loading the disk's native libraries when the interpreter tore down
(``kernel/boot.py``: ``settle``). Real parts: the installed command, the tiny model, chromadb.
"""

from __future__ import annotations

import pytest

from tests.conftest import run_llmos

RUNS = 3


@pytest.fixture(scope="module")
def busy_home(tmp_path_factory):
    """A data dir with everything a command may meet: a disk, a mounted folder, a journal with a
    conversation, a hibernated prefix."""
    home = tmp_path_factory.mktemp("busy-home")
    notes = home / "notes"
    notes.mkdir()
    (notes / "boat.md").write_text("Our boat Marigold is moored at pier 7.\n")
    (notes / "gym.txt").write_text("Locker 4711; the code is on the fridge.\n")
    for args in (("mount", str(notes)), ("run", "--model", "tiny", "--max-tokens", "8", "Say hi.")):
        done = run_llmos(*args, home=home)
        assert done.returncode == 0, done.stderr.decode()
    assert (home / "data" / "disk").is_dir()
    return home


def _succeeds(home, *args: str) -> None:
    """Exit 0, and nothing on stderr but llmos's own status lines (``prefs export`` says what it wrote)."""
    for attempt in range(RUNS):
        done = run_llmos(*args, home=home)
        err = done.stderr.decode()
        assert done.returncode == 0, (f"llmos {' '.join(args)}, run {attempt + 1}", err)
        assert all(line.startswith("llmos: ") and not line.startswith("llmos: error") for line in err.splitlines()), \
            (f"llmos {' '.join(args)}, run {attempt + 1}", err)


@pytest.mark.parametrize("args", [
    ("ps",), ("ps", "-a", "--json"), ("free", "--json"), ("dmesg", "--limit", "5"), ("log",), ("log", "--json"),
    ("log", "--markdown"), ("devices",), ("apps",), ("df", "--json"), ("model", "list"),
    ("model", "--json", "--model", "tiny"), ("model", "--model", "tiny"),
    ("device", "call", "calc", "--args", '{"expr": "2**10"}'), ("prefs", "export"), ("prefs", "show"),
], ids=" ".join)
def test_a_command_exits_0_with_nothing_on_stderr(busy_home, args):
    _succeeds(busy_home, *args)


def test_run_and_continue_and_mount_exit_cleanly(busy_home):
    _succeeds(busy_home, "run", "--model", "tiny", "--max-tokens", "8", "Name a colour.")
    _succeeds(busy_home, "run", "-c", "--model", "tiny", "--max-tokens", "8", "Another one.")
    _succeeds(busy_home, "mount", str(busy_home / "notes"))


@pytest.mark.parametrize("args, code", [
    (("kill", "999"), 2), (("log", "999"), 2), (("run", "--pid", "999", "--model", "tiny", "hi"), 2),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else str(v))
def test_a_failing_command_says_why_in_one_line_with_its_code(busy_home, args, code):
    for _ in range(RUNS):
        done = run_llmos(*args, home=busy_home)
        lines = done.stderr.decode().splitlines()
        assert done.returncode == code and len(lines) == 1 and lines[0].startswith("llmos: error:"), lines


def test_the_default_models_info_exits_cleanly(busy_home, shared_home):
    """The case that aborted: a model slower to load than ``tiny``, so the exit came while the
    disk's libraries were still loading (before the fix: 2 of 6 runs exited 134, 5 of 6 wrote
    to stderr)."""
    from tests.reliability.test_crash_points import _qwen_path

    _succeeds(busy_home, "model", "--json", "--model", _qwen_path(shared_home))


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """A real llama-cpp-python server (the CPU) and a real Chroma server (the disk) on 127.0.0.1."""
    from llmos.kernel.models import resolve
    from tests.servers import chroma_server, llama_server

    logs = tmp_path_factory.mktemp("server-logs")
    cpu = llama_server(resolve("tiny"), logs).start()
    disk = chroma_server(tmp_path_factory.mktemp("chroma"), logs).start()
    yield cpu.url, disk.url
    cpu.stop()
    disk.stop()


def test_commands_on_remote_servers_exit_cleanly(busy_home, servers):
    cpu, disk = servers
    _succeeds(busy_home, "run", "--cpu-url", cpu, "--disk-url", disk, "--max-tokens", "8", "Say hi.")
    _succeeds(busy_home, "model", "--json", "--cpu-url", cpu)
    _succeeds(busy_home, "df", "--json", "--disk-url", disk)
