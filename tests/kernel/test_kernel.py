"""The kernel end to end on the tiny model: processes, turns, journal, hibernation, kill."""

from __future__ import annotations

import asyncio

import pytest

from llmos.kernel.cpu import Generation, Snapshot
from llmos.kernel.kernel import Kernel
from llmos.kernel.proc import ProcState
from llmos.memory.page import Origin

SYSTEM = "You are a helpful assistant inside llmos. " + "Answer briefly, precisely and politely. " * 10


def test_a_turn_journals_every_page_and_answers(tiny_cpu):
    kernel = Kernel(tiny_cpu, lock=False)
    try:
        proc = kernel.spawn("chat", SYSTEM)
        result = kernel.ask(proc, "What is the capital of France?", max_tokens=32)
        assert "Paris" in result.text
        pages = kernel.journal.pages(proc.pid)
        assert [p.origin for p in pages] == [Origin.SYSTEM, Origin.USER, Origin.ASSISTANT]
        assert pages[2].text == result.text
        row = kernel.ps()[0]
        assert row["pid"] == proc.pid and row["state"] == "SLEEPING" and row["tokens_out"] == len(result.tokens)
        assert row["resident_tokens"] == len(proc.space.prompt_tokens())
    finally:
        kernel.close()


def test_two_processes_share_the_cpu_and_keep_their_own_memory(tiny_cpu):
    kernel = Kernel(tiny_cpu, lock=False, quantum=4, batch=1)
    try:
        a = kernel.spawn("chat", "You are a helpful assistant.")
        b = kernel.spawn("chat", "You are a helpful assistant.")

        async def both():
            async def one(proc, text):
                out = Generation()
                async for _ in kernel.turn(proc, text, max_tokens=24, result=out):
                    pass
                return out.text

            return await asyncio.gather(one(a, "My name is Ada. What is 2+2?"),
                                        one(b, "My name is Bob. Name a colour."))

        asyncio.run(both())
        assert kernel.sched.stats.switches >= 2
        assert all("Bob" not in p.text for p in a.space.pages)
        assert all("Ada" not in p.text for p in b.space.pages)
        assert {r["pid"]: r["switches"] for r in kernel.ps()}[b.pid] >= 1
    finally:
        kernel.close()


def test_interrupted_answer_is_kept_and_marked(tiny_cpu):
    import threading

    kernel = Kernel(tiny_cpu, lock=False)
    try:
        proc = kernel.spawn("chat", "You are a helpful assistant.")
        cancel = threading.Event()

        async def run():
            n = 0
            async for _ in kernel.turn(proc, "Write a long story about a ship.", max_tokens=200, cancel=cancel):
                n += 1
                if n == 5:
                    cancel.set()

        asyncio.run(run())
        answer = kernel.journal.pages(proc.pid)[-1]
        assert answer.origin is Origin.ASSISTANT and answer.source == "interrupted" and answer.text
    finally:
        kernel.close()


def test_kill_keeps_pages_in_the_journal(tiny_cpu):
    kernel = Kernel(tiny_cpu, lock=False)
    try:
        proc = kernel.spawn("chat", "You are a helpful assistant.")
        kernel.ask(proc, "Hello!", max_tokens=8)
        kernel.kill(proc.pid)
        assert proc.state is ProcState.ZOMBIE
        assert len(kernel.journal.pages(proc.pid)) == 3
        assert [r.pid for r in kernel.journal.processes()] == []
    finally:
        kernel.close()


@pytest.mark.own_kv
def test_pinned_prefix_is_hibernated_and_restored_on_the_next_boot(tiny_cpu):
    outputs, warm = [], []
    for _ in range(2):
        tiny_cpu.restore(Snapshot(b"", []))  # a cold CPU, as after a restart
        kernel = Kernel(tiny_cpu, lock=False)
        try:
            proc = kernel.spawn("chat", SYSTEM)
            outputs.append(kernel.ask(proc, "Name a planet.", max_tokens=16).tokens)
            warm.append(kernel.warm.result(timeout=30))
        finally:
            kernel.close()
    assert warm == ["saved", "restored"]
    assert outputs[0] == outputs[1]


def test_each_turn_rereads_only_what_follows_the_pages_the_last_one_read(tiny_cpu):
    """A prompt is read in chunks cut at its page starts (``kernel/cpu.chunk_bounds``), so a turn
    reuses the whole hibernated system page, and the next turn everything up to the end of the
    last turn's question: only the answer, the new question and the closing are read."""
    tiny_cpu.restore(Snapshot(b"", []))
    kernel = Kernel(tiny_cpu, lock=False)
    try:
        proc = kernel.spawn("chat", SYSTEM)
        kernel.warm.result(timeout=30)
        system = proc.space.prompt_tokens()
        first = kernel.ask(proc, "Name a planet.", max_tokens=16)
        assert len(system) % 64 and first.reused_tokens == len(system)
        asked = proc.space.prompt_tokens()[:-len(proc.space.pages[-1].tokens)]  # without the answer
        second = kernel.ask(proc, "And a moon of it?", max_tokens=16)
        assert second.reused_tokens == len(asked) > len(system)
    finally:
        kernel.close()


def python_words(script: str) -> list[str]:
    """Run ``script`` in a fresh Python (nothing imported yet); the words it printed."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


COLD_BOOT = r"""
import sys
from llmos.kernel.llama import LlamaCPU
from llmos.kernel.models import resolve
from llmos.kernel.kernel import Kernel

kernel = Kernel(LlamaCPU(resolve("tiny"), n_ctx=2048), lock=False)
proc = kernel.spawn("chat", "You are a helpful assistant.")
kernel.ask(proc, "Say hello.", max_tokens=4)
print("chromadb" in sys.modules, kernel.backing.disk_url)
kernel.close()
"""


def test_a_boot_that_never_swaps_never_loads_the_disk():
    """The disk (chromadb, the embedding model) costs half a second to import: a boot and a
    turn that swap nothing must not pay for it (bench cpu's cold first token)."""
    assert python_words(COLD_BOOT) == ["False", "None"]


def test_the_configured_disk_url_comes_from_the_environment_then_the_config(llmos_home, monkeypatch):
    import pytest

    from llmos.errors import UsageError
    from llmos.paths import configured_disk_url

    assert configured_disk_url() is None
    (llmos_home / "config.toml").write_text('[disk]\nurl = " http://10.0.0.2:8000 "\n')
    assert configured_disk_url() == "http://10.0.0.2:8000"
    monkeypatch.setenv("LLMOS_DISK_URL", "http://10.0.0.3:8000")
    assert configured_disk_url() == "http://10.0.0.3:8000"
    monkeypatch.delenv("LLMOS_DISK_URL")
    (llmos_home / "config.toml").write_text("[disk]\nurl = 8000\n")
    with pytest.raises(UsageError, match="must be a string"):
        configured_disk_url()


KILLED_MID_ANSWER = r"""
import asyncio, os, signal, sys
from llmos.kernel.llama import LlamaCPU
from llmos.kernel.models import resolve
from llmos.kernel.kernel import Kernel

kernel = Kernel(LlamaCPU(resolve("tiny"), n_ctx=2048))
proc = kernel.spawn("chat", "You are a helpful assistant.")
kernel.ask(proc, "My name is Zed. Say hello.", max_tokens=12)

async def go():
    n = 0
    async for step in kernel.turn(proc, "Write a long story about a ship.", max_tokens=300):
        n += 1
        if n == 20:
            print(proc.pid, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(go())
"""


def test_kill_9_mid_answer_loses_nothing_and_restores(tiny_cpu, llmos_home):
    import json
    import subprocess
    import sys

    from tests.conftest import run_llmos

    proc = subprocess.run([sys.executable, "-c", KILLED_MID_ANSWER], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    pid = int(proc.stdout.split()[0])
    rows = json.loads(run_llmos("ps", "--json").stdout)
    assert [r["pid"] for r in rows] == [pid]

    kernel = Kernel(tiny_cpu)  # takes the instance lock: the killed holder's lock was released by the OS
    try:
        restored = kernel.restore()
        assert [p.pid for p in restored] == [pid] and restored[0].interrupted
        pages = restored[0].space.pages
        assert [p.origin for p in pages] == [Origin.SYSTEM, Origin.USER, Origin.ASSISTANT, Origin.USER,
                                             Origin.ASSISTANT]
        assert "Zed" in pages[1].text
        assert pages[-1].source == "interrupted" and len(pages[-1].text) > 20
        assert restored[0].space.resident_tokens == len(restored[0].space.prompt_tokens())
        rows = json.loads(run_llmos("ps", "--json").stdout)
        assert rows[0]["interrupted"] is True
        # and the restored process carries on
        answer = kernel.ask(restored[0], "What is my name?", max_tokens=16)
        assert answer.text
    finally:
        kernel.close()


PREFETCH = r"""
import sys
from llmos.kernel.boot import prefetch_disk

before = "chromadb" in sys.modules
thread = prefetch_disk()
if thread is not None:
    thread.join(60)
embed = sys.modules.get("llmos.memory.embed")
print(before, thread is not None, "chromadb" in sys.modules, embed is not None and embed._model is not None)
"""


def test_boot_loads_the_disk_libraries_ahead_only_when_there_is_a_disk(llmos_home):
    """``load_cpu`` starts ``prefetch_disk``: with a disk in the data dir, chromadb and the
    embedding model load on a thread while the model loads; without one, nothing does."""
    assert python_words(PREFETCH) == ["False", "False", "False", "False"]
    (llmos_home / "data" / "disk").mkdir(parents=True)
    assert python_words(PREFETCH) == ["False", "True", "True", "True"]
