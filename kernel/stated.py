"""Whether an answer states the device result it was written after.

The default model, answering a result in a long conversation, sometimes writes
an answer that has nothing of it: "189" after calc returned 289, "The capital of
Italy is Rome." after 3 * 145, an earlier answer again with a new number in it
("The total cost of 4 pizzas is $50." for 50 / 3). ``llmos bench tools`` saw
this on about one call in ten. The kernel then asks once more, greedily, from
this turn's pages alone (``Kernel._second_look``), where the earlier answers it
copies are not in view.

The test is a floor, not a judge: an answer states its result when it holds a
number of the result that the question did not hold (within rounding: 16.67 for
50/3), or, for a result that is text, one of its longer words the question did
not hold. An answer that passes may still be wrong; one that fails has nothing
of the result in it.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_WORD = re.compile(r"[^\W\d_][\w'-]{4,}", re.UNICODE)


def _numbers(text: str) -> set[float]:
    return {float(n) for n in _NUMBER.findall(text.replace(",", "").replace("\u202f", ""))}


def _words(text: str) -> set[str]:
    return {w.casefold() for w in _WORD.findall(text)}


def _near(a: float, b: float) -> bool:
    """Equal, or the same after the rounding an answer does (16.67 for 16.666..., 12.5 for 12.50)."""
    if a == b:
        return True
    digits = len(str(a).partition(".")[2].rstrip("0"))
    return round(b, digits) == a or abs(a - b) <= abs(b) * 0.005


def states(answer: str, result: str, question: str) -> bool:
    """Whether ``answer`` holds something of ``result`` that ``question`` did not (see above)."""
    numbers = _numbers(result) - _numbers(question)
    words = _words(result) - _words(question)
    if not numbers and not words:
        return True  # nothing to look for ("0", an empty listing): it cannot tell
    said = _numbers(answer)
    if any(_near(n, m) for n in said for m in numbers):
        return True
    return bool(words & _words(answer))
