"""The scheduler: preemption, context switches, policies, errors, batching.

What depends on the model's KV state and on real batched decoding (output that is the
same interleaved as alone, whole answers from batched rounds) runs on the real tiny CPU.
Tests of the scheduling logic alone (fair shares, priority, errors, cancelling, when a job
joins a batch, heap trimming) run on ``FakeCPU``, a deterministic stand-in with a fixed
time per decode, and say so by taking the ``fake`` fixture."""

from __future__ import annotations

import asyncio

import pytest

from llmos.errors import ContextOverflow
from llmos.kernel import heap
from llmos.kernel.cpu import Generation, Snapshot
from llmos.kernel.fakecpu import FakeCPU
from llmos.kernel.sched import Scheduler, SnapshotStore


@pytest.fixture
def fake():
    """Scheduling logic only: a deterministic CPU taking 2 ms per decode (kernel/fakecpu.py)."""
    return FakeCPU(n_ctx=2048, delay=0.002)

PROMPTS = ["Explain how rain forms.", "Write a short poem about the moon.", "List five fruits and their colours."]


def prompt(cpu, text):
    return cpu.chat_tokens([("system", "You are a helpful assistant."), ("user", text)])


def alone(cpu, text, n):
    cpu.restore(Snapshot(b"", []))
    out = Generation()
    list(cpu.stream(prompt(cpu, text), max_tokens=n, result=out))
    return out.tokens


async def collect(sched, pid, tokens, n, priority=0, order=None):
    out = Generation()
    pieces = []
    async for step in sched.generate(pid, tokens, max_tokens=n, priority=priority, result=out):
        pieces.append(step.text)
        if order is not None:
            order.append(pid)
    assert "".join(pieces) == out.text  # in order and complete
    return out.tokens


@pytest.mark.parametrize("budget", [256 << 20, 1], ids=["restore", "reprefill"])
async def test_interleaved_output_equals_output_alone(tiny_cpu, budget):
    n = 24  # three quanta each: eight switches at least
    expected = [alone(tiny_cpu, t, n) for t in PROMPTS]
    tiny_cpu.restore(Snapshot(b"", []))
    sched = Scheduler(tiny_cpu, quantum=8, snapshot_budget=budget)
    try:
        order: list[int] = []
        got = await asyncio.gather(*(collect(sched, pid, prompt(tiny_cpu, t), n, order=order)
                                     for pid, t in enumerate(PROMPTS, 1)))
    finally:
        sched.close()
    assert got == expected
    switches_in_order = sum(1 for a, b in zip(order, order[1:]) if a != b)
    assert switches_in_order >= 6  # really interleaved, a quantum at a time
    assert sched.stats.switches >= 6
    if budget == 1:
        assert sched.stats.reprefills >= 3 and sched.stats.restores == 0
    else:
        assert sched.stats.restores >= 3 and sched.stats.reprefills == 0


async def test_round_robin_shares_the_cpu_fairly(fake):
    sched = Scheduler(fake, quantum=4)
    try:
        await asyncio.gather(*(collect(sched, pid, prompt(fake, "Write a long story about the sea."), 40)
                               for pid in (1, 2, 3)))
        shares = [sched.stats.per_pid_tokens[p] for p in (1, 2, 3)]
    finally:
        sched.close()
    assert shares == [40, 40, 40]


async def test_priority_runs_the_important_process_first(fake):
    sched = Scheduler(fake, quantum=4, policy="priority")
    order: list[int] = []
    try:
        # pid 1 starts first at low priority; pid 2 arrives with high priority and must finish first.
        low = asyncio.create_task(collect(sched, 1, prompt(fake, "Write a long story."), 40, 0, order))
        await asyncio.sleep(0.05)
        high = asyncio.create_task(collect(sched, 2, prompt(fake, "Write a long poem."), 24, 10, order))
        await asyncio.gather(low, high)
    finally:
        sched.close()
    last_high = max(i for i, pid in enumerate(order) if pid == 2)
    assert order[last_high + 1:] and set(order[last_high + 1:]) == {1}
    assert order.count(1) == 40 and order.count(2) == 24


async def test_an_error_reaches_its_own_process_only(fake):
    sched = Scheduler(fake, quantum=4)
    try:
        with pytest.raises(ContextOverflow):
            await collect(sched, 1, [1] * (fake.n_ctx + 10), 8)
        assert len(await collect(sched, 2, prompt(fake, "Say hi."), 6)) >= 1
    finally:
        sched.close()


async def test_leaving_early_cancels_the_job(fake):
    sched = Scheduler(fake, quantum=4)
    try:
        seen = 0
        async for _ in sched.generate(1, prompt(fake, "Write a long story."), max_tokens=200):
            seen += 1
            if seen == 3:
                break
        await asyncio.sleep(0.2)
        assert sched.stats.per_pid_tokens[1] <= 8
        assert len(await collect(sched, 2, prompt(fake, "Say hi."), 4)) >= 1
    finally:
        sched.close()


async def test_batched_rounds_run_processes_together_and_completely(tiny_cpu):
    """Batching trades bit-exactness (batched matmuls round differently) for throughput:
    every process still gets its whole answer, in order, and the same number of tokens."""
    tiny_cpu.restore(Snapshot(b"", []))
    sched = Scheduler(tiny_cpu, quantum=8, batch=4)
    try:
        got = await asyncio.gather(*(collect(sched, pid, prompt(tiny_cpu, "Write a long story about the sea."), 40)
                                     for pid in (1, 2, 3, 4)))
    finally:
        sched.close()
    assert [len(g) for g in got] == [40, 40, 40, 40]
    assert sched.stats.batches >= 1 and sched.stats.switches == 0
    # the first token comes from the (canonical, exact) prefill: the same for identical prompts
    assert got[0][0] == got[1][0] == got[2][0] == got[3][0]
    shares = [sched.stats.per_pid_cpu_s[p] for p in (1, 2, 3, 4)]
    assert min(shares) / max(shares) > 0.5


async def test_a_process_running_alone_joins_a_batch_as_soon_as_another_is_ready(fake):
    """With batching on, a long quantum alone does not keep a newcomer waiting: the running
    job stops at the next token and both continue in one batched round."""
    fake.restore(Snapshot(b"", []))
    sched = Scheduler(fake, quantum=100, batch=4)
    order: list[int] = []
    try:
        first = asyncio.create_task(collect(sched, 1, prompt(fake, PROMPTS[0]), 120, order=order))
        while len(order) < 4:
            await asyncio.sleep(0.005)
        second = await collect(sched, 2, prompt(fake, PROMPTS[1]), 8, order=order)
        await first
    finally:
        sched.close()
    assert len(second) == 8
    assert sched.stats.batches >= 1
    # the newcomer got the CPU long before job 1 used up its quantum of 100 tokens
    assert order.index(2) < 60 and order.count(1) == 120


def test_snapshot_store_respects_its_budget():
    store = SnapshotStore(budget=100)
    for pid in range(5):
        store.put(pid, Snapshot(b"x" * 40, [1]))
    assert store.bytes <= 100 and len(store) == 2 and store.dropped == 3
    assert store.take(0) is None and store.take(4) is not None


async def test_jobs_move_between_batches_and_single_rounds(fake):
    """Three processes, batches of two: jobs are saved out of one round and resumed in the
    next (from their snapshots), and the one still running at the end finishes alone."""
    fake.restore(Snapshot(b"", []))
    sched = Scheduler(fake, quantum=4, batch=2)
    try:
        lengths = (40, 24, 12)
        got = await asyncio.gather(*(collect(sched, pid, prompt(fake, text), n)
                                     for pid, text, n in zip((1, 2, 3), PROMPTS, lengths)))
    finally:
        sched.close()
    assert [len(g) for g in got] == list(lengths)
    assert sched.stats.batches >= 3
    for tokens, text in zip(got, PROMPTS):
        assert fake.detokenize(tokens).strip()


@pytest.mark.skipif(not heap.available(), reason="malloc_trim is glibc's; elsewhere trim is a no-op")
async def test_idle_cpu_hands_freed_heap_back(fake):
    """Going idle after a job trims the heap once (rate-limited), off the token path."""
    fake.restore(Snapshot(b"", []))

    async def trimmed(before):
        for _ in range(100):
            if heap.trims > before:
                return True
            await asyncio.sleep(0.01)
        return False

    sched = Scheduler(fake)
    try:
        await collect(sched, 1, prompt(fake, PROMPTS[0]), 4)
        heap._last = 0.0  # as if the last trim was long ago
        before = heap.trims
        await collect(sched, 1, prompt(fake, PROMPTS[1]), 4)
        assert await trimmed(before)  # the worker went idle after the job and trimmed
        assert heap.trims == before + 1
        await collect(sched, 1, prompt(fake, PROMPTS[2]), 4)
        assert not await trimmed(before + 1)  # within MIN_INTERVAL_S: not again
    finally:
        sched.close()
