"""``llmos bench sched``: N processes sharing the CPU vs one alone.

One process answers alone; then N processes answer the same question at
once (so each has the same work as the one alone), under the chosen policy.
With several ``--cpu-url`` the machine has several cores (one per server) and
the N processes are spread over them; ``cores`` and ``per_core_tokens`` say how. ``aggregate_tok_s`` is all
tokens over the wall time of the concurrent run; ``fairness`` is the
smallest share of CPU time any process got over the largest.
"""

from __future__ import annotations

import asyncio
import json
import time

QUESTIONS = ["Write a story about a lighthouse keeper."]


async def _answer(kernel, proc, text: str, n: int) -> int:
    from llmos.kernel.cpu import Generation

    out = Generation()
    async for _ in kernel.turn(proc, text, max_tokens=n, result=out):
        pass
    return len(out.tokens)


def run(model: str | None, procs: int, n: int, quantum: int, policy: str, batch: int = 4) -> dict:
    from llmos.boot import load_cpu
    from llmos.kernel.kernel import Kernel

    cores = load_cpu(model, quiet=True)
    kernel = Kernel(cores, lock=False, quantum=quantum, policy=policy, batch=batch)
    cpu = kernel.cpu

    def total(attr: str) -> int:
        return sum(getattr(s.stats, attr) for s in kernel.cores)

    def cpu_s() -> dict[int, float]:
        out: dict[int, float] = {}
        for s in kernel.cores:
            for pid, sec in s.stats.per_pid_cpu_s.items():
                out[pid] = out.get(pid, 0.0) + sec
        return out

    try:
        alone = kernel.spawn("bench", "You are a helpful assistant.")
        started = time.perf_counter()
        single_tokens = asyncio.run(_answer(kernel, alone, QUESTIONS[0], n))
        single = single_tokens / (time.perf_counter() - started)
        kernel.kill(alone.pid)
        group = [kernel.spawn("bench", "You are a helpful assistant.") for _ in range(procs)]
        before = cpu_s()
        switches = total("switches")
        batches = total("batches")
        core_tokens = [s.stats.tokens for s in kernel.cores]

        async def together():
            return await asyncio.gather(*(_answer(kernel, p, QUESTIONS[0], n) for p in group))

        started = time.perf_counter()
        counts = asyncio.run(together())
        wall = time.perf_counter() - started
        after = cpu_s()
        shares = [after.get(p.pid, 0.0) - before.get(p.pid, 0.0) for p in group]
        per_token = [s / c for s, c in zip(shares, counts) if c]
    finally:
        kernel.close()
    return {"model": cpu.name, "procs": procs, "policy": policy, "quantum": quantum,
            "tokens_per_proc": counts, "single_tok_s": round(single, 2),
            "aggregate_tok_s": round(sum(counts) / wall, 2), "ratio": round(sum(counts) / wall / single, 3),
            "fairness": round(min(shares) / max(shares), 3) if max(shares) else 0.0,
            "cpu_s_per_token_spread": round(min(per_token) / max(per_token), 3) if per_token else 0.0,
            "switches": total("switches") - switches, "batch": kernel.sched.batch,
            "batched_rounds": total("batches") - batches, "cores": len(kernel.cores),
            "per_core_tokens": [s.stats.tokens - t for s, t in zip(kernel.cores, core_tokens)]}


def main(args) -> int:
    result = run(args.model, args.procs, args.tokens, args.quantum, args.policy, args.batch)
    print(json.dumps(result, indent=2) if args.json else "\n".join(f"{k:24} {v}" for k, v in result.items()))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("sched", help="aggregate tokens/s of N concurrent processes vs one; fairness")
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--quantum", type=int, default=32)
    p.add_argument("--policy", choices=["rr", "priority"], default="rr")
    p.add_argument("--batch", type=int, default=4, help="most processes per batched round (1: no batching)")
    p.add_argument("--model")
    p.add_argument("--cpu-url", action="append", metavar="URL",
                   help="an OpenAI-compatible server as a CPU core (repeat: several cores)")
    p.add_argument("--cpu-timeout", type=float, metavar="S")
    p.add_argument("--json", action="store_true")
    p.set_defaults(bench=main)
