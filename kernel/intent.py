"""Whether an input asks for something at all: the gate before a device call.

A 0.5B model shown a tools section calls a device for almost anything it has no
answer for. Told "My dog is called Biscuit." or "I live in Lisbon.", the
default model's first token starts a call (``{"``, a code fence, ``{`` and a
newline) with probability 0.88 and 0.67, against 0.93 for "What is 2 + 2?" and
0.03 for "What is the capital of France?": its own decision does not tell a
statement from a request, so its call invents arguments (``calc`` of "2 + 3")
and its answer reports them ("The answer is 5."). Measured with the model's own
template and tools section; the prompts are in ``llmos bench tools``.

So a turn may open with a call only when its input asks for something: a
question mark, a request ("please", "can you", "tell me", "I need" ...), an
instruction (its first word a verb such as *calculate*, *search*, *convert*,
*write*), or arithmetic (numbers with an operator, or words such as *times*,
*percent*, *squared*). A plain statement is answered in words, and from a
context without the tools section (``Kernel.plain_context``): held to words
with the section in view, the model describes the call it may not make ("Here
is a JSON object with the function name calc ..."). The gate only takes the
call away; it never makes one.

The other way round, ``must_call``: a sum with numbers in it, or the time or
date now, must come from the device. In conversations the default model stops
calling after a few answers in words and guesses ("1234 multiplied by 5678
equals 692,779,216"); there the first round is held to a call.

``llmos bench tools --without gate`` measures what both buy (default model, 150
turns, ``docs/bench/README.md``): call decision 0.747 -> 0.933, false calls
0.241 -> 0.0, right calls 0.563 -> 0.718.
"""

from __future__ import annotations

import re

VERBS = frozenset("""
add average calc calculate change check compare compute convert count create define describe divide do
draw evaluate execute explain fetch find get give graph help how is are list look make multiply name open
please plot print read recall remind run say search show solve sort square subtract sum summarise summarize
suggest tell translate what whats when where which who why will would can could should does did write
""".split())
"""First words of an instruction or a question (lower case, apostrophes removed)."""
# A minus counts between spaces only: "3-4 pm" and "1990-1995" are ranges, "4500 - 1789" a sum.

PHRASES = ("please", "can you", "could you", "would you", "will you", "tell me", "show me", "let me know",
           "i need", "i want", "i'd like", "i would like", "look up", "find out", "work out", "remind me",
           "how many", "how much", "what time", "what day", "what date")

MATH = re.compile(r"\d\s*[+*/^%×÷x]\s*\d|\d\s+-\s+\d|\d\s*\*\*|\d\s*%\s*of\b|\b(plus|minus|times|divided|percent|squared|cubed|"
                  r"power|sum|product|average|multiply|factorial)\b", re.IGNORECASE)


CLOCK = re.compile(r"\b(time is it|day is it|date is it|year is it|what's the time|what is the time|"
                   r"the time now|time right now|current (time|date|day)|today's date|the date today|"
                   r"what's the date|what is the date|day of the week is it|date and time)\b", re.IGNORECASE)
"""Asking for the time or date now ("What time is Friday lunch?" is not: it is in the notes)."""


def must_call(text: str, grants: set[str]) -> bool:
    """True when the input asks for a sum with numbers in it, or names the calculator (and calc
    is granted), or asks for the time or date now, or names the clock (and clock is): the
    answer must come from the device, never from the model's
    guess. In conversations the default model stops calling after a few answers in words and
    guesses ("1234 multiplied by 5678 equals 692,779,216"); here the first round must be a call."""
    if not asks(text):
        return False
    named = text.lower()
    if "calc" in grants and re.search(r"\d", text) and (MATH.search(text) or re.search(r"\bcalc(ulat\w*)?\b", named)):
        return True
    return "clock" in grants and bool(CLOCK.search(text) or re.search(r"\bclock\b", named))


def asks(text: str) -> bool:
    """True when ``text`` asks for something (a question, a request, an instruction or a sum);
    False for a plain statement, which a device call would only answer with invented values."""
    text = text.strip()
    if not text:
        return False
    if "?" in text or MATH.search(text):
        return True
    lower = " ".join(text.lower().split())
    if any(phrase in lower for phrase in PHRASES):
        return True
    first = re.sub(r"[^a-z]", "", lower.split(" ", 1)[0].replace("'", ""))
    return first in VERBS
