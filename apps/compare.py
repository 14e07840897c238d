"""``compare``: two answers to one prompt from two settings, side by side; the user
picks the better one and the pair goes to the preference file.

This is how labelers rank outputs for RLHF: the same prompt, two samples,
one human choice. The pair is appended as ``prompt``/``chosen``/``rejected``
(``apps/prefs.py``), the layout DPO trainers read; ``llmos prefs export``
writes it out. Settings are ``key=value`` lists (``temperature``, ``seed``,
``max_tokens``); both answers are forked processes generated together. The
choice comes from ``--opt pick=a|b``, or the user is asked (terminal or
shell); with nobody to ask, nothing is saved.
"""

from __future__ import annotations

import asyncio
import shutil
import textwrap
from itertools import zip_longest

from llmos.apps.sdk import App, Manifest, Sys
from llmos.errors import UsageError

KEYS = {"temperature": float, "seed": int, "max_tokens": int}


class CompareApp(App):
    manifest = Manifest(name="compare", description="two answers side by side; pick one, save the pair (DPO)",
                        max_tokens=192,
                        options={"a": "temperature=0", "b": "temperature=0.9,seed=1", "pick": "", "width": 0})

    async def main(self, sys: Sys) -> str:
        from llmos.apps import prefs

        specs = {side: str(sys.option(side)) for side in ("a", "b")}
        settings = {side: parse(spec) for side, spec in specs.items()}
        forks = [await sys.fork() for _ in settings]
        ra, rb = await asyncio.gather(*(f.generate(sys.input, **s) for f, s in zip(forks, settings.values())))
        answers = {"a": ra.text.strip(), "b": rb.text.strip()}
        width = int(sys.option("width")) or shutil.get_terminal_size((100, 24)).columns
        sys.write(side_by_side(f"A ({specs['a']})", answers["a"], f"B ({specs['b']})", answers["b"], width) + "\n")
        sys.data.update(a={"settings": specs["a"], "text": answers["a"]},
                        b={"settings": specs["b"], "text": answers["b"]}, pick=None, saved=False)
        if answers["a"] == answers["b"]:
            out = "the two answers are identical: nothing to rank, nothing saved"
            sys.write(out + "\n")
            return out
        pick = str(sys.option("pick")).lower() or await sys.choose("Which answer is better?", ["a", "b", "skip"])
        if pick not in ("a", "b"):
            if pick not in ("", "skip", None):
                raise UsageError(f"pick must be a or b, not {pick!r}")
            out = "no pick: nothing saved"
            sys.write(out + "\n")
            return out
        other = "b" if pick == "a" else "a"
        count = prefs.append(sys.input, answers[pick], answers[other], model=sys.model,
                             chosen_settings=specs[pick], rejected_settings=specs[other])
        sys.data.update(pick=pick, saved=True, prefs=str(prefs.path()), pairs=count)
        out = f"saved: {pick.upper()} chosen over {other.upper()} -> {prefs.path()} ({count} pair(s))"
        sys.write(out + "\n")
        return out


def parse(spec: str) -> dict:
    """``"temperature=0.9,seed=1"`` -> generation settings; a bad one is a one-line error."""
    out: dict = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, eq, value = part.partition("=")
        if not eq or key.strip() not in KEYS:
            raise UsageError(f"bad setting {part!r}: use {', '.join(KEYS)} as key=value, comma-separated")
        try:
            out[key.strip()] = KEYS[key.strip()](value.strip())
        except ValueError:
            raise UsageError(f"bad setting {part!r}: {key.strip()} takes a {KEYS[key.strip()].__name__}") from None
    return out


def side_by_side(title_a: str, a: str, title_b: str, b: str, width: int) -> str:
    """Two texts in two columns of plain text (wrapped; one above the other when narrow)."""
    col = (width - 3) // 2
    if col < 24:
        return f"-- {title_a}\n{a}\n\n-- {title_b}\n{b}"

    def wrap(text: str) -> list[str]:
        return [line for para in text.splitlines() or [""] for line in (textwrap.wrap(para, col) or [""])]

    rows = [f"{title_a[:col]:<{col}} | {title_b[:col]}", f"{'-' * col}-+-{'-' * col}"]
    rows += [f"{x:<{col}} | {y}".rstrip() for x, y in zip_longest(wrap(a), wrap(b), fillvalue="")]
    return "\n".join(rows)
