"""``think``: trades time for accuracy by sampling several answers and voting.

The budget is the number of samples (``--budget N``, shown before any work
starts). Sample 1 is the greedy answer; samples 2..N are drawn at a
temperature with seeds 1..N-1; each ends with ``Answer: X`` and the most
frequent final answer wins (self-consistency, Wang et al. 2022), ties going
to the earliest, so the greedy answer. Samples are nested (budget 3 is
budget 5's first three), which makes ``llmos bench think`` one run for a
whole accuracy-versus-budget curve. Each sample is a forked process: they
share the CPU in batched rounds, and ``llmos ps`` shows them while they run.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter

from llmos.apps.sdk import App, Manifest, Sys

SYSTEM = ("Solve the problem. Think step by step in a few short lines, then write the final answer "
          "on the last line as: Answer: <answer>")
MAX_BUDGET = 32
_NUMBER = re.compile(r"(?<![A-Za-z\d])-?\d[\d,]*(?:\.\d+)?")
_MARKER = re.compile(r"answer\s*(?:is|:|=)\s*(.+)", re.I)


class ThinkApp(App):
    manifest = Manifest(name="think", description="N samples and a vote: accuracy for time (--budget N)",
                        options={"budget": 5, "temperature": 0.7, "tokens": 160})
    system = SYSTEM

    async def main(self, sys: Sys) -> str:
        budget, temperature, tokens = int(sys.option("budget")), float(sys.option("temperature")), \
            int(sys.option("tokens"))
        if not 1 <= budget <= MAX_BUDGET:
            from llmos.errors import UsageError

            raise UsageError(f"--budget must be 1..{MAX_BUDGET} samples, not {budget}")
        sys.write(f"budget: {budget} sample(s) x up to {tokens} tokens (1 greedy"
                  f"{f', {budget - 1} at temperature {temperature}' if budget > 1 else ''}); majority vote\n")
        children = [await sys.fork() for _ in range(budget)]
        replies = await asyncio.gather(*(
            child.generate(sys.input, temperature=0.0 if i == 0 else temperature, seed=i, max_tokens=tokens)
            for i, child in enumerate(children)))
        for child in children:
            child.close()
        keys = [final_answer(r.text) for r in replies]
        winner, votes = vote(keys)
        tally = ", ".join(f"{k or '(none)'} x{n}" for k, n in Counter(keys).most_common())
        sys.data.update(budget=budget, answers=keys, answer=winner, votes=votes,
                        tokens=sum(r.tokens for r in replies))
        out = f"Answer: {winner or '(no answer)'} ({votes} of {budget} votes; {tally})"
        sys.write(out + "\n")
        return out


def final_answer(text: str) -> str:
    """The final answer of one sample, normalised so that equal answers compare equal:
    a number as digits (``1,200.0`` -> ``1200``), else a few lowercase words."""
    marked = _MARKER.findall(text)
    segment = marked[-1] if marked else text
    numbers = _NUMBER.findall(segment)
    if numbers:
        return _number(numbers[-1])
    if not marked:
        lines = [line for line in text.strip().splitlines() if line.strip()]
        segment = lines[-1] if lines else ""
    words = re.sub(r"[^\w\s-]", " ", segment.lower()).split()
    words = [w for w in words if w not in ("the", "a", "an", "is", "it")]
    return " ".join(words[:4])


def _number(raw: str) -> str:
    value = float(raw.replace(",", ""))
    return str(int(value)) if value == int(value) else f"{value:g}"


def vote(keys: list[str]) -> tuple[str, int]:
    """The most frequent non-empty answer and its count; ties go to the earliest."""
    counts = Counter(k for k in keys if k)
    if not counts:
        return "", 0
    best = max(counts.values())
    return next(k for k in keys if counts.get(k) == best), best


def correct(key: str, gold: str) -> bool:
    """Whether a normalised answer matches the expected one (numbers exactly; words contained)."""
    gold_key = final_answer(f"Answer: {gold}")
    if not key:
        return False
    if _NUMBER.fullmatch(gold_key):
        return key == gold_key
    return key == gold_key or f" {gold_key} " in f" {key} "
