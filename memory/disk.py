"""The disk: chromadb collections of text, found by meaning.

llmos keeps two collections on its disk: ``"swap"`` (pages evicted from RAM,
see ``swap.py``) and ``"files"`` (chunks of mounted folders, see ``fs.py``).
:class:`Disk` is the one door to them: add, query, get, delete, count, and the
figures ``llmos df`` prints.

By default the disk is embedded, ``chromadb.PersistentClient`` on
``<data dir>/disk``; with ``url`` it is a Chroma server reached through
``chromadb.HttpClient`` (scale-out). ``Disk()`` with neither uses the
configured server when there is one (``llmos.paths.configured_disk_url``: ``LLMOS_DISK_URL``,
else ``[disk] url`` in config.toml), so every part of llmos uses the same disk. Every collection uses the offline MiniLM
embedding function from ``embed.py`` and cosine distance (0 = same meaning,
2 = opposite); vectors are computed here, in this process, for both kinds.

Every failure a user can meet (a path that is a file, a directory chromadb
cannot read, a server that is down) becomes a one-line :class:`DiskError`
naming the path or URL and what to do. Nothing here ever deletes or rewrites
the user's files to recover from an error.

This module knows nothing of pages, processes or files on the host: callers
pass ids, texts and metadata dicts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from llmos.errors import DiskError, UsageError, one_line
from llmos.memory.embed import DIM, MiniLMEmbedding, embed
from llmos.paths import configured_disk_url, data_dir

COLLECTIONS = ("swap", "files")
"""The collections llmos itself uses."""
PAGE = 5000
"""Records read per request when a whole collection is walked (stats, get)."""


@dataclass
class Hit:
    """One record as read back from the disk."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    distance: float = 0.0
    """Cosine distance to the query (0 for a plain get)."""


@dataclass
class CollectionStats:
    """One row of ``llmos df``."""

    name: str
    records: int
    bytes: int
    """Stored document text (UTF-8) plus 4 * 384 bytes per vector."""
    disk_bytes: int | None
    """Size of the whole persistent directory (all collections); None on a server."""


class Disk:
    """The llmos disk: a chromadb client and its collections."""

    def __init__(self, path: Path | None = None, *, url: str | None = None) -> None:
        if path is None and url is None:
            url = configured_disk_url()
        self.path: Path | None = None
        self.url: str | None = url
        self._collections: dict[str, Any] = {}
        if url is not None:
            self._client = self._connect(url)
        else:
            self.path = Path(path).expanduser().resolve() if path is not None else data_dir() / "disk"
            self._client = self._open(self.path)
        self._max_batch = self._client.get_max_batch_size()

    @property
    def where(self) -> str:
        """The path or URL, as error messages name it."""
        return self.url if self.url is not None else str(self.path)

    # -- opening -----------------------------------------------------------

    @staticmethod
    def _open(path: Path) -> Any:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise DiskError(f"disk {path} is a file, not a folder; choose another path") from None
        except OSError as exc:
            raise DiskError(f"cannot create disk folder {path}: {exc.strerror}") from None
        if not path.is_dir():
            raise DiskError(f"disk {path} is not a folder; choose another path")
        if not os.access(path, os.W_OK | os.X_OK):
            raise DiskError(f"disk folder {path} is not writable; fix its permissions or choose another path")
        import chromadb
        from chromadb.config import Settings

        try:
            return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
        except Exception as exc:  # chromadb raises InternalError ("file is not a database", os errors)
            _forget_system(str(path))
            raise DiskError(
                f"disk {path} cannot be opened by chromadb ({one_line(exc)}); "
                "nothing was changed: move the folder aside or restore it from a backup"
            ) from None

    @staticmethod
    def _connect(url: str) -> Any:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            raise UsageError(f"disk url {url!r} is not of the form http://host:port")
        import chromadb
        from chromadb.config import Settings

        try:
            return chromadb.HttpClient(
                host=parts.hostname,
                port=port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https",
                settings=Settings(anonymized_telemetry=False),
            )
        except Exception as exc:  # ValueError("Could not connect to a Chroma server...")
            raise DiskError(
                f"no Chroma server at {url} ({one_line(exc)}); "
                f"start one with: chroma run --host {parts.hostname} --port {port or 8000}"
            ) from None

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Turn chromadb and network failures during ``what`` into a DiskError."""
        import httpx
        from chromadb.errors import ChromaError

        try:
            yield
        except (ChromaError, httpx.TransportError, OSError) as exc:
            hint = "is the server running?" if self.url else "is the folder intact and writable?"
            raise DiskError(f"disk {self.where}: {what} failed ({one_line(exc)}); {hint}") from None

    # -- collections -------------------------------------------------------

    def collection(self, name: str) -> Any:
        """The named collection, created on first use with MiniLM and cosine distance."""
        found = self._collections.get(name)
        if found is not None:
            return found
        with self._guard(f"opening collection {name!r}"):
            try:
                found = self._client.get_or_create_collection(
                    name,
                    embedding_function=MiniLMEmbedding(),
                    configuration={"hnsw": {"space": "cosine"}},
                )
            except ValueError as exc:  # an existing collection made with another embedder
                raise DiskError(f"disk {self.where}: collection {name!r}: {one_line(exc)}") from None
        self._collections[name] = found
        return found

    def add(
        self,
        name: str,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
        embeddings: np.ndarray | Sequence[Sequence[float]] | None = None,
    ) -> None:
        """Insert or replace records; vectors are computed with :func:`embed` unless given."""
        if not (len(ids) == len(texts) == len(metadatas)):
            raise ValueError("ids, texts and metadatas must have the same length")
        if embeddings is not None and len(embeddings) != len(ids):
            raise ValueError("embeddings must have one vector per id")
        col = self.collection(name)
        for start in range(0, len(ids), self._max_batch):
            end = start + self._max_batch
            vectors = embed(list(texts[start:end])) if embeddings is None else np.asarray(
                embeddings[start:end], dtype=np.float32
            )
            with self._guard(f"writing to {name!r}"):
                col.upsert(
                    ids=list(ids[start:end]),
                    documents=list(texts[start:end]),
                    metadatas=[dict(m) for m in metadatas[start:end]],
                    embeddings=vectors,
                )

    def query(
        self,
        name: str,
        text: str,
        k: int,
        where: dict[str, Any] | None = None,
        *,
        vector: np.ndarray | Sequence[float] | None = None,
        contains: Sequence[str] = (),
    ) -> list[Hit]:
        """The ``k`` records nearest in meaning to ``text``, nearest first ([] when empty).

        ``vector`` is ``text``'s embedding when the caller already has it. ``contains``:
        only records whose text holds one of these strings (chromadb's full-text index;
        case-sensitive substrings).
        """
        if k <= 0:
            return []
        col = self.collection(name)
        with self._guard(f"searching {name!r}"):
            query = embed([text]) if vector is None else np.asarray(vector, dtype=np.float32).reshape(1, -1)
            # No count() first: chromadb returns fewer than k records when it holds fewer, and
            # counting cost 13 ms at 100k records, twice the search itself.
            result = col.query(
                query_embeddings=query,
                n_results=k,
                where=where,
                where_document=_any_of(contains),
                include=["documents", "metadatas", "distances"],
            )
        return [
            Hit(id=i, text=doc or "", metadata=dict(meta or {}), distance=float(dist))
            for i, doc, meta, dist in zip(
                result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0]
            )
        ]

    def get(
        self,
        name: str,
        ids: Sequence[str] | None = None,
        where: dict[str, Any] | None = None,
        *,
        texts: bool = True,
    ) -> list[Hit]:
        """Records by id and/or metadata filter (all records when both are None).

        ``texts=False`` leaves the documents out (``Hit.text`` is ""): much
        less to read when only the metadata is wanted.
        """
        col = self.collection(name)
        include = ["documents", "metadatas"] if texts else ["metadatas"]
        hits: list[Hit] = []
        with self._guard(f"reading {name!r}"):
            if ids is not None:
                if not ids:
                    return []
                return _hits(col.get(ids=list(ids), where=where, include=include))
            offset = 0
            while True:  # page through, so a big collection never comes back in one response
                result = col.get(where=where, limit=PAGE, offset=offset, include=include)
                page = _hits(result)
                hits.extend(page)
                if len(page) < PAGE:
                    return hits
                offset += PAGE

    def delete(
        self, name: str, ids: Sequence[str] | None = None, where: dict[str, Any] | None = None
    ) -> None:
        """Remove records by id and/or metadata filter. One of the two is required."""
        if ids is None and where is None:
            raise ValueError("delete needs ids or where")
        if ids is not None and not ids:
            return
        col = self.collection(name)
        with self._guard(f"deleting from {name!r}"):
            if ids is not None:
                for start in range(0, len(ids), self._max_batch):
                    col.delete(ids=list(ids[start : start + self._max_batch]), where=where)
            else:
                col.delete(where=where)

    def count(self, name: str) -> int:
        with self._guard(f"counting {name!r}"):
            return int(self.collection(name).count())

    def names(self) -> list[str]:
        """Names of the collections on this disk."""
        with self._guard("listing collections"):
            return sorted(c.name for c in self._client.list_collections())

    def stats(self) -> list[CollectionStats]:
        """One row per collection for ``llmos df`` (reads every document once)."""
        rows = []
        total = self.disk_bytes()
        for name in self.names():
            col = self.collection(name)
            records = text_bytes = 0
            offset = 0
            with self._guard(f"measuring {name!r}"):
                while True:
                    result = col.get(limit=PAGE, offset=offset, include=["documents"])
                    docs = result["documents"] or []
                    records += len(docs)
                    text_bytes += sum(len((d or "").encode("utf-8")) for d in docs)
                    if len(docs) < PAGE:
                        break
                    offset += PAGE
            rows.append(CollectionStats(name, records, text_bytes + 4 * DIM * records, total))
        return rows

    def disk_bytes(self) -> int | None:
        """Bytes used by the persistent directory; None for a server."""
        if self.path is None:
            return None
        total = 0
        for root, _dirs, files in os.walk(self.path):
            for f in files:
                try:
                    total += os.lstat(os.path.join(root, f)).st_size
                except OSError:
                    pass
        return total


def _hits(result: dict[str, Any]) -> list[Hit]:
    docs = result.get("documents") or [None] * len(result["ids"])
    metas = result.get("metadatas") or [None] * len(result["ids"])
    return [Hit(id=i, text=d or "", metadata=dict(m or {})) for i, d, m in zip(result["ids"], docs, metas)]


def _forget_system(identifier: str) -> None:
    """Drop chromadb's cached client for a path whose opening failed.

    subtle: chromadb caches one System per path even when starting it failed,
    and every later PersistentClient for that path then fails with an
    unrelated AttributeError, even after the user repaired the folder.
    """
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient._identifier_to_system.pop(identifier, None)
        SharedSystemClient._identifier_to_refcount.pop(identifier, None)
    except (ImportError, AttributeError):
        pass


def _any_of(strings: Sequence[str]) -> dict | None:
    """A chromadb document filter: the text holds one of ``strings``."""
    clauses = [{"$contains": s} for s in dict.fromkeys(strings) if s]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}
