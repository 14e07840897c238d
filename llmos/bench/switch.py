"""``llmos bench switch``: resuming a process after a context switch, KV restore vs re-prefill.

For each context size a process's context is built, the CPU is taken away
(another context is loaded), and the process is resumed twice: once by
restoring its saved KV state (the scheduler's normal path) and once by
re-reading its tokens (the fallback when its snapshot was dropped). Both
are timed in the same run, median of ``--repeat``.
"""

from __future__ import annotations

import json
import statistics
import time

SIZES = [256, 512, 1024, 1500, 2048]


def _context(cpu, n: int) -> list[int]:
    text = "The history of the sea is long. Ships, ports and storms shaped many towns. " * (n // 8 + 8)
    return cpu.tokenize(text, special=False)[:n]


def run(model: str | None, sizes: list[int], repeat: int = 3) -> dict:
    from llmos.kernel.boot import load_cpu
    from llmos.kernel.cpu import Snapshot

    cpu = load_cpu(model, n_ctx=max(sizes) + 256, quiet=True)
    other = _context(cpu, 200)
    rows = []
    for n in sizes:
        tokens = _context(cpu, n)
        cpu.restore(Snapshot(b"", []))
        cpu.load_tokens(tokens)
        snap = cpu.snapshot()
        restore, reprefill, save = [], [], []
        for _ in range(repeat):
            t = time.perf_counter()
            cpu.snapshot()
            save.append(time.perf_counter() - t)
            cpu.restore(Snapshot(b"", []))
            cpu.load_tokens(other)
            t = time.perf_counter()
            cpu.restore(snap)
            restore.append(time.perf_counter() - t)
            assert cpu.held_tokens() == tokens
            cpu.restore(Snapshot(b"", []))
            cpu.load_tokens(other)
            t = time.perf_counter()
            cpu.restore(Snapshot(b"", []))
            cpu.load_tokens(tokens)
            reprefill.append(time.perf_counter() - t)
        r, p, s = statistics.median(restore), statistics.median(reprefill), statistics.median(save)
        rows.append({"context_tokens": n, "save_s": round(s, 5), "restore_s": round(r, 5),
                     "reprefill_s": round(p, 4), "speedup": round(p / r, 1), "snapshot_mb": round(snap.nbytes / 1e6, 2)})
    last = rows[-1]
    return {"model": cpu.name, "threads": cpu.n_threads, "sizes": rows, "context_tokens": last["context_tokens"],
            "reprefill_s": last["reprefill_s"], "restore_s": last["restore_s"], "speedup": last["speedup"]}


def main(args) -> int:
    sizes = [args.context] if args.context else SIZES
    result = run(args.model, sizes, args.repeat)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for row in result["sizes"]:
            print(f"{row['context_tokens']:6} tokens  restore {row['restore_s'] * 1000:7.1f} ms  "
                  f"re-prefill {row['reprefill_s'] * 1000:8.1f} ms  speedup {row['speedup']:6.1f}x  "
                  f"snapshot {row['snapshot_mb']} MB")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("switch", help="context-switch cost: KV restore vs re-prefill")
    p.add_argument("--context", type=int, default=0, help="one context size (default: 256 to 2048)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(bench=main)
