"""Swap: where evicted pages live, and how a page fault finds them again.

``Swap`` is the pager's backing store (``ram.Backing``). Evicted pages are
written to their process's swap collection, ``swap-<pid>`` (text, embedding, and metadata:
pid, page id, origin, trust, seq, timestamps) and marked evicted in the
journal, which already holds every page.

Swap also keeps copies of some resident pages, so that evicting them writes
nothing and a page fault that must make room never waits for chromadb (a write
there costs 10-30 ms, and now and then hundreds): a page paged back in keeps its
copy, and after each turn the pager has the pages the next eviction would take
copied ahead (``clean``). Pages do not change once written, so a copy stays
valid while the page is resident. Each such copy is pending in the journal
(``swap_pending``); once the page is evicted the journal and swap agree on it,
and after a crash ``recover`` removes the copies of resident pages. So swap
holds every evicted page, plus copies of resident pages that the journal lists
as pending; after a (re)start, exactly the evicted pages.

Finding pages for a fault is hybrid, because neither signal alone is enough:

- **vector** (chromadb, MiniLM embeddings) finds paraphrases ("my sister's
  name" for "Anna is my sister") but is weak on exact tokens: an invoice
  number or a surname has no useful meaning to an embedding;
- **lexical** (the journal's SQLite FTS5 index of word stems, BM25) finds
  exact names, numbers and ids, but misses paraphrases.

The two rankings are fused by best rank and by how far both agree, each
signal's scores scaled over its own list (``recall.fuse``; the steps after it
are in ``recall.py``), so no calibration between them is needed. ``llmos bench paging`` measures each signal alone and fused
(``--signal``) and each later step (``--without``). Vector hits further than
``MAX_DISTANCE`` are dropped, so an unrelated turn does not drag old pages in.

Mounted files are searched too (the ``files`` collection); a file excerpt
becomes a new untrusted FILE page with its path and line range as source.
"""

from __future__ import annotations

import time

import numpy as np

from llmos.memory.disk import Disk
from llmos.memory.embed import embed
from llmos.memory.journal import Journal
from llmos.memory.page import TURN_ORIGINS, Origin, Page, Trust, later_part
from llmos.memory import recall
from llmos.memory.relevance import file_hits

CONTINUES = 0.2
"""A turn whose own embedding is more similar than this (cosine) to the turn before's goes on
with it, and is searched with it (``turn_vectors``). LoCoMo, offline over the same
embeddings: 0.1 0.724, 0.2 0.721, 0.3 0.720; the development set's paraphrases 0.81 at each,
0.70 with no gate."""
MAX_DISTANCE = 0.75
"""Cosine distance beyond which a vector hit is not relevant (similarity < 0.25)."""


def turn_vectors(texts: list[str], prevs: list[str | None],
                 known: list[np.ndarray | None] | None = None) -> list[np.ndarray]:
    """The vectors pages are searched by. A turn that follows another (``prevs``: the end of
    the turn before it, ``Journal.prev_texts``) gets the mean of two embeddings, its own
    text's and its text after the turn before, scaled to length 1: a reply ("Yes, I really
    love them!") means little without the question it answers. Other pages get their own
    text's embedding. ``known``: own embeddings already computed (None where not).

    Only a turn that goes on with the turn before blends: one whose own embedding is more than
    ``CONTINUES`` similar to the turn before's. A user who changes the subject ("My sister
    Tamsin had twins yesterday!" after a reply about a slow laptop) keeps their own vector;
    blended, the development set's paraphrases fell 0.81 -> 0.63.

    ``llmos bench paging``, recall@10: LoCoMo's first four conversations 0.706 -> 0.737; the
    development set unchanged (0.951, every kind as before). The cost: three embeddings for
    such a turn instead of one, computed once, off the page-fault path (``settle``)."""
    own = list(known) if known is not None else [None] * len(texts)
    fresh = [i for i, v in enumerate(own) if v is None]
    after = [i for i, p in enumerate(prevs) if p]
    vectors = embed([texts[i] for i in fresh] + [prevs[i] for i in after] +
                    [f"{prevs[i]}\n{texts[i]}" for i in after])  # one batch
    for i, vec in zip(fresh, vectors):
        own[i] = vec
    out = [np.asarray(v, dtype=np.float32) for v in own]
    before, joint = vectors[len(fresh):len(fresh) + len(after)], vectors[len(fresh) + len(after):]
    for i, prev, both in zip(after, before, joint):
        if float(out[i] @ prev) > CONTINUES:
            mean = out[i] + both
            out[i] = mean / (np.linalg.norm(mean) or 1.0)
    return out


def collection(pid: int) -> str:
    """Each process swaps to its own collection: a search needs no metadata filter,
    which in chromadb costs more than the vector search itself (17 ms vs 3 ms at 10k)."""
    return f"swap-{pid}"


class Swap:
    """Journal + disk, as the pager's backing store."""

    def __init__(self, disk: Disk, journal: Journal, *, signal: str = "hybrid",
                 search_files: bool = True, steps: frozenset[str] = frozenset(recall.STEPS)) -> None:
        self.disk = disk
        self.journal = journal
        self.signal = signal  # "hybrid", "vector" or "lexical" (the benchmark compares them)
        self.steps = steps  # the ranking steps of recall.py that run (the benchmark ablates them)
        self.search_files = search_files
        self._copies: dict[int, set[str]] = {}
        """Per pid, the resident pages that have a copy in swap (pending in the journal)."""
        self._query: tuple[str, np.ndarray] | None = None

    def record(self, page: Page) -> None:
        self.journal.record_page(page)

    def _vectors(self, pages: list[Page]) -> np.ndarray:
        """The vectors pages are searched by (``turn_vectors``), computed once per page and
        kept on it."""
        missing = [p for p in pages if p.vector is None]
        if missing:
            # a later part of a long paste is no reply: its own embedding, at a third of the cost
            prev = self.journal.prev_texts([p.id for p in missing if not later_part(p.source)])
            known = [self._query[1] if self._query is not None and p.text == self._query[0] else None
                     for p in missing]  # the user's input was just embedded as a query: reuse it
            for page, vec in zip(missing, turn_vectors([p.text for p in missing],
                                                       [prev.get(p.id) for p in missing], known)):
                page.vector = vec
        return np.asarray([p.vector for p in pages], dtype=np.float32).reshape(len(pages), -1)

    def swap_out(self, pages: list[Page]) -> None:
        """Put pages in swap, then mark them evicted in the journal.

        A page that already has a copy in swap (written ahead by ``clean``, or left there
        when it was paged in) costs nothing more: pages do not change once written. The
        others are written now. Write-ahead: the journal notes the intent first. If the
        write fails (a full disk, a server that died) the copies written so far are
        removed and the error is raised: the pages stay in RAM and swap holds nothing
        new of them. If llmos dies in between, the intent is still in the journal and
        ``recover`` settles it on the next start.
        """
        fresh = [p for p in pages if p.id not in self._copies.get(p.pid, ())]
        self._write_ahead(fresh)
        self.journal.mark_evicted([p.id for p in pages])
        for page in pages:
            self._copies.get(page.pid, set()).discard(page.id)

    def clean(self, pages: list[Page]) -> None:
        """Copy resident pages to swap ahead of their eviction, off the page-fault path, so
        that evicting them later writes nothing (the pager calls this after a turn for the
        pages the next eviction would take). A copy of a resident page is pending in the
        journal until the page is evicted; after a crash ``recover`` removes it."""
        fresh = [p for p in pages if p.resident and p.id not in self._copies.get(p.pid, ())]
        self._write_ahead(fresh)
        for page in fresh:
            self._copies.setdefault(page.pid, set()).add(page.id)

    def _write_ahead(self, pages: list[Page]) -> None:
        """Write pages to their swap collections under a journalled intent; on failure
        remove what was written and raise."""
        if not pages:
            return
        ids = [p.id for p in pages]
        self.journal.swap_begin(ids)
        try:
            for pid in sorted({p.pid for p in pages}):
                self._write(pid, [p for p in pages if p.pid == pid])
        except Exception:
            try:
                for pid in sorted({p.pid for p in pages}):
                    self.disk.delete(collection(pid), ids=[p.id for p in pages if p.pid == pid])
                self.journal.swap_done(ids)
            except Exception:  # the disk is gone altogether: recover() cleans up on the next start
                pass
            raise

    def _write(self, pid: int, group: list[Page], now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.disk.add(
            collection(pid),
            ids=[p.id for p in group],
            texts=[p.text for p in group],
            metadatas=[{"pid": p.pid, "page_id": p.id, "origin": p.origin.value, "trust": p.trust.value,
                        "seq": p.seq, "source": p.source, "created": p.created, "evicted_at": now}
                       for p in group],
            embeddings=self._vectors(group),
        )

    def recover(self) -> dict[str, int]:
        """After a crash: settle every swap write or delete the journal says may have been cut,
        so that swap holds a page if and only if the journal says it is evicted. Returns
        counts: ``rewritten`` (evicted pages missing from swap), ``removed`` (copies of
        resident pages)."""
        counts = {"rewritten": 0, "removed": 0}
        for pid, ids in self.journal.swap_pending().items():
            pages = {p.id: p for p in (self.journal.page(i) for i in ids) if p is not None}
            evicted = [p for p in pages.values() if not p.resident]
            stale = [i for i in ids if i not in pages or pages[i].resident]
            present = {h.id for h in self.disk.get(collection(pid), ids=[p.id for p in evicted], texts=False)}
            missing = [p for p in evicted if p.id not in present]
            if missing:
                self._write(pid, missing, now=min(p.created for p in missing))
            if stale:
                self.disk.delete(collection(pid), ids=stale)
            self.journal.swap_done(ids)
            counts["rewritten"] += len(missing)
            counts["removed"] += len(stale)
        return counts

    def swap_in(self, pages: list[Page]) -> None:
        """Pages came back to RAM. The journal says so at once; their swap copies stay
        (pending in the journal), so evicting them again writes nothing."""
        self.journal.mark_resident([p.id for p in pages])
        for page in pages:
            self._copies.setdefault(page.pid, set()).add(page.id)

    def settle(self, resident: list[Page] = ()) -> None:
        """Off the fault path: embed resident pages that have no vector yet, so the next
        search ranks them at once (a page is embedded once; eviction reuses the vector)."""
        fresh = [p for p in resident if p.vector is None]
        if fresh:
            self._vectors(fresh)

    def search(self, pid: int, query: str, k: int, resident: list[Page] = ()) -> list[Page]:
        """Pages of ``pid`` most relevant to ``query``, best first: swapped ones and resident
        ones ranked together (a relevant page already in RAM is a hit without I/O; the
        ranking's steps are in ``recall.py``), and relevant mounted-file excerpts, which
        may take up to half of the ``k`` places."""
        depth = max(k * 3, 20)
        by_id = {p.id: p for p in resident}
        scores = recall.fuse(self._signals(pid, query, depth, list(resident)), agree="agree" in self.steps)
        pages = self._resolve(pid, scores, by_id)
        if "dates" in self.steps:
            self._dates(query, scores, pages)
        if "when" in self.steps and recall.asks_when(query):
            for page_id in scores:
                scores[page_id] += recall.WHEN_BONUS * recall.says_when(pages[page_id].text)
        if "context" in self.steps:
            self._context(pid, scores, pages, by_id)
        if "hops" in self.steps and self.signal != "vector" and recall.by_relation(query):
            self._hop(pid, query, scores, pages, by_id, depth)
        if "neighbours" in self.steps:
            self._neighbours(pid, scores, pages, by_id)
        order = sorted(scores, key=scores.get, reverse=True)
        files = self._file_pages(pid, query, max(1, k // 2)) if self.search_files else []
        return [pages[i] for i in order[:k - len(files)]] + files

    def _signals(self, pid: int, query: str, depth: int, resident: list[Page]) -> list[list[tuple[str, float]]]:
        """The vector and lexical rankings of the process's pages: (page id, score), best first
        (similarity for the vector one, BM25 for the lexical one)."""
        copies = self._copies.get(pid, set())
        signals: list[list[tuple[str, float]]] = []
        if self.signal in ("hybrid", "vector"):
            qvec = embed([query])[0]
            self._query = (query, qvec)
            # Resident pages are ranked from RAM below; their copies in swap are skipped
            # (and asked for on top, so that they do not crowd swapped pages out).
            found = self.disk.query(collection(pid), query, depth + len(copies), vector=qvec)
            scored = [(h.distance, h.id) for h in found if h.id not in copies]
            if resident:
                distances = 1.0 - self._vectors(resident) @ qvec
                scored += [(float(d), p.id) for d, p in zip(distances, resident)]
            signals.append([(i, 1.0 - d) for d, i in sorted(scored) if d <= MAX_DISTANCE][:depth])
        if self.signal in ("hybrid", "lexical"):
            signals.append(recall.lexical(self.journal, pid, query, depth))
        return signals

    def _resolve(self, pid: int, scores: dict[str, float], by_id: dict[str, Page]) -> dict[str, Page]:
        """The pages behind ``scores``' ids (one journal read for the swapped ones); ids that
        are pinned or another process's are dropped from ``scores``."""
        pages = {i: by_id[i] for i in scores if i in by_id}
        pages.update(self.journal.pages_by_id([i for i in scores if i not in by_id]))
        for page_id in list(scores):
            page = pages.get(page_id)
            if page is None or page.pinned or page.pid != pid:
                scores.pop(page_id)
                pages.pop(page_id, None)
        return pages

    @staticmethod
    def _dates(query: str, scores: dict[str, float], pages: dict[str, Page]) -> None:
        """Hits written on the day or in the month the question names rank above the rest."""
        dates = recall.named_dates(query)
        if dates:
            for page_id in scores:
                scores[page_id] += recall.date_bonus(pages[page_id].created, dates)

    def _hop(self, pid: int, query: str, scores: dict[str, float], pages: dict[str, Page],
             by_id: dict[str, Page], depth: int) -> None:
        """Second hop: the rare names that the best hit with any adds to the question, searched
        for once more. One hit's names, not the best three's: names from two hits are often two
        subjects, and the second one's pages tied with the bridge's (development set, multihop:
        0.90 -> 0.96, seeds 0 and 1)."""
        ranked = sorted(scores, key=scores.get, reverse=True)
        best = ranked[:3]
        limit = recall.hop_limit(self.journal.page_span(pid))
        names: list[str] = []
        for hit in best:
            names = [n for n in recall.new_names(query, [pages[hit].text])
                     if 0 < self.journal.lexical_count(n, pid, cap=limit + 1) <= limit]
            if names:
                break
        if not names:
            return
        anchor = scores[ranked[min(recall.HOP_BELOW, len(ranked) - 1)]]
        found = recall.lexical(self.journal, pid, " ".join(names), depth)
        fresh = [i for i, _ in found if i not in best][:recall.HOP_PAGES]
        extra = {i: anchor * (1 - recall.TIE * (r + 1)) for r, i in enumerate(fresh)}
        for page_id, page in self._resolve(pid, extra, by_id).items():
            pages.setdefault(page_id, page)
            scores[page_id] = max(scores.get(page_id, 0.0), extra[page_id])

    def _turns_near(self, pid: int, seqs: set[int], by_id: dict[str, Page]) -> dict[int, Page]:
        """The process's turns (user and assistant pages) at these positions, resident ones as
        they are in RAM; kernel notes and pinned pages are left out."""
        at = {p.seq: p for p in by_id.values() if p.pid == pid}
        near = {s: at[s] for s in seqs if s in at}
        near.update({p.seq: p for p in self.journal.pages_at(pid, [s for s in seqs if s not in at])})
        return {s: by_id.get(p.id, p) for s, p in near.items()
                if not p.pinned and p.origin in TURN_ORIGINS}

    def _context(self, pid: int, scores: dict[str, float], pages: dict[str, Page],
                 by_id: dict[str, Page]) -> None:
        """Every hit lends ``CONTEXT_SHARE`` of its score to the turn before and after it (kernel
        notes between two turns are stepped over): a question and its answer, or a statement
        and the next line that completes it, rank together."""
        hits = dict(scores)
        turns = self._turns_near(pid, {pages[i].seq + d for i in hits for d in (-2, -1, 1, 2)}, by_id)
        for hit, score in hits.items():
            for page in _beside(turns, pages[hit].seq):
                pages.setdefault(page.id, page)
                scores[page.id] = scores.get(page.id, 0.0) + recall.CONTEXT_SHARE * score

    def _neighbours(self, pid: int, scores: dict[str, float], pages: dict[str, Page],
                    by_id: dict[str, Page]) -> None:
        """The turns next to the best hits rank just below them (kernel notes, such as
        memory pressure, between two turns are stepped over)."""
        best = sorted(scores, key=scores.get, reverse=True)[:recall.LENDERS]
        turns = self._turns_near(pid, {pages[i].seq + d for i in best for d in (-2, -1, 1, 2)}, by_id)
        for lender in best:
            for page in _beside(turns, pages[lender].seq):
                pages.setdefault(page.id, page)
                scores[page.id] = max(scores.get(page.id, 0.0), recall.NEIGHBOUR_SHARE * scores[lender])

    def _file_pages(self, pid: int, query: str, k: int) -> list[Page]:
        # the query's embedding, when the vector search above made it: one embedding per fault
        vector = self._query[1] if self._query is not None and self._query[0] == query else None
        out = []
        for hit in file_hits(self.disk, query, k, vector=vector):
            m = hit.metadata
            source = f"{m.get('path', '?')}:{m.get('line_start', '?')}-{m.get('line_end', '?')}"
            out.append(Page(pid, Origin.FILE, hit.text, id=f"f{pid}-{hit.id[:14]}", seq=-1,
                            trust=Trust.UNTRUSTED, source=source, resident=False))
        return out


def _beside(turns: dict[int, Page], seq: int) -> list[Page]:
    """The turns just before and just after position ``seq`` (one page between, such as a
    kernel note, is stepped over)."""
    out = []
    for step in (-1, 1):
        page = turns.get(seq + step) or turns.get(seq + 2 * step)
        if page is not None:
            out.append(page)
    return out
