"""``llmos bench think``: accuracy of the ``think`` app against its budget.

Runs ``think`` at the largest budget on each item of the shipped set
(``apps/data/think_eval.jsonl``: 20 arithmetic and word problems, 10 short
facts) and scores every smaller budget on the same samples: the samples are
nested (budget 3 is budget 5's first three; budget 1 is the greedy answer),
so one run gives the whole curve, and the curve differs only by the vote.
``tokens_per_item`` is what each budget costs in generated tokens.
"""

from __future__ import annotations

import asyncio
import json
import time
from importlib import resources

from llmos.errors import UsageError


def items(limit: int | None = None) -> list[dict]:
    text = resources.files("llmos.apps").joinpath("data/think_eval.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def run(model: str | None, budgets: list[int], limit: int | None, tokens: int, temperature: float) -> dict:
    from llmos.apps.launch import launch
    from llmos.apps.think import correct, vote
    from llmos.kernel.boot import load_cores
    from llmos.kernel.kernel import Kernel

    top = max(budgets)
    cores = load_cores(model, quiet=True, n_ctx=2048)
    cpu = cores[0]
    kernel = Kernel(cores, lock=False, batch=min(top, 7))
    rows = []
    started = time.perf_counter()
    try:
        for item in items(limit):
            result = asyncio.run(launch(kernel, "think", item["q"], options={
                "budget": top, "tokens": tokens, "temperature": temperature}))
            rows.append({"q": item["q"], "gold": item["a"], "answers": result.data["answers"],
                         "tokens": result.data["tokens"]})
    finally:
        kernel.close()
    wall = time.perf_counter() - started
    curve = []
    for b in sorted(budgets):
        hits = sum(correct(vote(r["answers"][:b])[0], r["gold"]) for r in rows)
        curve.append({"budget": b, "accuracy": round(hits / len(rows), 3), "correct": hits,
                      "tokens_per_item": round(sum(r["tokens"] for r in rows) / len(rows) * b / top, 1)})
    return {"model": cpu.name, "items": len(rows), "temperature": temperature, "max_tokens": tokens,
            "seconds": round(wall, 1), "curve": curve, "rows": rows}


def main(args) -> int:
    try:
        budgets = sorted({int(b) for b in args.budgets.split(",") if b.strip()})
    except ValueError:
        raise UsageError(f"--budgets takes numbers like 1,3,5, not {args.budgets!r}") from None
    if not budgets or budgets[0] < 1 or budgets[-1] > 16:
        raise UsageError("--budgets must be between 1 and 16 samples")
    result = run(args.model, budgets, args.limit, args.tokens, args.temperature)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"think on {result['items']} items, model {result['model']}, {result['seconds']} s")
    print(f"{'budget':>6}  {'accuracy':>8}  {'tokens/item':>11}")
    for row in result["curve"]:
        print(f"{row['budget']:>6}  {row['accuracy']:>8.0%}  {row['tokens_per_item']:>11}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("think", help="accuracy of the think app against its budget (samples + vote)")
    p.add_argument("--budgets", default="1,3,5", help="sample counts to score (default 1,3,5)")
    p.add_argument("--limit", type=int, default=None, help="only the first N items")
    p.add_argument("--tokens", type=int, default=160, help="max tokens per sample")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(bench=main)
