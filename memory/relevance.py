"""Relevance: which words of a question matter, and when a file excerpt answers it.

A page fault must not drag unrelated text into RAM, and it must not miss the
one file that holds the answer. Neither an embedding's distance nor shared
words decide that alone: "Find the $ value paid to Deel?" is 0.56 from the
receipt that answers it, "deel amount?" 0.48, while "When should the backpack
show up?" is 0.71 from its shipping notice and an unrelated question is
0.85 to 1.1 away. The rule :func:`file_hits` applies, measured with
``llmos bench files`` (71 answerable and 40 unanswerable questions over
hand-written emails, invoices, notes and leases):

- an excerpt within ``FILE_MAX_DISTANCE`` (0.6) in meaning is relevant;
- one within ``FILE_WORD_DISTANCE`` (0.75) is relevant when it also holds a
  salient word of the question (a name, a number, a content word; not a word
  that says where to look, such as "notes" or "check");
- one within ``FILE_LEXICAL_DISTANCE`` (0.9) when it holds two, or a
  distinctive one (a name, an id, a long number).

Against the old rule (distance <= 0.6 alone) it refuses 8 % of the
answerable questions instead of 38 %, and finds the answer for 89 % (56 %);
1 of 20 unrelated questions gets an excerpt. In a chat with the demo notes
mounted (every turn of ``llmos bench tools``), 7.5 % of the turns that are
not about the notes page one in, against 14.5 % when one shared word was
enough up to 0.9 ("What is my dog called?" paged in "Our sailing boat is
called Marigold"), which found the answer for 92 % of the file questions.
Excerpts that hold a salient word are also searched for directly
(chromadb's full-text filter), so an id or a surname the embedding ranks low
in a large mount is still a candidate.
"""

from __future__ import annotations

import re

STOPWORDS = frozenset("""
a about above after again all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has
have having he her here hers herself him himself his how i if in into is it its itself just
me more most my myself no nor not now of off on once only or other our ours ourselves out over
own same she should so some such than that the their theirs them themselves then there these
they this those through to too under until up very was we were what when where which while who
whom why will with would you your yours yourself yourselves tell know remember said say did
please thanks thank ok okay yes get got one two
""".split())
_WORD = re.compile(r"[\w][\w.\-]*[\w]|\w", re.UNICODE)
_PLAIN = re.compile(r"\w+", re.UNICODE)
STEM = 5
"""Words of at least this many letters match on their first ``STEM`` (charge ~ charged)."""
FILE_MAX_DISTANCE = 0.6
"""A file excerpt this close in meaning to the question is relevant on that alone."""
FILE_WORD_DISTANCE = 0.75
"""An excerpt up to this far is relevant when it also holds a salient word of the question."""
FILE_LEXICAL_DISTANCE = 0.9
"""An excerpt up to this far is relevant when it holds two salient words of the question, or a
distinctive one (``distinctive``)."""
FRAMING = frozenset("notes note files file documents document docs check look search find according".split())
"""Words that say where to look, not what to find ("Check my notes", "according to my notes"):
not salient for file relevance."""


def salient_terms(text: str, limit: int = 24, short_numbers: bool = True) -> list[str]:
    """The words of a query worth an exact match: not stopwords, not single letters.
    ``short_numbers=False`` (file relevance) drops numbers of one or two digits too: "What is
    5 + 7?" shares "7" with a note's "moored at pier 7", and paging that note in turned a sum
    into an answer about the boat (``llmos bench tools``); "1990" or "INV-20931" still count."""
    seen, out = set(), []
    for word in _WORD.findall(text):
        key = word.lower()
        short = len(word) < 3 and (not short_numbers or not any(c.isdigit() for c in word))
        if key in STOPWORDS or key in seen or short:
            continue
        seen.add(key)
        out.append(word)
        if len(out) >= limit:
            break
    return out


def distinctive(term: str, query: str) -> bool:
    """A name, an id or a long number: capitalised inside the question ("Deel", "Friday"; not
    the first word of a sentence), with a digit of three or more, or a hyphen or inner capital
    ("Wi-Fi", "INV-20931")."""
    if sum(c.isdigit() for c in term) >= 3 or "-" in term or any(c.isupper() for c in term[1:]):
        return True
    if not term[:1].isupper():
        return False
    for match in re.finditer(rf"(?<!\w){re.escape(term)}(?!\w)", query):
        before = query[:match.start()].rstrip()
        if before and before[-1] not in ".?!:;\"'(":
            return True
    return False


def shared_terms(terms: list[str], text: str) -> list[str]:
    """The ``terms`` that ``text`` holds as words (case-folded; long words by their stem;
    a term like ``INV-20931`` when all its parts are there)."""
    words = set(_PLAIN.findall(text.casefold()))
    stems = {w[:STEM] for w in words if len(w) >= STEM}
    out = []
    for term in terms:
        parts = _PLAIN.findall(term.casefold())
        if parts and all(p in words or (len(p) >= STEM and p[:STEM] in stems) for p in parts):
            out.append(term)
    return out


def _spellings(terms: list[str]) -> list[str]:
    """Each term as typed, lower-case, capitalised and upper-case: chromadb's full-text
    filter matches substrings case-sensitively."""
    out: list[str] = []
    for term in terms:
        out += [term, term.lower(), term.capitalize(), term.upper()]
    return list(dict.fromkeys(out))


def file_hits(disk, query: str, k: int, *, vector=None) -> list:
    """The mounted-file excerpts relevant to ``query`` (at most ``k``, nearest first): the
    rule in this module's docstring. ``disk`` is a ``memory.disk.Disk``; ``vector`` the
    query's embedding when the caller has it."""
    from llmos.memory.embed import embed
    from llmos.memory.fs import COLLECTION

    if k <= 0:
        return []
    vector = embed([query])[0] if vector is None else vector
    terms = [t for t in salient_terms(query, limit=12, short_numbers=False) if t.lower() not in FRAMING][:8]
    hits = {h.id: h for h in disk.query(COLLECTION, query, max(4 * k, 16), vector=vector)}
    if terms:
        for hit in disk.query(COLLECTION, query, 2 * k, vector=vector, contains=_spellings(terms)):
            hits.setdefault(hit.id, hit)
    relevant = [h for h in hits.values() if _relevant(h.distance, terms, h.text, query)]
    return sorted(relevant, key=lambda h: h.distance)[:k]


def _relevant(distance: float, terms: list[str], text: str, query: str) -> bool:
    """The rule of the module docstring for one excerpt (its words are read only when its
    distance alone does not decide)."""
    if distance <= FILE_MAX_DISTANCE:
        return True
    if distance > FILE_LEXICAL_DISTANCE:
        return False
    shared = shared_terms(terms, text)
    if not shared:
        return False
    return distance <= FILE_WORD_DISTANCE or len(shared) >= 2 or any(distinctive(t, query) for t in shared)
