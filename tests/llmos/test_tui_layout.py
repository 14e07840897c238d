"""The main screen as text: which panels show, and that nothing overflows, at 80x24 and 120x40.

A pixel snapshot would change with every host (CPU %, RSS, tokens/s are on
screen), so these compare the rendered screen's text against the facts that
must hold on any machine.
"""

from __future__ import annotations

import pytest
from rich.cells import cell_len

from llmos.tui.app import LlmosApp
from tests.llmos.test_tui import answer, kernel  # noqa: F401  (kernel is a fixture)

def screen_lines(app) -> list[str]:
    """What the terminal shows, one string per row."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def assert_no_overflow(app, size: tuple[int, int]) -> str:
    lines = screen_lines(app)
    assert len(lines) == size[1]
    assert all(cell_len(line) == size[0] for line in lines)
    assert app.shell.conversation.max_scroll_x == 0, "the conversation never scrolls sideways"
    assert app.screen.query_one("#side").max_scroll_x == 0, "the side panels never scroll sideways"
    text = "\n".join(lines)
    assert "tok resident" in text, "the RAM panel's lines fit its width"
    return text


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_main_screen_shows_every_panel_and_nothing_overflows(kernel, size):  # noqa: F811
    app = LlmosApp(kernel=kernel, max_tokens=40)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        pid = app.shell.proc.pid
        text = assert_no_overflow(app, size)
        for title in (f"RAM · pid {pid} · 1 page", "Processes · 1 alive", "CPU · tiny", "Disk", "Devices"):
            assert title in text, title
        assert f"pid {pid} chat" in text, "the input line names the process it talks to"
        assert "Ask anything" in text
        assert "Interrupt" in text and "Help" in text, "the footer lists the keys"
        left = app.shell.conversation.region
        side = app.screen.query_one("#side").region
        assert left.right <= side.x and side.right == size[0]
        # After an answer streamed in, with the CPU trace full, still nothing overflows.
        await answer(pilot, "Name three colours.")
        await pilot.pause()
        text = assert_no_overflow(app, size)
        assert f"RAM · pid {pid} · 3 pages" in text
        assert "next-word prediction (top 5)" in text
        assert "%" in text.split("next-word prediction (top 5)")[1], "the trace shows probabilities"
