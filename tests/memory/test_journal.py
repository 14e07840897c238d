"""The journal: durable across reopen, kill -9 and new processes; search; lock; corruption."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmos.errors import DiskError, LlmosError
from llmos.memory.journal import Journal, fts_query
from llmos.memory.page import Origin, Page, Trust

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and flock are POSIX")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "journal.sqlite3"


@pytest.fixture
def journal(path: Path):
    j = Journal(path)
    yield j
    j.close()


def python(code: str, **kwargs) -> subprocess.Popen:
    """Start a fresh interpreter that imports llmos the way this one does."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs,
    )


def run_python(code: str) -> subprocess.CompletedProcess:
    proc = python(code)
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def fts_consistent(path: Path) -> None:
    """FTS5's own check that the index matches the pages table exactly."""
    db = sqlite3.connect(path)
    try:
        db.execute("INSERT INTO pages_fts (pages_fts, rank) VALUES ('integrity-check', 1)")
    finally:
        db.close()


# -- processes ----------------------------------------------------------------


def test_pids_are_monotonic_and_survive_reopen(path: Path) -> None:
    with Journal(path) as j:
        first = [j.new_pid() for _ in range(3)]
    with Journal(path) as j:
        later = j.new_pid()
    assert first == sorted(set(first)) and later > first[-1]


def test_processes_upsert_and_hide_the_dead_unless_asked(journal: Journal) -> None:
    a, b = journal.new_pid(), journal.new_pid()
    journal.save_process(a, "chat", "READY", 1, {"tokens": 0})
    journal.save_process(b, "ask", "RUNNING", 2, {})
    created = journal.processes()[0].created
    journal.save_process(a, "chat", "RUNNING", 3, {"tokens": 42})
    journal.set_state(b, "ZOMBIE")
    live = journal.processes()
    assert [(p.pid, p.state, p.priority, p.info) for p in live] == [(a, "RUNNING", 3, {"tokens": 42})]
    assert live[0].created == created and live[0].updated >= created
    assert [p.pid for p in journal.processes(include_dead=True)] == [a, b]


def test_set_state_of_an_unknown_pid_says_so(journal: Journal) -> None:
    with pytest.raises(LlmosError, match="no process 999"):
        journal.set_state(999, "READY")


# -- pages ----------------------------------------------------------------------


def test_page_round_trip_keeps_every_field_but_tokens(journal: Journal) -> None:
    page = Page(pid=3, origin=Origin.FILE, text="naïve café ☕", seq=7, pinned=True,
                source="notes.md:1-9", tokens=[1, 2, 3], n_tokens=3)
    journal.record_page(page)
    back = journal.page(page.id)
    assert back is not None
    assert (back.pid, back.origin, back.text, back.seq, back.pinned, back.trust) == (
        3, Origin.FILE, "naïve café ☕", 7, True, Trust.UNTRUSTED)
    assert (back.source, back.resident, back.created, back.n_tokens, back.tokens) == (
        "notes.md:1-9", True, page.created, 3, None)
    assert journal.page("nope") is None


def test_pages_come_back_in_seq_order(journal: Journal) -> None:
    for seq in (2, 0, 1):
        journal.record_page(Page(pid=1, origin=Origin.USER, text=f"page {seq}", seq=seq))
    journal.record_page(Page(pid=2, origin=Origin.USER, text="other process"))
    assert [p.text for p in journal.pages(1)] == ["page 0", "page 1", "page 2"]


def test_append_text_to_an_unrecorded_page_is_refused(journal: Journal) -> None:
    with pytest.raises(LlmosError, match="record_page it first"):
        journal.append_text("missing", "hello")


def test_record_page_replaces_the_text_including_appends(path: Path, journal: Journal) -> None:
    page = Page(pid=1, origin=Origin.ASSISTANT, text="")
    journal.record_page(page)
    journal.append_text(page.id, "draft ")
    journal.append_text(page.id, "answer")
    assert journal.page(page.id).text == "draft answer"
    page.text, page.n_tokens = "final answer", 2
    journal.record_page(page)
    assert journal.page(page.id).text == "final answer"
    fts_consistent(path)


def test_evicted_and_resident_round_trip(path: Path, journal: Journal) -> None:
    pages = [Page(pid=1, origin=Origin.USER, text=f"p{i}", seq=i) for i in range(4)]
    for p in pages:
        journal.record_page(p)
    journal.mark_evicted([pages[1].id, pages[2].id])
    assert [p.seq for p in journal.pages(1, resident=False)] == [1, 2]
    assert [p.seq for p in journal.pages(1, resident=True)] == [0, 3]
    assert journal.page(pages[1].id).resident is False
    journal.mark_resident([pages[1].id])
    assert [p.seq for p in journal.pages(1, resident=False)] == [2]
    db = sqlite3.connect(path)
    evicted_at = dict(db.execute("SELECT seq, evicted_at FROM pages").fetchall())
    db.close()
    assert evicted_at[1] is None and evicted_at[2] is not None and evicted_at[0] is None
    # a page faulted back in is "recalled" from then on, also for a later reader
    assert journal.page(pages[1].id).recalled and not journal.page(pages[2].id).recalled
    journal.close()
    with Journal(path) as again:
        assert again.page(pages[1].id).recalled


def test_a_version_3_journal_gains_the_recalled_column(tmp_path: Path) -> None:
    from llmos.memory.journal import _MIGRATIONS, _SCHEMA

    path = tmp_path / "journal.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(f"BEGIN; {_SCHEMA} {_MIGRATIONS[2]} {_MIGRATIONS[3]} PRAGMA user_version = 3; COMMIT;")
    db.execute("INSERT INTO pages (id, pid, seq, origin, trust, pinned, resident, source, text, created, "
               "n_tokens) VALUES ('old', 1, 0, 'user', 'trusted', 0, 0, '', 'I moved to Porto.', 0, 5)")
    db.close()
    with Journal(path) as journal:
        page = journal.page("old")
        assert (page.text, page.recalled) == ("I moved to Porto.", False)
        journal.mark_resident(["old"])
        assert journal.page("old").recalled


def test_a_version_4_journal_is_indexed_again_by_word_stems(tmp_path: Path) -> None:
    from llmos.memory.journal import _MIGRATIONS, _SCHEMA

    path = tmp_path / "journal.sqlite3"
    unstemmed = _SCHEMA.replace("tokenize = 'porter unicode61", "tokenize = 'unicode61")
    assert unstemmed != _SCHEMA
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(f"BEGIN; {unstemmed} {_MIGRATIONS[2]} {_MIGRATIONS[3]} {_MIGRATIONS[4]} "
                     "PRAGMA user_version = 4; COMMIT;")
    db.execute("INSERT INTO pages (id, pid, seq, origin, trust, pinned, resident, source, text, created, "
               "n_tokens) VALUES ('old', 1, 0, 'user', 'trusted', 0, 0, '', 'I was researching agencies.', 0, 5)")
    assert db.execute("SELECT count(*) FROM pages_fts WHERE pages_fts MATCH 'research'").fetchone() == (0,)
    db.close()
    with Journal(path) as journal:
        assert [i for i, _ in journal.lexical_search("research", evicted_only=False)] == ["old"]
        assert [i for i, _ in journal.lexical_search("agencies", evicted_only=False)] == ["old"]
        page = Page(pid=1, origin=Origin.USER, text="Melanie painted a sunrise.", seq=1)
        journal.record_page(page)  # the triggers of the new index keep it equal to pages
        assert [i for i, _ in journal.lexical_search("paint", evicted_only=False)] == [page.id]


def test_each_turn_knows_the_end_of_the_turn_before_it(journal: Journal) -> None:
    from llmos.memory.journal import PREV_CHARS

    pid = journal.new_pid()
    said = [(Origin.SYSTEM, "You are helpful."), (Origin.USER, "Do you like cats?"),
            (Origin.ASSISTANT, "Yes, I"), (Origin.KERNEL, "RAM is 80% full."),
            (Origin.USER, "x" * (PREV_CHARS + 50)), (Origin.ASSISTANT, "Cats sleep a lot.")]
    pages = [Page(pid=pid, origin=origin, text=text, seq=seq) for seq, (origin, text) in enumerate(said)]
    journal.record_pages(pages)
    journal.append_text(pages[2].id, " really love them!")  # streamed, not yet folded into the index
    system, question, reply, note, long, last = (p.id for p in pages)
    # the system prompt and kernel notes neither have a turn before them nor count as one; the
    # streamed reply is whole; a long turn gives its end
    assert journal.prev_texts([system, question, reply, note, long, last]) == {
        reply: "Do you like cats?", long: "Yes, I really love them!", last: "x" * PREV_CHARS}


def test_appended_text_is_complete_in_a_new_process(path: Path, journal: Journal) -> None:
    page = Page(pid=journal.new_pid(), origin=Origin.ASSISTANT, text="")
    journal.record_page(page)
    chunks = [f"tok{i} " for i in range(200)]
    for chunk in chunks:
        journal.append_text(page.id, chunk)
    # the writer is still open: what a second process reads is already on disk
    done = run_python(f"""
        from llmos.memory.journal import Journal
        print(Journal({str(path)!r}).page({page.id!r}).text, end="")
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "".join(chunks)


@posix_only
def test_sigkill_loses_no_recorded_page_or_appended_text(path: Path) -> None:
    done = run_python(f"""
        import os, signal
        from llmos.memory.journal import Journal
        from llmos.memory.page import Page, Origin
        j = Journal({str(path)!r})
        j.acquire_lock()
        pid = j.new_pid()
        j.save_process(pid, "chat", "RUNNING", 1, {{}})
        for i in range(50):
            q = Page(pid=pid, origin=Origin.USER, text=f"question {{i}}", seq=2 * i, id=f"q{{i}}")
            j.record_page(q)
            j.record_page(Page(pid=pid, origin=Origin.ASSISTANT, text="", seq=2 * i + 1, id=f"a{{i}}"))
            for t in range(10):
                j.append_text(f"a{{i}}", f"w{{t}} ")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert done.returncode == -signal.SIGKILL, done.stderr
    with Journal(path) as j:
        j.acquire_lock()  # the dead holder's lock is gone
        (proc,) = j.processes()
        pages = j.pages(proc.pid)
        assert len(pages) == 100
        assert pages[-1].text == "".join(f"w{t} " for t in range(10))
        assert pages[-2].text == "question 49"
        assert [hit for hit, _ in j.lexical_search("w7", evicted_only=False, k=100)] != []
    fts_consistent(path)


def test_threads_can_append_at_once(path: Path, journal: Journal) -> None:
    pages = [Page(pid=1, origin=Origin.ASSISTANT, text="", seq=i) for i in range(4)]
    journal.record_pages(pages)

    def stream(page: Page) -> None:
        for i in range(100):
            journal.append_text(page.id, f"{i} ")

    threads = [threading.Thread(target=stream, args=(p,)) for p in pages]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = "".join(f"{i} " for i in range(100))
    assert all(p.text == expected for p in journal.pages(1))
    journal.lexical_search("99")
    fts_consistent(path)


# -- lexical search ---------------------------------------------------------------

TARGETS = {
    "invoice": "Please pay invoice INV-20931 before Friday, the amount is due.",
    "part": "The spare part A7X9 fits the left hinge of the cabinet.",
    "pi": "Archimedes bounded pi, roughly 3.14159, between two polygons.",
    "surname": "The contract was signed by Jürgen Oberhäuser in Zürich.",
}
DISTRACTORS = [
    "Invoice INV-20932 was paid, the amount is due next month.",
    "Part A7X8 is out of stock; ask about the hinge later.",
    "Three point one four one five eight: 3.14158 is close to pi.",
    "Mr Oberhausen called about the contract in Zurich.",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """1,000 evicted pages of filler, the four targets and near misses, one resident twin."""
    path = tmp_path_factory.mktemp("corpus") / "journal.sqlite3"
    rng = random.Random(7)
    words = "the a of to and invoice amount due pay part hinge contract signed pi polygons month".split()
    words += [f"word{i}" for i in range(300)]
    pages = [Page(pid=1 + i % 5, origin=Origin.USER, text=" ".join(rng.choices(words, k=40)), seq=i,
                  resident=False) for i in range(1000 - len(TARGETS) - len(DISTRACTORS))]
    pages += [Page(pid=9, origin=Origin.DEVICE, text=t, seq=0, id=f"near{i}", resident=False)
              for i, t in enumerate(DISTRACTORS)]
    pages += [Page(pid=9, origin=Origin.FILE, text=t, seq=1, id=name, resident=False)
              for name, t in TARGETS.items()]
    pages.append(Page(pid=8, origin=Origin.USER, text=TARGETS["invoice"], id="resident-invoice"))
    j = Journal(path)
    j.record_pages(pages)
    yield j
    j.close()


@pytest.mark.parametrize("query, target", [
    ("INV-20931", "invoice"),
    ("what about invoice INV-20931 ?", "invoice"),
    ("A7X9", "part"),
    ("a7x9 hinge", "part"),
    ("3.14159", "pi"),
    ("Oberhäuser", "surname"),
    ("oberhauser", "surname"),
    ("OBERHÄUSER contract", "surname"),
])
def test_lexical_search_ranks_the_exact_id_first(corpus: Journal, query: str, target: str) -> None:
    hits = corpus.lexical_search(query)
    assert hits and hits[0][0] == target
    assert all(a[1] >= b[1] for a, b in zip(hits, hits[1:])), "best first"


def test_lexical_search_filters_by_residency_and_pid(corpus: Journal) -> None:
    assert [h for h, _ in corpus.lexical_search("INV-20931")] == ["invoice"]
    both = {h for h, _ in corpus.lexical_search("INV-20931", evicted_only=False)}
    assert both == {"invoice", "resident-invoice"}
    mine = corpus.lexical_search("INV-20931", pid=8, evicted_only=False)
    assert [h for h, _ in mine] == ["resident-invoice"]
    assert corpus.lexical_search("INV-20931", pid=1) == []
    assert len(corpus.lexical_search("the", k=7)) == 7


def test_words_in_too_many_pages_are_left_out_of_a_lexical_search(path: Path) -> None:
    """A word in 1,500 of 1,600 pages is no exact-match signal and made a search slow:
    with a rare name beside it only the name is searched; alone it is still searched.
    A word counts by its stem, as the index holds it."""
    j = Journal(path)
    try:
        pages = [Page(pid=1, origin=Origin.USER, text=f"Some time ago, note {i} was written.", id=f"common-{i}")
                 for i in range(1500)]
        pages += [Page(pid=1, origin=Origin.USER, text=f"Filler page {i}.", id=f"filler-{i}") for i in range(99)]
        pages.append(Page(pid=1, origin=Origin.USER, text="Oberhäuser signed it.", id="rare"))
        j.record_pages(pages)
        assert [h for h, _ in j.lexical_search("time Oberhauser", evicted_only=False, k=20)] == ["rare"]
        assert len(j.lexical_search("time", evicted_only=False, k=20)) == 20
        assert len(j.lexical_search("time filler", evicted_only=False, k=200)) == 99  # "time" left out
        # counted by the stem the index holds: "times" is "time" there
        assert len(j.lexical_search("times filler", evicted_only=False, k=200)) == 99
    finally:
        j.close()


def test_a_process_search_weighs_a_word_by_its_rarity_in_that_process(path: Path) -> None:
    """Within one conversation a name in most turns tells them apart less than a word said
    once, however rare the name is in the rest of the journal (where the once-said word may
    be common)."""
    j = Journal(path)
    try:
        mine = [Page(pid=1, origin=Origin.USER, text=f"Oren called again about day {i}.", seq=i)
                for i in range(20)]
        mine.append(Page(pid=1, origin=Origin.USER, text="The vet says the kelpie is fine.", seq=20, id="vet"))
        mine.append(Page(pid=1, origin=Origin.USER, text="Oren walked the kelpie.", seq=21, id="both"))
        others = [Page(pid=2, origin=Origin.USER, text=f"Kelpie herding trial, heat {i}.", seq=i)
                  for i in range(300)]
        j.record_pages(mine + others)
        ranked = [h for h, _ in j.lexical_search("Oren kelpie", pid=1, evicted_only=False, k=5)]
        assert set(ranked[:2]) == {"vet", "both"}, "the word said twice in this process leads"
        # over the whole journal "kelpie" is the common word and "Oren" the rare one
        journal_wide = [h for h, _ in j.lexical_search("Oren kelpie", evicted_only=False, k=3)]
        assert journal_wide[0] == "both" and "vet" not in journal_wide
        scores = [s for _, s in j.lexical_search("Oren vet kelpie", pid=1, evicted_only=False, k=30)]
        assert scores == sorted(scores, reverse=True) and len(scores) == 22
        j.mark_evicted(["vet"])
        assert [h for h, _ in j.lexical_search("vet kelpie", pid=1)] == ["vet"]
    finally:
        j.close()


def test_appended_text_becomes_searchable(path: Path, journal: Journal) -> None:
    page = Page(pid=1, origin=Origin.ASSISTANT, text="The order ")
    journal.record_page(page)
    for chunk in ("number is ORD-", "55", "17 and", " it shipped."):
        journal.append_text(page.id, chunk)
    journal.mark_evicted([page.id])
    assert [h for h, _ in journal.lexical_search("ORD-5517")] == [page.id]
    assert journal.page(page.id).text == "The order number is ORD-5517 and it shipped."
    fts_consistent(path)


HOSTILE = ['"foo" AND (', "", "   ", "*", "^foo", "NEAR(a b)", "col:term", '"""', "AND OR NOT",
           "foo\x00bar", "🎉🔥", "-", "(((", "'; DROP TABLE pages; --", "ünïcödé 数据库 مرحبا",
           "a" * 5000]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_never_raise(corpus: Journal, query: str) -> None:
    assert isinstance(corpus.lexical_search(query, evicted_only=False), list)


def test_queries_without_terms_return_nothing(corpus: Journal) -> None:
    assert fts_query('  "" ( ) * 🎉 ') == ""
    assert corpus.lexical_search("  ( ) ^ * ") == []
    assert fts_query('say "hi" INV-20931') == '"say" OR "hi" OR "INV 20931"'


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_any_text_is_a_safe_query(corpus: Journal, query: str) -> None:
    assert isinstance(corpus.lexical_search(query, evicted_only=False), list)


# -- audit and kernel log ---------------------------------------------------------


def test_audit_and_dmesg_are_newest_first(journal: Journal) -> None:
    journal.audit(1, "calc", {"expr": "1+1"}, "auto", 1, 0.01, None)
    journal.audit(2, "shell", {"cmd": "ls"}, "user", 0, 0.5, "denied")
    journal.log("info", "boot")
    journal.log("warn", "RAM 75% full")
    audit = journal.audit_log()
    assert [(a["pid"], a["device"], a["args"], a["error"]) for a in audit] == [
        (2, "shell", {"cmd": "ls"}, "denied"), (1, "calc", {"expr": "1+1"}, None)]
    assert [(d["level"], d["message"]) for d in journal.dmesg(limit=1)] == [("warn", "RAM 75% full")]


# -- instance lock -----------------------------------------------------------------


@posix_only
def test_second_instance_is_refused_until_the_holder_is_killed(path: Path) -> None:
    Journal(path).close()
    holder = python(f"""
        import sys
        from llmos.memory.journal import Journal
        Journal({str(path)!r}).acquire_lock()
        print("locked", flush=True)
        sys.stdin.read()
    """, stdin=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "locked", holder.stderr.read()
        with Journal(path) as j:
            with pytest.raises(LlmosError) as err:
                j.acquire_lock()
            assert str(err.value) == (f"another llmos (pid {holder.pid}) is using {path.parent}; "
                                      "close it or set LLMOS_HOME to another folder")
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=10)
            j.acquire_lock()  # flock died with its holder
    finally:
        holder.kill()
        holder.communicate()


# -- damage -------------------------------------------------------------------------


def test_corrupt_file_is_a_disk_error_and_left_untouched(path: Path) -> None:
    path.parent.mkdir(parents=True)
    garbage = bytes(random.Random(1).randrange(256) for _ in range(8192))
    path.write_bytes(garbage)
    with pytest.raises(DiskError) as err:
        Journal(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert path.read_bytes() == garbage


def test_journal_from_a_newer_llmos_is_refused(path: Path) -> None:
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(DiskError, match="newer"):
        Journal(path)
