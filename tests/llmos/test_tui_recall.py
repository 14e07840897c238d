"""End to end, in the shell, with the default model: a conversation overflows RAM several
times, and questions about its first turns are still answered, from pages the page fault
brings back from swap (the real LlmosApp through Textual's pilot, a real kernel on the
default model, chromadb in a temp dir)."""

from __future__ import annotations

import pytest

from llmos.kernel.kernel import Kernel
from llmos.kernel.llama import LlamaCPU
from llmos.tui.app import LlmosApp
from llmos.tui.chat import AnswerMessage
from tests.llmos.test_tui import send, wait_for
from tests.reliability.test_crash_points import _qwen_path

FIRST = ["My sister Marta lives in Lisbon and works as a marine biologist.",
         "My bike is a green Bianchi that I bought in 2019."]
FILLER = ("Here is a passage from my travel diary, day {i}: we walked along the old canal, counted "
          "the bridges, ate bread with olives near the market, talked about trains, tides and the "
          "price of coffee, and watched boats come in until late. Reply with just: noted.")
QUESTIONS = [("Where does my sister Marta live?", "lisbon"), ("What colour is my bike?", "green")]


@pytest.mark.default_model
async def test_the_first_turns_are_answered_after_ram_overflowed_several_times(tmp_path, shared_home):
    cpu = LlamaCPU(_qwen_path(shared_home), n_ctx=4096, name="qwen")
    kernel = Kernel.in_folder(cpu, tmp_path, lock=False, ram=640)
    app = LlmosApp(kernel=kernel, max_tokens=24)
    try:
        async with app.run_test(size=(150, 50)) as pilot:
            shell = app.shell
            for i, text in enumerate(FIRST + [FILLER.format(i=i) for i in range(1, 11)]):
                await send(pilot, text)
                await wait_for(lambda: not shell.busy, 120, f"turn {i}", app)
            space = shell.proc.space
            assert space.evictions >= 3, space.evictions  # RAM overflowed, several times
            firsts = [p for p in space.pages if p.text in FIRST]
            assert len(firsts) == 2 and not any(p.resident for p in firsts)  # both were swapped out
            for question, expected in QUESTIONS:
                await send(pilot, question)
                await wait_for(lambda: not shell.busy, 120, question, app)
                await pilot.pause()
                answer = shell.conversation.messages(AnswerMessage)[-1].text
                assert expected in answer.lower(), (question, answer)
    finally:
        kernel.close()


@pytest.mark.default_model
def test_a_when_question_is_answered_with_the_day_the_recalled_message_was_said(tmp_path, shared_home):
    """ "When" questions: a message said on an earlier day and paged back in from swap carries
    its day (``ram.render``), and the default model answers with it. (Kernel-level: the pages
    before the question are admitted as they are, without answers, to keep this one turn.)"""
    import time

    from llmos.apps.chat import spawn_chat
    from llmos.memory.page import Origin

    cpu = LlamaCPU(_qwen_path(shared_home), n_ctx=4096, name="qwen")
    kernel = Kernel.in_folder(cpu, tmp_path, lock=False, ram=640)
    try:
        proc = spawn_chat(kernel)
        told = kernel.add_page(proc, Origin.USER, "I adopted a rescue cat and named her Miso.")[0]
        kernel.add_page(proc, Origin.ASSISTANT, "Congratulations on adopting Miso!")
        told.created = time.mktime((2026, 3, 5, 15, 0, 0, 0, 0, -1))  # a Thursday, an earlier session
        kernel.journal.record_page(told)
        for i in range(1, 9):
            kernel.add_page(proc, Origin.USER, FILLER.format(i=i).replace(" Reply with just: noted.", ""))
            kernel.add_page(proc, Origin.ASSISTANT, f"That sounds like a lovely day {i} by the canal.")
        assert not told.resident  # swapped out
        answer = kernel.ask(proc, "On what day did I adopt Miso?", max_tokens=32).text
        assert told.recalled  # it was paged in for the answer (and may have left again after it)
        assert "5 march" in answer.lower() or "march 5" in answer.lower(), answer
    finally:
        kernel.close()
