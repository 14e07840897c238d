"""System-call dispatch: from a call the model wrote to a page the process reads.

xv6 keeps ``syscall.c`` apart from ``proc.c``; so does llmos. The kernel hands
a parsed ``Call`` to :meth:`Dispatcher.dispatch`, which decides in this order:

1. the name is text and the arguments are text (no lone surrogates);
2. ``recall`` is the kernel's own service: a page fault with the model's query;
3. the device is granted to the process and loads (else an error page that
   names what is granted);
4. policy: a ``deny`` device never runs;
5. the arguments fit the device's schema, checked *before* anyone is asked;
6. taint and approval: a non-``safe`` call waits, BLOCKED, for the user, and
   the request names every untrusted source that entered the context;
7. the call runs off the event loop; the audit log gets one row either way;
8. the result is an untrusted DEVICE page, or the reason it did not run a
   KERNEL page (``source="refused"`` when the user or policy said no, so the
   turn does not ask again).

It never raises for the call's faults. It also knows how a process is taught
its devices (the prompt section and the grammar, in the CPU's own tool-call
format: ``kernel/toolcall.py``), because that depends on the same grants.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, NamedTuple

from llmos.kernel import syscall, toolcall
from llmos.kernel.proc import Process, ProcState
from llmos.memory.page import Origin, Page, Trust

if TYPE_CHECKING:
    from llmos.kernel.kernel import Kernel


@dataclass
class Approval:
    """A risky device call waiting for the user: what runs, for whom, and why it is asked."""

    pid: int
    app: str
    device: str
    args: dict
    risk: str
    untrusted_sources: list[str] = field(default_factory=list)
    """Where untrusted text in the process's context came from (prompt-injection defence)."""

    def describe(self) -> str:
        call = f"{self.device}({json.dumps(self.args, ensure_ascii=False)})"
        why = f" after untrusted content from {', '.join(self.untrusted_sources)}" if self.untrusted_sources else ""
        return f"pid {self.pid} ({self.app}) wants to run {call} [risk {self.risk}]{why}"


RESULT_NOTE = "Answer the user's question with the result above, in one short sentence."
"""The kernel's note before the answer to a device result. "In one short sentence": on the 50
one-call turns of ``llmos bench tools`` the answers went from 64.7 to 49.2 characters, 3.13 to
2.90 s a turn (right answers 37 / 36 of 41; "in as few words as it takes": 38 characters,
35 of 41). Before that it read "Use the result above to answer the user's question
directly." Why a note at all: asked nothing, Qwen2.5-0.5B
calls the same function again after every tool response (greedy and sampled, measured); with
this trusted note after the untrusted result it states the result (14 of 18 answers, greedy and
sampled, on six results; 11 of 18 with "Now answer the user in words, using that result.";
a note that opens "The tool response above ..." did as well but was copied into the answers, and
later turns imitated them). Device output itself stays
data, never instructions. The note is shown to the CPU for that answer only (``Kernel.generate``'s
``note``): kept in RAM, later turns were seen to imitate the terse answers it draws out."""


class CallGrammar(NamedTuple):
    """What constrains one round that may call (``Dispatcher.grammar``)."""

    text: str
    """GBNF for one call of the granted devices."""
    lazy: str | None
    """The trigger from which it applies; None: from the first token (a forced call)."""
    opening: str = ""
    """A forced call to one device: what it must begin with (its name, and as much of its
    arguments as the schema leaves no choice in: ``_arguments_opening``), which the CPU reads with
    the prompt instead of writing token by token (``Decoding``'s ``opened``). "" where the model
    still chooses the device."""


class Dispatcher:
    """The kernel's system-call table for its processes. See the module docstring."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._grammars: dict[tuple, tuple[str, str | None]] = {}
        """(grants, forced) -> (grammar, lazy trigger): built once per set of grants."""

    def forget_grammars(self) -> None:
        """The CPU changed (``kernel/hotswap.py``): grammars are rebuilt in its call format."""
        self._grammars.clear()

    @property
    def format(self) -> toolcall.Format:
        """The tool-call format of core 0, whose template every core shares."""
        return self.kernel.cpu.tool_format

    # -- teaching a process its devices ----------------------------------------------------

    def specs(self, proc: Process, recall: bool = True) -> list[syscall.Spec]:
        """The granted devices that load; one that does not is logged and left out of the
        prompt and grammar (a call to it becomes an error page, not a crash)."""
        devices = []
        for name in sorted(proc.grants - {"recall"}):
            try:
                devices.append(self.kernel.devices.get(name))
            except Exception as exc:
                self.kernel.journal.log("warn", f"pid {proc.pid}: device {name} unavailable: {exc}", pid=proc.pid)
        specs = syscall.specs(devices)
        return specs if recall or not devices else [s for s in specs if s.name != "recall"]

    def section(self, proc: Process) -> str:
        """The system-prompt text that teaches the process its devices, in the CPU's format."""
        return toolcall.system_section(self.kernel.cpu, self.specs(proc))

    def names(self, proc: Process) -> list[str]:
        return sorted(proc.grants | {"recall"})

    def grammar(self, proc: Process, *, forced: bool, only: frozenset[str] | None = None,
                leave_out: dict[str, frozenset[str]] | None = None) -> CallGrammar:
        """The call grammar, its lazy trigger and, for a forced call, its opening (``CallGrammar``).
        A forced call is a device call: the pager already recalls before every turn. ``only``:
        a forced call names one of these devices (``kernel/intent.py``'s ``required``), without
        the optional arguments ``leave_out`` names for it (``intent.unasked``)."""
        only = only if forced and only else None
        dropped = tuple(sorted((d, a) for d, names in (leave_out or {}).items() for a in names)) if only else ()
        key = (tuple(sorted(proc.grants)), forced, self.format.family, tuple(sorted(only or ())), dropped)
        if key not in self._grammars:
            specs = self.specs(proc, recall=not forced)
            chosen = [_without(s, (leave_out or {}).get(s.name, frozenset())) for s in specs if s.name in (only or ())]
            specs = chosen or specs  # none of them loads: the model may call any device
            opening = self._opening(chosen[0]) if len(chosen) == 1 and len(only) == 1 else ""
            if self.format.native:
                built = CallGrammar(toolcall.grammar(specs, lazy=not forced),
                                    None if forced else toolcall.trigger(specs), opening)
            else:
                built = CallGrammar(syscall.grammar(specs, lazy=not forced), None if forced else syscall.TRIGGER, opening)
            self._grammars[key] = built
        return self._grammars[key]

    def _opening(self, spec: syscall.Spec) -> str:
        """What a forced call to ``spec`` begins with: its name, and as much of its arguments as
        the grammar leaves no choice in (``_arguments_opening``)."""
        name = json.dumps(spec.name, ensure_ascii=False)
        head = f'{{"name": {name}, "arguments":' if self.format.native else f'{syscall.OPEN}{{"device": {name}, "args":'
        return head + _arguments_opening(spec.schema)

    def canonical(self, call: syscall.Call) -> str:
        """A call as the model's own format writes it, for the answer page: later turns see
        their earlier calls in the form they were taught, not a stray variant."""
        if self.format.native:
            body = json.dumps({"name": call.device, "arguments": call.args}, ensure_ascii=False)
            return f"<tool_call>\n{body}\n</tool_call>" if self.format.family == "hermes" else body
        return f"{syscall.OPEN}{json.dumps({'device': call.device, 'args': call.args}, ensure_ascii=False)}" \
               f"{syscall.CLOSE}"

    # -- running one call --------------------------------------------------------------------

    async def dispatch(self, proc: Process, call: syscall.Call) -> Page:
        """Check and run one system call; its result (or the reason it did not run) becomes a page."""
        from llmos.devices.base import Risk, check_args, invoke

        k = self.kernel
        started = time.perf_counter()
        approved_by, error, refused = "auto (safe)", None, False
        device = None
        # A call from an app (or a JSON escape from a model) may carry anything: what the audit,
        # the events and the pages name it by is text, and short.
        name = call.device if isinstance(call.device, str) else repr(call.device)
        name = name.encode("utf-8", "backslashreplace").decode("utf-8")
        name = name if len(name) <= 200 else f"{name[:200]}..."
        if not isinstance(call.device, str):
            error = f"a device name is a string, not {type(call.device).__name__}"
        elif not syscall.is_text(call.device):
            error = f"the device name {name!r} is not text (it holds a lone surrogate)"
        elif not syscall.is_text(call.args):
            error = f"the arguments of {name} are not text (a string in them holds a lone surrogate)"
        elif call.device == "recall":
            return await self._recall(proc, call)
        else:
            try:
                device = k.devices.get(call.device) if call.device in proc.grants else None
            except Exception as exc:  # an unknown or broken device: the registry says why
                error = str(exc)
        if device is None:
            approved_by = ""  # the audit must not say a refused call was approved
            error = error or f"device {name!r} is not granted to this process (granted: " \
                             f"{', '.join(sorted(proc.grants)) or 'none'})"
        elif Risk(device.risk) is Risk.DENY:
            approved_by, refused = "", True
            error = f"device {call.device!r} is denied by policy"
        elif (problem := check_args(device, call.args)) is not None:
            # Checked before asking: nobody is asked to approve a call that cannot run.
            approved_by = ""
            error = f"bad arguments for {call.device}: {problem}"
        elif Risk(device.risk) is not Risk.SAFE:
            allowed = await self._ask(proc, call, Risk(device.risk).value)
            approved_by, refused = ("user", False) if allowed else ("", True)
            if not allowed:
                error = ("the user did not approve this call" if k.approver
                         else "this call needs approval and there is no one to ask")
        result = None
        if error is None:
            k.set_state(proc, ProcState.BLOCKED, f"device: {call.device}")
            result = await asyncio.to_thread(invoke, device, call.args)  # a device's completion wakes us
            error = result.error
        k.set_state(proc, ProcState.READY)
        duration = time.perf_counter() - started
        output = result.output if result is not None and error is None else ""
        try:
            json.dumps(call.args, default=str)
            audited = call.args
        except (TypeError, ValueError, RecursionError):  # circular or too deep (an app's call): named, not kept
            audited = {"(not JSON)": type(call.args).__name__}
        k.journal.audit(proc.pid, name, audited, approved_by, len(output), duration, error)
        k.emit("device", pid=proc.pid, device=name, args=audited, error=error, seconds=duration,
               bytes=len(output), output=output[:400])
        if error is not None:
            # A call the user (or policy) refused is marked, so the turn does not ask again.
            return (await asyncio.to_thread(k.add_page, proc, Origin.KERNEL, f"syscall {name} failed: {error}",
                                            source="refused" if refused else ""))[0]
        source = f"{call.device}({json.dumps(call.args, ensure_ascii=False)[:200]})"
        return (await asyncio.to_thread(k.add_page, proc, Origin.DEVICE, output, source=source))[0]

    async def _recall(self, proc: Process, call: syscall.Call) -> Page:
        from llmos.devices.base import check_args

        k = self.kernel
        problem = check_args(syscall.Spec(**syscall.RECALL), call.args)
        if problem is not None:
            text = f"syscall recall failed: bad arguments for recall: {problem}"
            return (await asyncio.to_thread(k.add_page, proc, Origin.KERNEL, text))[0]
        query = call.args["query"]
        pages = await asyncio.to_thread(k.pager.fault, proc.space, query)
        text = f"recalled {len(pages)} page(s) for {query!r}" if pages else f"nothing found for {query!r}"
        return (await asyncio.to_thread(k.add_page, proc, Origin.KERNEL, text))[0]

    async def _ask(self, proc: Process, call: syscall.Call, risk: str) -> bool:
        """Every non-safe call is approved by the user. Taint: the request names every source
        of untrusted text that ever entered this context, resident or swapped out since (what
        the model wrote after reading it may carry it on), so an injected instruction shows."""
        k = self.kernel
        untrusted = sorted({p.source or p.origin.value for p in proc.space.pages if p.trust is Trust.UNTRUSTED})
        request = Approval(proc.pid, proc.app, call.device, call.args, risk, untrusted)
        k.set_state(proc, ProcState.BLOCKED, f"approval: {call.device}")
        k.emit("approval", pid=proc.pid, request=request)
        return bool(k.approver and await k.approver(request))


def _arguments_opening(schema: dict) -> str:
    """The start of a forced call's arguments, where the schema leaves a single way to begin:
    ``{}`` for a closed object with no properties left (the time now: the call is whole), and
    ``{"KEY": "`` where one property is left and it is a required string (a sum's expression,
    a search's query); else nothing. Each token the kernel writes is one the CPU does not
    decode (~37 ms each with the default model on two cores: 4 of the ~10 a calc call took).
    Cut where the model's tokenizer cuts (``' {"'``, ``'expr'``, ``'":'``, ``' "'``), so the
    value's first token is the one the model would write next anyway."""
    props = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(props, dict) or schema.get("additionalProperties") is not False:
        return ""
    if not props:
        return " {}}"
    if len(props) != 1:
        return ""
    key, sub = next(iter(props.items()))
    if key not in schema.get("required", ()) or not isinstance(sub, dict) or sub.get("type") != "string":
        return ""
    return f' {{{json.dumps(key, ensure_ascii=False)}: "'


def _without(spec: syscall.Spec, names: frozenset[str]) -> syscall.Spec:
    """``spec`` whose schema no longer offers the optional properties ``names``."""
    props = spec.schema.get("properties")
    names = names - set(spec.schema.get("required", ()))
    if not names or not isinstance(props, dict):
        return spec
    schema = dict(spec.schema, properties={k: v for k, v in props.items() if k not in names})
    return replace(spec, schema=schema)
