"""The scheduler: many processes, one CPU, preemption at token boundaries.

The CPU is one llama.cpp context, and only one thread may touch it: the
scheduler's worker thread. Processes ask for the CPU from asyncio with
``Scheduler.generate(pid, tokens, ...)``, an async iterator of steps; the
request becomes a ``Job`` on the run queue.

The loop, in plain words:

    pick the next ready job (policy below);
    if it is not the job whose state the CPU holds, context-switch:
        save the outgoing job's KV state (per-sequence state API, a few MB),
        restore the incoming job's snapshot, or re-read its tokens when the
        snapshot was dropped;
    run it for up to one quantum of tokens (default 32), handing each token
        to its asyncio queue as soon as it exists;
    if it finished, wake its owner; else, if another job is ready, preempt it
        (back to the tail of the queue); else let it keep the CPU.

It must never block on the asyncio side, and never let two jobs interleave
tokens inside one quantum: a job's output stays in order and complete.

Policies: ``rr`` (round-robin: every ready job gets a quantum in turn) and
``priority`` (the highest priority ready job runs; round-robin among equals;
a job that waited ``AGING_QUANTA`` quanta is treated as one level higher, so
low priorities cannot starve).

Snapshots live in a byte-budgeted store with LRU eviction. A dropped
snapshot is not an error: the job is resumed by re-prefilling its tokens,
keeping whatever prefix the context already shares (the system prompt).
Greedy output is the same either way; only the cost differs.

The safe point for a switch is right after a token was sampled and handed
out, before it is evaluated: the snapshot then holds exactly the job's
context, and the job's next step evaluates that token and samples the next.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from llmos.kernel.cpu import CPU, Generation, Snapshot, Step

QUANTUM = 32
AGING_QUANTA = 4
SNAPSHOT_BUDGET = 256 * 1024 * 1024


class SnapshotStore:
    """Saved KV states by pid, within a byte budget; the least recently used are dropped first."""

    def __init__(self, budget: int = SNAPSHOT_BUDGET) -> None:
        self.budget = budget
        self._snaps: OrderedDict[int, Snapshot] = OrderedDict()
        self.bytes = 0
        self.dropped = 0

    def put(self, pid: int, snap: Snapshot) -> None:
        self.discard(pid)
        if snap.nbytes > self.budget:
            self.dropped += 1
            return
        self._snaps[pid] = snap
        self.bytes += snap.nbytes
        while self.bytes > self.budget:
            _, old = self._snaps.popitem(last=False)
            self.bytes -= old.nbytes
            self.dropped += 1

    def take(self, pid: int) -> Snapshot | None:
        snap = self._snaps.pop(pid, None)
        if snap is not None:
            self.bytes -= snap.nbytes
        return snap

    def discard(self, pid: int) -> None:
        self.take(pid)

    def __len__(self) -> int:
        return len(self._snaps)


@dataclass
class Job:
    """One request for the CPU: a process's prompt, its sampling settings, its output queue."""

    pid: int
    priority: int
    tokens: list[int]
    params: dict
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue
    result: Generation = field(default_factory=Generation)
    cancel: threading.Event = field(default_factory=threading.Event)
    order: int = 0
    waited: int = 0
    cpu_s: float = 0.0
    stream: object = None
    """The CPU's token iterator for this job, created on its first quantum."""

    def context(self) -> list[int]:
        """What the KV cache must hold to resume this job: prompt plus generated tokens,
        except the last one, which the job evaluates when it resumes."""
        return self.tokens + self.result.tokens[:-1]


@dataclass
class SchedStats:
    switches: int = 0
    restores: int = 0
    reprefills: int = 0
    switch_s: float = 0.0
    tokens: int = 0
    busy_s: float = 0.0
    per_pid_tokens: dict[int, int] = field(default_factory=dict)
    per_pid_cpu_s: dict[int, float] = field(default_factory=dict)


_DONE = object()


class Scheduler:
    """Runs jobs on one CPU from one worker thread. See the module docstring."""

    def __init__(self, cpu: CPU, *, quantum: int = QUANTUM, policy: str = "rr",
                 snapshot_budget: int = SNAPSHOT_BUDGET, on_switch=None) -> None:
        if policy not in ("rr", "priority"):
            raise ValueError(f"unknown policy {policy!r} (rr or priority)")
        self.cpu = cpu
        self.quantum = quantum
        self.policy = policy
        self.snapshots = SnapshotStore(snapshot_budget)
        self.stats = SchedStats()
        self.on_switch = on_switch or (lambda old, new, seconds, how: None)
        self._ready: list[Job] = []
        self._cond = threading.Condition()
        self._holder: int | None = None
        """The pid whose KV state the CPU context holds (None: nobody's we track)."""
        self._order = itertools.count()
        self._running: Job | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="llmos-cpu", daemon=True)
        self._thread.start()

    # -- asyncio side --------------------------------------------------------------------

    async def generate(self, pid: int, tokens: Sequence[int], *, priority: int = 0,
                       result: Generation | None = None, cancel: threading.Event | None = None,
                       **params) -> AsyncIterator[Step]:
        """Queue a job for ``pid`` and yield its tokens as the CPU produces them."""
        loop = asyncio.get_running_loop()
        job = Job(pid, priority, list(tokens), params, loop, asyncio.Queue(),
                  result=result if result is not None else Generation(),
                  cancel=cancel or threading.Event())
        self.submit(job)
        try:
            while True:
                item = await job.queue.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            job.cancel.set()

    def submit(self, job: Job) -> None:
        with self._cond:
            job.order = next(self._order)
            self._ready.append(job)
            self._cond.notify()

    def ready_pids(self) -> list[int]:
        with self._cond:
            running = [self._running.pid] if self._running else []
            return running + [j.pid for j in self._ready]

    def renice(self, pid: int, priority: int) -> None:
        """New priority for a process's queued jobs (the running one keeps its quantum)."""
        with self._cond:
            for job in self._ready:
                if job.pid == pid:
                    job.priority = priority

    def forget(self, pid: int) -> None:
        """Drop a process's saved state (it exited or was killed)."""
        with self._cond:
            self.snapshots.discard(pid)
            if self._holder == pid:
                self._holder = None
            for job in self._ready:
                if job.pid == pid:
                    job.cancel.set()

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=5)

    # -- the CPU thread ------------------------------------------------------------------

    def _pick(self) -> Job:
        """Remove and return the next job by policy. Caller holds the lock; queue not empty."""
        if self.policy == "rr":
            job = min(self._ready, key=lambda j: j.order)
        else:
            job = max(self._ready, key=lambda j: (j.priority + j.waited // AGING_QUANTA, -j.order))
        self._ready.remove(job)
        for other in self._ready:
            other.waited += 1
        job.waited = 0
        return job

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._ready and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                job = self._pick()
                self._running = job
            if "call" in job.params:
                self._run_call(job)
                with self._cond:
                    self._running = None
                continue
            try:
                finished = self._run_quantum(job)
            except BaseException as exc:  # the job's owner gets the error; the CPU keeps running
                self._holder = None
                job.loop.call_soon_threadsafe(job.queue.put_nowait, exc)
                finished = True
            with self._cond:
                self._running = None
                if finished:
                    job.loop.call_soon_threadsafe(job.queue.put_nowait, _DONE)
                else:
                    job.order = next(self._order)
                    self._ready.append(job)

    def _switch_to(self, job: Job) -> None:
        """Make the CPU context hold ``job``'s process, saving the previous holder's state.

        The holder stays the holder after its job ends, so a process that takes
        turns alone never saves or restores anything; its next turn reuses the
        context as it is.
        """
        if self._holder == job.pid:
            return
        started = time.perf_counter()
        old = self._holder
        if old is not None and self.cpu.can_snapshot:
            self.snapshots.put(old, self.cpu.snapshot())
        snap = self.snapshots.take(job.pid)
        how = "fresh"
        if job.stream is not None:  # resuming a preempted job: its exact state is needed
            if snap is not None and snap.tokens == job.context():
                self.cpu.restore(snap)
                self.stats.restores += 1
                how = "restore"
            else:
                self.cpu.load_tokens(job.tokens, job.result.tokens[:-1])
                self.stats.reprefills += 1
                how = "reprefill"
        elif snap is not None:  # a new turn: restore the process's last state, prefill reuses it
            self.cpu.restore(snap)
            self.stats.restores += 1
            how = "restore"
        self._holder = job.pid
        seconds = time.perf_counter() - started
        if old is not None:
            self.stats.switches += 1
            self.stats.switch_s += seconds
        self.on_switch(old, job.pid, seconds, how)

    def call(self, fn):
        """Run ``fn(cpu)`` on the CPU thread, between quanta; returns a concurrent Future.
        The context's current holder is saved first, since ``fn`` may change the context."""
        from concurrent.futures import Future

        future: Future = Future()
        job = Job(-1, 1 << 30, [], {"call": fn, "future": future}, None, None)  # type: ignore[arg-type]
        self.submit(job)
        return future

    def _run_call(self, job: Job) -> None:
        fn, future = job.params["call"], job.params["future"]
        try:
            if self._holder is not None and self.cpu.can_snapshot:
                self.snapshots.put(self._holder, self.cpu.snapshot())
            self._holder = None
            future.set_result(fn(self.cpu))
        except BaseException as exc:
            future.set_exception(exc)

    def _run_quantum(self, job: Job) -> bool:
        """Run ``job`` for up to one quantum. True when it finished."""
        self._switch_to(job)
        if job.stream is None:
            # A new job: the CPU's prefill keeps the longest prefix the context already
            # holds (shared system prompts are not re-read).
            job.stream = iter(self.cpu.stream(job.tokens, result=job.result, cancel=job.cancel, **job.params))
        started = time.perf_counter()
        produced = 0
        try:
            while True:
                if job.cancel.is_set():
                    job.result.stop_reason = "interrupted"
                    return True
                step = next(job.stream, None)
                if step is None:
                    return True
                job.loop.call_soon_threadsafe(job.queue.put_nowait, step)
                produced += 1
                if produced >= self.quantum and self._others_ready(job):
                    return False
        finally:
            spent = time.perf_counter() - started
            job.cpu_s += spent
            self.stats.busy_s += spent
            self.stats.tokens += produced
            self.stats.per_pid_tokens[job.pid] = self.stats.per_pid_tokens.get(job.pid, 0) + produced
            self.stats.per_pid_cpu_s[job.pid] = self.stats.per_pid_cpu_s.get(job.pid, 0.0) + spent

    def _others_ready(self, job: Job) -> bool:
        with self._cond:
            return bool(self._ready)
