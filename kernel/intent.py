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

The other way round, ``required``: a sum with numbers in it, the time or date
now, or a question about the user's own notes must come from the device. In
conversations the default model stops calling after a few answers in words and
guesses ("1234 multiplied by 5678 equals 692,779,216"); there the first round is
held to a call of that device.

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


NOTES = re.compile(r"\b(my|our)\s+(\w+\s+)?(notes?|files?|documents?|docs)\b", re.IGNORECASE)
"""The user's own notes or files ("Search my notes for ...", "It's in my meeting notes.")."""

COUNT = re.compile(r"\b(how many|how much|in total|altogether)\b", re.IGNORECASE)
"""A question for a count or an amount: with two numbers in it, a word problem for calc."""

CONVERSION = re.compile(r"\bhow many \w+ (are |is )?(there )?in \d", re.IGNORECASE)
"""A unit conversion with one number ("How many minutes are in 7 hours?"): a product for calc."""

PLACE = re.compile(r"\bin\s+(the\s+)?[A-Z][\w-]+|\btime ?zones?\b|\b(UTC|GMT)\b")
"""A time asked for somewhere ("in Tokyo", "in UTC"): the only ground for the clock's ``tz``."""

UNASKED = {
    "clock": lambda text: ({"tz"} if not PLACE.search(text) else set())
    | ({"format"} if not re.search(r"\b(format|strftime|iso)\b", text, re.IGNORECASE) else set()),
    "search": lambda text: {"k", "where", "pid"},
}
"""Per device: the optional arguments a forced call leaves out, given the input (``unasked``)."""


def required(text: str, grants: set[str]) -> frozenset[str]:
    """The devices one of which the first round must call (empty: the model chooses).

    - calc, for a sum with numbers in it ("What is 1234*5678?"), a count or amount asked of two
      or more numbers ("3 boxes of 48 eggs, how many eggs is that?", "How much is 3 nights at
      145 euros a night?"), or an input that names the calculator ("Use the calculator.");
    - clock, for the time or date now, or an input that names the clock;
    - search (else files), for an input that asks about the user's notes or files ("What is my
      boat called? Look in my notes."). The pager may already have paged the note in, and the
      default model then answers from it in words, or copies the excerpt's heading into a
      ``files`` path; asked to search, it searches, and the answer cites the result.

    The answer must come from the device, never from the model's guess. In conversations the
    default model stops calling after a few answers in words and guesses ("1234 multiplied by
    5678 equals 692,779,216"); here the first round is held to a call of these devices."""
    if not asks(text):
        return frozenset()
    named = text.lower()
    numbers = len(re.findall(r"\d+(?:[.,]\d+)?", text))
    if "calc" in grants and (re.search(r"\bcalc(ulator)?\b", named) or numbers and (
            MATH.search(text) or re.search(r"\bcalculat\w*\b", named) or numbers >= 2 and COUNT.search(text)
            or CONVERSION.search(text))):
        return frozenset({"calc"})
    if "clock" in grants and (CLOCK.search(text) or re.search(r"\bclock\b", named)):
        return frozenset({"clock"})
    if NOTES.search(text):
        for device in ("search", "files"):
            if device in grants:
                return frozenset({device})
    return frozenset()


def unasked(text: str, device: str) -> frozenset[str]:
    """The optional arguments of a forced ``device`` call that ``text`` gives no ground for: the
    call's grammar leaves them out, so the device's defaults apply.

    Why: the default model fills every optional argument it is offered. Of 12 clock calls in
    ``llmos bench tools`` 11 named a zone nobody asked for ("What time is it?" answered with
    Tokyo's time) and most a format in another language's syntax (``yyyy-MM-dd``); notes
    searches asked for ``k: 1`` (one excerpt, often not the one with the answer) or for
    ``pid: 0``, which failed."""
    rule = UNASKED.get(device)
    return frozenset(rule(text)) if rule else frozenset()


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
