"""The shell, driven through Textual's pilot on the real tiny model and a real kernel.

Each test builds its own Kernel (``close()`` stops its scheduler thread) on the
session's tiny CPU, with the journal in the test's LLMOS_HOME. Set
LLMOS_SCREENSHOTS=docs/screenshots to refresh the committed screenshot.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import statistics
import time
from pathlib import Path

import pytest
from textual import events

from llmos.kernel.kernel import Kernel
from llmos.tui.app import LlmosApp
from llmos.tui.chat import AnswerMessage, SystemMessage
from llmos.tui.help import HelpScreen
from llmos.tui.panels import ProcPanel
from llmos.tui.ram import RamPanel

LONG = "Write a long story about a dragon who learns to bake bread, with many details."


@pytest.fixture
def kernel(tiny_cpu):
    k = Kernel(tiny_cpu, lock=False)
    yield k
    k.close()


async def wait_for(predicate, timeout: float = 30.0, what: str = "condition", app=None) -> None:
    """Poll without pilot.pause(): pause() waits for the process to be idle, which it
    never is while the model generates. With ``app``, a timeout says what the shell was
    doing (a wait that times out on another machine is otherwise a riddle)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            state = f"; {shell_state(app)}" if app is not None else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{state}")
        await asyncio.sleep(0.02)


def shell_state(app) -> str:
    """The shell's state in one line: the screen on top, what keeps it busy, each process's
    state, the answer so far, and the journal's last lines."""
    shell = app.shell
    procs = ", ".join(f"{p.pid} {p.app} {p.state.value}" for p in shell.kernel.procs.values())
    answers = [m.text for m in shell.conversation.messages(AnswerMessage)]
    logs = [line["message"] for line in shell.kernel.journal.dmesg(5)]
    return (f"screen {type(app.screen).__name__}, generating {shell.generating}, handling {shell.handling}, "
            f"background {list(shell.background)}; procs: {procs}; last answer {answers[-1:]!r}; dmesg {logs!r}")


async def send(pilot, text: str) -> None:
    pilot.app.shell.prompt.load_text(text)
    await pilot.press("enter")


async def answer(pilot, text: str, timeout: float = 60.0) -> AnswerMessage:
    await send(pilot, text)
    shell = pilot.app.shell
    await wait_for(lambda: not shell.generating, timeout, "the answer")
    return shell.conversation.messages(AnswerMessage)[-1]


async def test_answer_streams_in_and_the_panels_follow(kernel):
    app = LlmosApp(kernel=kernel, max_tokens=48)
    async with app.run_test(size=(120, 36)) as pilot:
        shell = app.shell
        ram = app.screen.query_one(RamPanel)
        assert ram.cells() == ["▣"]  # the pinned system prompt
        await pilot.press(*"What is the capital of France?")
        assert shell.prompt.text == "What is the capital of France?"
        await pilot.press("enter")
        await wait_for(lambda: not shell.generating, 60, "the answer")
        await pilot.pause()
        reply = shell.conversation.messages(AnswerMessage)[-1]
        assert "Paris" in reply.text
        assert shell.prompt.text == ""
        # One cell per page, and the turn added the question and the answer.
        assert len(ram.cells()) == len(shell.proc.space.pages) == 3
        table = app.screen.query_one(ProcPanel)
        assert table.row_count == 1
        assert str(table.get_row(str(shell.proc.pid))[0]) == str(shell.proc.pid)
        assert str(table.get_row(str(shell.proc.pid))[2]) == "SLEEPING"
        assert app.screen.query_one("#cpu").trace, "the CPU panel keeps the token trace"
        assert all(len(step.top) == 5 for step in app.screen.query_one("#cpu").trace if step.top)
        svg = app.export_screenshot(title="llmos")
        assert "Paris" in svg
        target = os.environ.get("LLMOS_SCREENSHOTS")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            (Path(target) / "main.svg").write_text(svg, encoding="utf-8")


async def test_the_app_boots_its_own_cpu_and_kernel():
    app = LlmosApp(model="tiny", ctx=1024)
    async with app.run_test() as pilot:
        await wait_for(lambda: app.shell is not None and app.screen is app.shell, 60, "the boot")
        await pilot.pause()
        assert app.kernel.cpu.n_ctx == 1024
        assert app.shell.proc.app == "chat" and app.shell.proc.alive
        assert "llmos" in app.shell.conversation.transcript()
        await pilot.press("ctrl+q")
    app.close_kernel()
    assert app.kernel is None and app.boot_error is None


async def test_a_model_that_cannot_load_ends_the_app_with_its_error(tmp_path):
    import struct

    from llmos.errors import ModelError

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 5, 2) + bytes(64))  # a header, no tensors
    app = LlmosApp(model=str(bad), ctx=1024)
    async with app.run_test():
        await wait_for(lambda: not app.is_running, 30, "the app to give up")
    assert isinstance(app.boot_error, ModelError)
    assert app.return_code == 1


async def test_every_panel_fits_at_80x24(kernel):
    app = LlmosApp(kernel=kernel)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen.region
        for selector in ("#conversation", "#prompt", "#ram", "#procs", "#cpu", "#disk", "#devices"):
            region = app.screen.query_one(selector).region
            assert region.area > 0 and screen.contains_region(region), selector
        assert app.screen.query_one("#conversation").region.width >= 40


async def test_slash_commands_write_to_the_conversation(kernel):
    app = LlmosApp(kernel=kernel)
    async with app.run_test(size=(100, 30)) as pilot:
        shell = app.shell
        pid = shell.proc.pid

        async def run(line: str) -> SystemMessage:
            await send(pilot, line)
            await pilot.pause()
            return shell.conversation.messages(SystemMessage)[-1]

        out = await run("/ps")
        assert "chat" in out.plain and "SLEEPING" in out.plain
        out = await run("/free")
        assert "system" in out.plain and "/" in out.plain
        out = await run("/help")
        assert "/kill PID" in out.plain and "/dmesg" in out.plain
        out = await run("/dmesg")
        assert f"spawn pid {pid}" in out.plain
        folder = kernel.journal.path.parent / "notes"
        folder.mkdir()
        (folder / "a.md").write_text("# Notes\nThe boat is called Marigold.\n")
        await send(pilot, f"/mount {folder}")
        for _ in range(200):
            await pilot.pause(0.05)
            out = shell.conversation.messages(SystemMessage)[-1]
            if "mounted" in out.plain:
                break
        assert "1 files indexed" in out.plain
        await send(pilot, "/df")
        for _ in range(200):
            await pilot.pause(0.05)
            out = shell.conversation.messages(SystemMessage)[-1]
            if "records" in out.plain:
                break
        assert "files" in out.plain
        out = await run("/devices")
        assert "this kernel has no device table" in out.plain
        out = await run("/nice 999 3")
        assert out.has_class("error") and "no running process" in out.plain
        out = await run(f"/nice {pid} 3")
        assert shell.proc.priority == 3
        out = await run("/bogus")
        assert out.has_class("error") and "/help" in out.plain
        out = await run(f"/kill {pid}")
        assert kernel.procs[pid].state.value == "ZOMBIE"
        assert shell.proc.pid != pid and shell.proc.alive, "the shell gets a new chat process"
        await send(pilot, "/clear")
        await pilot.pause()
        assert shell.conversation.messages() == []
        await send(pilot, "/quit")
        await wait_for(lambda: not app.is_running, 5, "the app to quit")


async def test_input_has_history_and_multiline(kernel):
    app = LlmosApp(kernel=kernel)
    async with app.run_test() as pilot:
        prompt = app.shell.prompt
        await send(pilot, "/ps")
        await send(pilot, "/free")
        await pilot.press("up")
        assert prompt.text == "/free"
        await pilot.press("up")
        assert prompt.text == "/ps"
        await pilot.press("down", "down")
        assert prompt.text == ""
        await pilot.press("a", "ctrl+j", "b")
        assert prompt.text == "a\nb"


async def test_typing_stays_responsive_while_the_model_generates(kernel):
    app = LlmosApp(kernel=kernel, max_tokens=400)
    async with app.run_test(size=(100, 30)) as pilot:
        shell = app.shell
        frames: list[tuple[float, str]] = []
        display = app._display

        def spy(screen, renderable):
            # Every frame the compositor hands to the terminal, with the input it shows.
            if renderable is not None:
                frames.append((time.monotonic(), shell.prompt.text))
            display(screen, renderable)

        app._display = spy
        await send(pilot, LONG)
        reply = shell.conversation.messages(AnswerMessage)[-1]
        await wait_for(lambda: len(reply.text) > 20, 60, "generation to start")
        latencies = []
        typed = ""
        for ch in "thequickbrownfoxjumps":
            typed += ch
            sent = time.monotonic()
            app.post_message(events.Key(ch, ch))
            await wait_for(lambda: any(text == typed for _, text in frames), 5, "a frame showing the key")
            latencies.append(next(t for t, text in frames if text == typed) - sent)
            await asyncio.sleep(0.03)
        assert shell.generating, "the measurement must overlap generation"
        p95 = statistics.quantiles(latencies, n=20)[-1]
        print(f"\nkeypress-to-frame while generating: median {statistics.median(latencies) * 1000:.1f} ms, "
              f"p95 {p95 * 1000:.1f} ms over {len(latencies)} keys")
        assert p95 < 0.5
        await pilot.press("escape")  # Esc interrupts too
        await wait_for(lambda: not shell.generating, 10, "the interrupt")
        assert reply.text and len(shell.proc.space.pages) == 3


async def test_ctrl_c_interrupts_generation_and_twice_quits_when_idle(kernel):
    app = LlmosApp(kernel=kernel, max_tokens=400)
    async with app.run_test() as pilot:
        shell = app.shell
        await send(pilot, LONG)
        reply = shell.conversation.messages(AnswerMessage)[-1]
        await wait_for(lambda: len(reply.text) > 0, 60, "generation to start")
        await send(pilot, "A second question while the first is answered")
        assert shell.prompt.text.startswith("A second question"), "input sent while busy is kept"
        assert len(shell.conversation.messages(AnswerMessage)) == 1
        await pilot.press("ctrl+c")
        started = time.monotonic()
        await wait_for(lambda: not shell.generating, 10, "the interrupt")
        assert time.monotonic() - started < 5
        assert shell.conversation.messages(SystemMessage)[-1].plain.startswith("interrupted")
        assert kernel.procs[shell.proc.pid].tokens_out < 400
        assert app.is_running
        await pilot.press("ctrl+c")
        assert app.is_running, "one Ctrl+C when idle only arms quitting"
        await pilot.press("ctrl+c")
        await wait_for(lambda: not app.is_running, 5, "the app to quit")
    assert app.return_code == 0


async def test_help_screen_theme_and_command_palette(kernel):
    app = LlmosApp(kernel=kernel)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.screen is app.shell
        dark = app.current_theme.dark
        await pilot.press("ctrl+t")
        assert app.current_theme.dark is not dark
        await pilot.press("ctrl+p")
        await pilot.press(*"free")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(lambda: app.screen is app.shell, 5, "the palette to close")
        await pilot.pause()
        assert "system" in app.shell.conversation.messages(SystemMessage)[-1].plain


@pytest.mark.skipif(not importlib.util.find_spec("llmos.memory.disk"),
                    reason="eviction writes to the disk (memory/disk.py), not there yet")
async def test_small_ram_evicts_and_the_page_map_shows_swapped_pages(tiny_cpu):
    kernel = Kernel(tiny_cpu, ram=160, lock=False)
    try:
        app = LlmosApp(kernel=kernel, max_tokens=80)
        async with app.run_test(size=(100, 30)) as pilot:
            shell = app.shell
            ram = app.screen.query_one(RamPanel)
            for question in ("Tell me about the history of bread.", "Tell me about dragons in stories.",
                             "Tell me about the moon and the tides.", "Tell me about rivers in Europe."):
                await answer(pilot, question, timeout=90)
                if shell.proc.space.evictions:
                    break
            await pilot.pause()
            assert shell.proc.space.evictions > 0
            assert "□" in ram.cells()
            assert ram.cells().count("□") == sum(1 for p in shell.proc.space.pages if not p.resident)
            assert "evicted" in shell.conversation.transcript()
    finally:
        kernel.close()
