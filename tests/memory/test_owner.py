"""Owners and reaping: a process whose llmos died is shown interrupted by any reader of the
journal; one whose llmos is alive (here, or on another host) is never touched.

Real parts: the journal is a real SQLite file, and each owner is a real OS process
(a child Python that saves a process mid-answer, then dies or stays alive).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
import threading

import pytest

from llmos.memory import owner as owners
from llmos.memory.journal import Journal, _MIGRATIONS, _SCHEMA, _statements
from llmos.memory.page import Origin

CHILD = r"""
import sys, time
from llmos.memory.journal import Journal
from llmos.memory.page import Origin, Page

journal = Journal(sys.argv[1])
pid = journal.new_pid()
journal.save_process(pid, "run", sys.argv[2], 0, {"tokens_out": 0, "blocked_on": sys.argv[3]})
journal.record_page(Page(pid, Origin.USER, "Tell me about lighthouses.", seq=1))
answer = Page(pid, Origin.ASSISTANT, "", seq=2)
journal.record_page(answer)
for n, piece in enumerate(["Light", "houses ", "guide ", "ships."], start=1):
    journal.append_text(answer.id, piece, tokens_out=n)
print(pid, answer.id, flush=True)
if sys.argv[4] == "stay":
    sys.stdin.read()  # alive until the test closes our stdin
"""


def _child(path, state="RUNNING", blocked_on="", stay=False) -> tuple[subprocess.Popen, int, str]:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), state, blocked_on, "stay" if stay else "exit"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pid, page_id = child.stdout.readline().split()
    if not stay:
        child.wait()
    return child, int(pid), page_id


def test_a_process_whose_owner_died_mid_answer_reads_as_interrupted_with_its_answer_counted(tmp_path):
    path = tmp_path / "journal.sqlite3"
    _, pid, page_id = _child(path)
    with Journal(path) as journal:
        rec = journal.process(pid)
        assert rec.state == "SLEEPING"
        assert rec.info["interrupted"] is True
        assert rec.info["interrupted_while"] == "running"
        assert rec.info["tokens_out"] == 4  # counted as it streamed, in the same commits
        answer = journal.page(page_id)
        assert answer.text == "Lighthouses guide ships."  # the streamed pieces, put together
        assert answer.source == "interrupted"
        said = [r["message"] for r in journal.dmesg(10, pid=pid)]
        assert any("interrupted" in m and "died while it was running" in m for m in said), said
        assert journal.reap() == []  # once


def test_one_blocked_on_an_approval_says_so(tmp_path):
    path = tmp_path / "journal.sqlite3"
    _, pid, _ = _child(path, state="BLOCKED", blocked_on="approval: python")
    with Journal(path) as journal:
        rec = journal.process(pid)
    assert (rec.state, rec.info["interrupted_while"], rec.info["blocked_on"]) == \
        ("SLEEPING", "blocked (approval: python)", "")


def test_a_live_owner_is_never_reaped_and_its_process_is_held(tmp_path):
    path = tmp_path / "journal.sqlite3"
    child, pid, page_id = _child(path, stay=True)
    try:
        with Journal(path) as journal:
            rec = journal.process(pid)
            assert rec.state == "RUNNING" and not rec.info.get("interrupted")
            assert rec.owner.pid == child.pid and rec.held_elsewhere
            assert journal.page(page_id).source == ""
    finally:
        child.stdin.close()
        child.wait()
    with Journal(path) as journal:  # now it is gone: the next reader reaps it
        assert journal.process(pid).info["interrupted"] is True


def test_an_owner_on_another_host_is_taken_as_alive(tmp_path):
    with Journal(tmp_path / "journal.sqlite3") as journal:
        pid = journal.new_pid()
        journal.save_process(pid, "run", "RUNNING", 0, {})
        far = owners.Owner("another-host.example", 1, 0.0)
        with journal._tx() as db:
            db.execute("UPDATE processes SET owner = ? WHERE pid = ?", (json.dumps(far.to_json()), pid))
        assert journal.process(pid).state == "RUNNING"
        assert journal.process(pid).held_elsewhere


def test_a_reused_os_pid_is_not_mistaken_for_the_owner(tmp_path):
    """Same OS pid as a live program, another start time: the owner is dead."""
    with Journal(tmp_path / "journal.sqlite3") as journal:
        pid = journal.new_pid()
        journal.save_process(pid, "run", "READY", 0, {})
        me = owners.me()
        impostor = dataclasses.replace(me, started=me.started - 3600)
        with journal._tx() as db:
            db.execute("UPDATE processes SET owner = ? WHERE pid = ?", (json.dumps(impostor.to_json()), pid))
        assert journal.process(pid).info["interrupted_while"] == "ready"


def _version_2(path) -> None:
    """A journal as llmos wrote it before owners were recorded, with a process left RUNNING."""
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(f"BEGIN; {_SCHEMA} {_MIGRATIONS[2]} PRAGMA user_version = 2; COMMIT;")
    db.execute("INSERT INTO processes VALUES (7, 'run', 'RUNNING', 0, '{}', 0, 0)")
    db.close()


def test_a_version_2_journal_is_migrated_and_its_ownerless_running_process_reaped(tmp_path):
    path = tmp_path / "journal.sqlite3"
    _version_2(path)
    with Journal(path) as journal:
        assert journal.process(7).info["interrupted"] is True
        journal.log("info", "hello", pid=7)
        assert journal.dmesg(1, pid=7)[0]["message"] == "hello"


def test_two_programs_migrating_one_journal_at_once_both_open_it(tmp_path):
    path = tmp_path / "journal.sqlite3"
    _version_2(path)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Journal(path).close()
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_statements_splits_a_migration_without_its_comments():
    assert _statements("-- a; comment\nCREATE TABLE t (a);\nALTER TABLE t ADD COLUMN b;\n") == \
        ["CREATE TABLE t (a);", "ALTER TABLE t ADD COLUMN b;"]


def test_last_conversation_is_the_one_written_to_last(tmp_path):
    from llmos.memory.page import Page

    with Journal(tmp_path / "journal.sqlite3") as journal:
        a, b, c = (journal.new_pid() for _ in range(3))
        for pid, app in ((a, "run"), (b, "chat"), (c, "think")):
            journal.save_process(pid, app, "SLEEPING", 0, {})
        journal.record_page(Page(b, Origin.USER, "first", created=1.0))
        journal.record_page(Page(a, Origin.USER, "second", created=2.0))
        journal.record_page(Page(c, Origin.USER, "third, but an app", created=3.0))
        assert journal.last_conversation(("run", "chat")) == a
        assert journal.last_conversation(("nothing",)) is None


@pytest.mark.parametrize("blob", [None, "not json", '{"host": "x"}'])
def test_an_unreadable_owner_counts_as_dead(tmp_path, blob):
    with Journal(tmp_path / "journal.sqlite3") as journal:
        pid = journal.new_pid()
        journal.save_process(pid, "run", "RUNNING", 0, {})
        with journal._tx() as db:
            db.execute("UPDATE processes SET owner = ? WHERE pid = ?", (blob, pid))
        assert journal.process(pid).state == "SLEEPING"


def test_a_rebooted_machine_means_the_owner_is_dead(tmp_path):
    me = owners.me()
    if not me.boot:
        pytest.skip("no boot id on this OS")
    assert not owners.alive(owners.Owner(me.host, me.pid, me.started, "another-boot", me.ns))
    assert owners.alive(owners.Owner(me.host, 1, 0.0, me.boot, "another-pid-namespace"))


def test_claim_gives_a_process_to_one_program_and_refuses_one_held_elsewhere(tmp_path):
    from llmos.errors import UsageError

    path = tmp_path / "journal.sqlite3"
    child, pid, _ = _child(path, stay=True)
    try:
        with Journal(path) as journal:
            with pytest.raises(UsageError, match=f"being run by another llmos \\(pid {child.pid}\\)"):
                journal.claim(pid)
    finally:
        child.stdin.close()
        child.wait()
    with Journal(path) as journal:
        assert journal.claim(pid).pid == pid
        assert journal.process(pid).owner == owners.me()
        with pytest.raises(UsageError, match="no process 999"):
            journal.claim(999)


def test_a_finished_conversation_taken_back_for_a_turn_is_reaped_to_zombie(tmp_path):
    with Journal(tmp_path / "journal.sqlite3") as journal:
        pid = journal.new_pid()
        journal.save_process(pid, "run", "RUNNING", 0, {"ends_after": True})
        assert journal.reap(mine=True) == [pid]
        rec = journal.process(pid)
    assert (rec.state, rec.info["interrupted"]) == ("ZOMBIE", True)
