"""The simple retrievers ``llmos bench paging`` measures the pager against, in the same run.

Each ranks *every* turn of a conversation for a question, with nothing evicted and
no budget: the best a plain retriever could do given the whole conversation.

- ``bm25``: plain BM25 over all turns (SQLite FTS5, ``unicode61``, every word of the
  question ORed, no stopwords, no stemming);
- ``vector``: the pager's own embedding model (MiniLM), cosine over all turns;
- ``rrf``: reciprocal-rank fusion of those two (k = 60);
- ``recency``: the latest turns first, what a FIFO context window keeps.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from llmos.memory.embed import embed
from llmos.memory.journal import fts_query
from llmos.memory.recall import rrf

NAMES = ("bm25", "vector", "rrf", "recency")


class Baselines:
    """All four baselines over one conversation's turns (embedded and indexed once)."""

    def __init__(self, turns: list[dict]) -> None:
        self.ids = [str(t["id"]) for t in turns]
        texts = [str(t["text"]) for t in turns]
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE t USING fts5(text, tokenize = 'unicode61 remove_diacritics 2')")
        self.db.executemany("INSERT INTO t (rowid, text) VALUES (?, ?)", enumerate(texts))
        self.vectors = embed(texts)

    def rank(self, question: str, depth: int, qvec: np.ndarray | None = None) -> dict[str, list[str]]:
        """Each baseline's ranking of turn ids for ``question``, best first, ``depth`` long."""
        match = fts_query(question)
        rows = self.db.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t), rowid LIMIT ?",
                               (match, depth)).fetchall() if match else []
        bm25 = [self.ids[r[0]] for r in rows]
        qvec = embed([question])[0] if qvec is None else qvec
        order = np.argsort(-(self.vectors @ qvec), kind="stable")[:depth]
        vector = [self.ids[i] for i in order]
        scores = rrf([bm25, vector])
        fused = sorted(scores, key=lambda t: -scores[t])[:depth]
        return {"bm25": bm25, "vector": vector, "rrf": fused, "recency": self.ids[::-1][:depth]}
