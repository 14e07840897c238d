"""Crashes and a full disk while pages go to swap: the journal and chromadb stay consistent.

The invariant: after a (re)start, swap holds a page if and only if the journal
says it was evicted, and no page is lost. Real parts throughout: the tiny
model, the real kernel and pager, chromadb on disk. The crash tests kill a
child llmos process with SIGKILL at exact points of a swap write (fault
injection: a wrapper kills the process right after a write to swap, or right
after a page fault brought pages back, whose copies stay in swap), and once in
the middle of an answer. The full-disk test mounts a small tmpfs (needs root; skipped
otherwise, and says so).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmos.kernel.kernel import Kernel
from llmos.memory.disk import Disk
from llmos.memory.journal import Journal, journal_path
from llmos.memory.page import Origin
from llmos.memory.swap import collection
from llmos.paths import data_dir
from tests.conftest import assert_swap_agrees

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

FACTS = [
    "Our sailing boat is called Marigold; she is moored at pier 7 in the old harbour.",
    "My locker number at the gym is 4711 and the code for it is written on my fridge.",
    "The cat is named Pixel; she is nine years old and only eats the salmon kind of food.",
    "The office Wi-Fi password changed to harbour-lights-42 after the March meeting.",
    "My sister Anna lives in Lisbon and works as a marine biologist studying octopuses.",
    "The car goes in for its service on the fourteenth; the garage is on Mill Road.",
]

CHILD = r"""
import asyncio, os, signal, sys
from llmos.kernel.llama import LlamaCPU
from llmos.kernel.models import resolve
from llmos.kernel.kernel import Kernel
from llmos.memory import disk as disk_mod
from llmos.memory.page import Origin

point = sys.argv[1]
facts = sys.argv[2:]

def crash(method, before):
    original = getattr(disk_mod.Disk, method)
    def wrapped(self, name, *args, **kwargs):
        if before and name.startswith("swap-"):
            os.kill(os.getpid(), signal.SIGKILL)
        out = original(self, name, *args, **kwargs)
        if not before and name.startswith("swap-"):
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    setattr(disk_mod.Disk, method, wrapped)

kernel = Kernel(LlamaCPU(resolve("tiny"), n_ctx=2048), ram=256)
proc = kernel.spawn("chat", "You are a helpful assistant.")
print(proc.pid, flush=True)
if point == "after-swap-write":
    crash("add", before=False)      # written to chromadb, not yet marked evicted in the journal
for fact in facts:
    kernel.add_page(proc, Origin.USER, fact)
    print("typed", flush=True)
if point == "after-page-in":        # paged back in, marked resident; its copy stays in swap (pending)
    from llmos.memory import swap as swap_mod
    swap_in = swap_mod.Swap.swap_in
    def killed_after(self, pages):
        swap_in(self, pages)
        os.kill(os.getpid(), signal.SIGKILL)
    swap_mod.Swap.swap_in = killed_after
kernel.ask(proc, "What is my locker number at the gym?", max_tokens=8)
kernel.ask(proc, "What is the sailing boat called?", max_tokens=8)   # RAM full: evicts the oldest facts
kernel.ask(proc, "How old is the cat and what is she named?", max_tokens=8)  # faults the cat's page back in
if point == "mid-answer":
    async def go():
        n = 0
        async for step in kernel.turn(proc, "Tell me a long story about the cat and the boat.", max_tokens=200):
            n += 1
            if n == 3:  # a few tokens in: the greedy tiny model may stop itself (EOS, a loop) soon after
                os.kill(os.getpid(), signal.SIGKILL)
    asyncio.run(go())
print("survived", flush=True)
"""


def swap_ids(disk: Disk, pid: int) -> set[str]:
    return {h.id for h in disk.get(collection(pid), texts=False)}


def evicted_ids(journal: Journal, pid: int) -> set[str]:
    return {p.id for p in journal.pages(pid, resident=False)}


@posix_only
@pytest.mark.parametrize("point", ["after-swap-write", "after-page-in", "mid-answer"])
def test_kill_9_during_swap_leaves_journal_and_swap_consistent_after_restart(point, tiny_cpu, llmos_home):
    child = subprocess.run([sys.executable, "-c", CHILD, point, *FACTS], capture_output=True, text=True,
                           timeout=300)
    assert child.returncode == -9, f"the crash point was not reached: {child.stdout}{child.stderr[-2000:]}"
    pid = int(child.stdout.split()[0])

    journal = Journal(journal_path())
    pending = journal.swap_pending()
    disk = Disk(data_dir() / "disk")
    if point != "mid-answer":
        # The crash hit the window the write-ahead intent exists for: before recovery, swap
        # and the journal disagree, and the journal knows which pages to settle.
        assert pending.get(pid), "the swap intent was journalled before the write"
        assert swap_ids(disk, pid) != evicted_ids(journal, pid)
    journal.close()
    del disk

    kernel = Kernel(tiny_cpu, ram=256)
    try:
        restored = kernel.restore()
        assert [p.pid for p in restored] == [pid]
        proc = restored[0]
        disk = kernel.backing.swap.disk
        assert_swap_agrees(disk, kernel.journal, pid)  # (restore's first balance may copy pages ahead)
        assert {p.id for p in proc.space.pages if not p.resident} == evicted_ids(kernel.journal, pid)
        # Nothing typed was lost: every fact added before the crash is in the journal.
        typed = child.stdout.split().count("typed")
        texts = [p.text for p in kernel.journal.pages(pid)]
        assert typed >= 1 and all(any(fact in t for t in texts) for fact in FACTS[:typed])
        if point == "mid-answer":
            answer = [p for p in proc.space.pages if p.origin is Origin.ASSISTANT][-1]
            assert proc.interrupted and answer.source == "interrupted" and answer.text
        # and the process carries on: a question faults the right page back in
        answer = kernel.ask(proc, "What is my locker number at the gym?", max_tokens=8)
        assert answer.text
        assert any("4711" in p.text for p in proc.space.pages if p.resident)
        assert_swap_agrees(disk, kernel.journal, pid)
    finally:
        kernel.close()


def _mount_tmpfs(path: Path, size: str) -> bool:
    if sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("mount"):
        return False
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt, "24m"):
        pytest.skip("needs root on Linux to mount a small tmpfs (a full disk on demand)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(path: Path) -> Path:
    """Fill the filesystem of ``path`` to the last byte; returns the filler file."""
    filler = path / "filler"
    with open(filler, "wb", buffering=0) as f:  # unbuffered: nothing left to flush on close
        for size in (1 << 16, 1):
            try:
                while f.write(b"\0" * size):
                    pass
            except OSError:
                pass
    return filler


def test_a_full_disk_while_swapping_is_a_clear_error_and_ram_keeps_the_pages(tiny_cpu, tmp_path, small_disk):
    events = []
    kernel = Kernel(tiny_cpu, ram=256, journal=Journal(tmp_path / "journal.sqlite3"),
                    disk_path=small_disk / "disk", lock=False)
    kernel.listeners.append(lambda kind, data: events.append((kind, data)))
    try:
        proc = kernel.spawn("chat", "You are a helpful assistant.")
        kernel.add_page(proc, Origin.USER, FACTS[0])
        kernel.backing.swap.disk.count(collection(proc.pid))  # chromadb is open and its files exist
        filler = fill(small_disk)
        for n in range(30):  # until RAM is past 90 % and the pager tries to evict
            kernel.add_page(proc, Origin.USER, FACTS[n % len(FACTS)])
            if any(kind in ("swap_error", "evict") for kind, _ in events):
                break
        errors = [d for kind, d in events if kind == "swap_error"]
        assert errors, [k for k, _ in events]
        message = errors[0]["detail"]
        assert "space" in message.lower() or "full" in message.lower(), message
        assert "\n" not in message.strip()
        # RAM kept every page; the journal still says resident; nothing is pending or half-written.
        assert all(p.resident for p in proc.space.pages)
        assert evicted_ids(kernel.journal, proc.pid) == set()
        assert any("swap" in r["message"] for r in kernel.journal.dmesg(20) if r["level"] == "warn")
        # (the intents of the failed write stay journalled if even the clean-up could not
        # write; recover() settles them on the next start)
        assert swap_ids(kernel.backing.swap.disk, proc.pid) == set()
        # Space again. The embedded chromadb may hang on its next write after a failed one,
        # so swap stays off until a restart: the next eviction fails at once, in one line.
        filler.unlink()
        errors_before = len([k for k, _ in events if k == "swap_error"])
        kernel.add_page(proc, Origin.USER, "One more note: the spare key is under the blue pot.")
        again = [d for k, d in events if k == "swap_error"][errors_before:]
        assert again and "swap is off until llmos restarts" in again[0]["detail"]
        assert all(p.resident for p in proc.space.pages) and evicted_ids(kernel.journal, proc.pid) == set()
    finally:
        kernel.close()


def test_a_second_shell_on_the_same_data_dir_is_refused_in_one_line(tiny_cpu, llmos_home):
    """The shell's kernel takes the data dir's lock; a second one is refused, naming the holder.
    One-shot ``llmos run`` takes no lock by design (SQLite serialises its writes): it runs
    beside the shell and the journal stays whole."""
    from llmos.errors import LlmosError
    from tests.conftest import run_llmos

    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\nfrom llmos.memory.journal import Journal\n"
                               "j = Journal(sys.argv[1]); j.acquire_lock(); print('locked', flush=True)\n"
                               "time.sleep(60)", str(journal_path())],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LlmosError) as refused:
            Kernel(tiny_cpu)
        assert str(holder.pid) in str(refused.value) and "\n" not in str(refused.value)
        beside = run_llmos("run", "--model", "tiny", "--max-tokens", "4", "Hi", home=llmos_home)
        assert beside.returncode == 0, beside.stderr.decode()
        rows = json.loads(run_llmos("ps", "-a", "--json", home=llmos_home).stdout)
        assert len(rows) == 1  # the one-shot's process, journalled whole
    finally:
        holder.kill()
        holder.wait()
