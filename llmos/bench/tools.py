"""``llmos bench tools``: what the CPU really does with devices, against the raw model.

The set (``llmos/bench/data/tools.jsonl``, written for llmos) is 126 cases,
180 turns, phrased the way people type: about half need one built-in device
(calc with a value the expression must evaluate to, clock, search of the demo
notes with the subject the query must name), about a third need none
(knowledge, writing, explanation, small talk, and statements such as "I live
in Lisbon." that a small model answers with an invented call), the rest are
conversations of two or three turns that mix both ("What is my dog called?"
after a calculation) and six of four to six turns where most turns call (a
later answer must state its own result, not copy an earlier one).

Each turn is scored on:

- **decision**: a call was made if and only if one was expected;
- **call**: the first call names the right device with right arguments (the
  calc expression evaluates to the expected number; search or files with the
  subject in the query; clock);
- **uses result**: after a call that ran, the answer states its result (the
  number; the year or the time; the fact the note holds);
- **answer**: the answer is right however it was found (the expected number
  for a sum, the note's fact for a notes question; a note the pager paged in
  counts): what the user gets, where the set can tell;
- **loop**: the answer repeats one phrase (``kernel/sampling.py``);
- seconds per turn.

The baseline in the same run is the raw model with its own template: the
devices in the template's tools section (llmos's generic one where the
template has none), generated with the same sampling and seed, calls read
with the same lenient parser, one call run and its result handed back as a
tool message, no grammar, no kernel note. It is what a user of
``llama-server --jinja`` gets from the same weights.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import time
from fractions import Fraction
from importlib import resources
from pathlib import Path

from llmos.errors import UsageError

DEVICES = ("calc", "clock", "files", "search")
MAX_TOKENS = 200


def cases(limit: int | None = None) -> list[dict]:
    text = resources.files("llmos.bench").joinpath("data/tools.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return rows[:limit] if limit else rows


# -- scoring ---------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _numbers(text: str) -> list[float]:
    return [float(n) for n in _NUMBER.findall(text.replace(",", "").replace("\u202f", ""))]


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= max(1e-6, abs(b) * 1e-4) or round(a, 2) == round(b, 2)


def call_right(expect: dict, call: dict | None) -> bool:
    """Whether the first call is the expected device with the right arguments."""
    if call is None:
        return False
    device, args = call["device"], call["args"]
    if expect["device"] == "calc":
        from llmos.devices.base import invoke
        from llmos.devices.calc import CalcDevice

        if device != "calc" or not isinstance(args.get("expr"), str):
            return False
        out = invoke(CalcDevice(), {"expr": args["expr"]})
        # The value, not the first number of the text: "38/3 (≈ 12.67)" is 12.67, not 38.
        return out.error is None and _close(float(Fraction(out.data["fraction"])), float(expect["value"]))
    if expect["device"] == "search":
        text = json.dumps(args, ensure_ascii=False).lower()
        return device in ("search", "files", "recall") and any(w in text for w in expect["about"])
    return device == expect["device"]


def answer_right(expect: dict, words: str, quoted: tuple[str, ...] = ()) -> bool | None:
    """Whether the answer is right, however it was found (None: the set cannot tell, as for
    the time now): the expected number for a sum, the fact the note holds for a notes question.
    ``quoted``: what the user typed in the conversation so far; an answer that quotes it is
    not credited with its numbers ("the answer to 'What is 17 * 23?' is 391" does not answer
    "391 divided by 17" with 23)."""
    for text in quoted:
        words = words.replace(text, " ")
    if expect["device"] == "calc":
        return any(_close(n, float(expect["value"])) for n in _numbers(words))
    if "answer" in expect:
        said = " ".join(words.lower().split())
        return any(a.lower() in said for a in expect["answer"])
    return None


def uses_result(expect: dict, call: dict, words: str, quoted: tuple[str, ...] = ()) -> bool:
    """Whether the answer states the result of a call that ran."""
    right = answer_right(expect, words, quoted)
    if right is not None:
        return right
    output = call.get("output", "")
    if expect["device"] == "clock":
        marks = re.findall(r"\b\d{4}\b|\b\d{1,2}:\d{2}\b", output)
        return any(m in words for m in marks)
    seen = {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z-]{4,}", output)}
    said = {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z-]{4,}", words)}
    return bool(seen & said - {"untrusted", "device", "notes"})


def score(expect: dict | None, calls: list[dict], words: str, looped: bool, seconds: float,
          quoted: tuple[str, ...] = ()) -> dict:
    """One turn's row: its scores, the start of its answer and the calls it made. ``quoted``:
    the user's turns so far (``answer_right``)."""
    first = calls[0] if calls else None
    row = {"decision": (expect is None) == (first is None), "loop": looped, "seconds": round(seconds, 2),
           "words": words[:300], "calls": [{k: c.get(k) for k in ("device", "args", "error")} for c in calls]}
    if expect is not None:
        row["call"] = call_right(expect, first)
        if (right := answer_right(expect, words, quoted)) is not None:
            row["answer"] = right
        ran = first is not None and first.get("error") is None
        if ran and row["call"]:
            row["uses_result"] = uses_result(expect, first, words, quoted)
    return row


def summary(rows: list[dict]) -> dict:
    def mean(key, subset):
        values = [r[key] for r in subset if key in r]
        return round(sum(values) / len(values), 3) if values else None

    out = {"turns": len(rows), "decision_accuracy": mean("decision", rows), "call_accuracy": mean("call", rows),
           "uses_result": mean("uses_result", rows), "answer_accuracy": mean("answer", rows),
           "loop_rate": mean("loop", rows),
           "seconds_per_turn": mean("seconds", rows)}
    need = [r for r in rows if "call" in r]
    out["false_calls"] = round(sum(not r["decision"] for r in rows if "call" not in r) /
                               max(1, sum("call" not in r for r in rows)), 3)
    out["missed_calls"] = round(sum(not r["decision"] for r in need) / max(1, len(need)), 3)
    by_kind = {}
    for kind in ("call", "none", "multi"):
        subset = [r for r in rows if r["kind"] == kind]
        if subset:
            by_kind[kind] = {"turns": len(subset), "decision_accuracy": mean("decision", subset),
                             "call_accuracy": mean("call", subset)}
    out["by_kind"] = by_kind
    return out


# -- the two systems ---------------------------------------------------------------------------

def _typed(case: dict, turn: dict) -> tuple[str, ...]:
    """The user's turns of ``case`` up to and including ``turn``."""
    turns = case["turns"]
    return tuple(t["user"] for t in turns[:turns.index(turn) + 1])


async def _llmos_case(kernel, case: dict, sampling, seed: int) -> list[dict]:
    from llmos.apps.chat import CHAT_SYSTEM
    from llmos.kernel.cpu import Generation
    from llmos.kernel.sampling import repeated_tail

    proc = kernel.spawn("bench-tools", CHAT_SYSTEM, grants=set(DEVICES))
    out = []
    try:
        for turn in case["turns"]:
            calls: list[dict] = []

            def listen(kind, data, calls=calls):
                if kind == "device":
                    calls.append(data)

            kernel.listeners.append(listen)
            result, words = Generation(), ""
            started = time.perf_counter()
            try:
                async for step in kernel.turn(proc, turn["user"], max_tokens=MAX_TOKENS, sampling=sampling,
                                              seed=seed, result=result):
                    words += "" if step.call else step.text
            finally:
                kernel.listeners.remove(listen)
            looped = result.stop_reason == "loop" or repeated_tail(words) is not None
            out.append(score(turn["expect"], calls, words, looped, time.perf_counter() - started,
                             _typed(case, turn)))
    finally:
        kernel.kill(proc.pid)
    return out


def _baseline_case(kernel, registry, case: dict, sampling, seed: int) -> list[dict]:
    """The raw model, as the module docstring says: on the kernel's CPU thread (one OpenMP team)."""
    from llmos.apps.chat import CHAT_SYSTEM
    from llmos.devices.base import invoke
    from llmos.kernel import syscall, toolcall
    from llmos.kernel.cpu import Generation
    from llmos.kernel.sampling import repeated_tail

    cpu = kernel.cpu
    specs = syscall.specs([registry.get(n) for n in DEVICES])
    messages = [("system", CHAT_SYSTEM + toolcall.native_section(cpu, specs))]
    names = [s.name for s in specs]

    def generate(msgs) -> Generation:
        def run(c):
            g = Generation()
            list(c.stream(c.chat_tokens(msgs), max_tokens=MAX_TOKENS, seed=seed, result=g, **sampling.params()))
            return g
        return kernel.sched.call(run).result()

    out = []
    for turn in case["turns"]:
        started = time.perf_counter()
        messages.append(("user", turn["user"]))
        first = generate(messages)
        calls, words = [], first.text
        try:
            call = toolcall.find(first.text, names)
        except syscall.SyscallError:
            call = None
        if call is not None:
            if call.device in DEVICES:
                res = invoke(registry.get(call.device), call.args)
                output, error = res.output, res.error
            else:
                output, error = "", f"no device {call.device!r}"
            calls.append({"device": call.device, "args": call.args, "error": error, "output": output})
            messages += [("assistant", first.text), ("tool", output if error is None else f"error: {error}")]
            second = generate(messages)
            words = second.text
            try:
                found = toolcall.locate(words, names)
            except syscall.SyscallError:
                found = None
            words = words[:found[0]] if found else words
        messages.append(("assistant", words))
        looped = repeated_tail(words) is not None
        out.append(score(turn["expect"], calls, words, looped, time.perf_counter() - started,
                         _typed(case, turn)))
    return out


def run(model: str | None, limit: int | None, temperature: float | None, kinds: set[str] | None,
        gate: bool = True) -> dict:
    from llmos.kernel.boot import load_cores
    from llmos.devices.registry import Registry
    from llmos.kernel.kernel import Kernel
    from llmos.kernel.sampling import choose

    # A throw-away data dir: the demo notes are mounted on its disk for search, and the
    # bench's processes and journal are not the user's.
    home = tempfile.mkdtemp(prefix="llmos-bench-tools-")
    os.environ["LLMOS_HOME"] = home
    cores = load_cores(model, quiet=True, n_ctx=4096)
    cpu = cores[0]
    registry = Registry.from_config()
    kernel = Kernel(cores, lock=False, devices=registry)
    kernel.call_gate = gate  # --without gate: statements may open with a call (kernel/intent.py)
    sampling = choose(cpu, temperature)
    notes = Path(str(resources.files("llmos").joinpath("demo/notes")))
    kernel.mount(str(notes))
    selected = [c for c in cases(limit) if not kinds or c["kind"] in kinds]
    ours, base = [], []
    started = time.perf_counter()
    try:
        for case in selected:
            for row in asyncio.run(_llmos_case(kernel, case, sampling, case["id"])):
                ours.append({"id": case["id"], "kind": case["kind"], **row})
            for row in _baseline_case(kernel, registry, case, sampling, case["id"]):
                base.append({"id": case["id"], "kind": case["kind"], **row})
    finally:
        kernel.close()
    return {"model": cpu.name, "tool_format": cpu.tool_format.family, "cases": len(selected), "call_gate": gate,
            "sampling": sampling.params(), "seconds": round(time.perf_counter() - started, 1),
            "llmos": summary(ours), "baseline": summary(base), "rows": {"llmos": ours, "baseline": base}}


def main(args) -> int:
    kinds = {k.strip() for k in args.kinds.split(",") if k.strip()} if args.kinds else None
    if kinds and not kinds <= {"call", "none", "multi"}:
        raise UsageError("--kinds takes call, none and multi (comma-separated)")
    result = run(args.model, args.limit, args.temperature, kinds, gate="gate" not in (args.without or []))
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(f"tools on {result['cases']} cases, model {result['model']} ({result['tool_format']} format), "
          f"{result['seconds']} s")
    keys = ("decision_accuracy", "call_accuracy", "uses_result", "answer_accuracy", "loop_rate", "false_calls", "missed_calls",
            "seconds_per_turn")
    print(f"{'':>20}  {'llmos':>8}  {'baseline':>8}")
    for key in keys:
        print(f"{key:>20}  {result['llmos'][key]!s:>8}  {result['baseline'][key]!s:>8}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("tools", help="device calls on a shipped set of 126 conversations (180 turns), against the raw model")
    p.add_argument("--without", action="append", choices=["gate"],
                   help="gate: let a statement open with a device call (the ablation of kernel/intent.py)")
    p.add_argument("--model")
    p.add_argument("--limit", type=int, default=None, help="only the first N cases")
    p.add_argument("--kinds", default="", help="only these kinds: call,none,multi")
    p.add_argument("--temperature", type=float, default=None,
                   help="0 = greedy; default: the chat's sampling (the model's recommended)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(bench=main)
