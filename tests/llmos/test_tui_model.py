"""``/model NAME`` in the shell: the real LlmosApp through Textual's pilot, a real kernel that
starts on the tiny model and switches to the default one while its process lives."""

from __future__ import annotations

import pytest

from llmos.kernel.kernel import Kernel
from llmos.kernel.llama import LlamaCPU
from llmos.kernel.models import resolve
from llmos.tui.app import LlmosApp
from llmos.tui.chat import AnswerMessage, SystemMessage
from llmos.tui.commands import ps
from llmos.tui.cpu import CpuPanel
from tests.llmos.test_tui import send, wait_for
from tests.reliability.test_crash_points import _qwen_path


def shown(shell) -> list[str]:
    return [str(m.render()) for m in shell.conversation.query(SystemMessage)]


@pytest.mark.default_model
async def test_model_switches_the_cpu_while_the_conversation_goes_on(tmp_path, shared_home):
    qwen = _qwen_path(shared_home)
    kernel = Kernel.in_folder(LlamaCPU(resolve("tiny"), n_ctx=2048, name="tiny"), tmp_path, lock=False)
    app = LlmosApp(kernel=kernel, max_tokens=24)
    try:
        async with app.run_test(size=(150, 50)) as pilot:
            shell = app.shell
            await send(pilot, "My dog is called Biscuit.")
            await wait_for(lambda: not shell.busy, 60, "the first answer", app)
            pid = shell.proc.pid
            assert "tiny" in app.screen.query_one(CpuPanel).border_title

            await send(pilot, "/model no-such-model")  # fails to load: the old CPU runs on
            await wait_for(lambda: not shell.busy, 30, "the refusal", app)
            assert any("no such model: no-such-model" in line for line in shown(shell))
            assert kernel.cpu.name == "tiny"

            await send(pilot, f"/model {qwen}")
            await wait_for(lambda: not shell.busy and kernel.cpu.name != "tiny", 120, "the switch", app)
            await pilot.pause()
            assert any("CPU: tiny → qwen2.5-coder-0.5b-instruct-q4_k_m" in line and f"pid {pid}" in line
                       for line in shown(shell))
            assert "qwen2.5-coder" in app.screen.query_one(CpuPanel).border_title
            assert shell.proc.pid == pid  # the same process, its pages counted again

            await send(pilot, "What is my dog called? Answer in one word.")
            await wait_for(lambda: not shell.busy, 120, "the answer on the new CPU", app)
            await pilot.pause()
            answer = shell.conversation.messages(AnswerMessage)[-1].text
            assert "biscuit" in answer.lower()
            footnotes = [line for line in shown(shell) if "tok/s" in line]
            assert "tiny" in footnotes[0] and "qwen2.5-coder-0.5b-instruct-q4_k_m" in footnotes[-1]
            assert "model" in [c.header for c in ps(shell, []).columns]  # /ps shows it, from:
            assert kernel.ps()[0]["model"] == "qwen2.5-coder-0.5b-instruct-q4_k_m"
    finally:
        kernel.close()
