"""Text that is safe to show on a terminal.

Model output, device output, file names, log lines and plugin metadata are
untrusted text, and a terminal obeys some of the characters in them: ESC
starts sequences that move the cursor, clear the screen, set the window
title (``ESC ] 0 ; ... BEL``), write the clipboard (OSC 52) or make a link;
the C1 characters U+0080-U+009F are single-character versions of the same
(U+009B is CSI); BEL rings, BS and a lone CR overwrite what was shown. Rich
and Textual pass ESC and C1 through untouched, so everything that puts such
text on a terminal goes through :func:`terminal_safe` first.

:func:`terminal_safe` maps each dangerous character to one visible
character, so the result has the same length (spans of a ``rich.text.Text``
stay where they were) and the user sees that something was there:

- C0 controls except ``\\n`` and ``\\t`` (a CR directly before a LF is kept:
  CRLF line ends are harmless), ESC included, become the Unicode control
  pictures U+2400 + code (ESC shows as ``␛``, BEL as ``␇``, NUL as ``␀``);
  DEL becomes ``␡``;
- C1 controls become U+FFFD (there are no control pictures for them);
- bidirectional embeddings, overrides and isolates (U+202A-U+202E,
  U+2066-U+2069) become U+FFFD. Why: they are no terminal escapes, but they
  reorder what follows them, so a file name ``report\\u202Efdp.exe`` shows as
  ``reportexe.pdf`` and a log line can show words that are not in it
  ("Trojan Source"). Right-to-left text needs none of them (the terminal's
  implicit bidi handles Arabic and Hebrew), and the marks U+200E/U+200F/U+061C
  are kept;
- lone surrogates (an undecodable file name read with ``surrogateescape``,
  or a ``\\ud800`` JSON escape) become U+FFFD: they cannot be written to a
  UTF-8 terminal at all and would raise ``UnicodeEncodeError``.

With ``newlines=False`` (a table cell, a log line, a one-line notice) a
newline becomes ``␤`` too, so a value cannot forge another line.

Where it is applied, and where not (the decision for piped output): text
that is *content* (the streamed answer of ``llmos run``, the output of
``llmos device call``, an app's output) is made safe only when the stream is
a terminal (:func:`for_stream`); piped into a file or another program it
stays byte for byte what the model or device produced, because a user who
pipes output wants the exact text, and no terminal interprets it there.
Status lines, tables, log lines and error messages are for people and are
always made safe. JSON output escapes what JSON allows to escape
(:func:`json_safe`), which changes no value. Stored pages and the journal
always keep the exact text; only what is displayed changes.

Stdlib only; no Rich, no Textual.
"""

from __future__ import annotations

import re
from typing import IO

_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]|\r(?!\n)")
_UNSAFE_LINE = re.compile("[\x00-\x08\x0a-\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]|\r")
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")

REPLACEMENT = "\ufffd"


def _picture(match: re.Match) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return REPLACEMENT


def terminal_safe(text: str, *, newlines: bool = True) -> str:
    """``text`` with every character a terminal would obey (or could not print) replaced by
    one visible character; same length. ``newlines=False``: a newline is replaced too.
    See the module docstring for what is replaced and why."""
    pattern = _UNSAFE if newlines else _UNSAFE_LINE
    return pattern.sub(_picture, text) if pattern.search(text) else text


def isatty(stream: IO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed, detached or not a file
        return False


def for_stream(text: str, stream: IO | None) -> str:
    """What to write of content ``text`` to ``stream``: made safe on a terminal, exact otherwise
    (piped output keeps the bytes; see the module docstring). Lone surrogates, which no UTF-8
    stream can take, are replaced either way."""
    if isatty(stream):
        return terminal_safe(text)
    return text if not _SURROGATE.search(text) else _SURROGATE.sub(REPLACEMENT, text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def json_safe(text: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``) with DEL, C1 controls, bidi
    controls, line/paragraph separators and lone surrogates written as ``\\uXXXX`` escapes.
    They can only occur inside JSON strings, so the document means exactly the same."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) if _JSON_UNSAFE.search(text) else text
