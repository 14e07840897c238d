"""One generation in progress: what happens to each token after the CPU computed its logits.

A ``Decoding`` owns the sampling chain of one request (greedy or seeded
sampling, an optional grammar), turns token bytes into text (UTF-8 split
across tokens is held until complete), holds back text that might be the
start of a stop string, and decides when the generation ends (end of
generation token, stop string, max tokens, context full, interrupt).

It does not evaluate tokens: the caller does, either one sequence at a time
(``LlamaCPU.stream``) or several sequences in one llama.cpp batch (the
scheduler's batched rounds). Both call ``next(idx)`` once the logits for
this generation are at batch index ``idx``; ``last`` is then the token the
caller must evaluate before the next call.
"""

from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from llmos.errors import ContextOverflow, UsageError
from llmos.kernel.sampling import LoopGuard, Sampling
from llmos.kernel.step import Generation, Step, StopText

if TYPE_CHECKING:
    from llmos.kernel.cpu import BatchingCPU


class Decoding:
    def __init__(self, cpu: BatchingCPU, tokens: Sequence[int], *, max_tokens: int = 512,
                 stop: Sequence[str] = (), temperature: float = 0.0, seed: int = 0,
                 grammar: str | None = None, lazy: str | None = None, top_n: int = 0,
                 result: Generation | None = None, cancel: threading.Event | None = None,
                 top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05,
                 repeat_penalty: float = 1.0, cuts: Sequence[int] = (), opened: int = 0) -> None:

        self.tokens = list(tokens)
        if not self.tokens:
            raise UsageError("empty prompt: there is nothing to generate from")
        if len(self.tokens) + 1 > cpu.n_ctx:
            raise ContextOverflow(
                f"the prompt is {len(self.tokens):,} tokens but the context window holds {cpu.n_ctx:,}; "
                "shorten it or raise --ctx"
            )
        self.cpu = cpu
        self.cuts = tuple(cuts)
        """Where the prompt's pages begin: the CPU reads it in chunks cut there (``chunk_bounds``)."""
        self.max_tokens = max(1, min(max_tokens, cpu.n_ctx - len(self.tokens)))
        self.stops = StopText(stop)
        """Holds back text that might begin a stop string."""
        self.top_n = top_n
        self.cancel = cancel
        self.result = result if result is not None else Generation()
        self.result.prompt_tokens = len(self.tokens)
        self.greedy = temperature <= 0 and not grammar and repeat_penalty == 1.0
        """The token is the first maximum of the logits, taken straight from them. Why not
        llama.cpp's greedy sampler: ``llama_sampler_sample`` first copies every candidate
        (~150k on Qwen's vocabulary) into a fresh array, 0.24 ms a token here, where an
        argmax over the logits takes 0.02 ms. Both pick the first maximum: same tokens."""
        sampling = Sampling(temperature, top_k, top_p, min_p, repeat_penalty)
        self.sampler = None if self.greedy else cpu.sampler(sampling, seed, grammar, lazy)
        opening = self.tokens[len(self.tokens) - opened:] if opened > 0 else []
        """The last ``opened`` prompt tokens begin the answer: text the caller already knows it
        must be (a forced call's opening, which names the device the kernel chose), read with
        the prompt in one chunk instead of decoded token by token (jump-forward decoding). The
        sampler takes them as drawn, so a grammar goes on from there; the answer's text
        begins with them."""
        for token in opening if self.sampler is not None else ():
            if not getattr(self.sampler, "allows", lambda _: True)(token):  # llama.cpp would abort
                raise UsageError(f"the answer's opening {cpu.detokenize(opening)!r} does not fit its grammar")
            self.sampler.accept(token)
        self._opening = b"".join(cpu.piece(t) for t in opening).decode("utf-8", errors="replace")
        self.loops = LoopGuard()
        """Stops a generation whose tail repeats one phrase (``kernel/sampling.py``)."""
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.started = time.perf_counter()
        self._t_first: float | None = None
        self.last: int | None = None
        """The token sampled last, which the caller evaluates before calling ``next`` again."""
        self.done = False

    def context(self) -> list[int]:
        """What the KV cache holds while ``last`` waits to be evaluated."""
        return self.tokens + self.result.tokens[:-1]

    def next(self, idx: int = -1) -> list[Step]:
        """Sample from the logits at batch index ``idx``; the steps to hand out (0 to 3)."""
        if not self._opening:
            return self._next(idx)
        opening, self._opening = self._opening, ""
        self.result.text += opening
        return [Step(self.tokens[-1], opening, None), *self._next(idx)]

    def _next(self, idx: int) -> list[Step]:
        result = self.result
        if self.cancel is not None and self.cancel.is_set():
            result.stop_reason = "interrupted"
            return self._finish()
        top = self.cpu.top(self.top_n, idx) if self.top_n else None
        if self.greedy:
            token = int(self.cpu.logits(idx).argmax())
        else:
            token = self.cpu.sample(self.sampler, idx)
        if self._t_first is None:
            self._t_first = time.perf_counter()
            result.first_token_s = self._t_first - self.started
        if self.cpu.is_eog(token):
            result.stop_reason = "eos"
            return self._finish()
        result.tokens.append(token)
        self.last = token
        ready, stopped = self.stops.feed(self._utf8.decode(self.cpu.piece(token)))
        result.text += ready
        steps = [Step(token, ready, top)] if ready or not stopped else []
        if stopped:
            result.stop_reason = "stop"
            return steps + self._finish()
        if ready and self.loops.looping(result.text):
            # The answer keeps one copy of the repeated phrase; what streamed past it was shown.
            result.text = result.text[:self.loops.cut]
            result.stop_reason = "loop"
            self.stops.rest()
            return steps + self._finish()
        if len(result.tokens) >= self.max_tokens or len(self.tokens) + len(result.tokens) + 1 >= self.cpu.n_ctx:
            result.stop_reason = "length"
            steps += self._finish()
        return steps

    def _finish(self) -> list[Step]:
        self.done = True
        rest = self.stops.rest() + self._utf8.decode(b"", final=True)
        if self._t_first is not None:
            self.result.decode_s = time.perf_counter() - self._t_first
        if not rest:
            return []
        self.result.text += rest
        return [Step(self.result.tokens[-1] if self.result.tokens else -1, rest, None)]
