"""``llmos bench answers``: what a user gets from paging, answers and not rankings.

``llmos bench paging`` scores the page fault's ranking (is the evidence in the top k?).
This bench asks the question the user asks: after a long conversation has overflowed RAM,
does the default model *answer* questions about it correctly? Each conversation of the
shipped development set (``longmem.py``: hundreds of turns over dated sessions; questions
of a fact said once, a paraphrase, two hops, "when", "first", an update) is admitted to a
chat process as it was said, with its dates, and then each question is asked in that
process, one after another, as a user would: the kernel pages in what the question needs
(``Pager.fault``) and the model answers.

The baseline in the same run is the raw model with the same RAM: the system prompt and the
most recent messages that fit, as a plain chat with a context window of that size keeps
them (what a FIFO context remembers), asked the same questions with the same sampling and
seed. Both keep their own answers in the conversation.

An answer is right when it holds the expected answer (``correct``): every name and number
of it and at least half of its words, in any order and case; a day (``2026-02-24``) may be
written as people write it ("24 February", "February 24th", "Feb 24"). No devices are
granted: this measures memory, and ``llmos bench tools`` measures devices.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from llmos.errors import UsageError

MAX_TOKENS = 48
"""An answer to a question about the past is a short one; the budget bounds the bench's time."""

_WORD = re.compile(r"[A-Za-z0-9]+")
_STOP = {"the", "and", "for", "with", "from", "that", "this", "about", "into", "my", "your", "our", "a",
         "an", "of", "on", "in", "at", "to", "it", "is"}
_NUMBERS = {w: str(n) for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}


def _words(text: str) -> list[str]:
    """Lower-case words, number words as digits ("twelve" -> "12")."""
    return [_NUMBERS.get(w, w) for w in (m.lower() for m in _WORD.findall(text))]


def _day_forms(day: dt.date) -> list[str]:
    """How people write a day, ordinal suffixes and punctuation aside: "24 february", "24 of
    february", "february 24", "feb 24", "24 feb"."""
    month, short, d = day.strftime("%B").lower(), day.strftime("%b").lower(), day.day
    return [f"{d} {month}", f"{d} of {month}", f"{month} {d}", f"{d} {short}", f"{short} {d}"]


def correct(answer: str, expected: str) -> bool:
    """Whether ``answer`` holds ``expected``.

    A day (``2026-02-24``) in any of the ways people write one. Otherwise every name and
    number of the expected answer ("Corvid Analytics", "iPhone 11", "twelve" or "12"), and at
    least half of all its words ("my sister Yara": "Yara" will do; "scheduling software for
    vineyards": two of the three; "a vegetable patch, mostly tomatoes and beans": three of
    five), in any order and case. Short words ("a", "my", "the") do not count."""
    try:
        day = dt.date.fromisoformat(expected.strip())
    except ValueError:
        day = None
    if day is not None:
        text = " ".join(_words(re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", answer)))
        return day.isoformat() in answer or any(re.search(rf"\b{form}\b", text) for form in _day_forms(day))
    have = set(_words(answer))
    names = {w.lower() for w in _WORD.findall(expected) if w[0].isupper() or any(c.isupper() for c in w[1:])}
    wanted = [w for w in dict.fromkeys(_words(expected)) if w not in _STOP and (len(w) >= 3 or w.isdigit())]
    must = [w for w in wanted if w in names or w.isdigit()]
    if not wanted or not all(w in have for w in must):
        return False
    return 2 * sum(w in have for w in wanted) >= len(wanted)


def _fifo(cpu, messages: list[tuple[str, str]], ram: int) -> int:
    """Where the most recent messages that fit ``ram`` tokens begin (the first, the system
    message, is kept besides them): what a plain chat with a window of that size still holds."""
    used, start = 0, len(messages)
    while start > 1:
        used += len(cpu.tokenize(cpu.format_message(*messages[start - 1])))
        if used > ram:
            break
        start -= 1
    return start


def _conversation(kernel, cpu, conv: dict, sampling, ram: int, max_tokens: int) -> list[dict]:
    """One conversation, both sides: admitted to a chat process of ``kernel`` and kept as plain
    messages for the raw model; then its questions, one after another, to each."""
    from llmos.apps.chat import CHAT_SYSTEM, spawn_chat
    from llmos.bench.paging import turn_time
    from llmos.kernel.cpu import Generation
    from llmos.memory.page import Origin, Page

    proc = spawn_chat(kernel)
    plain, turn_ids = [("system", CHAT_SYSTEM)], [""]
    pages_of: dict[str, set[str]] = {}
    for n, turn in enumerate(conv["turns"]):
        origin = Origin.ASSISTANT if turn.get("speaker") == "assistant" else Origin.USER
        page = Page(proc.pid, origin, str(turn["text"]))
        page.created = turn_time(turn, n) or page.created
        pages_of[str(turn["id"])] = {p.id for p in kernel.pager.admit(proc.space, page)}
        plain.append((origin.value, str(turn["text"])))
        turn_ids.append(str(turn["id"]))
    paged_in: set[str] = set()
    kernel.listeners.append(lambda kind, data: paged_in.update(data["page_ids"]) if kind == "page_in" else None)
    rows = []
    for i, q in enumerate(conv["questions"]):
        seed, evidence = i + 1, [str(e) for e in q["evidence"]]
        in_ram = {p.id for p in proc.space.pages if p.resident}
        paged_in.clear()
        t0 = time.perf_counter()
        ours = kernel.ask(proc, q["question"], max_tokens=max_tokens, sampling=sampling, seed=seed)
        t1 = time.perf_counter()
        in_ram |= paged_in
        plain.append(("user", q["question"]))
        turn_ids.append("")
        begin = _fifo(cpu, plain, ram)
        prompt = cpu.chat_tokens(plain[:1] + plain[begin:])

        def raw(c, prompt=prompt, seed=seed) -> Generation:
            g = Generation()
            list(c.stream(prompt, max_tokens=max_tokens, seed=seed, result=g, **sampling.params()))
            return g

        theirs = kernel.sched.call(raw).result()
        t2 = time.perf_counter()
        plain.append(("assistant", theirs.text))
        turn_ids.append("")
        window = set(turn_ids[begin:])
        rows.append({
            "conversation": conv["id"], "kind": q["kind"], "question": q["question"], "expected": q["answer"],
            "llmos": ours.text.strip(), "raw": theirs.text.strip(),
            "llmos_right": correct(ours.text, q["answer"]), "raw_right": correct(theirs.text, q["answer"]),
            "llmos_evidence": sum(bool(pages_of[e] & in_ram) for e in evidence) / len(evidence),
            "raw_evidence": sum(e in window for e in evidence) / len(evidence),
            "llmos_s": round(t1 - t0, 2), "raw_s": round(t2 - t1, 2)})
    return rows


def _side(rows: list[dict], side: str) -> dict:
    """One side's figures: right answers (all, by kind), evidence in the context, seconds."""
    def mean(key: str, kind: str | None = None) -> float:
        picked = [float(r[f"{side}_{key}"]) for r in rows if kind in (None, r["kind"])]
        return round(statistics.fmean(picked), 3) if picked else 0.0

    with_evidence = [r[f"{side}_right"] for r in rows if r[f"{side}_evidence"] == 1.0]
    return {"right": mean("right"), "by_kind": {k: mean("right", k) for k in sorted({r["kind"] for r in rows})},
            "evidence_in_context": mean("evidence"),
            "right_when_all_evidence_in_context": round(statistics.fmean(with_evidence), 3) if with_evidence else None,
            "seconds_per_answer": mean("s")}


def run(conversations: list[dict], *, model: str | None, ram: int, max_tokens: int = MAX_TOKENS,
        temperature: float | None = None) -> dict:
    from llmos.kernel.boot import load_cores
    from llmos.kernel.kernel import Kernel
    from llmos.kernel.sampling import choose

    cores = load_cores(model, quiet=True, n_ctx=max(4096, ram + 1024))
    cpu = cores[0]
    sampling = choose(cpu, temperature)
    rows = []
    started = time.perf_counter()
    for conv in conversations:
        with tempfile.TemporaryDirectory(prefix="llmos-bench-answers-") as tmp:
            kernel = Kernel.in_folder(cores, Path(tmp), lock=False, ram=ram)
            try:
                rows += _conversation(kernel, cpu, conv, sampling, ram, max_tokens)
            finally:
                kernel.close()
    return {"model": cpu.name, "ram": ram, "max_tokens": max_tokens, "sampling": sampling.params(),
            "conversations": len(conversations), "questions": len(rows),
            "seconds": round(time.perf_counter() - started, 1),
            "llmos": _side(rows, "llmos"), "raw": _side(rows, "raw"), "rows": rows}


def main(args) -> int:
    from llmos.bench.longmem import generate

    if args.dev < 1:
        raise UsageError("--dev takes a number of conversations, 1 or more")
    if args.ram < 512:
        raise UsageError("--ram must be at least 512 tokens")
    conversations = generate(args.dev, seed=args.seed)
    if args.limit:
        conversations = [dict(c, questions=c["questions"][:args.limit]) for c in conversations]
    result = run(conversations, model=args.model, ram=args.ram, max_tokens=args.max_tokens,
                 temperature=args.temperature)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(f"answers on {result['questions']} questions, model {result['model']}, RAM {result['ram']}, "
          f"{result['seconds']} s")
    for side in ("llmos", "raw"):
        kinds = " ".join(f"{k} {v:.2f}" for k, v in result[side]["by_kind"].items())
        print(f"{side:6} right {result[side]['right']:.3f}  ({kinds})  evidence in context "
              f"{result[side]['evidence_in_context']:.2f}  {result[side]['seconds_per_answer']} s per answer")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("answers", help="answers to questions about long conversations, against the raw model")
    p.add_argument("--dev", type=int, default=1, help="conversations of the shipped development set (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0, help="only the first N questions of each conversation")
    p.add_argument("--ram", type=int, default=3584, help="RAM in tokens, for both sides (default: the shell's)")
    p.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    p.add_argument("--temperature", type=float, default=None,
                   help="default: the chat's sampling (the model authors' recommendation); 0 is greedy")
    p.add_argument("--model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(bench=main)
