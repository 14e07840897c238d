"""Device calls in the conversation, as a user sees them (issue 15): the default model's call runs
and is drawn as a call, the answer states the result, and /new starts a fresh conversation."""

from __future__ import annotations

import pytest

from llmos.devices.registry import Registry
from llmos.kernel.kernel import Kernel
from llmos.tui.app import LlmosApp
from llmos.tui.chat import AnswerMessage, SystemMessage
from llmos.tui.panels import DevicesPanel
from tests.llmos.test_tui import answer, send, wait_for


@pytest.mark.default_model
async def test_the_shell_runs_the_models_call_and_shows_it_as_a_call(shared_home, monkeypatch, tmp_path):
    monkeypatch.setenv("LLMOS_HOME", str(shared_home))
    from llmos.kernel.boot import load_cpu
    from llmos.kernel.sampling import GREEDY

    kernel = Kernel.in_folder(load_cpu(None, quiet=True), tmp_path, devices=Registry.from_config(), lock=False)
    try:
        app = LlmosApp(kernel=kernel, max_tokens=160)
        async with app.run_test(size=(120, 40)) as pilot:
            shell = app.shell
            shell.sampling = GREEDY  # what the user gets, reproducibly
            reply = await answer(pilot, "My name is Ada and my dog is called Biscuit. What is 1234*5678?", 180)
            await pilot.pause()
            assert "7006652" in reply.text.replace(",", "") and '"name"' not in reply.text
            lines = [m.plain for m in shell.conversation.messages(SystemMessage)]
            drawn = [line for line in lines if line.startswith("⚙") and "calc" in line and "→ ✓ 7006652" in line]
            assert drawn, lines
            assert app.screen.query_one(DevicesPanel).calls, "the Devices panel lists the call"
            reply = await answer(pilot, "What is the capital of France?", 120)
            assert "Paris" in reply.text and "{" not in reply.text
    finally:
        kernel.close()


async def test_new_starts_a_fresh_conversation_and_keeps_the_old_process(tiny_cpu):
    kernel = Kernel(tiny_cpu, lock=False)
    try:
        app = LlmosApp(kernel=kernel, max_tokens=16)
        async with app.run_test(size=(120, 40)) as pilot:
            shell = app.shell
            await answer(pilot, "Hello there.")
            old = shell.proc
            await send(pilot, "/new")
            await wait_for(lambda: shell.proc is not old, 10, "the new process")
            assert old.pid in kernel.procs and old.alive and len(old.space.pages) >= 3
            assert [p.origin.value for p in shell.proc.space.pages] == ["system"]
            assert not shell.conversation.messages(AnswerMessage)
    finally:
        kernel.close()
