"""The kernel: the CPU, RAM, disk and process table put together.

``Kernel`` owns the CPU (behind the scheduler), the journal, the disk (opened
lazily: a conversation that never swaps never loads chromadb), the pager, and
the processes. Given several CPUs (remote servers, or several models of the
same vocabulary), it has several cores: one scheduler each, and a new process
is placed on the core with the fewest live processes (``ps`` shows its core).
Apps and the shell use it through a handful of calls:

- ``spawn(app, system)`` makes a process whose first page is its pinned
  system prompt;
- ``turn(proc, text)`` is one exchange: the input becomes pages, the pager
  faults in what is relevant from swap and mounted files, the scheduler runs
  the CPU on the resident pages, and the answer becomes a page; every page is
  in the journal before it is used, and the answer is journalled as it streams;
  a turn may call devices in the CPU's own format (``kernel/toolcall.py``);
- ``end(proc)`` / ``kill(pid)``, ``page_in(proc, query)``, ``mounted(root)``,
  ``ps()``, ``free()``.

What it leaves out: system-call dispatch (``kernel/dispatch.py``), the pager's
backing store (``memory/backing.py``), how the model is chosen
(``kernel/boot.py``) and drawing any of it (the shell).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

from llmos.errors import LlmosError, UsageError
from llmos.kernel import hibernate, intent, stated, syscall, toolcall
from llmos.kernel.cpu import CPU, BatchingCPU, Generation, Step
from llmos.kernel.dispatch import RESULT_NOTE, Approval, Dispatcher  # noqa: F401 (Approval: part of the kernel's API)
from llmos.kernel.sampling import Sampling
from llmos.kernel.trap import Traps
from llmos.kernel.proc import Process, ProcState
from llmos.kernel.sched import Scheduler
from llmos.memory.backing import LazySwap
from llmos.memory.journal import DEAD_STATES, Journal, journal_path
from llmos.memory.page import Origin, Page
from llmos.memory.ram import ECHOES, FAULT_K, KERNEL_MARK, AddressSpace, Event, Pager

DEFAULT_RESERVE = 512
"""Tokens of the context window kept free for the answer."""


MAX_CALLS_PER_TURN = 4
MAX_FAILED_CALLS = 2
"""After this many calls in a turn that failed (an invented device, bad arguments), the turn is
answered in words: the default model was seen calling an invented ``rhubarb`` device four times
and answering nothing."""

PLAIN_JOB = -1_000_000
"""Scheduler job ids of those answers: ``PLAIN_JOB - pid``, apart from every process's own."""


class Kernel:
    def __init__(self, cpu: CPU | Sequence[CPU], *, ram: int | None = None, reserve: int = DEFAULT_RESERVE,
                 journal: Journal | None = None, disk_path: Path | None = None,
                 disk_url: str | None = None, quantum: int = 32, policy: str = "rr",
                 signal: str = "hybrid", lock: bool = True, devices=None, batch: int = 4,
                 approver: Callable[[Approval], Awaitable[bool]] | None = None) -> None:
        self._asked = (ram, reserve, dict(quantum=quantum, policy=policy, batch=batch))
        """What the caller asked for, applied again to the CPUs of a switch (``use_cpus``)."""
        self.saved_states: dict = {}
        """KV snapshot stores of the models this kernel ran before, by model (``kernel/hotswap.py``)."""
        self.listeners: list[Callable[[str, dict], None]] = []
        self.use_cpus(list(cpu) if isinstance(cpu, (list, tuple)) else [cpu])
        if journal is None:
            journal = Journal(journal_path())
            if lock:
                journal.acquire_lock()
        self.journal = journal
        self.backing = LazySwap(journal, disk_path, disk_url, signal)
        self.pager = Pager(self._encode, self.backing, on_event=self._pager_event)
        self.procs: dict[int, Process] = {}
        self.traps = Traps()
        self.devices = devices
        """Where devices are found by name (``llmos.devices.registry.Registry``), or None."""
        self.approver = approver
        """Asked before a risky device call; None: risky calls are refused (nobody to ask)."""
        self.syscalls = Dispatcher(self)
        """System-call dispatch, and how processes are taught their devices."""
        self.call_gate = True
        """A turn whose input asks for nothing (a statement) is answered in words, without a
        device call (``kernel/intent.py``); False for the ablation in ``llmos bench tools``."""
        self._warmed = False
        self.warm = None
        """Future of the boot-time prefix warm-up ("restored", "saved" or "none")."""

    def use_cpus(self, cpus: list[CPU]) -> None:
        """Make ``cpus`` the cores: RAM from their context, one scheduler each. At boot, and
        when the CPU is switched while processes live (``switch_cpu``, ``kernel/hotswap.py``)."""
        if not cpus:
            raise UsageError("a kernel needs at least one CPU")
        ram, reserve, sched_args = self._asked
        n_ctx = min(c.n_ctx for c in cpus)
        new_reserve = min(reserve, n_ctx // 4)
        new_ram = min(ram or n_ctx - new_reserve, n_ctx - new_reserve)
        if new_ram < 128:
            raise UsageError(f"RAM of {new_ram} tokens is too small to run a process (minimum 128)")
        self.cpus, self.reserve, self.ram = cpus, new_reserve, new_ram
        self.cpu = cpus[0]
        """Core 0, whose tokenizer and template every core shares."""
        self.cores = [Scheduler(c, on_switch=self._switched, **sched_args) for c in cpus]
        self.sched = self.cores[0]
        self._gen_prompt = self.cpu.tokenize(self.cpu.generation_prompt())

    def switch_cpu(self, cpus: CPU | Sequence[CPU]) -> None:
        """Run every process on ``cpus`` from now on, keeping their pages (``kernel/hotswap.py``).
        UsageError while a process is answering."""
        from llmos.kernel import hotswap

        hotswap.switch(self, list(cpus) if isinstance(cpus, (list, tuple)) else [cpus])

    @classmethod
    def in_folder(cls, cpu: CPU | Sequence[CPU], folder: Path, **kwargs) -> Kernel:
        """A kernel whose journal and disk live in ``folder``, laid out as in the data dir,
        instead of the user's (benchmarks, the demo): the user's processes and swap are not
        touched. The hibernated prefix is still the user's (``kernel/hibernate.py``)."""
        return cls(cpu, journal=Journal(journal_path(folder)), disk_path=folder / "disk", **kwargs)

    # -- events (the shell draws them; dmesg keeps them) ---------------------------------

    def emit(self, kind: str, **data) -> None:
        for listener in list(self.listeners):
            listener(kind, data)

    def _pager_event(self, event: Event) -> None:
        if event.kind in ("evict", "page_in", "swap_error", "pressure"):
            self.journal.log("warn" if event.kind == "swap_error" else "info",
                             f"pid {event.pid}: {event.kind} {len(event.page_ids)} page(s), "
                             f"{event.tokens} tokens {event.detail}".strip(), pid=event.pid)
        self.emit(event.kind, pid=event.pid, page_ids=event.page_ids, tokens=event.tokens, detail=event.detail)

    def _switched(self, old: int | None, new: int, seconds: float, how: str) -> None:
        if old is not None and new in self.procs:
            self.procs[new].switches += 1
        self.emit("switch", old=old, new=new, seconds=seconds, how=how)

    def _encode(self, role: str, text: str, special: bool = True) -> list[int]:
        """``text`` as one chat message, tokenized. ``special=False`` (the pager asks it for untrusted
        pages): only the template's framing becomes control tokens; a ``<|im_start|>system`` inside
        a document stays plain text and cannot open a fake turn (prompt-injection defence)."""
        if special:
            return self.cpu.tokenize(self.cpu.format_message(role, text))
        mark = "\x00llmos-page-text\x00"
        before, found, after = self.cpu.format_message(role, mark).partition(mark)
        if not found:  # a template that does not keep the text verbatim: no way to split it
            return self.cpu.tokenize(self.cpu.format_message(role, text))
        return (self.cpu.tokenize(before) + self.cpu.tokenize(text, special=False)
                + self.cpu.tokenize(after))

    # -- processes -----------------------------------------------------------------------

    def spawn(self, app: str = "chat", system: str = "", *, priority: int = 0,
              grants: set[str] | None = None, ram: int | None = None) -> Process:
        """``ram``: the process's RAM quota in tokens (an app's manifest asks for it); never more
        than the kernel's RAM, and no less than the minimum a process needs."""
        pid = self.journal.new_pid()
        budget = self.ram if ram is None else max(128, min(int(ram), self.ram))
        proc = Process(pid, app, AddressSpace(pid, budget), priority=priority, grants=set(grants or ()),
                       core=self._place())
        self.procs[pid] = proc
        self.save(proc)
        if proc.grants and self.devices is not None:
            system = (system or "") + self.syscalls.section(proc)
        if system:
            self.pager.admit(proc.space, Page(pid, Origin.SYSTEM, system, pinned=True))
            if not self._warmed:
                # The first process of a boot: restore the hibernated KV state of its pinned
                # prefix (or read it once and hibernate it). Queued on the CPU thread ahead
                # of the first turn; nothing waits for it here.
                self._warmed = True
                prefix, cuts = proc.space.prompt()
                self.warm = self.cores[proc.core].call(lambda cpu: hibernate.warm(cpu, prefix, tuple(cuts)))
        self.journal.log("info", f"spawn pid {pid} ({app})", pid=pid)
        self.emit("spawn", pid=pid, app=app)
        return proc

    def restore(self) -> list[Process]:
        """Bring back the processes the journal holds (after a quit, a crash or kill -9),
        except those another running llmos holds (a ``llmos run`` beside the shell).

        Each comes back SLEEPING with its pages as the journal has them:
        resident ones are re-tokenized into RAM, swapped ones stay on disk. A
        process that was generating when llmos died keeps the partial answer,
        marked interrupted (``Journal.reap``). Swap writes that a crash cut short are
        settled first (``Swap.recover``), so swap holds a page if and only if the journal
        says it was evicted; a clean shutdown leaves none, and the disk is not opened for them.
        """
        if self.journal.swap_pending():
            try:
                counts = self.backing.swap.recover()
                self.journal.log("warn", f"swap recovered after a crash: {counts['rewritten']} evicted page(s) "
                                         f"rewritten, {counts['removed']} stale copies removed")
            except LlmosError as exc:  # the disk is unreadable now: the intents wait for the next start
                self.journal.log("warn", f"swap recovery postponed: {exc}")
        self.journal.reap(mine=True)  # an earlier kernel of this program is gone too
        restored = []
        for rec in self.journal.processes():
            if rec.pid in self.procs or rec.held_elsewhere:
                continue
            try:
                restored.append(self.adopt(rec.pid))
            except UsageError:  # another llmos took it meanwhile: it is theirs
                continue
        return restored

    def adopt(self, pid: int) -> Process:
        """Take journalled process ``pid`` into this kernel, SLEEPING, with its pages and
        counters; it is this program's from now on (``Journal.claim``: UsageError if another
        running llmos holds it). An ended one comes back too, to end again after one turn
        (``ends_after``): ``llmos run --pid`` adds a turn to a finished conversation."""
        rec = self.journal.claim(pid)
        proc = Process(rec.pid, rec.app, AddressSpace(rec.pid, self.ram), priority=rec.priority,
                       grants=set(rec.info.get("grants", ())), core=self._place(),
                       ends_after=rec.state in DEAD_STATES)
        for key in ("tokens_in", "tokens_out", "switches"):
            setattr(proc, key, int(rec.info.get(key, 0)))
        proc.cpu_s = float(rec.info.get("cpu_s", 0.0))
        proc.model = str(rec.info.get("model", ""))
        proc.interrupted = bool(rec.info.get("interrupted"))
        pages = self.journal.pages(rec.pid)
        self.pager.restore(proc.space, pages)
        self.procs[proc.pid] = proc
        self.save(proc)
        self.journal.log("info", f"restored pid {proc.pid} ({proc.app}): {len(pages)} pages"
                                 + (", its last answer was interrupted" if proc.interrupted else ""), pid=proc.pid)
        return proc

    def _place(self) -> int:
        """The core for a new process: the one with the fewest live processes (lowest first)."""
        if len(self.cores) == 1:
            return 0
        load = [0] * len(self.cores)
        for p in self.procs.values():
            if p.alive and p.core < len(load):
                load[p.core] += 1
        return load.index(min(load))

    def save(self, proc: Process) -> None:
        self.journal.save_process(proc.pid, proc.app, proc.state.value, proc.priority, proc.info())

    def set_state(self, proc: Process, state: ProcState, why: str = "") -> None:
        proc.state = state
        proc.blocked_on = why if state is ProcState.BLOCKED else ""
        self.save(proc)
        self.emit("state", pid=proc.pid, state=state.value)

    def kill(self, pid: int) -> Process:
        """End a live process by pid (the user's ``kill``)."""
        proc = self.procs.get(pid)
        if proc is None or not proc.alive:
            raise UsageError(f"no running process with pid {pid} (see: llmos ps)")
        return self.end(proc, "kill")

    def end(self, proc: Process, how: str = "exit") -> Process:
        """The one way a process ends: its CPU state is dropped from its core, it becomes a
        ZOMBIE in the process table, and its pages stay in the journal. A no-op if it ended."""
        if proc.alive:
            self.cores[proc.core].forget(proc.pid)
            self.set_state(proc, ProcState.ZOMBIE)
            self.journal.log("info", f"{how} pid {proc.pid}; its pages stay in the journal", pid=proc.pid)
        return proc

    def nice(self, pid: int, priority: int) -> Process:
        """Change a process's priority; it applies from its next request for the CPU."""
        proc = self.procs.get(pid)
        if proc is None or not proc.alive:
            raise UsageError(f"no running process with pid {pid} (see: llmos ps)")
        proc.priority = priority
        self.cores[proc.core].renice(pid, priority)
        self.save(proc)
        self.emit("state", pid=pid, state=proc.state.value)
        return proc

    # -- the disk ------------------------------------------------------------------------

    def open_disk(self) -> None:
        """Open the disk now (chromadb and the embedding model), not at the first eviction:
        for a demo on stage, where a stall of seconds mid-step would show. Blocking."""
        self.backing.swap

    def df(self) -> list:
        """Collections on the disk (opens it if needed: call from a worker thread)."""
        return self.backing.swap.disk.stats()

    def mounted(self, root: str) -> list:
        """Every chunk the disk holds of the folder mounted at ``root`` (a worker thread)."""
        from llmos.memory.fs import COLLECTION

        return self.backing.swap.disk.get(COLLECTION, where={"mount": root})

    def no_file_used(self, proc: Process) -> bool:
        """Whether the disk holds mounted files and none of them is in ``proc``'s RAM: the last
        answer then came from the conversation and the model alone, which the user is told
        (a blocking disk read: call it from a worker thread). An answer to a device result did
        not come from the model alone: False (the shell said "this answer is the model's own"
        under 17 * 23 = 391 from calc)."""
        from llmos.memory.fs import COLLECTION

        turn = proc.space.pages[max((i for i, p in enumerate(proc.space.pages) if p.origin is Origin.USER),
                                    default=0):]
        if any(p.origin is Origin.DEVICE for p in turn):
            return False
        if not self.backing.opened or any(p.origin is Origin.FILE and p.resident for p in proc.space.pages):
            return False  # a page fault opens the disk whenever there is one: unopened, none
        disk = self.backing.swap.disk
        return COLLECTION in disk.names() and disk.count(COLLECTION) > 0

    def page_in(self, proc: Process, query: str, k: int = 8) -> list[Page]:
        """A page fault for ``query``: the best pages of swap and mounted files come into the
        process's RAM (best first). Blocking: call it from a worker thread."""
        return self.pager.fault(proc.space, query, k=k)

    def mount(self, path: str, *, progress=None):
        """Index a folder onto the disk so page faults can bring its excerpts in."""
        from llmos.memory.fs import mount

        report = mount(self.backing.swap.disk, path, progress=progress)
        self.journal.log("info", f"mount {report.root}: {report.files_indexed} files, {report.chunks_added} chunks")
        return report

    def ps(self) -> list[dict]:
        return [p.info() for p in self.procs.values()]

    # -- one exchange --------------------------------------------------------------------

    def grant(self, proc: Process, names) -> set[str]:
        """Give a live process more devices (the user's ``/grant``): each must load, and a
        pinned page teaches the call protocol for the whole new set (a process spawned with
        devices has that in its system prompt). Returns the names that were new."""
        if self.devices is None:
            raise UsageError("this kernel has no device table (started without devices)")
        if not proc.alive:
            raise UsageError(f"process {proc.pid} has exited")
        new = {str(n) for n in names} - proc.grants - {"recall"}
        for name in sorted(new):
            self.devices.get(name)  # unknown, broken or blocked: DeviceError says which and why
        if not new:
            return set()
        proc.grants |= new
        self.save(proc)
        self.pager.admit(proc.space, Page(proc.pid, Origin.SYSTEM, self.syscalls.section(proc).lstrip("\n"),
                                          pinned=True, source="grant"))
        self.journal.log("info", f"pid {proc.pid}: granted {', '.join(sorted(new))}", pid=proc.pid)
        self.emit("state", pid=proc.pid, state=proc.state.value)
        return new

    def add_page(self, proc: Process, origin: Origin, text: str, *, source: str = "") -> list[Page]:
        return self.pager.admit(proc.space, Page(proc.pid, origin, text, source=source))

    async def turn(self, proc: Process, text: str, *, max_tokens: int = 512, temperature: float = 0.0,
                   sampling: Sampling | None = None, seed: int = 0, grammar: str | None = None,
                   stop: tuple[str, ...] = (), top_n: int = 0, result: Generation | None = None,
                   cancel: threading.Event | None = None, fault_k: int = FAULT_K,
                   mode: str = "auto") -> AsyncIterator[Step]:
        """Take ``text`` as user input and stream the answer. See the module docstring.

        A process with devices may answer with a system call, in any form the CPU's
        format knows (``kernel/toolcall.py``): the kernel runs it, pages the result in,
        and the model continues, up to MAX_CALLS_PER_TURN times. Steps that carry a
        call's text have ``call=True``: they are not words of the answer, and
        ``result.text`` holds only the words. ``mode="required"`` constrains the first
        answer to a device call. ``sampling`` (default: greedy at ``temperature``).
        """
        if not proc.alive:
            raise UsageError(f"process {proc.pid} has exited")
        if not syscall.is_text(text):
            # Lone surrogates (argv bytes that are not UTF-8, a pasted "\ud800") are no text: the
            # tokenizer and the journal cannot take them. They become U+FFFD; all else stays exact.
            text = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
        if not text.strip():
            raise UsageError("empty input")
        result = result if result is not None else Generation()
        sampling = sampling or Sampling(temperature=temperature)
        cancel = self.traps.arm(proc.pid, cancel)  # new input interrupts an answer in progress
        proc.interrupted = False  # it is answering again: "interrupted" is about its last answer
        try:
            # What the user typed is in the journal before anything else happens, so a crash
            # during the page fault (a slow disk) keeps it; admitting it replaces this record.
            typed = Page(proc.pid, Origin.USER, text, seq=proc.space.next_seq)
            await asyncio.to_thread(self.journal.record_page, typed)
            # Page faults search the disk and evictions write to it: off the event loop. The
            # process waits on the disk meanwhile, as a process does on a page fault.
            self.set_state(proc, ProcState.BLOCKED, "page fault")
            try:
                await asyncio.to_thread(self.pager.fault, proc.space, text, k=fault_k, exclude={typed.id})
            except BaseException:  # the disk failed, or the turn was cancelled: the question stays
                # On a thread of its own: the pager's lock is held until the fault's disk search
                # returns, and a hung disk must not freeze the caller's event loop (the shell).
                threading.Thread(target=self._admit_quietly, args=(proc, typed), daemon=True).start()
                raise
            await asyncio.to_thread(self.pager.admit, proc.space, typed)
            watch = bool(proc.grants) and self.devices is not None and grammar is None
            """Whether answers are read for calls at all (a process with devices)."""
            only = intent.required(text, proc.grants) if watch and self.call_gate and mode == "auto" else None
            """The devices the first round must call (a sum, the time, the user's notes): from the
            device, not a guess."""
            if only:
                mode = "required"
            calls = watch and (mode == "required" or not self.call_gate or intent.asks(text))
            """Whether this round may call (a statement: no, ``kernel/intent.py``; after a
            result that worked: words)."""
            words_from_start = watch and not calls
            words_only = False
            echoed = False
            """The model began its answer by copying a fenced page or a kernel note (seen with the
            default model on questions about a paged-in note); the round again, held to words."""
            failed = 0
            """Calls of this turn that failed (``MAX_FAILED_CALLS``)."""
            result_page: Page | None = None
            """The last call's result, while the round after it answers it (``kernel/stated.py``)."""
            stop = (*stop, *ECHOES) if grammar is None else stop
            for round_ in range(MAX_CALLS_PER_TURN + 1):
                checked = None
                params = dict(max_tokens=max_tokens, seed=seed, stop=stop, top_n=top_n, **sampling.params())
                if echoed:
                    params["grammar"] = syscall.ANSWER
                elif calls:
                    forced = mode == "required" and round_ == 0
                    built = self.syscalls.grammar(proc, forced=forced, only=only,
                                                  leave_out={d: intent.unasked(text, d) for d in only or ()})
                    params["grammar"], params["lazy"] = built.text, built.lazy
                    if isinstance(self.cores[proc.core].cpu, BatchingCPU):
                        # The device is chosen: the call's opening is read, not written. (A
                        # server is sent the grammar from its start, so it writes it all.)
                        params["opening"] = built.opening
                elif grammar:
                    params["grammar"] = grammar
                elif words_from_start:  # a statement: answered in words, from a context without devices
                    params["grammar"] = syscall.ANSWER
                    params["plain"] = True
                elif round_ > 0:
                    # After a result: an answer, not another call (small models call again and
                    # again). It may not open with a call, and stops where one would begin;
                    # if that leaves nothing, the next round is held to words from the start.
                    params["stop"] = (*stop, syscall.OPEN, "<tool_call>")
                    params["note"] = RESULT_NOTE
                    if words_only or self.syscalls.format.native:
                        params["grammar"] = syscall.ANSWER
                    checked = result_page
                read = _Reader(self.syscalls, proc, may_call=calls and not echoed) if watch else None
                step_result = Generation()
                held: list[Step] = []
                """Steps not shown yet: the splitter's tail, and the whole answer to a result, which
                is shown once it is known to state it (``_second_look``)."""
                async for step in self.generate(proc, result=step_result, cancel=cancel,
                                                finish=read.finish if read else None, **params):
                    if read is not None:
                        step = dataclasses.replace(step, text=read.split.feed(step.text))
                    if checked is None:
                        yield step
                    else:
                        held.append(step)
                if read is not None:
                    held += read.flush()
                    step_result.text = read.words
                if checked is not None and step_result.stop_reason != "interrupted" and read.words.strip():
                    held = await self._second_look(proc, text, typed.seq, checked, read.words, held,
                                                   step_result, cancel, params)
                for step in held:
                    yield step
                _merge(result, step_result)
                if step_result.stop_reason == "interrupted":
                    break
                if (not echoed and grammar is None and step_result.stop_reason in ("stop", "eos")
                        and not step_result.text.strip()
                        and (read is None or (read.call is None and read.error is None))):
                    # Stopped at a fence, or ended, before a word (the default model ended at
                    # once on "How many minutes are in 7 hours?" after a failed call): once
                    # more, held to words, which cannot open with a blank.
                    echoed = True
                    continue
                if read is None:
                    break
                if not calls:  # a result came back: this round was to answer it in words
                    if read.attempted and not read.words.strip() and not words_only:
                        words_only = True  # the model only tried to call again: once more, held to words
                        continue
                    break
                if round_ == MAX_CALLS_PER_TURN:
                    break
                if read.error is not None:
                    await asyncio.to_thread(self.add_page, proc, Origin.KERNEL, f"syscall error: {read.error}")
                    failed += 1
                    calls = failed < MAX_FAILED_CALLS
                    continue
                if read.call is None:
                    break
                page = await self.dispatch(proc, read.call)
                result_page = page if page.origin is Origin.DEVICE else None
                # Small models tend to call again and again once they have a result; after a
                # call that worked, the next round answers. A failed call may be retried once, but
                # not one the user refused: the user is asked once per turn, not nagged.
                failed += page.origin is Origin.KERNEL
                calls = page.origin is Origin.KERNEL and page.source != "refused" and failed < MAX_FAILED_CALLS
        finally:
            self.traps.disarm(proc.pid, cancel)
            if proc.alive and proc.state is not ProcState.SLEEPING:
                self.set_state(proc, ProcState.SLEEPING)  # whatever ended the turn, it is idle now

    async def _second_look(self, proc: Process, question: str, since: int, device_page: Page, words: str,
                           steps: list[Step], result: Generation, cancel: threading.Event,
                           params: dict) -> list[Step]:
        """The steps to show for an answer to ``device_page``: ``steps`` when its ``words`` state
        the result (``kernel/stated.py``); else the answer asked once more, from the pinned
        pages and this turn's pages alone (from ``seq`` ``since``: the question, the call, its
        result), where the earlier answers the model copied are not in view, greedily. That answer
        replaces the first in RAM and the journal when it states the result; the first, never
        shown, is named in dmesg. ``result`` (this round's) takes the second answer's text and
        counts."""
        if stated.states(words, device_page.text, question):
            return steps
        answer = max((p for p in proc.space.pages if p.origin is Origin.ASSISTANT), key=lambda p: p.seq)
        tokens, cuts = proc.space.prompt(lambda p: p is not answer and (p.pinned or p.seq >= since))
        cuts.append(len(tokens))
        tokens += self._closing(params["note"])
        read, again, job = _Reader(self.syscalls, proc, may_call=False), Generation(), PLAIN_JOB - proc.pid
        retry: list[Step] = []
        core = self.cores[proc.core]
        # Greedy: with no earlier answer in view there is nothing for it to repeat (the reason
        # chat answers are sampled), and it reads the result most faithfully. On the seven
        # answers of ``llmos bench tools`` that failed this check, a sampled second answer stated
        # its result twice, a greedy one seven times.
        sched_params = {k: v for k, v in params.items() if k != "note"} | {"temperature": 0.0}
        self.set_state(proc, ProcState.RUNNING)
        try:
            async for step in core.generate(job, tokens, priority=proc.priority, result=again, cancel=cancel,
                                            cuts=cuts, **sched_params):
                if not step.blocked:
                    retry.append(dataclasses.replace(step, text=read.split.feed(step.text)))
        finally:
            core.forget(job)
        text = read.finish(again)
        retry += read.flush()
        proc.tokens_in += again.prompt_tokens - again.reused_tokens
        proc.tokens_out += len(again.tokens)
        proc.cpu_s += again.prefill_s + again.decode_s
        kept = again.stop_reason != "interrupted" and stated.states(read.words, device_page.text, question)
        self.journal.log("info", f"pid {proc.pid}: the answer to {device_page.source or 'a device'} did not "
                                 f"state its result ({' '.join(words.split())[:80]!r}); asked again from this turn: "
                                 f"{'kept' if kept else 'no better, the first is shown'}", pid=proc.pid)
        if not kept:
            return steps
        await asyncio.to_thread(self.pager.rewrite, proc.space, answer, text)
        result.text, result.tokens = read.words, result.tokens + again.tokens
        result.decode_s += again.decode_s
        result.prefill_s += again.prefill_s
        return retry

    def _admit_quietly(self, proc: Process, page: Page) -> None:
        try:
            self.pager.admit(proc.space, page)
        except LlmosError as exc:  # the disk again: the page is in the journal, so not lost
            self.journal.log("warn", f"pid {proc.pid}: input kept in the journal only: {exc}", pid=proc.pid)

    def interrupt(self, pid: int) -> bool:
        """Ctrl-C for a process: its generation stops within one token."""
        return self.traps.interrupt(pid)

    async def dispatch(self, proc: Process, call: syscall.Call) -> Page:
        """Check and run one system call (``kernel/dispatch.py``); its result, or the reason it
        did not run, becomes a page. Never raises for the call's faults."""
        return await self.syscalls.dispatch(proc, call)

    async def generate(self, proc: Process, *, result: Generation | None = None,
                       cancel: threading.Event | None = None,
                       finish: Callable[[Generation], str] | None = None, note: str = "",
                       plain: bool = False, opening: str = "", **params) -> AsyncIterator[Step]:
        """Run the CPU on the process's resident pages; the answer becomes an assistant page.

        The answer is journalled while it streams, so a kill -9 loses nothing
        already generated; it enters RAM as a page when it is complete, with the
        text ``finish(result)`` gives (the turn writes a call in its canonical form).
        An answer cut short is marked in its source: ``interrupted``, or ``loop``
        when it was stopped for repeating itself. ``note``: a kernel message the CPU
        reads just before this answer, and only for it (it takes no page). ``opening``: text the
        answer must begin with, read with the prompt (``Decoding``'s ``opened``). ``plain``: the
        answer is generated from ``plain_context`` (no devices) as a job of its own, so the
        process's saved CPU state stays that of its full prompt.
        """
        result = result if result is not None else Generation()
        job = proc.pid
        if plain:
            (tokens, cuts), job = self._plain_prompt(proc), PLAIN_JOB - proc.pid
        else:
            tokens, cuts = proc.space.prompt()
        cuts.append(len(tokens))
        tokens += self._closing(note)
        if opening:
            cuts.append(len(tokens))
            opened = self.cores[proc.core].cpu.tokenize(opening, special=False)
            tokens += opened
            params["opened"] = len(opened)
        answer = Page(proc.pid, Origin.ASSISTANT, "", seq=proc.space.next_seq)
        proc.space.next_seq += 1
        self.journal.record_page(answer)
        self.set_state(proc, ProcState.READY)
        started = time.perf_counter()
        in_before, out_before = proc.tokens_in, proc.tokens_out
        try:
            async for step in self.cores[proc.core].generate(job, tokens, priority=proc.priority, result=result,
                                                             cancel=cancel, cuts=cuts, **params):
                if step.blocked:  # the CPU's server stopped answering; it retries by itself
                    if proc.state is not ProcState.BLOCKED:
                        self.set_state(proc, ProcState.BLOCKED, step.blocked)
                        self.journal.log("warn", f"pid {proc.pid}: {step.blocked}", pid=proc.pid)
                    continue
                if proc.state is ProcState.BLOCKED:
                    self.journal.log("info", f"pid {proc.pid}: cpu back, answer resumed "
                                             f"after {len(result.text)} characters", pid=proc.pid)
                # Counted as it streams (ps shows it, a crash keeps it); the prompt once it is read.
                proc.tokens_in = in_before + result.prompt_tokens - result.reused_tokens
                proc.tokens_out = out_before + len(result.tokens)
                if proc.state is not ProcState.RUNNING:
                    self.set_state(proc, ProcState.RUNNING)
                if step.text:
                    self.journal.append_text(answer.id, step.text, tokens_out=proc.tokens_out)
                yield step
        finally:
            proc.tokens_in = in_before + result.prompt_tokens - result.reused_tokens
            proc.tokens_out = out_before + len(result.tokens)
            proc.cpu_s += time.perf_counter() - started if not result.decode_s else result.prefill_s + result.decode_s
            proc.model = self.cores[proc.core].cpu.name
            answer.text = finish(result) if finish is not None else result.text
            if result.stop_reason in ("interrupted", "loop"):
                answer.source = result.stop_reason
            if plain:  # its state is of no use to the process: free it now
                self.cores[proc.core].forget(job)
            self.pager.place(proc.space, answer)  # sync: must happen even when the task is cancelled
            if proc.alive:
                self.set_state(proc, ProcState.SLEEPING)

    def _closing(self, note: str) -> list[int]:
        """What follows a prompt's pages: the kernel's ``note`` for this answer, if any, then the
        template's generation prompt."""
        return (self._encode("system", f"{KERNEL_MARK} {note}") if note else []) + self._gen_prompt

    def plain_context(self, proc: Process) -> list[int]:
        """What a process's answer in words to a statement is generated from: its system prompt
        without the devices section, then the statement (its last page) alone.

        Why: shown a tools section, the default model starts a call for a plain statement
        ("My dog is called Biscuit.") nine times in ten, and held to words it describes one
        ("Here is a JSON object with the function name calc ...", 9 of 12 statements); the
        same model without the section answers them in words. The statement alone, not the
        pages before it: given the last exchange too, the model repeated its answer ("I live
        in Lisbon." -> "The answer is 7006652." after a product, seen in the shell). The
        process's own prompt, and its saved KV state, keep everything for its next request."""
        return self._plain_prompt(proc)[0]

    def _plain_prompt(self, proc: Process) -> tuple[list[int], list[int]]:
        """``plain_context`` and where its pages begin (as ``AddressSpace.prompt``)."""
        section = self.syscalls.section(proc) if proc.grants and self.devices is not None else ""
        out: list[int] = []
        cuts: list[int] = []
        pages = [p for p in proc.space.pages if p.resident]
        for page in pages:
            if page.origin is Origin.SYSTEM and page.pinned and page.source != "grant":
                text = page.text[:len(page.text) - len(section)] if section and page.text.endswith(section) else page.text
                cuts.append(len(out))
                out += self._encode("system", text) if text.strip() else []
        last = [p for p in pages if p.origin is not Origin.SYSTEM][-1:]
        cuts.append(len(out))
        return out + (last[0].tokens or [] if last else []), cuts

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
        for sched in self.cores:
            sched.close()
        for proc in self.procs.values():
            if proc.alive:
                self.save(proc)
        self.journal.close()


class _Reader:
    """Reads one generation round of a process with devices for a call: splits the words
    from a call while it streams, and decides, once the round is over, what the answer page
    holds (the words, then the call in its canonical form; a call that may not run now is
    left out: it was never shown, and it would teach the model to write one again)."""

    def __init__(self, syscalls: Dispatcher, proc: Process, *, may_call: bool) -> None:
        self.syscalls, self.names, self.may_call = syscalls, syscalls.names(proc), may_call
        self.split = toolcall.Splitter()
        self.call: syscall.Call | None = None
        self.error: syscall.SyscallError | None = None
        self.words = ""

    @property
    def attempted(self) -> bool:
        return self.call is not None or self.error is not None

    def finish(self, result: Generation) -> str:
        text = result.text
        self.words = text
        if result.stop_reason == "interrupted":
            return text
        try:
            found = toolcall.locate(text, self.names)
        except syscall.SyscallError as exc:
            self.error = exc
            at = toolcall.opening(text)
            self.words = text[:at].rstrip() if at >= 0 else ""
            return text if self.may_call else self.words
        if found is None:
            return text
        at, self.call = found
        self.words = text[:at].rstrip()
        if not self.may_call:
            return self.words
        return (self.words + "\n" if self.words else "") + self.syscalls.canonical(self.call)

    def flush(self) -> list[Step]:
        """The text the splitter still holds, as words or as a call, once ``finish`` decided."""
        words, call = self.split.finish(self.attempted)
        out = [Step(-1, words)] if words else []
        return out + ([Step(-1, call, call=True)] if call else [])


def _merge(total: Generation, part: Generation) -> None:
    """Add one generation round of a turn to the turn's result."""
    total.text += part.text
    total.tokens += part.tokens
    total.prompt_tokens = part.prompt_tokens
    total.reused_tokens = part.reused_tokens
    total.stop_reason = part.stop_reason
    total.prefill_s += part.prefill_s
    total.decode_s += part.decode_s
    total.first_token_s = total.first_token_s or part.first_token_s


def pressure_level(usage: float) -> str:
    from llmos.memory.ram import EVICT_AT, WARN_AT

    return "evicting" if usage >= EVICT_AT else "warning" if usage >= WARN_AT else "ok"
