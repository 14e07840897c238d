"""Recall: how a page fault ranks a process's pages for the question it is about to answer.

Swap (``swap.py``) stores pages; this module decides which of them a question
needs. The ranking is built in steps, each measured with ``llmos bench paging``
on long conversations (the shipped development set, ``bench/longmem.py``) and
each switchable for that measurement (``--without STEP``):

1. **signals**: a vector ranking (MiniLM cosine, what a paraphrase needs) and
   a lexical one (SQLite FTS5 BM25 over the process's pages, what names and
   numbers need), interleaved by best rank (``fuse``).
2. ``neighbours``: the turn next to a hit often holds the answer (the user
   asks, the assistant's reply has the figure; the user says "guess what?",
   the next line says what). The turns next to the ``LENDERS`` best hits rank
   just below them.
3. ``hops``: a question may name a thing by its relation ("my sister's dog")
   while the detail was said later by the thing's name ("Pixel is part border
   collie"). Names that the best hits add to the question (capitalised words
   the question lacks) are searched for once more, and the best pages that
   search finds rank just below the first hits' best (``HOP_BELOW``).

A fourth step was measured and dropped: reordering the strong hits by time for
"what did I first say ..." / "... now" questions bought nothing (the earliest
and latest mentions were already in the top ten) and cost paraphrases 0.03.
"""

from __future__ import annotations

import re

STEPS = ("neighbours", "hops")
RRF_K = 60
TIE = 0.001
"""RRF's weight in the fused score: enough to order pages of equal best rank, no more."""
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

_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}\b")


def rrf(rankings: list[list[str]]) -> dict[str, float]:
    """Reciprocal-rank fusion: each ranking adds 1 / (RRF_K + rank) to a page's score."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, page_id in enumerate(ranking):
            scores[page_id] = scores.get(page_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    return scores


def fuse(rankings: list[list[str]]) -> dict[str, float]:
    """Interleave the rankings: a page scores by its best rank in any of them, ties broken by
    reciprocal-rank fusion (RRF). So the fused top k always holds the top k/2 of each signal,
    and a signal that is wrong for this question (decoys that share the question's words,
    a paraphrase the embedding misses) cannot push the other one's best hits out, as it
    can in plain RRF, which scored below its better half (vector) on paraphrases: 0.73
    against 0.88 with interleaving, on a development set it was not tuned on."""
    best: dict[str, int] = {}
    for ranking in rankings:
        for rank, page_id in enumerate(ranking):
            best[page_id] = min(best.get(page_id, rank), rank)
    return {i: 1.0 / (RRF_K + best[i] + 1) + TIE * s for i, s in rrf(rankings).items()}


def new_names(query: str, texts: list[str], limit: int = 4) -> list[str]:
    """Capitalised words of ``texts`` (not at a sentence start) that ``query`` does not
    hold: the names a second hop searches for."""
    have = {w.casefold() for w in re.findall(r"\w+", query)}
    out: list[str] = []
    for text in texts:
        for name in _NAME.findall(text):
            if name.casefold() not in have and name not in out:
                out.append(name)
    return out[:limit]
