"""A deterministic stand-in CPU, for tests about scheduling, paging or dispatch alone.

httpx keeps ``MockTransport`` beside its transport interface; this is the same
for :class:`~llmos.kernel.cpu.BatchingCPU`. It has no model: a token is one
character (its code point, offset past the special tokens), and the "next
token" is a pure function of everything the sequence holds (a rolling hash
picked into printable ASCII), so an answer depends only on its prompt and
the tokens before it, never on what else ran, exactly as greedy decoding of
the real model with canonical prompt blocks. KV state is the token list.

Given a ``script``, the fake plays a model the test describes instead: the
script maps the prompt (as text) to the whole answer, which is emitted verbatim
and then ends. Still a pure function of the sequence (the answer so far is what
follows the last generation prompt), so batching and resuming behave the same.
A test of dispatch uses it to be the worst model there is: one that writes
every call a planted document asks for.

What it cannot tell you: anything about answer quality, grammars (a script's
answer is the test's own, not sampled, so a grammar is accepted and not
applied), or the real KV bytes and batching speed. Tests of those load the
real model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence

from llmos.errors import ContextOverflow, UsageError
from llmos.kernel.cpu import BatchingCPU, Snapshot
from llmos.kernel.decode import Decoding
from llmos.kernel.step import Step

SPECIAL = ("<eos>", "<|im_start|>", "<|im_end|>")
"""Token ids 0.. are these; the rest are characters (code point + OFFSET)."""
OFFSET = len(SPECIAL)
EOS = 0
PRINTABLE = [ord(c) for c in "abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz.,"]


class FakeCPU(BatchingCPU):
    """See the module docstring. Without a script an answer never ends by itself: ``max_tokens``
    ends it."""

    max_batch = 7
    VOCAB = OFFSET + 128

    def __init__(self, *, n_ctx: int = 4096, name: str = "fake", delay: float = 0.0,
                 script: Callable[[str], str] | None = None) -> None:
        self.name, self.n_ctx = name, n_ctx
        self.script = script
        """prompt text -> the whole answer (see the module docstring); None: the rolling hash."""
        self._scripted: dict[tuple[int, ...], list[int]] = {}
        self._opening = self.tokenize(self.generation_prompt())
        self.delay = delay
        """Seconds each decode call takes (a batch costs one): time for others to arrive."""
        self.n_batch = 512
        self.load_s = 0.0
        self.seqs: dict[int, list[int]] = {0: []}
        """The tokens each KV sequence holds."""
        self._logits: dict[int, list[int]] = {}
        """batch index -> what the sequence held at that entry of the last decode."""
        self.decodes = 0
        """How many decode calls ran (a test can see batching happen)."""

    # -- tokens and template --------------------------------------------------------------

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        out, i = [], 0
        while i < len(text):
            for n, mark in enumerate(SPECIAL):
                if special and text.startswith(mark, i):
                    out.append(n)
                    i += len(mark)
                    break
            else:
                out.append(ord(text[i]) + OFFSET)
                i += 1
        return out

    def piece(self, token: int) -> bytes:
        return (SPECIAL[token] if token < OFFSET else chr(token - OFFSET)).encode("utf-8", "surrogatepass")

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def is_eog(self, token: int) -> bool:
        return token == EOS

    def format_message(self, role: str, text: str) -> str:
        return f"<|im_start|>{'user' if role == 'tool' else role}\n{text}<|im_end|>\n"

    def generation_prompt(self) -> str:
        return "<|im_start|>assistant\n"

    # -- "the model" ------------------------------------------------------------------------

    def _next(self, tokens: Sequence[int]) -> int:
        if self.script is not None:
            return self._next_scripted(tokens)
        h = 1469598103934665603  # FNV-1a over the whole sequence
        for t in tokens:
            h = ((h ^ t) * 1099511628211) & ((1 << 64) - 1)
        return PRINTABLE[h % len(PRINTABLE)] + OFFSET

    def _next_scripted(self, tokens: Sequence[int]) -> int:
        n = len(self._opening)
        start = next((i + n for i in range(len(tokens) - n, -1, -1) if list(tokens[i:i + n]) == self._opening), 0)
        prompt = tuple(tokens[:start])
        if prompt not in self._scripted:
            self._scripted[prompt] = self.tokenize(self.script(self.detokenize(prompt)), special=False)
        answer, said = self._scripted[prompt], list(tokens[start:])
        return answer[len(said)] if answer[:len(said)] == said and len(said) < len(answer) else EOS

    def logits(self, idx: int = -1):
        import numpy as np

        best = self._next(self._logits[idx])
        out = np.zeros(max(self.VOCAB, best + 1), dtype=np.float32)  # a script may write any character
        out[best] = 10.0
        return out

    def top(self, n: int, idx: int = -1) -> list[tuple[str, float]]:
        best = self.piece(self._next(self._logits[idx])).decode()
        return [(best, 1.0)] + [("", 0.0)] * (n - 1)

    def sampler(self, sampling, seed: int, grammar: str | None, lazy: str | None):
        if grammar and self.script is None:
            raise UsageError("the fake CPU takes no grammar (a test of grammars needs the real model)")
        return None  # sampling is greedy here: the fake has one likely token

    def sample(self, sampler, idx: int) -> int:
        return self._next(self._logits[idx])

    # -- the context --------------------------------------------------------------------------

    def _eval(self, seq: int, tokens: Sequence[int], idx: int) -> None:
        if self.delay and idx <= 0:
            time.sleep(self.delay)
        held = self.seqs.setdefault(seq, [])
        held.extend(tokens)
        if len(held) > self.n_ctx:
            raise ContextOverflow(f"the fake context holds {self.n_ctx} tokens")
        self._logits[idx] = list(held)

    def held_tokens(self) -> list[int]:
        return list(self.seqs.get(0, []))

    def snapshot(self) -> Snapshot:
        return self.seq_save(0, self.held_tokens(), ())

    def restore(self, snap: Snapshot) -> None:
        self.seqs[0] = list(json.loads(snap.data)) if snap.tokens else []

    def load_tokens(self, prompt: Sequence[int], generated: Sequence[int] = (), cuts: Sequence[int] = ()) -> int:
        want = list(prompt) + list(generated)
        same = self.seqs.get(0) == want
        self.seqs[0] = []
        self._eval(0, want, -1)
        self.decodes += 1
        return len(want) if same else 0

    def seq_save(self, seq: int, tokens: list[int], bounds: tuple[int, ...]) -> Snapshot:
        return Snapshot(json.dumps(self.seqs.get(seq, [])).encode(), list(tokens), bounds)

    def seq_load(self, seq: int, snap: Snapshot) -> None:
        self.seqs[seq] = list(json.loads(snap.data))

    def seq_clear(self, seq: int) -> None:
        self.seqs[seq] = []

    def seq_trim(self, seq: int, keep: int) -> None:
        self.seqs[seq] = self.seqs.get(seq, [])[:keep]

    def decode_batch(self, entries: list[tuple[int, int, int, bool]]) -> None:
        for i, (seq, token, pos, _) in enumerate(entries):
            self.seqs[seq] = self.seqs.get(seq, [])[:pos]
            self._eval(seq, [token], i)
        self.decodes += 1

    # -- generation ---------------------------------------------------------------------------

    def decoding(self, tokens: Sequence[int], **params) -> Decoding:
        return Decoding(self, tokens, **params)

    def stream(self, tokens, **params) -> Iterator[Step]:
        return self.run(self.decoding(tokens, **params))

    def run(self, d: Decoding) -> Iterator[Step]:
        held = self.seqs.get(0, [])
        reused = 0
        while reused < min(len(held), len(d.tokens) - 1) and held[reused] == d.tokens[reused]:
            reused += 1
        self.seqs[0] = held[:reused]
        self._eval(0, d.tokens[reused:], -1)
        self.decodes += 1
        d.result.reused_tokens = reused
        while True:
            yield from d.next(-1)
            if d.done:
                return
            self._eval(0, [d.last], -1)
            self.decodes += 1

    def resume(self, d: Decoding) -> Iterator[Step]:
        while not d.done:
            self._eval(0, [d.last], -1)
            self.decodes += 1
            yield from d.next(-1)

    def info(self) -> dict:
        return {"weights": {"name": self.name, "architecture": "fake"}, "runtime": {"engine": "llmos FakeCPU"}}
