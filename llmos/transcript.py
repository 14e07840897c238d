"""A process's conversation as the journal has it: ``llmos log PID`` and the shell's ``/export``.

The journal is the record, so this reads nothing else: every page in order,
with its origin and trust (pinned, swapped out, an answer cut short), the
device calls of the audit (who approved, what came back) and the kernel's
log lines about the process (evictions, page faults, an interrupted answer,
a restore), merged by time. A conversation whose llmos died mid-answer reads
as far as it had streamed, marked interrupted (``Journal.reap``).

Three renderings of one list of entries: ``text`` for a terminal (made safe:
see ``llmos/term.py``), ``markdown`` for a file to keep or share, and ``data``
for JSON. In Markdown, untrusted text (device output, file excerpts) is fenced
so it cannot restyle the document; messages stay Markdown, contained: their
headings sit below the transcript's own (a model cannot forge a ``## user``
turn), raw HTML is shown as text, and images become plain links, so opening the
file in a viewer fetches nothing a model chose (a known way to leak a
conversation through an image URL).
"""

from __future__ import annotations

import re
import time

from llmos.memory.journal import Journal, no_such_process
from llmos.term import terminal_safe

MARKS = {"interrupted": "interrupted", "loop": "stopped: it repeated itself"}
"""Page sources that say how an answer ended, and how the transcript says it."""


def data(journal: Journal, pid: int) -> dict:
    """{"process": its ps row, "entries": pages, device calls and log lines in order}."""
    rec = journal.process(pid)
    if rec is None:
        raise no_such_process(pid)
    pages = [{"kind": "page", "time": p.created, "seq": p.seq, "id": p.id, "origin": p.origin.value,
              "trust": p.trust.value, "pinned": p.pinned, "resident": p.resident, "source": p.source,
              "n_tokens": p.n_tokens, "ended": MARKS.get(p.source, ""), "text": p.text}
             for p in journal.pages(pid)]
    events = [{"kind": "log", "time": r["time"], "level": r["level"], "message": r["message"]}
              for r in journal.dmesg(1_000_000, pid=pid)]
    events += [{"kind": "device", **{k: v for k, v in r.items() if k not in ("pid", "who")}}
               for r in journal.audit_log(1_000_000, pid=pid)]
    events.sort(key=lambda e: e["time"])
    return {"process": rec.row(), "entries": _merge(pages, events)}


def _merge(pages: list[dict], events: list[dict]) -> list[dict]:
    """Pages in their order in the address space; each event before the first page made after it."""
    out, i = [], 0
    for page in pages:
        while i < len(events) and events[i]["time"] <= page["time"]:
            out.append(events[i])
            i += 1
        out.append(page)
    return out + events[i:]


def state_label(proc: dict, *, why: bool = False) -> str:
    """A process row's state as people read it: ``SLEEPING, interrupted`` when its last answer
    was cut short; ``why``: and what it was doing then (``... while running``)."""
    if not proc.get("interrupted"):
        return proc["state"]
    doing = proc.get("interrupted_while") if why else ""
    return f"{proc['state']}, interrupted" + (f" while {doing}" if doing else "")


def _header(proc: dict) -> list[str]:
    state = state_label(proc, why=True)
    counts = (f"{proc.get('resident_pages', 0)} pages in RAM, {proc.get('swapped_pages', 0)} swapped; "
              f"{proc.get('tokens_in', 0)} tokens in, {proc.get('tokens_out', 0)} out")
    return [f"pid {proc['pid']} · {proc['app']} · {state}", counts]


def _page_label(e: dict) -> str:
    parts = [e["origin"]]
    if e["pinned"]:
        parts.append("pinned")
    if e["trust"] == "untrusted":
        parts.append("untrusted")
    if e["source"] and e["source"] not in MARKS:
        parts.append(e["source"])
    if not e["resident"]:
        parts.append("swapped out")
    if e["ended"]:
        parts.append(e["ended"])
    return " · ".join(parts)


def _device_line(e: dict) -> str:
    import json

    args = json.dumps(e["args"], ensure_ascii=False)
    args = args if len(args) <= 160 else args[:157] + "..."
    outcome = f"failed: {e['error']}" if e["error"] else f"{e['result_bytes']} bytes"
    return (f"device {e['device']} {args} → {outcome} in {e['duration_s']:.3f} s, "
            f"approved by {e['approved_by'] or 'nobody'}")


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def text(log: dict) -> str:
    """For a terminal: every value made safe to show (no escapes obeyed, no forged lines)."""
    lines = [terminal_safe(h, newlines=False) for h in _header(log["process"])]
    for e in log["entries"]:
        if e["kind"] == "page":
            lines += ["", terminal_safe(f"─── {_page_label(e)} ───", newlines=False), terminal_safe(e["text"])]
        elif e["kind"] == "device":
            lines.append(terminal_safe(f"  ⚙ {_clock(e['time'])} {_device_line(e)}", newlines=False))
        else:
            lines.append(terminal_safe(f"  · {_clock(e['time'])} {e['message']}", newlines=False))
    return "\n".join(lines) + "\n"


def markdown(log: dict) -> str:
    """For a file: the conversation as Markdown, its machinery as quoted lines."""
    head = _header(log["process"])
    lines = [f"# llmos {_inline(head[0])}", "", f"*{_inline(head[1])}*"]
    for e in log["entries"]:
        if e["kind"] == "page":
            lines += ["", f"## {_inline(_page_label(e))}", ""]
            trusted = e["trust"] == "trusted" and e["origin"] in ("user", "assistant")
            lines.append(_contained(e["text"]) if trusted else _fenced(e["text"]))
        elif e["kind"] == "device":
            lines += ["", f"> ⚙ {_clock(e['time'])} {_inline(_device_line(e))}"]
        else:
            lines += ["", f"> · {_clock(e['time'])} {_inline(e['message'])}"]
    return "\n".join(lines) + "\n"


def _inline(value: str) -> str:
    """One line of Markdown that shows ``value`` as written (no markup, no line breaks)."""
    value = " ".join(str(value).split())
    return re.sub(r"([\\`*_\[\]<>#|~])", r"\\\1", value)


_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+[^`]*`+)")
_HEADING = re.compile(r"^(\s{0,3})(#{1,6})(?=\s|$)")


def _contained(body: str) -> str:
    """A message's Markdown, kept, but unable to break out of its place (module docstring).
    Code (fenced blocks) is left exactly as written."""
    out, fence = [], ""
    for line in body.split("\n"):
        opener = _FENCE.match(line)
        if fence:
            if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
                fence = ""
            out.append(line)
            continue
        if opener:
            fence = opener.group(1)
            out.append(line)
            continue
        line = _HEADING.sub(lambda m: m.group(1) + "#" * min(6, len(m.group(2)) + 2), line)
        parts = _CODE_SPAN.split(line)  # odd parts are `code spans`: shown as written already
        out.append("".join(p if i % 2 else p.replace("<", "&lt;").replace("![", "!\\[")
                           for i, p in enumerate(parts)))
    return "\n".join(out)


def _fenced(body: str) -> str:
    """``body`` in a fence longer than any run of backticks inside it (CommonMark)."""
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{body}\n{fence}"
