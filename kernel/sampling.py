"""How the CPU picks each next token, and how a generation that loops is caught.

Greedy decoding (temperature 0) is deterministic, which the tests rely on,
but small models run greedily fall into loops: the same clause until max
tokens. Their authors ship the sampling they are meant to be run with
(``generation_config.json``); ``recommended(cpu)`` returns it for the models
llmos knows and llama.cpp's usual defaults for the rest. The seed makes a
sampled answer reproducible on one machine.

Whatever the sampling, :class:`LoopGuard` watches the text as it streams and
stops a generation whose tail is one phrase repeated: the answer ends with
``stop_reason == "loop"`` and keeps a single copy of the phrase.

What this module leaves out: the sampler chain itself (``LlamaCPU.sampler``,
or the server's own for a remote CPU).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Sampling:
    """The sampling parameters of one generation; ``temperature <= 0`` is greedy."""

    temperature: float = 0.0
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    """llama.cpp's repetition penalty over the last ``REPEAT_WINDOW`` tokens (1.0: off)."""

    def params(self) -> dict:
        return asdict(self)


GREEDY = Sampling()

REPEAT_WINDOW = 64
"""Tokens the repetition penalty looks back over (llama.cpp's default)."""

RECOMMENDED = (
    # Qwen2.5(-Coder) instruct models: generation_config.json of the Qwen2.5-Coder releases.
    ("qwen", Sampling(temperature=0.7, top_k=20, top_p=0.8, min_p=0.0, repeat_penalty=1.05)),
    # SmolLM2 instruct: the model card's example (temperature 0.2, top_p 0.9).
    ("smollm", Sampling(temperature=0.2, top_k=40, top_p=0.9, min_p=0.0, repeat_penalty=1.05)),
)
FALLBACK = Sampling(temperature=0.7, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.05)
"""llama.cpp's own defaults (llama-cli, llama-server) with a light repetition penalty."""


def recommended(cpu) -> Sampling:
    """The sampling a chat answer uses by default on ``cpu``: its authors' (by the model's name
    or architecture), with the keys the user set for this model (``[models.NAME]`` in
    config.toml, ``cpu.sampling_override``) in their place."""
    override = getattr(cpu, "sampling_override", None)
    base = _authors(cpu)
    return Sampling(**{**base.params(), **override}) if override else base


def _authors(cpu) -> Sampling:
    names = [str(getattr(cpu, "name", ""))]
    try:
        weights = cpu.info().get("weights", {})
        names += [str(weights.get("name", "")), str(weights.get("architecture", ""))]
    except Exception:  # a remote CPU that is down: its name still tells
        pass
    key = " ".join(names).lower()
    for needle, sampling in RECOMMENDED:
        if needle in key:
            return sampling
    return FALLBACK


def choose(cpu, temperature: float | None) -> Sampling:
    """The chat default (``temperature is None``), or the model's sampling at another
    temperature; 0 is greedy."""
    if temperature is not None and temperature <= 0:
        return GREEDY
    base = recommended(cpu)
    if temperature is None:
        return base
    return Sampling(**{**base.params(), "temperature": float(temperature)})


# -- loops ---------------------------------------------------------------------------------

MIN_UNIT = 8
"""Characters the repeated phrase must have (a table rule ``|---|---|`` repeats shorter units)."""
MIN_REPEATS = 3
MIN_SPAN = 96
"""Characters the repeats must cover together before a generation counts as looping."""
WINDOW = 600
"""The tail of the text that is searched (bounded, so the check costs the same on every token)."""
EVERY = 24
"""Characters of new text between two checks."""

MAX_UNIT = 200
"""The longest phrase looked for (a repeated sentence or two)."""


def repeated_tail(text: str) -> tuple[int, str] | None:
    """Where a looping tail begins in ``text`` and the phrase it repeats, or None.

    A tail loops when it is periodic: one phrase of at least MIN_UNIT characters, with a
    letter or digit in it, repeated back to back at least MIN_REPEATS times and over
    MIN_SPAN characters or more. Periodicity is checked by comparing the tail with itself
    shifted by the phrase's length, so it does not matter where in a copy the text stops
    (lines of code that differ by a number are not repeats; a rule of dashes is no phrase)."""
    tail = text[-WINDOW:]
    for unit in range(MIN_UNIT, min(MAX_UNIT, len(tail) // MIN_REPEATS) + 1):
        span = max(MIN_SPAN, MIN_REPEATS * unit)
        if span > len(tail) or tail[-span:-unit] != tail[-span + unit:]:
            continue
        start = len(tail) - span
        while start > 0 and tail[start - 1] == tail[start - 1 + unit]:
            start -= 1
        phrase = tail[start:start + unit]
        if any(ch.isalnum() for ch in phrase):
            return len(text) - len(tail) + start, phrase
    return None


class LoopGuard:
    """Asked, as a generation's text grows, whether its tail repeats itself; it looks again
    only after EVERY new characters, so the check costs little per token."""

    def __init__(self) -> None:
        self._checked = 0
        self.cut: int | None = None
        """Where the text should end: after the first copy of the repeated phrase."""

    def looping(self, text: str) -> bool:
        """``text``: the whole generation so far."""
        if len(text) - self._checked < EVERY:
            return False
        self._checked = len(text)
        found = repeated_tail(text)
        if found is not None:
            start, unit = found
            self.cut = start + len(unit)
            return True
        return False
