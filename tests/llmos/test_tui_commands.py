"""Every slash command the shell has, typed into the input line as a user would (pilot).

``CHECKED`` names the verbs this file runs; a test fails when a verb exists
that it does not run, so a new verb arrives with its test.
"""

from __future__ import annotations

from llmos.apps.chat import NO_FILE
from llmos.tui.app import LlmosApp
from llmos.tui.chat import AnswerMessage, SystemMessage
from llmos.tui.commands import VERBS
from llmos.tui.panels import DiskPanel, ProcPanel
from tests.llmos.test_tui import kernel, send, wait_for  # noqa: F401  (kernel is a fixture)

CHECKED = {"model", "ps", "free", "dmesg", "help", "spawn", "nice", "kill", "mount", "df", "clear", "quit",
           "devices", "apps", "run", "grant", "new", "export"}
# grant: test_tui_approval.py; new: test_tui_calls.py; export: test_conversations.py


def test_every_verb_has_a_pilot_test():
    assert set(VERBS) == CHECKED


async def test_every_slash_command_answers_in_the_conversation(kernel, tmp_path):  # noqa: F811
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "boat.md").write_text("# The boat\nOur sailing boat is called Marigold; she is moored at pier 7.\n")
    app = LlmosApp(kernel=kernel, max_tokens=40)
    async with app.run_test(size=(110, 36)) as pilot:
        shell = app.shell
        pid = shell.proc.pid

        async def run(line: str, timeout: float = 60) -> SystemMessage | None:
            before = shell.inputs
            await send(pilot, line)
            await wait_for(lambda: shell.inputs > before and not shell.busy, timeout, line)
            await pilot.pause()
            shown = shell.conversation.messages(SystemMessage)
            return shown[-1] if shown else None

        out = await run("/model")
        assert "two files" in out.plain and "weights" in out.plain and "runtime" in out.plain
        assert "parameters" in out.plain and "llama" in out.plain
        out = await run("/ps")
        assert str(pid) in out.plain and "chat" in out.plain and "SLEEPING" in out.plain
        out = await run("/free")
        assert f"pid {pid} chat" in out.plain and "system" in out.plain
        out = await run("/help")
        assert all(verb.usage in out.plain for verb in VERBS.values())
        out = await run("/dmesg 5")
        assert f"spawn pid {pid}" in out.plain

        # /spawn: a second process; with text it answers in the background, beside this one.
        out = await run("/spawn")
        other = max(kernel.procs)
        assert f"spawned pid {other}" in out.plain and other != pid
        out = await run("/spawn Name one colour.")
        third = max(kernel.procs)
        reply = shell.conversation.messages(AnswerMessage)[-1]
        assert reply.pid == third and reply.background and reply.text
        assert shell.proc.pid == pid, "the shell keeps talking to its own process"
        assert out.plain.startswith(f"pid {third} ·"), "the footnote names the background process"
        assert app.screen.query_one(ProcPanel).row_count == 3
        out = await run(f"/nice {other} 5")
        assert kernel.procs[other].priority == 5 and f"pid {other}: priority 0 → 5" in out.plain
        out = await run(f"/kill {other}")
        assert kernel.procs[other].state.value == "ZOMBIE" and f"killed pid {other}" in out.plain
        out = await run(f"/kill {other}")
        assert out.has_class("error") and "no running process" in out.plain

        # /mount and /df run off the UI thread; a question then pages the file in, and the
        # footnote under the answer says which file it read.
        out = await run(f"/mount {notes}")
        assert "1 files indexed" in out.plain
        assert "mount: notes/ · 1 files" in str(app.screen.query_one(DiskPanel).render())
        out = await run("/df")
        assert "files" in out.plain and "records" in out.plain
        out = await run("Name one colour.")  # nothing mounted is about it, and the footnote says so
        assert NO_FILE in out.plain
        out = await run("What is the name of our sailing boat?")
        assert "read from disk: boat.md:1-2 (untrusted)" in out.plain and NO_FILE not in out.plain
        assert any(p.origin.value == "file" for p in shell.proc.space.pages)
        out = await run("/mount /no/such/folder")
        assert out.has_class("error") and "no such folder" in out.plain

        await run("/clear")
        assert shell.conversation.messages() == []
        await send(pilot, "/quit")
        await wait_for(lambda: not app.is_running, 5, "the app to quit")


async def test_apps_and_run_start_an_app_as_a_new_process(kernel):  # noqa: F811
    app = LlmosApp(kernel=kernel, max_tokens=40)
    async with app.run_test(size=(110, 36)) as pilot:
        shell = app.shell
        pid = shell.proc.pid

        async def run(line: str, timeout: float = 180) -> SystemMessage | None:
            before = shell.inputs
            await send(pilot, line)
            await wait_for(lambda: shell.inputs > before and not shell.busy, timeout, line)
            await pilot.pause()
            shown = shell.conversation.messages(SystemMessage)
            return shown[-1] if shown else None

        out = await run("/apps")
        assert all(name in out.plain for name in ("chat", "ask", "think", "compare", "summarize"))
        out = await run("/run think --budget=2 --tokens=24 What is 2+3?")
        think = max(kernel.procs)
        reply = [m for m in shell.conversation.messages(AnswerMessage) if m.background][-1]
        assert kernel.procs[reply.pid].app == "think" and reply.pid != pid
        assert reply.text.startswith("budget: 2 sample(s)") and "of 2 votes" in reply.text
        assert f"pid {reply.pid} · think exited" in out.plain and think > reply.pid  # its forks came after it
        assert all(kernel.procs[p].state.value == "ZOMBIE" for p in range(reply.pid, think + 1))
        assert shell.proc.pid == pid and kernel.procs[pid].state.value != "ZOMBIE"
        out = await run("/run nope hi")
        assert out.has_class("error") and "no app named 'nope'" in out.plain
        out = await run("/run think")
        assert out.has_class("error") and "needs some text" in out.plain
        out = await run("/run think --colour=red 1+1")
        assert out.has_class("error") and "has no option 'colour'" in out.plain
