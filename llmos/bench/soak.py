"""``llmos bench soak``: a long multi-process session, compressed; memory must stay bounded.

Simulates ``--hours`` of use (a message every ``--every`` seconds in each of
``--procs`` processes) with the tiny model at reduced sizes: a small RAM, so
pages keep going to swap and faulting back, and a small KV-snapshot budget, so
context switches keep dropping snapshots and falling back to re-prefill. The
processes run their turns concurrently, so the scheduler switches between them.

Reported: RSS (psutil) sampled through the run, its level after warm-up (the
first ``--warmup`` share of the turns) and at the end, and the growth between
them, per 100 turns; the KV snapshot store's peak bytes against its budget; the
largest resident token count of any process against the RAM budget; pages
swapped, page faults, context switches; the journal's size. ``bounded`` is true
when the snapshot store and every RAM stayed within budget.

Its figures are this run's: the machine, model and build matter; compare runs
of the same command.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import tempfile
import time
from pathlib import Path


def _rss_mb() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 1e6


async def _turn(kernel, proc, text: str, tokens: int) -> int:
    from llmos.kernel.cpu import Generation

    out = Generation()
    async for _ in kernel.turn(proc, text, max_tokens=tokens, result=out):
        pass
    return len(out.tokens)


def run(model: str | None, procs: int, hours: float, every: float, tokens: int, ram: int, ctx: int,
        snapshot_mb: float, warmup: float, samples: int, workdir: Path) -> dict:
    from llmos.bench.synthetic import generate
    from llmos.kernel.boot import load_cpu
    from llmos.kernel import heap
    from llmos.kernel.kernel import Kernel
    from llmos.memory.journal import journal_path

    rounds = max(1, round(hours * 3600 / every))
    cpu = load_cpu(model or "tiny", n_ctx=ctx, quiet=True)
    kernel = Kernel.in_folder(cpu, workdir, ram=ram)
    budget = int(snapshot_mb * 1024 * 1024)
    for core in kernel.cores:
        core.snapshots.budget = budget
    # One synthetic conversation per process: fact turns and chatter, and now and then a
    # question whose answer left RAM long ago (a page fault).
    talks = []
    for conv in generate(procs, seed=7, turns=rounds, questions=max(1, rounds // 6)):
        texts = [t["text"] for t in conv["turns"]]
        asks = [q["question"] for q in conv["questions"]]
        step = max(1, len(texts) // max(1, len(asks)))
        script = []
        for i, text in enumerate(texts[:rounds]):
            script.append(asks[i // step] if asks and i % step == step - 1 and i // step < len(asks) else text)
        talks.append(script)
    curve: list[dict] = []
    peak_resident, generated = 0, 0
    every_sample = max(1, rounds // max(1, samples))
    started = time.perf_counter()
    try:
        group = [kernel.spawn("soak", "You are a helpful assistant. Answer briefly.") for _ in range(procs)]

        async def session() -> None:
            nonlocal generated, peak_resident
            for i in range(rounds):
                generated += sum(await asyncio.gather(*(_turn(kernel, p, talks[n][i % len(talks[n])], tokens)
                                                        for n, p in enumerate(group))))
                peak_resident = max([peak_resident] + [p.space.resident_tokens for p in group])
                if i % every_sample == 0 or i == rounds - 1:
                    gc.collect()
                    curve.append({"turns": (i + 1) * procs, "rss_mb": round(_rss_mb(), 1),
                                  "seconds": round(time.perf_counter() - started, 1)})

        asyncio.run(session())
        stats = [c.stats for c in kernel.cores]
        snap_peak = max(c.snapshots.peak for c in kernel.cores)
        dropped = sum(c.snapshots.dropped for c in kernel.cores)
        swapped = sum(sum(1 for pg in p.space.pages if not pg.resident) for p in group)
        pages = sum(len(p.space.pages) for p in group)
        faults = sum(p.space.faults for p in group)
        evictions = sum(p.space.evictions for p in group)
    finally:
        kernel.close()
    warm = next((c for c in curve if c["turns"] >= warmup * rounds * procs), curve[-1])
    end = curve[-1]
    turns_after = max(1, end["turns"] - warm["turns"])
    journal_bytes = sum(f.stat().st_size for f in workdir.glob(journal_path(workdir).name + "*"))
    return {
        "model": cpu.name, "procs": procs, "simulated_hours": hours, "turns": rounds * procs,
        "tokens_generated": generated, "wall_s": round(time.perf_counter() - started, 1),
        "rss_warm_mb": warm["rss_mb"], "rss_end_mb": end["rss_mb"],
        "rss_growth_mb": round(end["rss_mb"] - warm["rss_mb"], 1),
        "rss_growth_mb_per_100_turns": round((end["rss_mb"] - warm["rss_mb"]) * 100 / turns_after, 2),
        "snapshot_budget_bytes": budget, "snapshot_peak_bytes": snap_peak, "snapshots_dropped": dropped,
        "ram_budget_tokens": kernel.ram, "ram_peak_resident_tokens": peak_resident,
        "pages": pages, "pages_swapped": swapped, "evictions": evictions, "page_faults": faults,
        "switches": sum(s.switches for s in stats), "journal_bytes": journal_bytes,
        "heap_trims": heap.trims if heap.available() else None,
        "bounded": snap_peak <= budget and peak_resident <= kernel.ram,
        "rss_curve": curve,
    }


def main(args) -> int:
    with tempfile.TemporaryDirectory(prefix="llmos-soak-") as tmp:
        result = run(args.model, args.procs, args.hours, args.every, args.tokens, args.ram, args.ctx,
                     args.snapshot_mb, args.warmup, args.samples, Path(tmp))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            if key != "rss_curve":
                print(f"{key:30} {value}")
        print("rss_curve (turns: MB)         " + "  ".join(f"{c['turns']}:{c['rss_mb']}" for c in result["rss_curve"]))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("soak", help="a long multi-process session, compressed: RSS and budgets over time")
    p.add_argument("--model", help="default: tiny")
    p.add_argument("--procs", type=int, default=3)
    p.add_argument("--hours", type=float, default=1.0, help="simulated hours of use (default 1)")
    p.add_argument("--every", type=float, default=30.0, metavar="S",
                   help="seconds between a process's messages in the simulated hour (default 30)")
    p.add_argument("--tokens", type=int, default=24, help="tokens per answer (default 24)")
    p.add_argument("--ram", type=int, default=384, help="RAM per process in tokens (default 384)")
    p.add_argument("--ctx", type=int, default=1024)
    p.add_argument("--snapshot-mb", type=float, default=16.0, help="KV snapshot budget (default 16 MB)")
    p.add_argument("--warmup", type=float, default=0.2, help="share of the run before RSS counts as warm")
    p.add_argument("--samples", type=int, default=20, help="RSS samples along the run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(bench=main)
