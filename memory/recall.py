"""Recall: how a page fault ranks a process's pages for the question it is about to answer.

Swap (``swap.py``) stores pages; this module decides which of them a question
needs. The ranking is built in steps, each measured with ``llmos bench paging``
on long conversations (the shipped development set, ``bench/longmem.py``, and
LoCoMo's public ones, ``bench/locomo.py``) and each but the first switchable
for that measurement (``--without STEP``):

1. **signals**: a vector ranking (MiniLM cosine, what a paraphrase needs; a
   turn that goes on with the one before is searched with it, ``swap.turn_vectors``)
   and a lexical one (SQLite FTS5 BM25 over the word stems of the process's
   pages, what names and numbers need; ``lexical``), interleaved by best rank
   (``fuse``); ``agree``: pages that both rank high come first.
2. ``dates``: a question that names a day or a month ("What did Maria start
   on 3 June, 2023?", "in May 2023") is about what was said then. Pages
   written on that day (or within a week of it), or in that month, rank above
   the other hits, in their own order. A page's date is when it was written
   (``Page.created``, local time), kept in the journal with it.
   ``when``: a question that asks when ("When did Jon get mentored?") is
   answered by a turn that says when ("... yesterday", "last week", "in
   2019"): such hits rank a little higher (``WHEN_BONUS``).
3. ``context``: every hit lends a share of its score to the turns before and
   after it, so a question and its answer, or a line and the next one that
   completes it, rank together.
4. ``hops``: a question may name a thing by its relation ("my sister's dog")
   while the detail was said later by the thing's name ("Pixel is part border
   collie"). For a question that names someone by relation (``by_relation``),
   the rare names that the best hit with any adds to the question (capitalised
   words the question lacks) are searched for once more, and the best pages
   that search finds rank just below the first hits' best (``HOP_BELOW``).
   Only such a question: LoCoMo's questions name whom they are about ("What did
   Caroline research?"), and a hop for each of them cost 0.006 (0.715 with the
   gate, 0.709 without); the development set's relation questions keep theirs.
5. ``neighbours``: the turn next to one of the very best hits often holds the
   answer (the user asks, the assistant's reply has the figure; the user says
   "guess what?", the next line says what). The turns next to the ``LENDERS``
   best hits rank just below them.

Another step was measured and dropped: reordering the strong hits by time for
"what did I first say ..." / "... now" questions bought nothing (the earliest
and latest mentions were already in the top ten) and cost paraphrases 0.03.
"""

from __future__ import annotations

import datetime as dt
import re

from llmos.memory.journal import Journal
from llmos.memory.relevance import salient_terms

STEPS = ("agree", "dates", "when", "context", "hops", "neighbours")
RRF_K = 60
TIE = 0.001
"""RRF's weight in the fused score: enough to order pages of equal best rank, no more."""
AGREE = 0.03
"""Weight of the signals' agreement in the fused score (``fuse``)."""
CONTEXT_SHARE = 0.2
"""Each hit lends this share of its score to the turn before and the turn after it
(``context``). 0.3 bought LoCoMo's first four conversations 0.005 more and cost the
development set's paraphrases one question of 27 (0.81 -> 0.78)."""
NEIGHBOUR_SHARE = 0.99
"""A neighbour of one of the best hits ranks just below it (its score, times this), unless
it ranks higher on its own."""
LENDERS = 2
"""How many of the best hits bring their neighbours along."""
HOP_PAGES = 2
HOP_BELOW = 4
"""The ``HOP_PAGES`` best pages a second-hop name finds (besides the hits that gave the name)
rank just below the first hits' ``HOP_BELOW`` + 1 best: in the top k, where the answer of a
two-hop question must be. A share of a first hit's score (0.6, before) left them near rank 40,
out of reach. ``llmos bench paging`` (recall@10, multihop): dev 3 seed 0 0.80 -> 0.90, dev 5
seed 1 (a draw it was not tuned on) 0.76 -> 0.88, every other kind unchanged; below the 3rd
best instead: multihop 0.90 but paraphrase 0.94 -> 0.88."""

DAY_BONUS = 1.0
WEEK_BONUS = MONTH_BONUS = 0.5
"""Added to a fused score (at most ~0.08) when a page was written on the day the question
names, within a week of it, or in the month it names: above every hit of another date.
``--without dates``: LoCoMo's first four conversations 0.706 -> 0.676 (its questions name
the day of a session in 12 % of the cases); the development set names no dates."""
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = re.compile(rf"\b(?:(\d{{1,2}})(?:st|nd|rd|th)?\s+)?({_MONTHS})\.?,?(?:\s+(\d{{1,2}})(?:st|nd|rd|th)?,?)?"
                   rf"\s+(\d{{4}})\b|\b(\d{{4}})-(\d{{2}})-(\d{{2}})\b")

WHEN_BONUS = 0.01
"""Added to a hit that says when (``says_when``) for a question that asks when (``asks_when``):
about a rank's worth near the top, not a date's. LoCoMo, offline over the same rankings:
temporal questions 0.734 -> 0.759, all 0.721 -> 0.727, the development set unchanged
(its "when did I ..." questions are all found already); 0.02 bought nothing more."""
_ASKS_WHEN = re.compile(r"\s*(?:when|how long|what (?:date|year|month|day))\b", re.IGNORECASE)
_SAYS_WHEN = re.compile(
    r"\b(?:yesterday|today|tonight|tomorrow|recently|ago|this (?:week|weekend|month|year|morning)"
    r"|last (?:week|weekend|month|year|night|summer|winter|fall|spring|monday|tuesday|wednesday|thursday"
    r"|friday|saturday|sunday)|next (?:week|month|year)|since \d{4}|in \d{4})\b", re.IGNORECASE)

HOP_SHARE = 0.03
HOP_MIN = 5
"""A name is worth a second hop only if at most this share of the process's pages (and at
least ``HOP_MIN``) hold it: in a long conversation between two people each one's name is
in a fifth of the turns ("Thanks, Melanie!"), and a hop for it brought two unrelated
turns into the top five. LoCoMo, first four conversations: 0.684 with a hop for every
name, 0.716 without hops, 0.711 with rare names only; the development set's multihop
questions need them (0.65 without hops, 0.94 with)."""

_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}\b")
_CALENDAR = {w.casefold() for w in _MONTHS.split("|")} | {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
"""Capitalised, but no one's name: a day or a month in a hit is no bridge to another page."""

_RELATION = re.compile(
    r"\b(?:my|your|our|his|her|their|\w+'s)\s+(?:\w+\s+){0,2}?"
    r"(?:sister|brother|sibling|mother|mom|mum|father|dad|parent|son|daughter|kid|child|children|baby"
    r"|cousin|aunt|uncle|niece|nephew|grand\w+|wife|husband|partner|spouse|boyfriend|girlfriend|fianc\w*"
    r"|friend|roommate|neighbou?r|co-?worker|colleague|boss|manager|team lead|employer|landlord|teacher"
    r"|doctor|mentor|dog|cat|pet|puppy|kitten)s?\b", re.IGNORECASE)


def lexical(journal: Journal, pid: int, text: str, depth: int) -> list[tuple[str, float]]:
    """The lexical signal: ``pid``'s pages that hold the salient words of ``text`` (BM25 over
    the journal's index of word stems; resident and swapped alike), best first, with scores."""
    terms = salient_terms(text)
    if not terms:
        return []
    return journal.lexical_search(" ".join(terms), pid=pid, evicted_only=False, k=depth)


def rrf(rankings: list[list[str]]) -> dict[str, float]:
    """Reciprocal-rank fusion: each ranking adds 1 / (RRF_K + rank) to a page's score."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, page_id in enumerate(ranking):
            scores[page_id] = scores.get(page_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    return scores


def fuse(signals: list[list[tuple[str, float]]], *, agree: bool = True) -> dict[str, float]:
    """Fuse the signals' rankings (page id and the signal's own score, best first).

    First, interleave them: a page scores by its best rank in any of them, ties broken by
    reciprocal-rank fusion (RRF). So the fused top k always holds the top k/2 of each signal,
    and a signal that is wrong for this question (decoys that share the question's words, a
    paraphrase the embedding misses) cannot push the other one's best hits out, as it can in
    plain RRF, which scored below its better half (vector) on paraphrases: 0.73 against 0.88
    with interleaving, on a development set it was not tuned on.

    Then agreement: each signal's score, scaled to 0..1 over its own list, adds ``AGREE``
    times itself. This term is the larger one (up to 0.06 against the interleaved rank's
    0.011-0.016), so pages that both signals rank high come first (on long real
    conversations the answer is often 6th in both lists and first in neither), and the
    interleaved rank orders pages the signals agree on equally, lifting each one's own top
    hits. ``llmos bench paging --without agree``, the other steps on: LoCoMo's first four
    conversations 0.706 -> 0.614, the development set 0.951 -> 0.815 (paraphrase 0.81 ->
    0.67)."""
    best: dict[str, int] = {}
    together: dict[str, float] = {}
    for signal in signals:
        if not signal:
            continue
        values = [v for _, v in signal]
        low, span = min(values), max(values) - min(values)
        for rank, (page_id, value) in enumerate(signal):
            best[page_id] = min(best.get(page_id, rank), rank)
            together[page_id] = together.get(page_id, 0.0) + ((value - low) / span if span else 1.0)
    ties = rrf([[i for i, _ in signal] for signal in signals])
    weight = AGREE if agree else 0.0
    return {i: 1.0 / (RRF_K + best[i] + 1) + TIE * ties[i] + weight * together[i] for i in best}


def hop_limit(total: int) -> int:
    """In how many of a process's ``total`` pages a name may be and still be worth a hop."""
    return max(HOP_MIN, int(HOP_SHARE * total))


def new_names(query: str, texts: list[str], limit: int = 4) -> list[str]:
    """Capitalised words of ``texts`` (not at a sentence start) that ``query`` does not
    hold: the names a second hop searches for."""
    have = {w.casefold() for w in re.findall(r"\w+", query)} | _CALENDAR
    out: list[str] = []
    for text in texts:
        for name in _NAME.findall(text):
            if name.casefold() not in have and name not in out:
                out.append(name)
    return out[:limit]


def by_relation(query: str) -> bool:
    """Whether ``query`` names someone by their relation to a person ("my sister's dog", "her
    coworker", "Melanie's kids"): what a second hop resolves."""
    return _RELATION.search(query) is not None


def named_dates(query: str) -> list[tuple[dt.date, bool]]:
    """The days and months ``query`` names, as (date, is_a_day): "3 June, 2023", "June 3rd,
    2023" and "2023-06-03" are days; "June 2023" is a month (its first day, False)."""
    out: list[tuple[dt.date, bool]] = []
    for m in _DATE.finditer(query):
        try:
            if m.group(5):
                out.append((dt.date(int(m.group(5)), int(m.group(6)), int(m.group(7))), True))
                continue
            month = dt.datetime.strptime(m.group(2), "%B").month
            day = m.group(1) or m.group(3)
            out.append((dt.date(int(m.group(4)), month, int(day) if day else 1), bool(day)))
        except ValueError:  # "31 June": not a day
            continue
    return out


def asks_when(query: str) -> bool:
    """Whether ``query`` asks when something happened ("When did ...", "How long ...")."""
    return _ASKS_WHEN.match(query) is not None


def says_when(text: str) -> bool:
    """Whether ``text`` says when, relative to its own day ("yesterday", "two weeks ago", "last
    summer") or by year ("in 2019")."""
    return _SAYS_WHEN.search(text) is not None


def date_bonus(created: float, dates: list[tuple[dt.date, bool]]) -> float:
    """What a page written at ``created`` (epoch seconds) gains for the ``named_dates`` of a
    question: ``DAY_BONUS`` on a named day, ``WEEK_BONUS`` within a week of it, ``MONTH_BONUS``
    in a named month."""
    day = dt.datetime.fromtimestamp(created).date()
    best = 0.0
    for date, is_day in dates:
        if is_day:
            gap = abs((day - date).days)
            best = max(best, DAY_BONUS if gap == 0 else WEEK_BONUS if gap <= 7 else 0.0)
        elif (day.year, day.month) == (date.year, date.month):
            best = max(best, MONTH_BONUS)
    return best
