"""``llmos bench cpu``: generation speed through the kernel vs raw llama-cpp-python.

Both sides run the same model file, threads, prompt and greedy decoding in
one command, alternating (raw, llmos, raw, llmos, ...) so that machine noise
hits both alike; the medians are compared. ``cold_first_token_s`` is timed
in a fresh Python process: import, load the model, restore the hibernated
prefix, and produce the first token of an answer to a short question. It runs
in the user's own data dir, as a user's cold start does: where that has a disk
(mounted files, swapped pages), the first turn searches it, which costs the
disk's libraries (``llmos.kernel.boot.prefetch_disk`` loads them while the model
loads); each of ``cold_runs`` says whether it opened a disk (``disk``). The
cold process keeps its journal in a throw-away dir, so the user's process
table does not grow; the hibernated prefix and the disk are the user's own.

Both sides decode on the same thread, the kernel's CPU thread. Why: llama.cpp built
with OpenMP (the usual Linux build) gives each calling thread its own team of worker
threads, and once libgomp manages more threads than there are cores it stops spinning
at the barriers between a token's operations and sleeps instead: on 2 cores, a raw
loop on the main thread next to the kernel's thread slowed *both* by ~30 % (41 -> 29
tok/s, measured). The kernel makes every llama.cpp call from its one CPU thread.

With ``--cpu-url`` the CPU is that server and the same fields are reported:
``raw_tok_s`` is then the server's own stream read by a plain HTTP client
(no kernel), ``llmos_tok_s`` the same answer through the kernel and
``RemoteCPU``, so a remote CPU compares with the embedded one field by field.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SYSTEM = ("You are a helpful assistant running inside llmos, an operating system for language models. "
          "Answer clearly. Use the devices you are given when they help. ") * 4
QUESTION = "Write a short paragraph about the history of the printing press."

COLD = r"""
import time, sys, json
t0 = time.perf_counter()
from llmos.kernel.boot import load_cpu
from llmos.kernel.kernel import Kernel
from llmos.memory.journal import Journal
cpu = load_cpu(sys.argv[1] if sys.argv[1] != "-" else None, quiet=True)
kernel = Kernel(cpu, lock=False, journal=Journal(sys.argv[3]))
proc = kernel.spawn("bench", sys.argv[2])
import asyncio
async def first():
    async for step in kernel.turn(proc, "What is the capital of France?", max_tokens=1):
        return time.perf_counter() - t0
t = asyncio.run(first())
print(json.dumps({"first_token_s": t, "warm": kernel.warm.result(), "disk": kernel.backing.opened}))
kernel.close()
"""


def raw_tok_s(llm, tokens: list[int], n: int) -> tuple[float, int]:
    """Decode speed of llama-cpp-python's own generate loop (greedy), counted as the kernel's
    ``Generation.tok_per_s`` counts: the tokens after the first (an end-of-generation token
    is not one), over the time from the first token to the end."""
    llm.reset()
    count, t_first = 0, None
    for token in llm.generate(tokens, temp=0.0, top_k=1, reset=True):
        if t_first is None:
            t_first = time.perf_counter()
        if llm.token_eos() == token:
            break
        count += 1
        if count >= n:
            break
    return (count - 1) / (time.perf_counter() - t_first), count


def raw_remote_tok_s(cpu, tokens: list[int], n: int) -> tuple[float, int]:
    """Decode speed of the server's stream read directly (greedy), first token excluded."""
    import json as _json

    body = {"prompt": cpu.detokenize(tokens), "max_tokens": n, "temperature": 0.0, "repeat_penalty": 1.0,
            "stream": True}
    count, t_first = 0, None
    with cpu._client.stream("POST", cpu.url + "/v1/completions", json=body) as r:
        for line in r.iter_lines():
            if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                continue
            if (_json.loads(line[5:])["choices"][0].get("text") or "") == "":
                continue
            if count == 0:
                t_first = time.perf_counter()
            count += 1
    if count < 2:
        return 0.0, count
    return (count - 1) / (time.perf_counter() - t_first), count


def llmos_tok_s(kernel, system: str, n: int) -> tuple[float, int]:
    from llmos.kernel.cpu import Generation

    proc = kernel.spawn("bench", system)
    result = Generation()
    import asyncio

    async def go():
        async for _ in kernel.turn(proc, QUESTION, max_tokens=n, result=result):
            pass

    asyncio.run(go())
    kernel.kill(proc.pid)
    return result.tok_per_s, len(result.tokens)


def cold_first_token(model: str | None) -> dict:
    runs = []
    with tempfile.TemporaryDirectory(prefix="llmos-bench-") as tmp:
        for i in range(3):
            # A journal of its own: the user's process table is not touched.
            journal = str(Path(tmp) / f"journal-{i}.sqlite3")
            out = subprocess.run([sys.executable, "-c", COLD, model or "-", SYSTEM, journal], capture_output=True,
                                 text=True, env=dict(os.environ), timeout=300)
            if out.returncode != 0:
                return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {"cold_first_token_s": round(statistics.median(r["first_token_s"] for r in runs[1:]), 3),
            "cold_runs": runs}


def run(model: str | None, n: int = 128, rounds: int = 3) -> dict:
    from llmos.kernel.boot import load_cpu
    from llmos.kernel.cpu import Snapshot
    from llmos.kernel.kernel import Kernel

    cpu = load_cpu(model, quiet=True)  # several --cpu-url: the first one is measured
    remote = not cpu.can_snapshot
    prompt = cpu.chat_tokens([("system", SYSTEM), ("user", QUESTION)])
    raw, ours, counts = [], [], set()
    tmp = tempfile.TemporaryDirectory(prefix="llmos-bench-")  # the user's journal and disk are not touched
    kernel = Kernel.in_folder(cpu, Path(tmp.name))
    try:
        for _ in range(rounds):
            if remote:
                speed, count = raw_remote_tok_s(cpu, prompt, n)
            else:
                # On the kernel's CPU thread, like the kernel's own decoding: see the module docstring.
                speed, count = kernel.sched.call(lambda c: (c.restore(Snapshot(b"", [])),
                                                            raw_tok_s(c.llm, prompt, n))[1]).result()
            raw.append(speed)
            counts.add(count)
            if not remote:
                kernel.sched.call(lambda c: c.restore(Snapshot(b"", []))).result()
            speed, count = llmos_tok_s(kernel, SYSTEM, n)
            ours.append(speed)
            counts.add(count)
    finally:
        kernel.close()
        tmp.cleanup()
    r, o = statistics.median(raw), statistics.median(ours)
    result = {"model": cpu.name, "threads": getattr(cpu, "n_threads", None), "tokens": sorted(counts),
              "rounds": rounds, "raw_tok_s": round(r, 2), "llmos_tok_s": round(o, 2),
              "ratio": round(o / r, 3) if r else 0.0, "cpu_url": getattr(cpu, "url", None)}
    result.update(cold_first_token(model))
    return result


def main(args) -> int:
    result = run(args.model, args.tokens, args.rounds)
    print(json.dumps(result, indent=2) if args.json else "\n".join(f"{k:20} {v}" for k, v in result.items()
                                                                   if k != "cold_runs"))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("cpu", help="tokens/s through the kernel vs raw llama-cpp-python; cold first token")
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--model")
    p.add_argument("--cpu-url", action="append", metavar="URL", help="measure this OpenAI-compatible server")
    p.add_argument("--cpu-timeout", type=float, metavar="S")
    p.add_argument("--json", action="store_true")
    p.set_defaults(bench=main)
