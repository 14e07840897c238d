"""Pages: the unit of RAM.

A page is a run of tokens with one origin: the system prompt, one user
message, one assistant answer, one device output, one file excerpt, one
summary. Pages are what the pager counts, evicts to swap and faults back in;
the prompt the CPU sees is the resident pages of a process, in order.

This module holds only the record and its enums. Counting is done by the
owner of the tokenizer (see ``memory/tokens.py``), placement by ``ram.py``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import Enum


class Origin(str, Enum):
    """Where a page's text came from. Decides its chat role and its colour on the page map."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    DEVICE = "device"
    FILE = "file"
    SUMMARY = "summary"
    KERNEL = "kernel"  # notes from the OS itself: memory pressure, errors

    @property
    def role(self) -> str:
        """The chat-template role a page of this origin is rendered with. Device output is a
        tool result: the CPU renders it as its template expects one (``tool`` for Qwen, a user
        message for a template without tools)."""
        if self is Origin.DEVICE:
            return "tool"
        if self is Origin.USER or self is Origin.FILE:
            return "user"
        if self is Origin.ASSISTANT:
            return "assistant"
        return "system"


class Trust(str, Enum):
    """Whether the page's text may carry instructions. Device and file text never may."""

    TRUSTED = "trusted"
    UNTRUSTED = "untrusted"


UNTRUSTED_ORIGINS = frozenset({Origin.DEVICE, Origin.FILE})
TURN_ORIGINS = (Origin.USER, Origin.ASSISTANT)
"""The conversation's turns: what the user said and what the model answered (not the system
prompt, kernel notes, device output or file excerpts)."""


def part_source(source: str, part: int, parts: int) -> str:
    """The source of part ``part`` (from 1) of ``parts`` of a long input cut into pages."""
    return f"{source} part {part}/{parts}"


def later_part(source: str) -> bool:
    """Whether a page is the second or a later part of a long input (``part_source``): it goes
    on with the part before it, it does not answer it."""
    head, _, count = source.rpartition(" part ")
    part, _, parts = count.partition("/")
    return bool(head) and part.isdigit() and parts.isdigit() and int(part) > 1


def new_page_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass
class Page:
    """One page of a process's address space."""

    pid: int
    origin: Origin
    text: str
    id: str = field(default_factory=new_page_id)
    seq: int = 0
    """Position in the address space: pages render in ``seq`` order."""
    pinned: bool = False
    """Pinned pages (the system prompt) never leave RAM."""
    trust: Trust = Trust.TRUSTED
    source: str = ""
    """Where the text came from: a file and line range, a device call, a swapped page id."""
    resident: bool = True
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    """Monotonic time of last use; the LRU key."""
    tokens: list[int] | None = None
    """The page's rendered token ids while it is resident (None once swapped out)."""
    n_tokens: int = 0
    """Exact count of the page's rendered tokens (chat-template framing included)."""
    recalled: bool = False
    """The page has been paged back in from disk at least once. A recalled user message of an
    earlier day is rendered with the day it was said (``ram.render``), so "when did I ..." has
    an answer; a page that never left RAM is rendered as it was first read."""
    vector: object = field(default=None, repr=False, compare=False)
    """The page's embedding once computed (not journalled; swap reuses it on eviction)."""

    def __post_init__(self) -> None:
        self.origin = Origin(self.origin)
        self.trust = Trust(self.trust)
        if self.origin in UNTRUSTED_ORIGINS:
            self.trust = Trust.UNTRUSTED

    def touch(self) -> None:
        self.last_used = time.monotonic()
