"""Issue 15's observations with the default model (Qwen2.5-Coder-0.5B), through the kernel, the
`llmos run` command and the shell: calls in the model's own format run, their result is used,
answers in words stay words, and a call never shows up as an answer."""

from __future__ import annotations

import asyncio
import json

import pytest

from llmos.kernel.kernel import Kernel
from llmos.memory.page import Origin
from tests.conftest import run_llmos

pytestmark = pytest.mark.default_model


@pytest.fixture(scope="module")
def qwen(shared_home):
    import os

    os.environ["LLMOS_HOME"] = str(shared_home)
    from llmos.kernel.boot import load_cpu

    return load_cpu(None, quiet=True)


def test_the_default_models_template_gives_the_native_format(qwen):
    from llmos.kernel import syscall, toolcall
    from llmos.devices.calc import CalcDevice

    assert qwen.tool_format.family == "hermes" and qwen.tool_format.result_role == "tool"
    section = qwen.tool_section(toolcall.tools_json(syscall.specs([CalcDevice()])))
    assert "<tools>" in section and '"required": ["expr"]' in section and "<tool_call>" in section
    assert qwen.format_message("tool", "42").startswith("<|im_start|>user\n<tool_response>")


def test_a_conversation_calls_when_it_should_and_answers_in_words_otherwise(qwen, tmp_path):
    """Observations 1, 2 and 3: the call runs (no JSON as text), the result is stated, later
    questions are answered in words, and no answer loops."""
    from llmos.apps.chat import CHAT_SYSTEM
    from llmos.devices.registry import Registry
    from llmos.kernel.sampling import GREEDY

    kernel = Kernel.in_folder(qwen, tmp_path, devices=Registry.from_config(), lock=False)
    calls = []
    kernel.listeners.append(lambda kind, data: calls.append(data) if kind == "device" else None)
    try:
        proc = kernel.spawn("chat", CHAT_SYSTEM, grants={"calc", "clock", "files", "search"})

        def ask(text):
            async def go():
                words, steps = "", []
                async for step in kernel.turn(proc, text, max_tokens=160, sampling=GREEDY):
                    words += "" if step.call else step.text
                    steps.append(step)
                return words, steps
            return asyncio.run(go())

        words, steps = ask("My name is Ada and my dog is called Biscuit. What is 1234*5678?")
        assert [c["device"] for c in calls] == ["calc"] and calls[0]["error"] is None
        assert "7006652" in words.replace(",", "") and '"name"' not in words and "{" not in words
        assert any(s.call for s in steps)
        answer = [p for p in proc.space.pages if p.origin is Origin.ASSISTANT][0]
        assert "<tool_call>" in answer.text  # the call is kept in the model's own canonical form
        for question, expected in (("What is the capital of France?", "Paris"), ("What is my dog called?", "Biscuit")):
            calls.clear()
            words, _ = ask(question)
            assert calls == [] and expected in words and "{" not in words
        words, _ = ask("Explain what a context window is in two sentences.")
        assert words.strip() and [p for p in proc.space.pages if p.source == "loop"] == []
    finally:
        kernel.close()


def test_a_statement_is_answered_in_words_not_with_an_invented_call(qwen, tmp_path):
    """Seen in the shell: "My dog is called Biscuit." got calc("2 + 3") and "The answer is 5.",
    which later answers imitated. A statement asks for nothing: no call is allowed, and the
    answer comes from the conversation without the tools section (``kernel/intent.py``)."""
    from llmos.apps.chat import CHAT_SYSTEM
    from llmos.devices.registry import Registry
    from llmos.kernel.sampling import GREEDY

    kernel = Kernel.in_folder(qwen, tmp_path, devices=Registry.from_config(), lock=False)
    calls = []
    kernel.listeners.append(lambda kind, data: calls.append(data) if kind == "device" else None)
    try:
        proc = kernel.spawn("chat", CHAT_SYSTEM, grants={"calc", "clock", "files", "search"})
        system = proc.space.pages[0]
        context = qwen.detokenize(kernel.plain_context(proc))
        assert "<tools>" in system.text and "<tools>" not in context and CHAT_SYSTEM in context
        for text in ("My dog is called Biscuit.", "I live in Lisbon.", "Our team has 12 people."):
            answer = kernel.ask(proc, text, max_tokens=60, sampling=GREEDY).text
            assert calls == [], (text, calls)
            assert answer.strip() and not any(m in answer for m in ("{", "<tool_call>", "JSON", "function")), answer
        words = kernel.ask(proc, "What is my dog called?", max_tokens=40, sampling=GREEDY).text
        assert "Biscuit" in words and "{" not in words
    finally:
        kernel.close()


def test_llmos_run_calls_calc_and_prints_only_the_words(shared_home):
    """Observation 4: the product is computed by calc, and stdout has no call syntax."""
    proc = run_llmos("run", "--devices", "calc", "--stats", "What is 1234*5678?", home=shared_home)
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert "7006652" in out.replace(",", "") and "<syscall>" not in out and '"arguments"' not in out
    stats = json.loads(proc.stderr.decode().strip().splitlines()[-1])
    assert [c["device"] for c in stats["calls"]] == ["calc"] and stats["calls"][0]["error"] is None
