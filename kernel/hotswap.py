"""Changing the CPU while the OS runs (``/model NAME`` in the shell).

A process does not belong to a model: its pages are text, and the model only
reads them. So a switch keeps every process and every page, and redoes what
depends on the model:

1. **Counting.** Every resident page is tokenized again with the new model's
   tokenizer and template (a page's size is in the new model's tokens, and its
   tokens are what the new CPU reads). Swapped pages are counted when they come
   back. The RAM is the new model's context minus the reserve, so a smaller
   context means pressure, handled as always: LRU pages go to swap, none lost.
2. **Devices.** A process with devices was taught them in the old model's call
   format (a tools section, or llmos's ``<syscall>`` block); its pinned pages
   are rewritten in the new one, and the grammars rebuilt.
3. **Saved CPU state.** KV snapshots are states of one model's context; they
   are kept per model (path and context size), so switching back resumes each
   process without re-reading it, and no state ever reaches another model.
   Hibernated prefixes are keyed by model file already (``kernel/hibernate.py``);
   the new model warms the shell's prefix from its own, or reads it once.

A switch waits for no answer: it is refused while a process is generating
(interrupt it, or wait). The caller loads the new model first, so a model that
fails to load leaves the old one running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmos.errors import UsageError
from llmos.kernel import hibernate
from llmos.kernel.cpu import CPU
from llmos.kernel.proc import ProcState
from llmos.memory.page import Origin

if TYPE_CHECKING:
    from llmos.kernel.kernel import Kernel


def model_key(cpu: CPU) -> str:
    """Which saved CPU states fit ``cpu``: its weights file and context size."""
    return f"{getattr(cpu, 'path', None) or cpu.name}:{cpu.n_ctx}"


def switch(kernel: Kernel, cores: list[CPU]) -> None:
    """Run ``kernel``'s processes on ``cores`` (loaded by the caller) from now on."""
    busy = [p.pid for p in kernel.procs.values() if p.state in (ProcState.RUNNING, ProcState.BLOCKED, ProcState.READY)]
    if busy:
        raise UsageError(f"process {busy[0]} is answering: wait for it, or interrupt it (Ctrl+C), then switch")
    old_sections = {pid: kernel.syscalls.section(p) for pid, p in kernel.procs.items()
                    if p.alive and p.grants and kernel.devices is not None}
    # The state each old core holds goes to its store (a call saves the holder), kept by model.
    for sched in kernel.cores:
        if sched.cpu.can_snapshot:
            sched.call(lambda cpu: None).result()
        kernel.saved_states[model_key(sched.cpu)] = sched.snapshots
        sched.close()
    old_cpus = kernel.cpus
    kernel.use_cpus(cores)
    for sched in kernel.cores:
        kept = kernel.saved_states.pop(model_key(sched.cpu), None)
        if kept is not None:
            sched.snapshots = kept
    for cpu in old_cpus:
        if cpu not in cores:
            close = getattr(cpu, "close", None)
            if close is not None:
                close()
    kernel.syscalls.forget_grammars()
    for proc in kernel.procs.values():
        if not proc.alive:
            continue
        _reteach(kernel, proc, old_sections.get(proc.pid))
        proc.space.budget = min(proc.space.budget, kernel.ram) if proc.space.budget else kernel.ram
        kernel.pager.recount(proc.space)
        kernel.save(proc)
    first = next((p for p in kernel.procs.values() if p.alive), None)
    if first is not None:
        prefix, cuts = first.space.prompt()
        kernel.warm = kernel.cores[first.core].call(lambda cpu: hibernate.warm(cpu, prefix, tuple(cuts)))
    name = kernel.cpu.name
    kernel.journal.log("info", f"cpu: switched to {name} (context {kernel.cpu.n_ctx:,} tokens, RAM {kernel.ram:,})")
    kernel.emit("cpu", name=name, n_ctx=kernel.cpu.n_ctx)


def _reteach(kernel: Kernel, proc, old: str | None) -> None:
    """Rewrite the pinned pages that teach ``proc`` its devices in the new CPU's call format."""
    if not old:
        return
    new = kernel.syscalls.section(proc)
    if new == old:
        return
    for page in proc.space.pages:
        if page.origin is not Origin.SYSTEM or not page.pinned:
            continue
        if page.source == "grant":  # a /grant page: the protocol for the whole set, in the new format
            page.text = new.lstrip("\n")
        elif page.text.endswith(old):
            page.text = page.text[:len(page.text) - len(old)] + new
        else:
            continue
        page.tokens = None  # counted again by the pager's recount
