"""``llmos bench paging``: the real pager on a conversation workload.

Protocol: for each conversation a fresh process with a small RAM (default
512 tokens) takes the turns in order as pages (no generation), so most of
them are evicted to swap; then, for each question, the same page-fault path
the shell runs before a turn (``Pager.fault``) runs with the question as
input. ``recall_at_k`` is the share of evidence turns among the pages the
fault returned (at most k; pages already resident count when they were
returned). Latency is the whole fault: search, read back, tokenize, place.
After each question the pager rebalances RAM, as the kernel does once an
answer is in; that eviction is not part of the page-in time.

Everything runs in a throw-away data dir: the user's disk is not touched.
``--swap-pages M`` first fills each process's swap with M distinct filler
pages, to see how page-in time grows with the size of swap.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from llmos.errors import UsageError


def load_jsonl(path: str) -> list[dict]:
    rows = []
    try:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        row = json.loads(line)
                        row["turns"], row["questions"]  # noqa: B018 - shape check
                    except (json.JSONDecodeError, KeyError, TypeError):
                        raise UsageError(f"{path}:{n}: not a conversation row "
                                         '({"id", "turns": [...], "questions": [...]})') from None
                    rows.append(row)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not rows:
        raise UsageError(f"{path} holds no conversations")
    return rows


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run(conversations: list[dict], *, ram: int = 512, k: int = 10, model: str | None = "tiny",
        signal: str = "hybrid", swap_pages: int = 0) -> dict:
    from llmos.kernel.boot import load_cpu
    from llmos.memory.disk import Disk
    from llmos.memory.journal import Journal
    from llmos.memory.page import Origin, Page
    from llmos.memory.ram import AddressSpace, Pager
    from llmos.memory.swap import Swap

    from llmos.bench.synthetic import filler_texts

    cpu = load_cpu(model, n_ctx=max(2048, ram + 512), quiet=True)  # its tokenizer counts the pages

    def encode(role: str, text: str) -> list[int]:
        return cpu.tokenize(cpu.format_message(role, text))

    recalls, latencies, paged, styles = [], [], [], {}
    evicted = admitted = 0
    ingest_s = 0.0
    with tempfile.TemporaryDirectory(prefix="llmos-bench-") as tmp:
        journal = Journal(Path(tmp) / "journal.sqlite3")
        swap = Swap(Disk(Path(tmp) / "disk"), journal, signal=signal, search_files=False)
        tokens_in = []
        pager = Pager(encode, swap, on_event=lambda e: tokens_in.append(e.tokens) if e.kind == "page_in" else None)
        for conv in conversations:
            pid = journal.new_pid()
            space = AddressSpace(pid, ram)
            pager.admit(space, Page(pid, Origin.SYSTEM, "You are a helpful assistant.", pinned=True))
            if swap_pages:
                started = time.perf_counter()
                texts = filler_texts(swap_pages, seed=pid)
                for i in range(0, len(texts), 2000):
                    batch = [Page(pid, Origin.USER, t, seq=-2, resident=False) for t in texts[i:i + 2000]]
                    journal.record_pages(batch)
                    swap.swap_out(batch)
                ingest_s += time.perf_counter() - started
            turn_of: dict[str, str] = {}
            for turn in conv["turns"]:
                origin = Origin.ASSISTANT if turn.get("speaker") == "assistant" else Origin.USER
                for page in pager.admit(space, Page(pid, origin, str(turn["text"]))):
                    turn_of[page.id] = str(turn["id"])
                admitted += 1
            evicted += space.evictions
            for q in conv["questions"]:
                evidence = {str(e) for e in q.get("evidence", [])}
                if not evidence:
                    continue
                tokens_in.clear()
                started = time.perf_counter()
                got = pager.fault(space, str(q["question"]), k=k)
                latencies.append((time.perf_counter() - started) * 1000)
                pager.balance(space)  # what the kernel does once the answer is in (not timed)
                paged.append(sum(tokens_in))
                found = {turn_of.get(p.id) for p in got[:k]}
                recall = len(evidence & found) / len(evidence)
                recalls.append(recall)
                styles.setdefault(q.get("style", "all"), []).append(recall)
        journal.close()
    return {
        "questions": len(recalls),
        "recall_at_k": round(statistics.fmean(recalls), 4) if recalls else 0.0,
        "recall_by_style": {s: round(statistics.fmean(v), 4) for s, v in styles.items()},
        "page_in_p50_ms": round(percentile(latencies, 0.5), 2),
        "page_in_p95_ms": round(percentile(latencies, 0.95), 2),
        "tokens_paged_per_query": round(statistics.fmean(paged), 1) if paged else 0.0,
        "k": k, "ram": ram, "signal": signal, "model": cpu.name,
        "conversations": len(conversations), "turns": admitted, "pages_evicted": evicted,
        "swap_pages_preloaded": swap_pages,
        "preload_pages_per_s": round(swap_pages * len(conversations) / ingest_s, 1) if ingest_s else None,
    }


def main(args) -> int:
    from llmos.bench.synthetic import generate

    if bool(args.data) == bool(args.synthetic):
        raise UsageError("give one of --data FILE.jsonl or --synthetic N")
    conversations = load_jsonl(args.data) if args.data else generate(args.synthetic, seed=args.seed)
    result = run(conversations, ram=args.ram, k=args.k, model=args.model or "tiny", signal=args.signal,
                 swap_pages=args.swap_pages)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:24} {value}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("paging", help="recall and page-in latency of the pager on a conversation workload")
    p.add_argument("--data", help="JSONL: one conversation per line")
    p.add_argument("--synthetic", type=int, default=0, help="generate N synthetic conversations instead")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ram", type=int, default=512, help="RAM of each process in tokens (default 512)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--signal", choices=["hybrid", "vector", "lexical"], default="hybrid")
    p.add_argument("--swap-pages", type=int, default=0, help="filler pages put in swap first (scale runs)")
    p.add_argument("--model", help="whose tokenizer counts the pages (default tiny)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(bench=main)
