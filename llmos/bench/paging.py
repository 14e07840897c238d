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


def load_data(path: str) -> list[dict]:
    """Conversations from ``path``: JSONL, one ``{"id", "turns", "questions"}`` row a line, or a
    LoCoMo-shaped JSON file as it is published (``bench/locomo.py``)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if text.lstrip().startswith("["):
        from llmos.bench import locomo

        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: not JSON ({exc})") from None
        if not locomo.is_locomo(data):
            raise UsageError(f"{path}: a JSON list, but not of LoCoMo samples (\"qa\", \"conversation\")")
        return [locomo.conversation(sample, n) for n, sample in enumerate(data)]
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                row["turns"], row["questions"]  # noqa: B018 - shape check
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UsageError(f"{path}:{n}: not a conversation row "
                                 '({"id", "turns": [...], "questions": [...]})') from None
            rows.append(row)
    if not rows:
        raise UsageError(f"{path} holds no conversations")
    return rows


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def turn_time(turn: dict, n: int) -> float | None:
    """A turn's time: its session date (ISO) if it has one, plus its place in the conversation."""
    import datetime as dt

    try:
        day = dt.datetime.fromisoformat(str(turn["date"])).replace(tzinfo=dt.timezone.utc)
    except (KeyError, ValueError):
        return None
    return day.timestamp() + 12 * 3600 + n


def _recall(evidence: set[str], ranking: list[str], k: int) -> float:
    return len(evidence & set(ranking[:k])) / len(evidence)


def _turns(pages, turn_of: dict[str, str]) -> list[str]:
    """Page hits as turn ids, best first (a long turn split into parts counts once)."""
    out: list[str] = []
    for page in pages:
        turn = turn_of.get(page.id)
        if turn is not None and turn not in out:
            out.append(turn)
    return out


def run(conversations: list[dict], *, ram: int = 3584, k: int = 10, budget: int | None = None,
        model: str | None = "tiny", signal: str = "hybrid", swap_pages: int = 0,
        without: frozenset[str] = frozenset()) -> dict:
    from llmos.kernel.boot import load_cpu
    from llmos.memory.disk import Disk
    from llmos.memory.journal import Journal
    from llmos.memory.page import Origin, Page
    from llmos.memory.ram import PAGE_IN_SHARE, AddressSpace, Pager
    from llmos.memory.recall import STEPS
    from llmos.memory.swap import Swap

    from llmos.bench.baselines import NAMES, Baselines
    from llmos.bench.synthetic import filler_texts

    cpu = load_cpu(model, n_ctx=max(2048, ram + 512), quiet=True)  # its tokenizer counts the pages
    budget = int(ram * PAGE_IN_SHARE) if budget is None else budget

    def encode(role: str, text: str) -> list[int]:
        return cpu.tokenize(cpu.format_message(role, text))

    retrievers = ("llmos",) + NAMES
    ranks: dict[str, dict[int, list[float]]] = {r: {5: [], 10: [], 20: []} for r in retrievers}
    by_kind: dict[str, dict[str, list[float]]] = {r: {} for r in ("fault",) + retrievers}
    fault_recalls, latencies, paged = [], [], []
    evicted = admitted = 0
    ingest_s = 0.0
    with tempfile.TemporaryDirectory(prefix="llmos-bench-") as tmp:
        journal = Journal(Path(tmp) / "journal.sqlite3")
        swap = Swap(Disk(Path(tmp) / "disk"), journal, signal=signal, search_files=False,
                    steps=frozenset(STEPS) - without)
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
            for n, turn in enumerate(conv["turns"]):
                origin = Origin.ASSISTANT if turn.get("speaker") == "assistant" else Origin.USER
                page = Page(pid, origin, str(turn["text"]))
                page.created = turn_time(turn, n) or page.created
                for made in pager.admit(space, page):
                    turn_of[made.id] = str(turn["id"])
                admitted += 1
            evicted += space.evictions
            plain = Baselines(conv["turns"])
            for q in conv["questions"]:
                evidence = {str(e) for e in q.get("evidence", [])}
                if not evidence:
                    continue
                question, kind = str(q["question"]), str(q.get("kind", q.get("style", "all")))
                resident = [p for p in space.pages if p.resident and not p.pinned]
                rankings = {"llmos": _turns(swap.search(pid, question, 20, resident), turn_of)}
                rankings.update(plain.rank(question, 20))
                for name, ranking in rankings.items():
                    for depth in (5, 10, 20):
                        ranks[name][depth].append(_recall(evidence, ranking, depth))
                    by_kind[name].setdefault(kind, []).append(_recall(evidence, ranking, k))
                tokens_in.clear()
                started = time.perf_counter()
                got = pager.fault(space, question, k=k, budget=budget)
                latencies.append((time.perf_counter() - started) * 1000)
                pager.balance(space)  # what the kernel does once the answer is in (not timed)
                paged.append(sum(tokens_in))
                recall = _recall(evidence, _turns(got, turn_of), k)
                fault_recalls.append(recall)
                by_kind["fault"].setdefault(kind, []).append(recall)
        journal.close()

    def mean(values: list[float]) -> float:
        return round(statistics.fmean(values), 4) if values else 0.0

    recall = {name: {f"@{d}": mean(v) for d, v in ranks[name].items()} for name in retrievers}
    return {
        "questions": len(fault_recalls),
        "recall_at_k": mean(fault_recalls),
        "recall_by_kind": {kind: mean(v) for kind, v in sorted(by_kind["fault"].items())},
        "margin_over_bm25": round(mean(fault_recalls) - recall["bm25"][f"@{k}"], 4) if k in (5, 10, 20) else None,
        "ranking_recall": recall,
        "ranking_recall_by_kind": {name: {kind: mean(v) for kind, v in sorted(by_kind[name].items())}
                                   for name in retrievers},
        "page_in_p50_ms": round(percentile(latencies, 0.5), 2),
        "page_in_p95_ms": round(percentile(latencies, 0.95), 2),
        "tokens_paged_per_query": round(statistics.fmean(paged), 1) if paged else 0.0,
        "k": k, "budget": budget, "ram": ram, "signal": signal, "without": sorted(without), "model": cpu.name,
        "conversations": len(conversations), "turns": admitted, "pages_evicted": evicted,
        "swap_pages_preloaded": swap_pages,
        "preload_pages_per_s": round(swap_pages * len(conversations) / ingest_s, 1) if ingest_s else None,
    }


def main(args) -> int:
    if sum(map(bool, (args.data, args.synthetic, args.dev))) > 1:
        raise UsageError("give one of --data FILE.jsonl, --dev N or --synthetic N")
    if args.data:
        conversations = load_data(args.data)
    elif args.synthetic:
        from llmos.bench.synthetic import generate

        conversations = generate(args.synthetic, seed=args.seed)
    else:
        from llmos.bench.longmem import generate

        conversations = generate(args.dev or 3, seed=args.seed)
    result = run(conversations, ram=args.ram, k=args.k, budget=args.budget, model=args.model or "tiny",
                 signal=args.signal, swap_pages=args.swap_pages, without=frozenset(args.without))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:24} {value}")
    return 0


def add_parser(sub) -> None:
    from llmos.memory.ram import FAULT_K, PAGE_IN_TOKENS
    from llmos.memory.recall import STEPS

    p = sub.add_parser("paging", help="recall and page-in latency of the pager on long conversations")
    p.add_argument("--dev", type=int, default=0,
                   help="N conversations of the shipped development set (the default: 3)")
    p.add_argument("--data", help="JSONL, one conversation per line, or a LoCoMo JSON file as published")
    p.add_argument("--synthetic", type=int, default=0, help="N conversations of the old, easy synthetic set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ram", type=int, default=3584, help="RAM of each process in tokens (default: the shell's, 3584)")
    p.add_argument("--k", type=int, default=FAULT_K, help=f"pages a fault returns (default: the shell's, {FAULT_K})")
    p.add_argument("--budget", type=int, default=PAGE_IN_TOKENS,
                   help=f"tokens a fault may page in (default: the shell's, {PAGE_IN_TOKENS})")
    p.add_argument("--signal", choices=["hybrid", "vector", "lexical"], default="hybrid")
    p.add_argument("--without", action="append", default=[], choices=list(STEPS), metavar="STEP",
                   help=f"leave a ranking step out, to measure what it buys ({', '.join(STEPS)})")
    p.add_argument("--swap-pages", type=int, default=0, help="filler pages put in swap first (scale runs)")
    p.add_argument("--model", help="whose tokenizer counts the pages (default tiny)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(bench=main)
