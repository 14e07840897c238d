"""Stop strings in streamed text (``kernel/step.py``): what is handed out, and when."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from llmos.kernel.step import StopText

STOPS = ["<untrusted", "[llmos kernel]", "</s>", "ab"]
PIECES = st.sampled_from(["a", "b", "<", "un", "trusted", "[llmos", " kernel]", "x", " ", "</", "s>", "é"])


@given(pieces=st.lists(PIECES, max_size=14), sizes=st.lists(st.integers(1, 5), min_size=14, max_size=14))
def test_the_text_handed_out_is_the_text_before_the_first_stop_string(pieces, sizes):
    text = "".join(pieces)
    held, out, at, stopped = StopText(STOPS), "", 0, False
    for size in sizes:
        if at >= len(text):
            break
        ready, stopped = held.feed(text[at:at + size])
        out, at = out + ready, at + size
        if stopped:
            break
    if not stopped:
        ready, _ = held.feed(text[at:])
        out += ready + held.rest()
    hits = [i for i in (text.find(s) for s in STOPS) if i >= 0]
    assert out == (text[:min(hits)] if hits else text)


def test_only_what_may_begin_a_stop_string_waits():
    held = StopText(STOPS)
    assert held.feed("Hello there") == ("Hello there", False)  # nothing waits behind prose
    assert held.feed(", see [llm") == (", see ", False)  # "[llm" may begin "[llmos kernel]"
    assert held.feed("s]") == ("[llms]", False)
    assert held.feed(" the end <untr") == (" the end ", False)
    assert held.feed("usted file>") == ("", True)
