"""The declared CPU contract: ``FakeCPU`` is a ``BatchingCPU`` the scheduler and the kernel drive
exactly as the real one, deterministically (the stand-in the scheduling tests use)."""

from __future__ import annotations

import asyncio

from llmos.kernel.cpu import BatchingCPU, CPU, Generation
from llmos.kernel.fakecpu import FakeCPU
from llmos.kernel.kernel import Kernel
from llmos.kernel.llama import LlamaCPU
from llmos.kernel.remote import RemoteCPU


def together(kernel, n: int, *, max_tokens: int) -> list[Generation]:
    """One turn each of ``n`` new chat processes ("question 0", ...), all at once."""
    procs = [kernel.spawn("chat", "You are helpful.") for _ in range(n)]

    async def one(proc, text):
        out = Generation()
        async for _ in kernel.turn(proc, text, max_tokens=max_tokens, result=out):
            pass
        return out

    async def run():
        return await asyncio.gather(*(one(p, f"question {i}") for i, p in enumerate(procs)))

    return asyncio.run(run())


def test_the_interfaces_are_declared_and_checked_by_type():
    assert issubclass(LlamaCPU, BatchingCPU) and issubclass(FakeCPU, BatchingCPU)
    assert issubclass(RemoteCPU, CPU) and not issubclass(RemoteCPU, BatchingCPU)
    assert not FakeCPU.__abstractmethods__ and not LlamaCPU.__abstractmethods__


def test_a_fake_answer_depends_only_on_its_prompt(tmp_path):
    cpu = FakeCPU(delay=0.002)  # time enough per decode for the four to be ready together
    kernel = Kernel.in_folder(cpu, tmp_path)
    try:
        batched = [g.text for g in together(kernel, 4, max_tokens=40)]
        assert kernel.sched.stats.batches >= 1  # they ran together in batched rounds
        alone = [kernel.ask(kernel.spawn("chat", "You are helpful."), f"question {i}", max_tokens=40).text
                 for i in range(4)]
        assert batched == alone and len(set(alone)) == 4 and all(len(a) == 40 for a in alone)
    finally:
        kernel.close()


def test_a_scripted_fake_writes_its_answer_verbatim_and_ends_alone_or_batched(tmp_path):
    """A test may play the model: the script maps the prompt to the whole answer (any characters),
    which ends by itself, the same whether the turn ran alone or beside others."""
    cpu = FakeCPU(delay=0.002, script=lambda prompt: f"You said «{prompt.rsplit('user', 1)[-1].split('<')[0].strip()}».")
    kernel = Kernel.in_folder(cpu, tmp_path)
    try:
        batched = together(kernel, 3, max_tokens=100)
        assert kernel.sched.stats.batches >= 1
        assert [g.text for g in batched] == [f"You said «question {i}»." for i in range(3)]
        assert all(g.stop_reason == "eos" for g in batched)
        assert kernel.ask(kernel.spawn("chat", "You are helpful."), "hello", max_tokens=100).text == "You said «hello»."
    finally:
        kernel.close()
