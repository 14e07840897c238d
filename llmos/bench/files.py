"""``llmos bench files``: does a page fault find a mounted file when it holds the answer,
and leave the disk alone when it does not?

Protocol: each case of ``data/files.jsonl`` (hand-written for llmos: emails,
invoices, notes, a lease, a CSV ... with questions phrased as people type
them) is written to a temp folder and mounted with the real ``mount``; each
question then runs the page fault's file search (``relevance.file_hits``), and the
folder is unmounted. An answerable question is **found** when an excerpt that
holds its answer comes back, **refused** when nothing comes back; an
unanswerable one (``near``: about the file's subject, the file lacks the
answer; ``off``: unrelated) is **accepted** when anything comes back. The
``ask`` app refuses exactly when the search returns nothing.

In the same run the old rule (vector distance <= 0.6, nothing else) gives the
baseline.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from llmos.errors import UsageError

DATA = Path(__file__).parent / "data" / "files.jsonl"
OLD_MAX_DISTANCE = 0.6


def load(path: Path | str = DATA) -> list[dict]:
    try:
        rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    return rows


def _old_rule(disk, query: str, k: int, vector) -> list:
    from llmos.memory.fs import COLLECTION

    return [h for h in disk.query(COLLECTION, query, k, vector=vector) if h.distance <= OLD_MAX_DISTANCE]


def run(cases: list[dict], k: int = 4) -> dict:
    from llmos.memory.disk import Disk
    from llmos.memory.embed import embed
    from llmos.memory.fs import mount, unmount
    from llmos.memory.relevance import file_hits

    rules = {"llmos": lambda disk, q, v: file_hits(disk, q, k, vector=v),
             "old": lambda disk, q, v: _old_rule(disk, q, k, v)}
    tally = {r: {"found": [], "refused": [], "near_accepted": [], "off_accepted": []} for r in rules}
    by_style: dict[str, dict[str, list[float]]] = {r: {} for r in rules}
    misses, latencies = [], []
    with tempfile.TemporaryDirectory(prefix="llmos-bench-files-") as tmp:
        disk = Disk(Path(tmp) / "disk")
        for case in cases:
            folder = Path(tmp) / case["id"]
            for name, text in case["files"].items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_text(text, encoding="utf-8")
            mount(disk, folder)
            for q in case["questions"]:
                vector = embed([q["question"]])[0]
                for rule, search in rules.items():
                    started = time.perf_counter()
                    hits = search(disk, q["question"], vector)
                    if rule == "llmos":
                        latencies.append((time.perf_counter() - started) * 1000)
                    t = tally[rule]
                    if q["answerable"]:
                        found = any(q["answer"].lower() in h.text.lower() for h in hits)
                        t["found"].append(found)
                        t["refused"].append(not hits)
                        by_style[rule].setdefault(q["style"], []).append(found)
                        if rule == "llmos" and not found:
                            misses.append({"case": case["id"], "question": q["question"], "answer": q["answer"],
                                           "returned": len(hits)})
                    else:
                        t[f"{q['style']}_accepted"].append(bool(hits))
            unmount(disk, folder)

    def share(values: list[bool]) -> float:
        return round(statistics.fmean(values), 4) if values else 0.0

    chat = _chat(rules)
    return {
        "cases": len(cases),
        "answerable": len(tally["llmos"]["found"]),
        "unanswerable": len(tally["llmos"]["near_accepted"]) + len(tally["llmos"]["off_accepted"]),
        **{rule: {key: share(v) for key, v in t.items()} for rule, t in tally.items()},
        "found_by_style": {rule: {s: share(v) for s, v in sorted(st.items())} for rule, st in by_style.items()},
        "chat": {rule: {key: share(v) for key, v in t.items()} for rule, t in chat.items()},
        "search_p50_ms": round(statistics.median(latencies), 2) if latencies else 0.0,
        "k": k,
        "misses": misses,
    }


def _chat(rules: dict) -> dict[str, dict[str, list[bool]]]:
    """The same rules on a chat with the demo notes mounted: every turn of ``llmos bench tools``
    (``data/tools.jsonl``) is a question the page fault sees. A turn about the notes is
    **found** when an excerpt holding its answer comes back; any other turn (a sum, the time,
    a poem, "What is my dog called?") is **accepted** when anything comes back: a note paged
    in for nothing costs prefill time and distracts the model."""
    from importlib import resources

    from llmos.bench.tools import cases
    from llmos.memory.disk import Disk
    from llmos.memory.embed import embed
    from llmos.memory.fs import mount

    tally = {r: {"found": [], "off_accepted": []} for r in rules}
    with tempfile.TemporaryDirectory(prefix="llmos-bench-files-chat-") as tmp:
        disk = Disk(Path(tmp) / "disk")
        mount(disk, Path(str(resources.files("llmos").joinpath("demo/notes"))))
        for turn in (t for case in cases() for t in case["turns"]):
            expect, question = turn["expect"], turn["user"]
            vector = embed([question])[0]
            for rule, search in rules.items():
                hits = search(disk, question, vector)
                if expect is not None and expect["device"] == "search":
                    if "answer" in expect:
                        tally[rule]["found"].append(any(a.lower() in h.text.lower()
                                                        for a in expect["answer"] for h in hits))
                else:
                    tally[rule]["off_accepted"].append(bool(hits))
    return tally


def main(args) -> int:
    result = run(load(args.data or DATA), k=args.k)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            if key != "misses":
                print(f"{key:16} {value}")
        for miss in result["misses"]:
            print(f"miss  {miss['case']}: {miss['question']} (answer {miss['answer']!r})")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("files", help="does a page fault find the mounted file that holds the answer")
    p.add_argument("--data", help="JSONL of cases (default: the shipped set)")
    p.add_argument("--k", type=int, default=4, help="excerpts a fault may return (the ask app's k)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(bench=main)
