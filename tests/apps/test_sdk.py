"""The app SDK on the real tiny model: every system call, the process's life, and the ways
an app can go wrong (empty input, unknown option, a bug in main) as one-line errors."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from llmos import App, AppError, Manifest, Sys
from llmos.apps.launch import launch
from llmos.errors import UsageError
from llmos.kernel.kernel import Kernel
from llmos.kernel.proc import ProcState
from llmos.memory.page import Origin


class Tour(App):
    """Uses every system call once."""

    manifest = Manifest(name="tour", description="every syscall", devices=("calc",), priority=3,
                        memory=600, max_tokens=16, options={"n": 2})
    system = "You are a helpful assistant. Answer in one short sentence."

    async def main(self, sys: Sys) -> str:
        sys.write("starting\n")
        calc = await sys.call("calc", expr="6*7")
        bad = await sys.call("clock")  # not granted: an error reply, never an exception
        note = await sys.note("The user's favourite number is 42.")
        reply = await sys.generate("Say hello.")
        children = [await sys.fork() for _ in range(int(sys.option("n")))]
        forked = await asyncio.gather(*(c.generate("Name a fruit.", max_tokens=8) for c in children))
        child = await sys.spawn("chat", "What is 1+1?")
        await sys.sleep(0)
        sys.data.update(calc=calc.output, bad=bad.error, note=note.origin.value, reply=reply.text,
                        forked=[r.pid for r in forked], child=child.pid,
                        pages=[p.origin.value for p in sys.memory()])
        sys.exit("done")
        return "never"


@pytest.fixture
def kernel(tiny_cpu):
    k = Kernel(tiny_cpu, lock=False)
    yield k
    k.close()


def test_every_system_call_goes_through_the_kernel(kernel):
    seen: list[tuple[int, str]] = []
    result = asyncio.run(launch(kernel, Tour, "go", on_text=lambda pid, text: seen.append((pid, text))))
    d = result.data
    assert result.output == "done" and result.app == "tour"
    assert d["calc"].strip().endswith("42") and "not granted" in d["bad"]
    assert d["note"] == "summary" and d["reply"].strip()
    assert "device" in d["pages"] and "summary" in d["pages"] and "assistant" in d["pages"]
    proc = kernel.procs[result.pid]
    assert proc.priority == 3 and proc.space.budget == 600 and proc.grants == {"calc"}
    # the forks and the spawned app were processes of their own, and all of them have ended
    family = [result.pid, *d["forked"], d["child"]]
    assert len(set(family)) == 4 and kernel.procs[d["child"]].app == "chat"
    assert all(kernel.procs[pid].state is ProcState.ZOMBIE for pid in family)
    assert result.tokens == sum(kernel.procs[pid].tokens_out for pid in family[:-1])
    # only the main process streamed to the user; forks were silent
    assert seen[0] == (result.pid, "starting\n") and {pid for pid, _ in seen} == {result.pid}
    assert "".join(t for _, t in seen[1:]) == d["reply"]
    assert [p.origin for p in kernel.journal.pages(d["child"])][:2] == [Origin.SYSTEM, Origin.USER]


class Buggy(App):
    manifest = Manifest(name="buggy")

    async def main(self, sys: Sys) -> str:
        return str(1 / 0)


def test_a_bug_in_an_app_is_one_line_and_the_process_ends(kernel):
    with pytest.raises(AppError, match=r"^app 'buggy' failed: ZeroDivisionError: division by zero$"):
        asyncio.run(launch(kernel, Buggy, "hi"))
    (proc,) = [p for p in kernel.procs.values() if p.app == "buggy"]
    assert proc.state is ProcState.ZOMBIE
    result = asyncio.run(launch(kernel, "chat", "Hi"))  # the kernel goes on
    assert result.output


def test_empty_input_unknown_option_and_unknown_app_fail_before_a_process_starts(kernel):
    with pytest.raises(UsageError, match="empty input"):
        asyncio.run(launch(kernel, "chat", "  \n"))
    with pytest.raises(UsageError, match=r"has no option 'x' \(its options: budget, temperature, tokens\)"):
        asyncio.run(launch(kernel, "think", "1+1?", options={"x": "1"}))
    with pytest.raises(UsageError, match="budget=.*not a int"):
        asyncio.run(launch(kernel, "think", "1+1?", options={"budget": "many"}))
    with pytest.raises(AppError, match="no app named 'nope'; known apps: ask, chat"):
        asyncio.run(launch(kernel, "nope", "hi"))
    assert kernel.procs == {}


def test_manifest_rejects_a_bad_name():
    with pytest.raises(AppError, match="lowercase"):
        Manifest(name="Hello World")


def test_the_sdk_import_is_cheap():
    code = ("import sys, llmos\nfrom llmos import App, Manifest, Sys, Device, DeviceResult, Risk, run_app\n"
            "import llmos.apps.registry, llmos.apps.launch\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('llama_cpp', 'chromadb', 'textual')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
