"""``llmos demo``: the whole tour on the tiny model, with no pauses, and each step's effect checked.

Set LLMOS_SCREENSHOTS=docs/screenshots to refresh the committed screenshots of
the steps (``demo-1-model.svg`` ...).
"""

from __future__ import annotations

import os
from pathlib import Path

from llmos.memory.page import Origin, Trust
from llmos.tui.chat import AnswerMessage
from llmos.tui.demo import DemoApp, DemoOptions
from llmos.tui.tour import NOTES, STEPS
from llmos.tui.ram import RamPanel
from tests.llmos.test_tui import wait_for
from tests.llmos.test_tui_layout import assert_no_overflow


def caption(app) -> str:
    return str(app.screen.query_one("#demo-caption").render())


def test_the_demo_notes_ship_with_a_planted_injection():
    names = sorted(p.name for p in NOTES.glob("*.md"))
    assert len(names) >= 3 and "team-meeting.md" in names
    assert "ignore all previous instructions" in (NOTES / "team-meeting.md").read_text()


async def test_the_tour_runs_every_step_and_each_one_does_what_its_caption_says(tmp_path):
    shots = Path(os.environ.get("LLMOS_SCREENSHOTS") or tmp_path / "shots")
    # 64 tokens an answer: enough for two processes to take turns (the quantum is 32).
    app = DemoApp(model="tiny", max_tokens=64,
                  options=DemoOptions(step_delay=0, type_delay=0, screenshots=shots))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(lambda: app.shell is not None and app.shell.driver is not None
                           and app.shell.driver.done, 240, "the tour")
            await pilot.pause()
            shell, kernel, facts = app.shell, app.kernel, app.shell.driver.facts
            assert caption(app).startswith("That was llmos"), caption(app)
            transcript = shell.conversation.transcript()
            # 1. the two files
            assert "A model is two files" in transcript and "weights" in transcript
            # 2. next-word prediction: the CPU panel traced the answer's tokens with their top 5
            assert facts["traced_tokens"] > 0
            # 3. RAM filled and the pager evicted pages to swap; /free showed it
            assert facts["evictions"] > 0 and facts["fact_swapped"]
            assert kernel.procs[shell.proc.pid].space.evictions >= facts["evictions"]
            assert "evicted" in transcript and "tok resident" in transcript
            # 4. the question about the evicted fact faulted its page back in
            assert facts["faults"] >= 1 and facts["fact_paged_in"]
            assert "page fault" in transcript
            # 5. two more processes shared the CPU: context switches happened
            assert facts["processes"] >= 3 and facts["switches"] > 0
            background = [a for a in shell.conversation.messages(AnswerMessage) if a.background]
            assert len({a.pid for a in background}) == 2 and all(a.text for a in background)
            # 6. the mount indexed the notes, and the planted note came in fenced as untrusted
            assert facts["files_indexed"] == len(list(NOTES.glob("*.md")))
            assert facts["file_pages"] >= 1 and facts["injected_fenced"]
            injected = [p for p in shell.proc.space.pages if p.origin is Origin.FILE and "team-meeting" in p.source]
            assert injected and all(p.trust is Trust.UNTRUSTED for p in injected)
            assert "read from disk: team-meeting.md" in transcript
            assert "<untrusted file data from" in transcript
            # 7. a python call stopped for approval and named the untrusted note in context;
            # the unattended tour allowed it, so it ran in the sandbox and became a page
            assert "wants to run python(" in facts["approval"]
            assert any("team-meeting.md" in s for s in facts["untrusted_sources"]), facts
            assert facts["device_calls"] == 1 and facts["device_pages"] + ("failed" in transcript) >= 1
            assert (shots / "demo-7-approval.svg").exists()
            # The page map shows swapped (□) pages; the screen still fits.
            assert "□" in app.screen.query_one(RamPanel).cells()
            assert_no_overflow(app, (120, 40))
            # One screenshot per step.
            assert sorted(p.name for p in shots.glob("demo-*.svg")) == sorted(
                [f"demo-{n}-{step.slug}.svg" for n, step in enumerate(STEPS, start=1)] + ["demo-7-approval.svg"])
            # After the tour, the shell is the presenter's: Space types a space again.
            assert not shell.prompt.read_only
            await pilot.press("space")
            assert shell.prompt.text == " "
    finally:
        app.close_kernel()
    assert not app.workdir.exists(), "the tour's journal and disk are removed"


async def test_space_advances_a_manual_tour_and_quitting_midway_is_clean():
    app = DemoApp(model="tiny", options=DemoOptions(step_delay=0, type_delay=0, manual=True))
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(lambda: app.shell is not None and app.shell.driver is not None
                           and app.shell.driver.step == 1 and "Space" in str(
                               app.screen.query_one("#demo-hint").render()), 60, "step 1 to wait")
            assert caption(app).startswith("1/7 · The two files of an LLM")
            await pilot.pause()
            text = assert_no_overflow(app, (80, 24))
            assert "1/7" in text and "Next step" in text, "the caption bar and the key show at 80x24"
            await pilot.pause(0.3)
            assert app.shell.driver.step == 1, "a manual tour waits for the presenter"
            await pilot.press("space")
            await wait_for(lambda: app.shell.driver.step == 2, 10, "step 2")
            assert app.shell.prompt.text == "" or not app.shell.prompt.text.endswith(" "), \
                "Space moved the tour on; it typed nothing"
            await pilot.press("ctrl+q")
            await wait_for(lambda: not app.is_running, 10, "the app to quit")
    finally:
        app.close_kernel()
    assert app.boot_error is None and not app.workdir.exists()
