"""The kernel: the CPU, RAM, disk and process table put together.

``Kernel`` owns one CPU (behind the scheduler), the journal, the disk (opened
lazily: a conversation that never swaps never loads chromadb), the pager, and
the processes. Apps and the shell use it through a handful of calls:

- ``spawn(app, system)`` makes a process whose first page is its pinned
  system prompt;
- ``turn(proc, text)`` is one exchange: the input becomes pages, the pager
  faults in what is relevant from swap and mounted files, the scheduler runs
  the CPU on the resident pages, and the answer becomes a page; every page is
  in the journal before it is used, and the answer is journalled as it streams;
- ``kill(pid)``, ``ps()``, ``free()``.

What it leaves out: how the model is chosen (``llmos/boot.py``) and drawing
any of it (the shell).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from llmos.errors import UsageError
from llmos.kernel import hibernate
from llmos.kernel.cpu import CPU, Generation, Step
from llmos.kernel.proc import Process, ProcState
from llmos.kernel.sched import Scheduler
from llmos.memory.journal import Journal
from llmos.memory.page import Origin, Page
from llmos.memory.ram import AddressSpace, Event, Pager
from llmos.paths import data_dir

DEFAULT_RESERVE = 512
"""Tokens of the context window kept free for the answer."""


class LazySwap:
    """The pager's backing store, opening the disk (chromadb + embeddings) only when
    something is first swapped out or there is something on disk to search."""

    def __init__(self, journal: Journal, disk_path: Path | None, disk_url: str | None, signal: str) -> None:
        self.journal = journal
        self.disk_path = disk_path or data_dir() / "disk"
        self.disk_url = disk_url
        self.signal = signal
        self._swap = None

    @property
    def swap(self):
        if self._swap is None:
            from llmos.memory.disk import Disk
            from llmos.memory.swap import Swap

            disk = Disk(url=self.disk_url) if self.disk_url else Disk(self.disk_path)
            self._swap = Swap(disk, self.journal, signal=self.signal)
        return self._swap

    def record(self, page: Page) -> None:
        self.journal.record_page(page)

    def swap_out(self, pages: list[Page]) -> None:
        self.swap.swap_out(pages)

    def swap_in(self, pages: list[Page]) -> None:
        self.swap.swap_in(pages)

    def search(self, pid: int, query: str, k: int, resident: list[Page]) -> list[Page]:
        if self._swap is None and self.disk_url is None and not self.disk_path.exists():
            return []  # nothing was ever written to disk: every page is resident already
        return self.swap.search(pid, query, k, resident)


class Kernel:
    def __init__(self, cpu: CPU, *, ram: int | None = None, reserve: int = DEFAULT_RESERVE,
                 journal: Journal | None = None, disk_path: Path | None = None,
                 disk_url: str | None = None, quantum: int = 32, policy: str = "rr",
                 signal: str = "hybrid", lock: bool = True) -> None:
        self.cpu = cpu
        self.reserve = min(reserve, cpu.n_ctx // 4)
        self.ram = min(ram or cpu.n_ctx - self.reserve, cpu.n_ctx - self.reserve)
        if self.ram < 128:
            raise UsageError(f"RAM of {self.ram} tokens is too small to run a process (minimum 128)")
        if journal is None:
            from llmos.memory.journal import journal_path

            journal = Journal(journal_path())
            if lock:
                journal.acquire_lock()
        self.journal = journal
        self.backing = LazySwap(journal, disk_path, disk_url, signal)
        self.listeners: list[Callable[[str, dict], None]] = []
        self.pager = Pager(self._encode, self.backing, on_event=self._pager_event)
        self.sched = Scheduler(cpu, quantum=quantum, policy=policy, on_switch=self._switched)
        self.procs: dict[int, Process] = {}
        self._gen_prompt = cpu.tokenize(cpu.generation_prompt())
        self._warmed = False
        self.warm = None
        """Future of the boot-time prefix warm-up ("restored", "saved" or "none")."""

    # -- events (the shell draws them; dmesg keeps them) ---------------------------------

    def emit(self, kind: str, **data) -> None:
        for listener in list(self.listeners):
            listener(kind, data)

    def _pager_event(self, event: Event) -> None:
        if event.kind in ("evict", "page_in", "swap_error", "pressure"):
            self.journal.log("warn" if event.kind == "swap_error" else "info",
                             f"pid {event.pid}: {event.kind} {len(event.page_ids)} page(s), "
                             f"{event.tokens} tokens {event.detail}".strip())
        self.emit(event.kind, pid=event.pid, page_ids=event.page_ids, tokens=event.tokens, detail=event.detail)

    def _switched(self, old: int | None, new: int, seconds: float, how: str) -> None:
        if old is not None and new in self.procs:
            self.procs[new].switches += 1
        self.emit("switch", old=old, new=new, seconds=seconds, how=how)

    def _encode(self, role: str, text: str) -> list[int]:
        return self.cpu.tokenize(self.cpu.format_message(role, text))

    # -- processes -----------------------------------------------------------------------

    def spawn(self, app: str = "chat", system: str = "", *, priority: int = 0,
              grants: set[str] | None = None) -> Process:
        pid = self.journal.new_pid()
        proc = Process(pid, app, AddressSpace(pid, self.ram), priority=priority, grants=set(grants or ()))
        self.procs[pid] = proc
        self._save(proc)
        if system:
            self.pager.admit(proc.space, Page(pid, Origin.SYSTEM, system, pinned=True))
            if not self._warmed:
                # The first process of a boot: restore the hibernated KV state of its pinned
                # prefix (or read it once and hibernate it). Queued on the CPU thread ahead
                # of the first turn; nothing waits for it here.
                self._warmed = True
                prefix = proc.space.prompt_tokens()
                self.warm = self.sched.call(lambda cpu: hibernate.warm(cpu, prefix))
        self.journal.log("info", f"spawn pid {pid} ({app})")
        self.emit("spawn", pid=pid, app=app)
        return proc

    def restore(self) -> list[Process]:
        """Bring back the processes the journal holds (after a quit, a crash or kill -9).

        Each comes back SLEEPING with its pages as the journal has them:
        resident ones are re-tokenized into RAM, swapped ones stay on disk. A
        process that was generating when llmos died keeps the partial answer,
        marked interrupted.
        """
        restored = []
        for rec in self.journal.processes():
            if rec.pid in self.procs:
                continue
            proc = Process(rec.pid, rec.app, AddressSpace(rec.pid, self.ram), priority=rec.priority,
                           grants=set(rec.info.get("grants", ())))
            for key in ("tokens_in", "tokens_out", "switches"):
                setattr(proc, key, int(rec.info.get(key, 0)))
            proc.cpu_s = float(rec.info.get("cpu_s", 0.0))
            pages = self.journal.pages(rec.pid)
            interrupted = rec.state in (ProcState.RUNNING.value, ProcState.READY.value)
            if interrupted and pages and pages[-1].origin is Origin.ASSISTANT:
                pages[-1].source = "interrupted"
                self.journal.record_page(pages[-1])
            self.pager.restore(proc.space, pages)
            proc.interrupted = interrupted or bool(rec.info.get("interrupted"))
            self.procs[proc.pid] = proc
            self._save(proc)
            self.journal.log("info", f"restored pid {proc.pid} ({proc.app}): {len(pages)} pages"
                                     + (", answer interrupted" if interrupted else ""))
            restored.append(proc)
        return restored

    def _save(self, proc: Process) -> None:
        self.journal.save_process(proc.pid, proc.app, proc.state.value, proc.priority, proc.info())

    def set_state(self, proc: Process, state: ProcState, why: str = "") -> None:
        proc.state = state
        proc.blocked_on = why if state is ProcState.BLOCKED else ""
        self._save(proc)
        self.emit("state", pid=proc.pid, state=state.value)

    def kill(self, pid: int) -> Process:
        proc = self.procs.get(pid)
        if proc is None or not proc.alive:
            raise UsageError(f"no running process with pid {pid} (see: llmos ps)")
        self.sched.forget(pid)
        self.set_state(proc, ProcState.ZOMBIE)
        self.journal.log("info", f"kill pid {pid}; its pages stay in the journal")
        return proc

    def nice(self, pid: int, priority: int) -> Process:
        """Change a process's priority; it applies from its next request for the CPU."""
        proc = self.procs.get(pid)
        if proc is None or not proc.alive:
            raise UsageError(f"no running process with pid {pid} (see: llmos ps)")
        proc.priority = priority
        self.sched.renice(pid, priority)
        self._save(proc)
        self.emit("state", pid=pid, state=proc.state.value)
        return proc

    # -- the disk ------------------------------------------------------------------------

    def df(self) -> list:
        """Collections on the disk (opens it if needed: call from a worker thread)."""
        return self.backing.swap.disk.stats()

    def mount(self, path: str, *, progress=None):
        """Index a folder onto the disk so page faults can bring its excerpts in."""
        from llmos.memory.fs import mount

        report = mount(self.backing.swap.disk, path, progress=progress)
        self.journal.log("info", f"mount {report.root}: {report.files_indexed} files, {report.chunks_added} chunks")
        return report

    def ps(self) -> list[dict]:
        return [p.info() for p in self.procs.values()]

    # -- one exchange --------------------------------------------------------------------

    def add_page(self, proc: Process, origin: Origin, text: str, *, source: str = "") -> list[Page]:
        return self.pager.admit(proc.space, Page(proc.pid, origin, text, source=source))

    async def turn(self, proc: Process, text: str, *, max_tokens: int = 512, temperature: float = 0.0,
                   seed: int = 0, grammar: str | None = None, stop: tuple[str, ...] = (), top_n: int = 0,
                   result: Generation | None = None, cancel: threading.Event | None = None,
                   fault_k: int = 6) -> AsyncIterator[Step]:
        """Take ``text`` as user input and stream the answer. See the module docstring."""
        if not proc.alive:
            raise UsageError(f"process {proc.pid} has exited")
        if not text.strip():
            raise UsageError("empty input")
        result = result if result is not None else Generation()
        # Page faults search the disk and evictions write to it: off the event loop.
        await asyncio.to_thread(self.pager.fault, proc.space, text, k=fault_k)
        await asyncio.to_thread(self.add_page, proc, Origin.USER, text)
        async for step in self.generate(proc, max_tokens=max_tokens, temperature=temperature, seed=seed,
                                        grammar=grammar, stop=stop, top_n=top_n, result=result,
                                        cancel=cancel):
            yield step

    async def generate(self, proc: Process, *, result: Generation | None = None,
                       cancel: threading.Event | None = None, **params) -> AsyncIterator[Step]:
        """Run the CPU on the process's resident pages; the answer becomes an assistant page.

        The answer is journalled while it streams, so a kill -9 loses nothing
        already generated; it enters RAM as a page when it is complete.
        """
        result = result if result is not None else Generation()
        tokens = proc.space.prompt_tokens() + self._gen_prompt
        answer = Page(proc.pid, Origin.ASSISTANT, "", seq=proc.space.next_seq)
        proc.space.next_seq += 1
        self.journal.record_page(answer)
        self.set_state(proc, ProcState.READY)
        started = time.perf_counter()
        try:
            async for step in self.sched.generate(proc.pid, tokens, priority=proc.priority, result=result,
                                                  cancel=cancel, **params):
                if proc.state is not ProcState.RUNNING:
                    self.set_state(proc, ProcState.RUNNING)
                if step.text:
                    self.journal.append_text(answer.id, step.text)
                yield step
        finally:
            proc.tokens_in += result.prompt_tokens - result.reused_tokens
            proc.tokens_out += len(result.tokens)
            proc.cpu_s += time.perf_counter() - started if not result.decode_s else result.prefill_s + result.decode_s
            answer.text = result.text
            if result.stop_reason == "interrupted":
                answer.source = "interrupted"
            self.pager.place(proc.space, answer)  # sync: must happen even when the task is cancelled
            if proc.alive:
                self.set_state(proc, ProcState.SLEEPING)

    def ask(self, proc: Process, text: str, **kwargs) -> Generation:
        """``turn`` for synchronous callers (scripts, tests): the whole answer."""
        result = Generation()

        async def run() -> None:
            async for _ in self.turn(proc, text, result=result, **kwargs):
                pass

        asyncio.run(run())
        return result

    def free(self) -> list[dict]:
        """RAM per process and region (``llmos free``)."""
        rows = []
        for proc in self.procs.values():
            s = proc.space
            rows.append({"pid": proc.pid, "app": proc.app, "state": proc.state.value, "budget": s.budget,
                         "resident_tokens": s.resident_tokens, "usage": round(s.usage, 3),
                         "pressure": pressure_level(s.usage), "regions": s.regions()})
        return rows

    def close(self) -> None:
        self.sched.close()
        for proc in self.procs.values():
            if proc.alive:
                self._save(proc)
        self.journal.close()


def pressure_level(usage: float) -> str:
    from llmos.memory.ram import EVICT_AT, WARN_AT

    return "evicting" if usage >= EVICT_AT else "warning" if usage >= WARN_AT else "ok"
