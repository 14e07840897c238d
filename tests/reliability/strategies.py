"""Hostile text for the reliability tests: terminal escapes, controls, bidi overrides, lone
surrogates, markup, syscall tags, and arbitrary Unicode around them."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

ESCAPES = [
    "\x1b[2J\x1b[H",  # clear the screen, cursor home
    "\x1b]0;pwned\x07",  # set the window title
    "\x1b]52;c;cHduZWQ=\x07",  # OSC 52: write "pwned" to the clipboard
    "\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\",  # a hyperlink
    "\x1bP1$r\x1b\\",  # DCS
    "\x1b[31;1m",  # colour (harmless, still not the model's to set)
    "\x9b2J",  # C1 CSI
    "\x9d0;c1title\x9c",  # C1 OSC ... ST
    "\x85\x90\x9f",
]
CONTROLS = ["\x00", "\x07", "\x08", "\r", "\x7f", "\x0b", "\x0c", "\x1b", "\x1c\x1d\x1e"]
BIDI = ["\u202e", "\u202a", "\u2066", "\u2069", "\u200f"]
SURROGATES = ["\ud800", "\udcff", "\udfff"]
OTHER = ["[/x]", "[bold]", "<syscall>", "</syscall>", "\n", "\t", "\ufeff", "\u2028", "é", "漢字", "🙂", "%s{}"]
PIECES = ESCAPES + CONTROLS + BIDI + OTHER

any_char = st.characters(codec=None, exclude_categories=())
"""Every code point Python has, surrogates and controls included."""


def hostile_text(*, surrogates: bool = True, max_pieces: int = 12) -> st.SearchStrategy[str]:
    pieces = PIECES + (SURROGATES if surrogates else [])
    alphabet = any_char if surrogates else st.characters(codec="utf-8")
    return st.lists(st.one_of(st.sampled_from(pieces), st.text(alphabet, max_size=8)),
                    max_size=max_pieces).map("".join)


FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]|\r(?!\n)")
"""What must never reach a terminal: C0 controls but tab and newline (a CR only before a LF), ESC,
DEL, C1, bidi overrides and isolates, lone surrogates."""


def fast(examples: int) -> settings:
    """Few examples, no deadline (the real model is slow on a loaded machine), no example database."""
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
