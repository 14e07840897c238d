"""What a generation produces: a ``Step`` per token, and the ``Generation`` record it fills in.

Shared by every CPU (``kernel/cpu.py``, ``kernel/remote.py``), the decoder
(``kernel/decode.py``), the scheduler and the kernel, so it sits below all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Step:
    """One generated token."""

    token: int
    text: str
    """The text this token completes (may be "" while a UTF-8 character is split across tokens)."""
    top: list[tuple[str, float]] | None = None
    """The five most likely next tokens and their probabilities, when asked for."""
    blocked: str = ""
    """Not a token: the CPU cannot go on for now, and why (a remote CPU that stopped
    answering). The generation resumes by itself; the kernel shows the process BLOCKED."""
    call: bool = False
    """The text belongs to a device call the model wrote, not to the answer's words (the
    shell draws it as a call; ``llmos run`` leaves it out)."""


@dataclass
class Generation:
    """What a finished ``stream`` produced; filled in as it runs."""

    text: str = ""
    tokens: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    reused_tokens: int = 0
    """Prompt tokens whose KV state was already in the context (not re-read)."""
    stop_reason: str = ""
    """"eos", "stop", "length", "interrupted" or "loop" (stopped for repeating itself)."""
    prefill_s: float = 0.0
    first_token_s: float = 0.0
    decode_s: float = 0.0

    @property
    def tok_per_s(self) -> float:
        n = len(self.tokens) - 1
        return n / self.decode_s if n > 0 and self.decode_s > 0 else 0.0


class StopText:
    """Finds stop strings in streamed text, holding back what may be the start of one.

    ``feed`` returns the text that is safe to hand out and whether a stop string was
    met (the text before it is all that is kept); ``rest`` is what is still held when
    the generation ends another way. Both CPUs (embedded and remote) stream through one.
    """

    def __init__(self, stops) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        self.pending += text
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            ready, self.pending = self.pending[:min(hits)], ""
            return ready, True
        cut = len(self.pending) - self._partial()
        ready, self.pending = self.pending[:cut], self.pending[cut:]
        return ready, False

    def _partial(self) -> int:
        """The length of the longest end of the pending text that begins a stop string: all
        that must wait for the next piece. (Holding back a stop string's whole length instead
        kept every answer 13 characters behind once ``[llmos kernel]`` was a stop string.)"""
        longest = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(self.pending)), longest, -1):
                if self.pending.endswith(stop[:n]):
                    longest = n
                    break
        return longest

    def rest(self) -> str:
        rest, self.pending = self.pending, ""
        return rest
