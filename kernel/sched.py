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

A remote CPU (``kernel/remote.py``) has no KV state to save and cannot pause a
stream, so its jobs run with its own ``stream`` to their end, one after the
other; several servers are several cores, one ``Scheduler`` each (the kernel
places processes on them).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from llmos.kernel import heap
from llmos.kernel.cpu import CPU, BatchingCPU, Generation, Snapshot, Step, chunk_bounds, shared_bound

QUANTUM = 32
AGING_QUANTA = 4
SNAPSHOT_BUDGET = 256 * 1024 * 1024


class SnapshotStore:
    """Saved KV states by pid, within a byte budget; the least recently used are dropped first."""

    def __init__(self, budget: int = SNAPSHOT_BUDGET) -> None:
        self.budget = budget
        self._snaps: OrderedDict[int, Snapshot] = OrderedDict()
        self.bytes = 0
        self.peak = 0
        """The most bytes held at once (``llmos bench soak`` checks it against the budget)."""
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
        self.peak = max(self.peak, self.bytes)

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
    loop: asyncio.AbstractEventLoop | None
    queue: asyncio.Queue | None
    result: Generation = field(default_factory=Generation)
    cancel: threading.Event = field(default_factory=threading.Event)
    order: int = 0
    waited: int = 0
    cpu_s: float = 0.0
    stream: object = None
    """The CPU's token iterator for this job, created on its first quantum."""
    decoding: object = None
    """The job's ``Decoding`` (sampler, stop handling), shared by single and batched rounds."""
    bounds: tuple[int, ...] = ()
    """The canonical part of its sequence's read (``kernel/cpu.chunk_bounds``)."""
    call: Callable[[CPU], object] | None = None
    """Not a generation: a function to run on the CPU thread between quanta (``Scheduler.call``)."""
    future: Future | None = None
    """Where ``call``'s result goes."""

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
    batches: int = 0
    tokens: int = 0
    busy_s: float = 0.0
    per_pid_tokens: dict[int, int] = field(default_factory=dict)
    per_pid_cpu_s: dict[int, float] = field(default_factory=dict)


_DONE = object()


class Scheduler:
    """Runs jobs on one CPU from one worker thread. See the module docstring."""

    def __init__(self, cpu: CPU, *, quantum: int = QUANTUM, policy: str = "rr",
                 snapshot_budget: int = SNAPSHOT_BUDGET, on_switch=None, batch: int = 1) -> None:
        if policy not in ("rr", "priority"):
            raise ValueError(f"unknown policy {policy!r} (rr or priority)")
        self.cpu = cpu
        self.quantum = quantum
        self.policy = policy
        self.batch = max(1, min(batch, cpu.max_batch))
        """Most processes run together in one batched round (1: never batch)."""
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
        done = False
        try:
            while True:
                item = await job.queue.get()
                if item is _DONE:
                    done = True
                    return
                if isinstance(item, BaseException):
                    done = True
                    raise item
                yield item
        finally:
            if not done:  # the owner stopped listening: stop the job within one token
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
            if not self._ready:  # going idle (an unlocked peek: a hint is enough here)
                heap.trim()  # hand freed memory back to the OS, off the token path (kernel/heap.py)
            with self._cond:
                while not self._ready and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                group = self._pick_batch()
                job = group[0] if group else self._pick()
                self._running = job
            if group:
                self._finish_batch(group, self._run_batch(group))
                continue
            if job.call is not None:
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

    # -- batched rounds -------------------------------------------------------------------

    def _pick_batch(self) -> list[Job]:
        """Up to ``batch`` ready jobs to run together, or [] to run one. Caller holds the lock.

        Batching pays when several processes are ready: one llama.cpp batch of
        N tokens costs much less than N single-token steps (memory traffic for
        the weights is shared). Jobs are chosen by the policy's order, as long
        as their contexts fit in the KV cache together.
        """
        group = self._batch_group(self._ready)
        for job in group:
            self._ready.remove(job)
        for other in self._ready:
            other.waited += 1
        return group

    def _batch_group(self, jobs: list[Job]) -> list[Job]:
        """The jobs of ``jobs`` a batched round would take (policy order, KV room), or [].
        Caller holds the lock."""
        plain = [j for j in jobs if j.call is None]
        if self.batch < 2 or len(plain) < 2:
            return []
        if self.policy == "rr":
            plain.sort(key=lambda j: j.order)
        else:
            plain.sort(key=lambda j: (-(j.priority + j.waited // AGING_QUANTA), j.order))
        room = self.cpu.n_ctx - len(self.cpu.held_tokens())
        group = []
        for job in plain[: self.batch]:
            need = len(job.tokens) + len(job.result.tokens) + self.quantum + 1
            if need > room:
                break
            room -= need
            group.append(job)
        return group if len(group) >= 2 else []

    def _batch_waiting(self, job: Job) -> bool:
        """Would ``job`` run in a batch with jobs that are ready now? Then it should stop
        running alone at once: a batched round makes more tokens per second for all of them
        than a quantum alone followed by the others (measured: ``llmos bench sched``)."""
        if self.batch < 2:
            return False
        with self._cond:
            return bool(self._ready) and job in self._batch_group([job, *self._ready])

    def _run_batch(self, group: list[Job]) -> set[int]:
        """One quantum for several jobs, each on its own KV sequence. Returns pids finished."""
        cpu = self.cpu
        finished: set[int] = set()
        started = time.perf_counter()
        seats: list[tuple[int, Job]] = []
        try:
            # A: jobs that ran before move to their own sequence with their exact state.
            fresh = [job for job in group if job.stream is None]
            seat = 0
            for job in group:
                if job.stream is None:
                    continue
                if self._holder == job.pid:
                    snap = cpu.snapshot()
                    self._holder = None  # sequence 0 keeps the state, but the job moves on without it
                else:
                    snap = self.snapshots.take(job.pid)
                    if snap is None or snap.tokens != job.context():
                        self._switch_to(job)  # its snapshot was dropped: re-read it
                        snap = cpu.snapshot()
                        self._holder = None
                seat += 1
                cpu.seq_load(seat, snap)
                job.bounds = snap.bounds
                seats.append((seat, job))
            # B: new jobs read their prompts together, in batches across their sequences,
            # and sample their first tokens.
            if fresh:
                self._prefill_together(fresh, seat, seats, finished)
            self.stats.batches += 1
            # C: one batch per step: every job's pending token evaluated together.
            produced = dict.fromkeys((job.pid for _, job in seats), 0)
            active = list(seats)
            steps = 0
            # A round lasts one quantum, or longer while nobody else waits for the CPU.
            while active and (steps < self.quantum or not self._others_ready(None)):
                steps += 1
                t = time.perf_counter()
                cpu.decode_batch([(seat, job.decoding.last, len(job.decoding.context()), True)
                                  for seat, job in active])
                still = []
                for idx, (seat, job) in enumerate(active):
                    produced[job.pid] += 1
                    if self._sample(job, seat, idx, finished):
                        still.append((seat, job))
                self._charge([job for _, job in active], time.perf_counter() - t)
                active = still
            # D: the unfinished ones are saved, ready to resume alone or in the next batch.
            for seat, job in active:
                self.snapshots.put(job.pid, cpu.seq_save(seat, job.decoding.context(), job.bounds))
                cpu.seq_clear(seat)
            for pid, n in produced.items():
                self.stats.per_pid_tokens[pid] = self.stats.per_pid_tokens.get(pid, 0) + n
                self.stats.tokens += n
        except BaseException as exc:
            for seat, _ in seats:
                cpu.seq_clear(seat)
            for job in group:
                if job.pid not in finished:
                    job.loop.call_soon_threadsafe(job.queue.put_nowait, exc)
                    finished.add(job.pid)
        self.stats.busy_s += time.perf_counter() - started
        return finished

    def _prefill_together(self, fresh: list[Job], seat: int, seats: list, finished: set[int]) -> None:
        """Read several new prompts in shared llama.cpp batches, each on its own sequence;
        each job samples its first token as soon as its prompt's last token is read."""
        cpu = self.cpu
        entries, owners = [], []
        for job in fresh:
            seat += 1
            job.decoding = cpu.decoding(job.tokens, result=job.result, cancel=job.cancel, **job.params)
            job.stream = iter(cpu.resume(job.decoding))
            # The process's last state (its previous turns) is reused up to a canonical
            # block boundary, so a long conversation is not re-read for a new turn.
            if self._holder == job.pid:
                base = cpu.snapshot()
                self._holder = None
            else:
                base = self.snapshots.take(job.pid)
            keep = 0
            if base is not None:
                same, limit = 0, min(len(base.tokens), len(job.tokens) - 1)
                while same < limit and base.tokens[same] == job.tokens[same]:
                    same += 1
                keep = shared_bound(base.bounds, chunk_bounds(len(job.tokens), job.decoding.cuts), same)
            if keep:
                cpu.seq_load(seat, base)
                cpu.seq_trim(seat, keep)
            else:
                cpu.seq_clear(seat)
            job.result.reused_tokens = keep
            # Read in batches shared with other sequences, the rest is not canonical.
            job.bounds = tuple(b for b in base.bounds if b <= keep) if keep else ()
            last = len(job.tokens) - 1
            for pos in range(keep, len(job.tokens)):
                entries.append((seat, job.tokens[pos], pos, pos == last))
                owners.append((seat, job) if pos == last else None)
        started = time.perf_counter()
        size = cpu.n_batch
        for lo in range(0, len(entries), size):
            cpu.decode_batch(entries[lo:lo + size])
            for idx, owner in enumerate(owners[lo:lo + size]):
                if owner is None:
                    continue
                seat_, job = owner
                job.result.prefill_s = time.perf_counter() - started
                self.stats.per_pid_tokens[job.pid] = self.stats.per_pid_tokens.get(job.pid, 0) + 1
                if self._sample(job, seat_, idx, finished):
                    seats.append((seat_, job))
        self._charge(fresh, time.perf_counter() - started)

    def _sample(self, job: Job, seat: int, idx: int, finished: set[int]) -> bool:
        """The job's next token from the logits at batch index ``idx``, handed to its owner.
        True while the job goes on; a finished job's sequence is freed."""
        for step in job.decoding.next(idx):
            job.loop.call_soon_threadsafe(job.queue.put_nowait, step)
        if job.decoding.done:
            finished.add(job.pid)
            self.cpu.seq_clear(seat)
            return False
        return True

    def _charge(self, jobs: list[Job], seconds: float) -> None:
        """Split the CPU time of a shared batch evenly among the jobs in it."""
        share = seconds / len(jobs)
        for job in jobs:
            job.cpu_s += share
            self.stats.per_pid_cpu_s[job.pid] = self.stats.per_pid_cpu_s.get(job.pid, 0.0) + share

    def _finish_batch(self, group: list[Job], finished: set[int]) -> None:
        with self._cond:
            self._running = None
            for job in group:
                if job.pid in finished:
                    job.loop.call_soon_threadsafe(job.queue.put_nowait, _DONE)
                else:
                    job.order = next(self._order)
                    self._ready.append(job)

    # -- one process at a time -------------------------------------------------------------

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
                self.cpu.load_tokens(job.tokens, job.result.tokens[:-1],
                                     job.decoding.cuts if job.decoding is not None else ())
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
        future: Future = Future()
        self.submit(Job(-1, 1 << 30, [], {}, None, None, call=fn, future=future))
        return future

    def _run_call(self, job: Job) -> None:
        fn, future = job.call, job.future
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
        if job.stream is None and not isinstance(self.cpu, BatchingCPU):
            # A CPU without sequence control (a remote server): its own stream, to the end.
            job.stream = iter(self.cpu.stream(job.tokens, result=job.result, cancel=job.cancel, **job.params))
        elif job.stream is None:
            # A new job: the CPU's prefill keeps the longest prefix the context already
            # holds (shared system prompts are not re-read).
            job.decoding = self.cpu.decoding(job.tokens, result=job.result, cancel=job.cancel, **job.params)
            job.stream = iter(self.cpu.run(job.decoding))
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
                if step.blocked:  # not a token: the CPU waits for its server
                    continue
                produced += 1
                if produced >= self.quantum and self.cpu.preemptible and self._others_ready(job):
                    return False
                if self.cpu.preemptible and self._batch_waiting(job):
                    return False
        finally:
            spent = time.perf_counter() - started
            job.cpu_s += spent
            self.stats.busy_s += spent
            self.stats.tokens += produced
            self.stats.per_pid_tokens[job.pid] = self.stats.per_pid_tokens.get(job.pid, 0) + produced
            self.stats.per_pid_cpu_s[job.pid] = self.stats.per_pid_cpu_s.get(job.pid, 0.0) + spent

    def _others_ready(self, job: Job | None) -> bool:
        with self._cond:
            return bool(self._ready)
