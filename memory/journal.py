"""The journal: the durable record of every process and page.

Every page is written here *before* the pager uses it, and streamed assistant
text is appended every few tokens, so a crash or ``kill -9`` loses nothing
already typed or generated; on the next start ``llmos`` reads the processes and
their pages back. Nothing is ever deleted: a killed process keeps its pages.

It is one SQLite file (``data_dir()/journal.sqlite3``) in WAL mode with tables
for processes, pages (plus an FTS5 index over page text, kept in sync by
triggers, for lexical search of swap), the device audit trail and the kernel
log (``dmesg``). A lock file beside it (``journal.lock``) stops two llmos
instances from writing the same data dir.

Streaming: ``append_text`` inserts one small row into ``page_tail`` (about
16 us) instead of rewriting the page, whose FTS re-index grows with the text
(over 1 ms per append at 8 KB). Tails are folded into the page once, before a
search, on eviction and on close; reads always see page text plus tail.

Durability: ``synchronous=NORMAL``. In WAL mode every commit is ``write()``-n
to the WAL file before the call returns, so it sits in the OS page cache and
survives the death of *this process* however it dies; only the fsync is
deferred to checkpoints, so an OS crash or power cut may roll back the last
few commits (the database is never corrupted). That is the promise we make;
FULL would fsync every streamed append (milliseconds each on most disks).

Threads: one connection shared by all threads (``check_same_thread=False``),
every statement under one lock, because a connection has one transaction
state and a read from another thread inside a write would see half of it.

What it does not do: token ids (``Page.tokens``) and LRU times are not stored
(tokens are recounted on page-in, monotonic clocks mean nothing after a
restart); no semantic search (that is ``swap.py`` over the disk); no policy.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from llmos.errors import DiskError, LlmosError, UsageError
from llmos.memory import owner as owners
from llmos.memory.owner import Owner
from llmos.memory.page import TURN_ORIGINS, Origin, Page
from llmos.paths import data_dir

SCHEMA_VERSION = 5
DEAD_STATES = frozenset({"ZOMBIE", "EXITED"})
WORKING_STATES = ("RUNNING", "READY", "BLOCKED")
"""States in which a process needs its owner: if the owner is dead, it was interrupted."""
_WORKING = f"state IN ({', '.join('?' * len(WORKING_STATES))})"
_PROCESS = "SELECT pid, app, state, priority, info, created, updated, owner FROM processes"
"""A process row as ``_record`` reads it; column 7 is the owner's JSON."""
USER_CALLER = "user (llmos device call)"
"""Who pid 0 is in the device audit: the user at the command line."""
MAX_QUERY_TERMS = 32
"""Longer queries keep their first 32 distinct terms: bounded search cost."""
PREV_CHARS = 400
"""How much of the turn before a page ``prev_texts`` gives: its end, nearest to the page."""
_TURNS = f"({', '.join(repr(o.value) for o in TURN_ORIGINS)})"  # for SQL: ('user', 'assistant')
COMMON_PAGES = 1000
COMMON_SHARE = 0.01
"""A lexical search leaves out words in more than this many pages and this share of all pages."""

_FTS = """
-- External-content FTS5: the text lives once, in pages; the triggers keep the
-- index equal to it after every insert, upsert and append.
CREATE VIRTUAL TABLE IF NOT EXISTS pages_fts USING fts5 (
    text, content = 'pages', content_rowid = 'n',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS pages_ai AFTER INSERT ON pages BEGIN
    INSERT INTO pages_fts (rowid, text) VALUES (new.n, new.text);
END;
CREATE TRIGGER IF NOT EXISTS pages_au AFTER UPDATE OF text ON pages
WHEN old.text IS NOT new.text BEGIN
    INSERT INTO pages_fts (pages_fts, rowid, text) VALUES ('delete', old.n, old.text);
    INSERT INTO pages_fts (rowid, text) VALUES (new.n, new.text);
END;
CREATE TRIGGER IF NOT EXISTS pages_ad AFTER DELETE ON pages BEGIN
    INSERT INTO pages_fts (pages_fts, rowid, text) VALUES ('delete', old.n, old.text);
END;
"""
"""The FTS5 index over page text and the triggers that keep it equal to ``pages``.

Words are indexed by their Porter stem (``porter`` wraps ``unicode61``), so "researching"
finds "research" and "painted" finds "paint". ``llmos bench paging`` on 1,534 questions
of LoCoMo's long conversations, plain BM25 over the salient words: recall@10 0.566
unstemmed, 0.607 stemmed; on the shipped development set 0.643 and 0.662."""

# IF NOT EXISTS throughout: two processes creating one new journal at once is harmless.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('pid', 0);

CREATE TABLE IF NOT EXISTS processes (
    pid INTEGER PRIMARY KEY, app TEXT NOT NULL, state TEXT NOT NULL,
    priority INTEGER NOT NULL, info TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL
);

-- n is the integer rowid the FTS index points at; id is the page's own id.
CREATE TABLE IF NOT EXISTS pages (
    n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, pid INTEGER NOT NULL,
    seq INTEGER NOT NULL, origin TEXT NOT NULL, trust TEXT NOT NULL,
    pinned INTEGER NOT NULL, resident INTEGER NOT NULL, source TEXT NOT NULL,
    text TEXT NOT NULL, created REAL NOT NULL, n_tokens INTEGER NOT NULL,
    evicted_at REAL
);
CREATE INDEX IF NOT EXISTS pages_by_pid ON pages (pid, seq);

""" + _FTS + """
-- Streamed text waits here, one cheap row per append_text, until it is folded
-- into pages.text (one re-index per page, not one per append). A page's text
-- is pages.text followed by its tail rows in n order.
CREATE TABLE IF NOT EXISTS page_tail (
    n INTEGER PRIMARY KEY, page_n INTEGER NOT NULL, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS page_tail_by_page ON page_tail (page_n, n);

CREATE TABLE IF NOT EXISTS audit (
    n INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, pid INTEGER NOT NULL,
    device TEXT NOT NULL, args TEXT NOT NULL, approved_by TEXT NOT NULL,
    result_bytes INTEGER NOT NULL, duration_s REAL NOT NULL, error TEXT
);
CREATE TABLE IF NOT EXISTS klog (
    n INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL,
    level TEXT NOT NULL, message TEXT NOT NULL
);
"""

# One entry per schema version after 1: the statements that bring version N-1 to N.
_MIGRATIONS = {
    2: """
-- Write-ahead intents for swap (chromadb), which is a separate store: a row is
-- written before a swap write or delete and removed when it is done, so after a
-- crash the next start knows exactly which pages to reconcile (swap.recover).
CREATE TABLE IF NOT EXISTS swap_pending (id TEXT PRIMARY KEY, pid INTEGER NOT NULL);
""",
    3: """
-- Who runs each process now (memory/owner.py), so any reader can tell a live process
-- from one whose llmos died under it; and the process a kernel log line is about.
-- (An llmos older than this, still running while a newer one migrates its journal,
-- cannot save processes any more: its INSERT names no columns. Restart it.)
ALTER TABLE processes ADD COLUMN owner TEXT;
ALTER TABLE klog ADD COLUMN pid INTEGER;
CREATE INDEX IF NOT EXISTS klog_by_pid ON klog (pid, n);
""",
    4: """
-- Whether a page has been paged back in from disk (memory/page.py, Page.recalled): a
-- recalled user message is rendered with its date, and a restart must render it the same.
ALTER TABLE pages ADD COLUMN recalled INTEGER NOT NULL DEFAULT 0;
""",
    5: """
-- The FTS index by word stems (_FTS): dropped, made again and rebuilt from pages.
DROP TRIGGER IF EXISTS pages_ai;
DROP TRIGGER IF EXISTS pages_au;
DROP TRIGGER IF EXISTS pages_ad;
DROP TABLE IF EXISTS pages_fts;
""" + _FTS + """
INSERT INTO pages_fts (pages_fts) VALUES ('rebuild');
""",
}

_PAGE_COLUMNS = "id, pid, seq, origin, trust, pinned, resident, source, text, created, n_tokens, recalled"


def journal_path(folder: Path | None = None) -> Path:
    """Where the journal lives: ``journal.sqlite3`` in ``folder``, by default the data dir."""
    return (folder or data_dir()) / "journal.sqlite3"


@dataclass
class ProcRecord:
    """A process as the journal last saw it."""

    pid: int
    app: str
    state: str
    priority: int
    info: dict
    """Free-form counters (tokens generated, CPU time, ...), stored as JSON."""
    created: float
    updated: float
    owner: Owner | None = None
    """The llmos program that last saved it (``memory/owner.py``)."""

    def row(self) -> dict:
        """The process as ``ps`` and ``log`` show it: pid, app, state, priority, its counters,
        and whether its last answer was interrupted."""
        row = {"pid": self.pid, "app": self.app, "state": self.state, "priority": self.priority}
        row.update({k: v for k, v in self.info.items() if k not in row})
        row["interrupted"] = bool(self.info.get("interrupted"))
        return row

    @property
    def held_elsewhere(self) -> bool:
        """Another llmos program that is still running holds this process now."""
        return (self.state not in DEAD_STATES and self.owner is not None
                and self.owner != owners.me() and owners.alive(self.owner))

    def held_error(self, then: str = "continue it there, or wait until it is done") -> UsageError:
        """The one line that says another running llmos holds this process, and what to do."""
        return UsageError(f"process {self.pid} is being run by another llmos (pid {self.owner.pid}); {then}")


def no_such_process(pid: int) -> UsageError:
    """The one line for a pid the journal never saw."""
    return UsageError(f"no process {pid} in the journal (see: llmos ps -a)")


def fts_phrases(text: str) -> list[str]:
    """An arbitrary user string as safe FTS5 phrases, one per whitespace-separated term.

    Inside a term every character that is not a letter or digit becomes a space,
    which drops all FTS5 syntax (quotes, brackets, ``*``, ``^``, ``:``, NUL) and
    keeps ids whole: ``INV-20931`` becomes the phrase ``INV 20931``, the two
    tokens the tokenizer made of it in the page, adjacent. Duplicates (by case)
    are dropped; at most ``MAX_QUERY_TERMS``.
    """
    phrases: list[str] = []
    seen: set[str] = set()
    for raw in text.split():
        cleaned = " ".join("".join(ch if ch.isalnum() else " " for ch in raw).split())
        key = cleaned.casefold()
        if not cleaned or key in seen:
            continue
        seen.add(key)
        phrases.append(cleaned)
        if len(phrases) == MAX_QUERY_TERMS:
            break
    return phrases


def fts_query(text: str) -> str:
    """An arbitrary user string as a safe FTS5 query: each term a quoted phrase
    (:func:`fts_phrases`), ORed. Returns "" when nothing searchable is left."""
    return _fts_match(fts_phrases(text))


def _fts_match(phrases: list[str]) -> str:
    return " OR ".join(f'"{p}"' for p in phrases)


def _idf(rows: int, hits: int) -> float:
    """BM25's inverse document frequency as FTS5's ``bm25()`` computes it (fts5_aux.c)."""
    idf = math.log((rows - hits + 0.5) / (hits + 0.5))
    return idf if idf > 0 else 1e-6


def _span(db: sqlite3.Connection, pid: int) -> int:
    """``Journal.page_span`` on an open connection: ``pid``'s next seq (one index lookup)."""
    last = db.execute("SELECT max(seq) FROM pages WHERE pid = ?", (pid,)).fetchone()[0]
    return 0 if last is None else last + 1


def _stems(db: sqlite3.Connection, phrases: list[str]) -> list[list[str]]:
    """Each phrase's terms as the index holds them: its words through the index's own
    tokenizer (a temporary FTS5 table, so the stems are exactly SQLite's Porter stems)."""
    tokenizer = _FTS.split("tokenize = '", 1)[1].split("'", 1)[0]
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.stems USING fts5(w, tokenize = '{tokenizer}')")
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.stems_vocab USING fts5vocab(temp, stems, 'instance')")
    db.executemany("INSERT INTO temp.stems (rowid, w) VALUES (?, ?)", list(enumerate(phrases)))
    out: list[list[str]] = [[] for _ in phrases]
    for doc, term in db.execute("SELECT doc, term FROM temp.stems_vocab ORDER BY doc, \"offset\""):
        out[doc].append(term)
    db.execute("DELETE FROM temp.stems")
    return out


def _to_wal(db: sqlite3.Connection, wait: float = 5.0) -> None:
    """Switch ``db`` to WAL, waiting up to ``wait`` seconds for other connections.

    Why not the connection's busy timeout alone: while another program opens or migrates the
    same journal, SQLite answers the mode change "database is locked" at once, without calling
    its busy handler (seen in 1 of 100 opens of four programs at once: test_owner.py)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class Journal:
    """The journal database. ``Journal(path)`` opens (or creates) it; ``close()`` when done."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DiskError(f"cannot create {self.path.parent} for the journal: {exc.strerror}") from None
        self._db: sqlite3.Connection | None = self._open()

    # -- opening ---------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise DiskError(f"cannot open journal {self.path}: {exc}") from None
        try:
            # subtle: read the header before anything writes, so a file that is
            # not a database fails here and is left exactly as it was.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise DiskError(
                f"journal {self.path} is not a readable SQLite database ({exc}); "
                "move it aside and llmos starts a new one"
            ) from None
        if version > SCHEMA_VERSION:
            db.close()
            raise DiskError(
                f"journal {self.path} has schema {version}, newer than this llmos "
                f"understands ({SCHEMA_VERSION}); upgrade llmos or set LLMOS_HOME to another folder"
            )
        try:
            _to_wal(db)
            db.execute("PRAGMA synchronous = NORMAL")  # why it is enough: module docstring
            if version < SCHEMA_VERSION:
                # One transaction, and the version read again under the write lock: another
                # llmos opening the same journal may have created or migrated it meanwhile
                # (ALTER TABLE cannot run twice, and a version must never go back).
                db.execute("BEGIN IMMEDIATE")
                version = db.execute("PRAGMA user_version").fetchone()[0]
                scripts = ([_SCHEMA] if version == 0 else []) + \
                    [_MIGRATIONS[step] for step in range(max(version, 1) + 1, SCHEMA_VERSION + 1)]
                for statement in (st for script in scripts for st in _statements(script)):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {max(version, SCHEMA_VERSION)}")
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            db.close()
            raise DiskError(f"cannot set up journal {self.path}: {exc}") from None
        return db

    def close(self) -> None:
        """Close the database and release the instance lock. Safe to call twice."""
        try:
            if self._db is not None:
                self._fold_tails()  # leave the index whole for the next start
        finally:
            with self._lock:
                if self._db is not None:
                    self._db.close()
                    self._db = None
            self.release_lock()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, atomic: bool = True) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock. ``atomic``: one transaction, committed on exit;
        otherwise autocommit (each statement, triggers included, is its own transaction)."""
        with self._lock:
            db = self._db
            if db is None:
                raise LlmosError(f"journal {self.path} is closed")
            try:
                if atomic:
                    db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    if db.in_transaction:  # SQLite may have rolled back already (disk full)
                        db.execute("ROLLBACK")
                    raise
                if atomic:
                    db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError)):
                    raise  # a bug in llmos, not a disk problem
                raise DiskError(f"journal {self.path}: {exc}") from None

    # -- instance lock ----------------------------------------------------------

    def acquire_lock(self) -> None:
        """Claim the data dir for this llmos, or raise LlmosError naming the holder's pid.

        ``flock`` on ``journal.lock``: non-blocking, and the OS drops it when the
        holder dies, even by SIGKILL, so a stale lock never blocks a restart.
        """
        if self._lock_fd is not None:
            return
        if sys.platform == "win32":
            return  # no flock on Windows; msvcrt.locking would need its own tests
        import fcntl

        lock_path = self.path.with_suffix(".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DiskError(f"cannot open lock file {lock_path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise LlmosError(
                f"another llmos (pid {holder}) is using {self.path.parent}; "
                "close it or set LLMOS_HOME to another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def release_lock(self) -> None:
        """Give the data dir back (closing the file drops the flock)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- processes --------------------------------------------------------------

    def new_pid(self) -> int:
        """A fresh pid: monotonic, never reused, across restarts too."""
        with self._tx() as db:
            db.execute("UPDATE counters SET value = value + 1 WHERE name = 'pid'")
            return db.execute("SELECT value FROM counters WHERE name = 'pid'").fetchone()[0]

    def save_process(self, pid: int, app: str, state: str, priority: int, info: dict) -> None:
        """Insert or update a process; ``created`` is kept from the first save. The program
        saving it becomes its owner."""
        now = time.time()
        blob = json.dumps(info, default=str)
        me = json.dumps(owners.me().to_json())
        with self._tx() as db:
            db.execute(
                "INSERT INTO processes (pid, app, state, priority, info, created, updated, owner) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (pid) DO UPDATE SET "
                "app = excluded.app, state = excluded.state, priority = excluded.priority, "
                "info = excluded.info, updated = excluded.updated, owner = excluded.owner",
                (pid, app, state, priority, blob, now, now, me),
            )

    def set_state(self, pid: int, state: str) -> None:
        """Change a saved process's state; LlmosError if the pid was never saved."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE processes SET state = ?, updated = ? WHERE pid = ?", (state, time.time(), pid)
            )
            if cur.rowcount == 0:
                raise LlmosError(f"no process {pid} in the journal {self.path}")

    def processes(self, include_dead: bool = False) -> list[ProcRecord]:
        """Saved processes by pid; ZOMBIE and EXITED ones only with ``include_dead``.
        Processes whose owner died while they were working are reaped first (``reap``), so
        every reader sees them as they are: interrupted, not RUNNING."""
        self.reap()
        return [r for r in self._records() if include_dead or r.state not in DEAD_STATES]

    def process(self, pid: int) -> ProcRecord | None:
        self.reap()
        return next(iter(self._records("WHERE pid = ?", (pid,))), None)

    def _records(self, where: str = "", params: tuple = ()) -> list[ProcRecord]:
        with self._tx(atomic=False) as db:
            rows = db.execute(f"{_PROCESS} {where} ORDER BY pid", params).fetchall()
        return [_record(r) for r in rows]

    def reap(self, *, mine: bool = False) -> list[int]:
        """Mark the processes whose owner died while they were working (RUNNING, READY or
        BLOCKED: llmos was killed, ran out of memory, lost power): each becomes SLEEPING and
        ``interrupted``, with what it was doing kept in ``interrupted_while``, and the answer
        it was writing (the pieces streamed so far, put together) is marked
        ``interrupted`` in its source. Its ``tokens_out`` already counts those pieces
        (``append_text``). A finished conversation that was taken back for one turn
        (``ends_after``) goes back to ZOMBIE. A process whose owner is alive, here or on
        another host, is never touched; ``mine``: those of this program too (a kernel
        restoring the data dir takes over from an earlier one of the same program, which
        is gone). Returns the pids reaped."""
        with self._tx(atomic=False) as db:
            rows = db.execute(f"{_PROCESS} WHERE {_WORKING}", WORKING_STATES).fetchall()
        reaped = []
        for row in rows:
            rec = _record(row)
            if owners.alive(rec.owner) and not (mine and rec.owner == owners.me()):
                continue
            answer = _answer(self.pages(rec.pid))
            was = rec.state.lower() + (f" ({rec.info['blocked_on']})" if rec.info.get("blocked_on") else "")
            state = "ZOMBIE" if rec.info.get("ends_after") else "SLEEPING"
            info = {**rec.info, "state": state, "interrupted": True, "interrupted_while": was,
                    "blocked_on": ""}
            with self._tx() as db:
                # Only if nobody reaped or adopted it meanwhile (two readers at once).
                cur = db.execute(
                    "UPDATE processes SET state = ?, info = ?, updated = ? "
                    "WHERE pid = ? AND state = ? AND owner IS ?",
                    (state, json.dumps(info, default=str), time.time(), rec.pid, rec.state, row[7]),
                )
                if cur.rowcount == 0:
                    continue
                if answer is not None:
                    db.execute("UPDATE pages SET source = 'interrupted' WHERE id = ?", (answer.id,))
                who = f"llmos pid {rec.owner.pid}" if rec.owner else "an older llmos"
                db.execute(
                    "INSERT INTO klog (time, level, message, pid) VALUES (?, 'warn', ?, ?)",
                    (time.time(), f"pid {rec.pid}: interrupted: its owner ({who}) died while it was {was}"
                     + (f"; {len(answer.text)} characters of its answer kept" if answer else ""), rec.pid),
                )
            reaped.append(rec.pid)
        return reaped

    def claim(self, pid: int) -> ProcRecord:
        """Make this program the owner of process ``pid`` (to run it here), in one transaction:
        LlmosError if there is no such process, or another llmos that is alive holds it. Two
        programs claiming one process at once: exactly one gets it."""
        self.reap()
        with self._tx() as db:
            row = db.execute(f"{_PROCESS} WHERE pid = ?", (pid,)).fetchone()
            if row is None:
                raise no_such_process(pid)
            rec = _record(row)
            if rec.held_elsewhere:
                raise rec.held_error()
            db.execute("UPDATE processes SET owner = ? WHERE pid = ?", (json.dumps(owners.me().to_json()), pid))
        return rec

    def last_conversation(self, apps: tuple[str, ...] | None = None) -> int | None:
        """The pid of the process (of one of ``apps``; None: of any app) that was written to
        last (its newest page) and that no other running llmos holds, or None."""
        where = f"WHERE r.app IN ({', '.join('?' * len(apps))})" if apps is not None else ""
        with self._tx(atomic=False) as db:
            pids = [r[0] for r in db.execute(
                f"SELECT p.pid, max(p.created) AS last FROM pages p JOIN processes r ON r.pid = p.pid "
                f"{where} GROUP BY p.pid ORDER BY last DESC, p.pid DESC", apps or (),
            )]
        held = {r.pid for r in self._records() if r.held_elsewhere}
        return next((pid for pid in pids if pid not in held), None)

    # -- pages ------------------------------------------------------------------

    def record_page(self, page: Page) -> None:
        """Insert or update a page: every field but ``tokens`` and ``last_used``.

        ``page.text`` is the whole text: text streamed with ``append_text``
        since the last record is replaced by it, not added to it.
        """
        self.record_pages([page])

    def record_pages(self, pages: Iterable[Page]) -> None:
        """``record_page`` for many pages in one transaction (one commit, not N)."""
        now = time.time()
        rows = [
            (p.id, p.pid, p.seq, p.origin.value, p.trust.value, int(p.pinned), int(p.resident),
             p.source, p.text, p.created, p.n_tokens, int(p.recalled), None if p.resident else now)
            for p in pages
        ]
        with self._tx() as db:
            db.executemany(
                "DELETE FROM page_tail WHERE page_n = (SELECT n FROM pages WHERE id = ?)",
                [(r[0],) for r in rows],
            )
            db.executemany(
                f"INSERT INTO pages ({_PAGE_COLUMNS}, evicted_at) VALUES ({', '.join('?' * 13)}) "
                "ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, seq = excluded.seq, "
                "origin = excluded.origin, trust = excluded.trust, pinned = excluded.pinned, "
                "resident = excluded.resident, source = excluded.source, text = excluded.text, "
                "created = excluded.created, n_tokens = excluded.n_tokens, recalled = excluded.recalled, "
                # an evicted page keeps the time it first left RAM
                "evicted_at = CASE WHEN excluded.resident THEN NULL "
                "ELSE coalesce(pages.evicted_at, excluded.evicted_at) END",
                rows,
            )

    def append_text(self, page_id: str, text: str, *, tokens_out: int | None = None) -> None:
        """Append streamed text to a recorded page: one small row, one commit, O(1).

        The FTS index sees it once it is folded in (before any search, on
        ``mark_evicted`` and on ``close``); ``page``/``pages`` see it at once.
        ``tokens_out``: the page's process has generated this many tokens now, in
        the same commit, so the count survives whatever ends llmos next.
        """
        if not text:
            return
        with self._tx(atomic=tokens_out is not None) as db:  # autocommit when it is one INSERT
            cur = db.execute(
                "INSERT INTO page_tail (page_n, text) SELECT n, ? FROM pages WHERE id = ?", (text, page_id)
            )
            if cur.rowcount == 0:
                raise LlmosError(f"page {page_id} is not in the journal; record_page it first")
            if tokens_out is not None:
                db.execute("UPDATE processes SET info = json_set(info, '$.tokens_out', ?) "
                           "WHERE pid = (SELECT pid FROM pages WHERE id = ?)", (tokens_out, page_id))

    def _fold_tails(self) -> None:
        """Move every pending tail into pages.text, so the FTS index holds all text."""
        with self._tx(atomic=False) as db:
            if db.execute("SELECT 1 FROM page_tail LIMIT 1").fetchone() is None:
                return
        with self._tx() as db:
            tails: dict[int, list[str]] = {}
            last = 0
            for n, page_n, text in db.execute("SELECT n, page_n, text FROM page_tail ORDER BY n"):
                tails.setdefault(page_n, []).append(text)
                last = n
            db.executemany(
                "UPDATE pages SET text = text || ? WHERE n = ?", [("".join(t), p) for p, t in tails.items()]
            )
            db.execute("DELETE FROM page_tail WHERE n <= ?", (last,))

    def mark_evicted(self, page_ids: list[str]) -> None:
        """The pages left RAM for swap: resident=0, evicted_at=now; their swap write is done."""
        now = time.time()
        with self._tx() as db:
            db.executemany(
                "UPDATE pages SET resident = 0, evicted_at = ? WHERE id = ?", [(now, i) for i in page_ids]
            )
            db.executemany("DELETE FROM swap_pending WHERE id = ?", [(i,) for i in page_ids])
        self._fold_tails()

    def mark_resident(self, page_ids: list[str]) -> None:
        """The pages were faulted back into RAM: resident=1, evicted_at=NULL. Their swap
        copies are now to be deleted: pending (``swap_pending``) until ``swap_done``."""
        with self._tx() as db:
            db.executemany(
                "UPDATE pages SET resident = 1, recalled = 1, evicted_at = NULL WHERE id = ?",
                [(i,) for i in page_ids]
            )
            self._pending(db, page_ids)

    # -- swap intents (write-ahead for the disk, a separate store) --------------

    @staticmethod
    def _pending(db: sqlite3.Connection, page_ids: list[str]) -> None:
        db.executemany("INSERT OR REPLACE INTO swap_pending (id, pid) SELECT id, pid FROM pages WHERE id = ?",
                       [(i,) for i in page_ids])

    def swap_begin(self, page_ids: list[str]) -> None:
        """Before a swap write: if llmos dies before ``mark_evicted``/``swap_done``, the next
        start reconciles these pages (swap.recover)."""
        with self._tx() as db:
            self._pending(db, page_ids)

    def swap_done(self, page_ids: list[str]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM swap_pending WHERE id = ?", [(i,) for i in page_ids])

    def swap_pending(self) -> dict[int, list[str]]:
        """Page ids by pid whose swap write or delete may have been cut (empty after a clean run)."""
        with self._tx(atomic=False) as db:
            rows = db.execute("SELECT pid, id FROM swap_pending ORDER BY pid, id").fetchall()
        out: dict[int, list[str]] = {}
        for pid, page_id in rows:
            out.setdefault(pid, []).append(page_id)
        return out

    def pages(self, pid: int, resident: bool | None = None) -> list[Page]:
        """A process's pages in ``seq`` order, all or only (non-)resident ones; tokens=None."""
        where, params = "pid = ?", (pid,)
        if resident is not None:
            where, params = where + " AND resident = ?", (pid, int(resident))
        return self._read_pages(where, params)

    def page(self, page_id: str) -> Page | None:
        found = self._read_pages("id = ?", (page_id,))
        return found[0] if found else None

    def pages_by_id(self, ids: list[str]) -> dict[str, Page]:
        """Several pages in one read, by id (ids not in the journal are left out)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return {p.id: p for p in self._read_pages(f"id IN ({marks})", tuple(ids))}

    def pages_at(self, pid: int, seqs: list[int]) -> list[Page]:
        """A process's pages at these positions (the turns around a hit)."""
        if not seqs:
            return []
        marks = ",".join("?" * len(seqs))
        return self._read_pages(f"pid = ? AND seq IN ({marks})", (pid, *seqs))

    def _read_pages(self, where: str, params: tuple) -> list[Page]:
        with self._tx(atomic=False) as db:
            rows = db.execute(
                f"SELECT n, {_PAGE_COLUMNS} FROM pages WHERE {where} ORDER BY seq, n", params
            ).fetchall()
            tail_rows = db.execute(
                "SELECT page_n, text FROM page_tail "
                f"WHERE page_n IN (SELECT n FROM pages WHERE {where}) ORDER BY n",
                params,
            ).fetchall()
        tails: dict[int, list[str]] = {}
        for page_n, text in tail_rows:
            tails.setdefault(page_n, []).append(text)
        return [_page(row[1:], "".join(tails.get(row[0], ()))) for row in rows]

    def lexical_search(
        self, query: str, *, pid: int | None = None, evicted_only: bool = True, k: int = 10
    ) -> list[tuple[str, float]]:
        """Pages matching any term of ``query``, best first, as (page_id, score).

        Score is ``-bm25``: higher is better, only comparable within one query.
        Any string is accepted (see :func:`fts_query`); one with no searchable
        term returns []. With ``pid``, a word weighs by how rare it is among that
        process's pages (``_process_bm25``); without, among all of the journal's.
        """
        phrases = fts_phrases(query)
        if not phrases or k <= 0:
            return []
        self._fold_tails()
        phrases = self._rare(phrases)
        with self._tx(atomic=False) as db:
            if pid is not None:
                scores = self._process_bm25(db, phrases, pid, evicted_only)
                best = sorted(scores.items(), key=lambda hit: (-hit[1][0], hit[1][1]))[:k]
                return [(page_id, score) for page_id, (score, _) in best]
            sql = ("SELECT p.id, bm25(pages_fts) AS s FROM pages_fts JOIN pages p ON p.n = pages_fts.rowid "
                   "WHERE pages_fts MATCH ?" + (" AND p.resident = 0" if evicted_only else ""))
            rows = db.execute(sql + " ORDER BY s, p.n LIMIT ?", (_fts_match(phrases), k)).fetchall()
        return [(page_id, -score) for page_id, score in rows]

    @staticmethod
    def _process_bm25(db: sqlite3.Connection, phrases: list[str], pid: int,
                      evicted_only: bool) -> dict[str, tuple[float, int]]:
        """BM25 of ``pid``'s pages for ``phrases``, each phrase's IDF taken over the process's
        own pages: page id -> (score, n).

        FTS5's ``bm25()`` weighs a word by its rarity in the whole index, every process's pages
        together. Within one conversation that is the wrong rarity: the name of the friend a
        conversation is about is rare in the journal but in half of that conversation's turns,
        so it outweighs the one word that tells its turns apart. FTS5 keeps no statistics per
        process, so each phrase is searched alone, where ``bm25()`` is its global IDF times its
        term-frequency part, and rescaled by local IDF / global IDF (both by FTS5's formula).
        ``llmos bench paging`` on LoCoMo (ten conversations in one journal): recall@10
        0.715 -> 0.725; offline over the same rankings, one index per conversation 0.727,
        this 0.726, the journal's IDF 0.711. Cost: two small queries a phrase instead of one
        query (page-in p95 at 100k swapped pages: see docs/bench)."""
        total = db.execute("SELECT count(*) FROM pages_fts_docsize").fetchone()[0]
        own = _span(db, pid)
        scores: dict[str, tuple[float, int]] = {}
        for phrase in phrases:
            match = _fts_match([phrase])
            # CROSS JOIN keeps the matches the outer loop: a plain join was planned as a walk of
            # the process's pages with an FTS5 lookup each (3.5 ms a phrase at 600 pages; 0.04)
            rows = db.execute("SELECT p.id, p.n, p.resident, bm25(pages_fts) FROM pages_fts CROSS JOIN pages p "
                              "ON p.n = pages_fts.rowid WHERE pages_fts MATCH ? AND p.pid = ?",
                              (match, pid)).fetchall()
            if not rows:
                continue
            everywhere = db.execute("SELECT count(*) FROM pages_fts WHERE pages_fts MATCH ?", (match,)).fetchone()[0]
            scale = _idf(max(own, len(rows)), len(rows)) / _idf(total, everywhere)
            for page_id, n, resident, score in rows:
                if not (evicted_only and resident):
                    scores[page_id] = (scores.get(page_id, (0.0, n))[0] - score * scale, n)
        return scores

    def prev_texts(self, page_ids: list[str]) -> dict[str, str]:
        """For each of these pages that is a turn (user or assistant) after another, the end of
        the turn before it (``PREV_CHARS``; kernel notes and device output between them are
        stepped over)."""
        self._fold_tails()  # the turn before is whole in pages.text
        out: dict[str, str] = {}
        with self._tx(atomic=False) as db:
            for start in range(0, len(page_ids), 500):
                ids = page_ids[start:start + 500]
                out.update(db.execute(
                    f"SELECT p.id, (SELECT substr(q.text, -{PREV_CHARS}) FROM pages q WHERE q.pid = p.pid "
                    f"AND q.seq < p.seq AND q.origin IN {_TURNS} ORDER BY q.seq DESC LIMIT 1) AS prev "
                    f"FROM pages p WHERE p.origin IN {_TURNS} AND p.id IN ({', '.join('?' * len(ids))}) "
                    "AND prev != ''", ids).fetchall())
        return out

    def lexical_count(self, phrase: str, pid: int, cap: int) -> int:
        """How many of ``pid``'s pages hold ``phrase`` (as ``lexical_search`` matches it), counted
        up to ``cap``: a word in 30,000 pages costs no more than one in ``cap``."""
        match = _fts_match(fts_phrases(phrase))
        if not match or cap <= 0:
            return 0
        self._fold_tails()
        with self._tx(atomic=False) as db:
            # subtle: "pages WHERE n IN (the matches)", not a join, which SQLite planned as a scan
            # of pages (5 ms at 6,000 pages for a word that is in none; this takes 0.05)
            return db.execute("SELECT count(*) FROM (SELECT 1 FROM pages WHERE n IN (SELECT rowid FROM "
                              "pages_fts WHERE pages_fts MATCH ?) AND pid = ? LIMIT ?)",
                              (match, pid, cap)).fetchone()[0]

    def page_span(self, pid: int) -> int:
        """How many pages ``pid`` has had, near enough for a share (its next seq; one index
        lookup, where a count reads every entry)."""
        with self._tx(atomic=False) as db:
            return _span(db, pid)

    def _rare(self, phrases: list[str]) -> list[str]:
        """Drop the phrases too common to be an exact-match signal.

        BM25 ranks every page that matches any phrase, so a word like "time" in
        8,000 of 100,000 pages made one search cost 40 ms, for a term whose
        weight (IDF) is a fifth of a name's. A phrase whose rarest word is in more
        than ``COMMON_PAGES`` pages and ``COMMON_SHARE`` of all pages is left out,
        unless every phrase is that common: then the rarest one is kept.
        """
        if len(phrases) < 2:
            return phrases
        with self._tx(atomic=False) as db:
            total = db.execute("SELECT max(n) FROM pages").fetchone()[0] or 0
            limit = max(COMMON_PAGES, COMMON_SHARE * total)
            if total <= limit:
                return phrases
            db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.pages_vocab USING fts5vocab(main, pages_fts, 'row')")
            stems = _stems(db, phrases)
            df = {}
            for phrase, terms in zip(phrases, stems):
                counts = [db.execute("SELECT doc FROM temp.pages_vocab WHERE term = ?", (t,)).fetchone() for t in terms]
                df[phrase] = min((c[0] if c else 0) for c in counts) if counts else 0
        rare = [p for p in phrases if df[p] <= limit]
        return rare or [min(phrases, key=df.get)]

    # -- device audit and kernel log -------------------------------------------

    def audit(
        self, pid: int, device: str, args: dict, approved_by: str,
        result_bytes: int, duration_s: float, error: str | None,
    ) -> None:
        """Record one device call: who asked, with what, who approved, what came back."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO audit (time, pid, device, args, approved_by, result_bytes, duration_s, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), pid, device, json.dumps(args, default=str), approved_by,
                 result_bytes, duration_s, error),
            )

    def audit_log(self, limit: int = 100, pid: int | None = None) -> list[dict]:
        """The last ``limit`` device calls (of one ``pid``, or all), newest first. ``who`` names the
        caller: ``pid N (app)`` for a process, ``user (llmos device call)`` for pid 0, the command line."""
        where, params = ("WHERE a.pid = ?", (pid, limit)) if pid is not None else ("", (limit,))
        with self._tx(atomic=False) as db:
            rows = db.execute(
                "SELECT a.time, a.pid, a.device, a.args, a.approved_by, a.result_bytes, a.duration_s, a.error, "
                f"p.app FROM audit a LEFT JOIN processes p ON p.pid = a.pid {where} ORDER BY a.n DESC LIMIT ?",
                params,
            ).fetchall()
        keys = ("time", "pid", "device", "args", "approved_by", "result_bytes", "duration_s", "error")
        out = []
        for r in rows:
            row = dict(zip(keys, r[:3] + (json.loads(r[3]),) + r[4:8]))
            row["who"] = USER_CALLER if r[1] == 0 else f"pid {r[1]}" + (f" ({r[8]})" if r[8] else "")
            out.append(row)
        return out

    def log(self, level: str, message: str, pid: int | None = None) -> None:
        """Append one line to the kernel log; ``pid``: the process it is about, if one."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO klog (time, level, message, pid) VALUES (?, ?, ?, ?)",
                (time.time(), level, message, pid),
            )

    def dmesg(self, limit: int = 100, pid: int | None = None) -> list[dict]:
        """The last ``limit`` kernel log lines (about one ``pid``, or all) as {time, level, message,
        pid}, newest first."""
        where, params = ("WHERE pid = ?", (pid, limit)) if pid is not None else ("", (limit,))
        with self._tx(atomic=False) as db:
            rows = db.execute(
                f"SELECT time, level, message, pid FROM klog {where} ORDER BY n DESC LIMIT ?", params
            ).fetchall()
        return [{"time": t, "level": lv, "message": m, "pid": p} for t, lv, m, p in rows]


def _statements(script: str) -> list[str]:
    """A script's statements one by one, comment lines dropped (``executescript`` would
    commit the transaction a migration runs in)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return out


def _answer(pages: list[Page]) -> Page | None:
    """The answer a process was writing: its last assistant page after the last input (a
    kernel note, such as memory pressure, may have been journalled after it began)."""
    last = next((p for p in reversed(pages) if p.origin in TURN_ORIGINS), None)
    return last if last is not None and last.origin is Origin.ASSISTANT else None


def _record(row: tuple) -> ProcRecord:
    """A row of ``_PROCESS`` as a record."""
    return ProcRecord(*row[:4], json.loads(row[4]), *row[5:7], _owner(row[7]))


def _owner(blob: str | None) -> Owner | None:
    try:
        return Owner.from_json(json.loads(blob)) if blob else None
    except ValueError:
        return None


def _page(row: tuple, tail: str) -> Page:
    page_id, pid, seq, origin, trust, pinned, resident, source, text, created, n_tokens, recalled = row
    return Page(
        pid=pid, origin=origin, text=text + tail, id=page_id, seq=seq, pinned=bool(pinned),
        trust=trust, source=source, resident=bool(resident), created=created, tokens=None,
        n_tokens=n_tokens, recalled=bool(recalled),
    )
