"""The CPU: a language model that turns a token stream into the next token.

``CPU`` is the interface the kernel schedules onto; ``LlamaCPU`` runs a GGUF
in-process with llama-cpp-python. The interface is deliberately small:

- ``tokenize`` / ``detokenize`` (exact: detokenize(tokenize(s)) == s),
- ``format_message(role, text)``: one message rendered with the model's own
  chat template, so a prompt is the concatenation of its pages' tokens and
  its token count is exact by construction,
- ``stream(tokens, ...)``: generate, one ``Step`` per token, with stop
  strings, max tokens, temperature, seed, an optional GBNF grammar, and the
  top-5 next-token candidates when asked (the CPU panel's trace).

``stream`` is a plain iterator and runs on the caller's thread; ``astream``
runs it on the CPU's own worker thread and hands tokens to an asyncio loop,
so the loop (and the UI) never waits on the model. A llama.cpp context is not
thread-safe: every call that touches the context goes through the worker.
Under a kernel, that one thread is the scheduler's: a second thread decoding
in the same process would also cost speed (README, "A note on threads").

What this module leaves out: scheduling, paging, KV snapshots (kernel/sched.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from llmos.errors import ModelError, UsageError
from llmos.kernel import toolcall
from llmos.kernel.decode import Decoding


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
class Snapshot:
    """A process's saved CPU state: the KV cache of one sequence and the tokens it holds."""

    data: bytes
    tokens: list[int]
    canonical: int = 0
    """How many leading tokens were evaluated in canonical prompt blocks (see ``LlamaCPU``)."""

    @property
    def nbytes(self) -> int:
        return len(self.data)


@dataclass
class Generation:
    """What a finished ``stream`` produced; filled in as it runs."""

    text: str = ""
    tokens: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    reused_tokens: int = 0
    """Prompt tokens whose KV state was already in the context (not re-read)."""
    stop_reason: str = ""
    """"eos", "stop", "length" or "interrupted"."""
    prefill_s: float = 0.0
    first_token_s: float = 0.0
    decode_s: float = 0.0

    @property
    def tok_per_s(self) -> float:
        n = len(self.tokens) - 1
        return n / self.decode_s if n > 0 and self.decode_s > 0 else 0.0


class CPU(ABC):
    """What the kernel needs from a model. See the module docstring."""

    name: str
    n_ctx: int
    can_snapshot: bool = False
    """Whether ``snapshot``/``restore`` save real KV state (a remote CPU cannot)."""
    max_batch: int = 1
    """How many processes the CPU can run in one batch (1: no batching)."""
    preemptible: bool = True
    """Whether a generation may be paused at a quantum's end for another process (a remote
    CPU runs each generation to its end: see ``kernel/remote.py``)."""

    @abstractmethod
    def tokenize(self, text: str, *, special: bool = True) -> list[int]: ...

    @abstractmethod
    def detokenize(self, tokens: Sequence[int]) -> str: ...

    @abstractmethod
    def format_message(self, role: str, text: str) -> str:
        """``text`` as one message of ``role`` in the model's chat template."""

    @abstractmethod
    def generation_prompt(self) -> str:
        """What the template puts before the assistant's answer."""

    @abstractmethod
    def stream(
        self,
        tokens: Sequence[int],
        *,
        max_tokens: int = 512,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        seed: int = 0,
        grammar: str | None = None,
        top_n: int = 0,
        result: Generation | None = None,
        cancel: threading.Event | None = None,
        lazy: str | None = None,
    ) -> Iterator[Step]:
        """Generate from ``tokens``. ``grammar`` (GBNF) constrains the output; with ``lazy``
        (a regex with one group) it applies only from where the pattern first matches."""

    @abstractmethod
    def info(self) -> dict: ...

    # -- saved CPU state (the context switch) ------------------------------------------

    def held_tokens(self) -> list[int]:
        """The tokens whose KV state the context holds now."""
        return []

    def snapshot(self) -> Snapshot | None:
        """The KV state of what the context holds now, or None where the CPU has none to save."""
        return None

    def restore(self, snap: Snapshot) -> None:
        """Put a snapshot's KV state back; afterwards ``held_tokens() == snap.tokens``."""

    def load_tokens(self, prompt: Sequence[int], generated: Sequence[int] = ()) -> int:
        """Make the context hold ``prompt + generated`` by evaluating what is not already
        there (the fallback when no snapshot exists). Returns how many were reused."""
        return 0

    def chat_tokens(self, messages: Sequence[tuple[str, str]]) -> list[int]:
        """The prompt tokens for (role, text) messages, ending with the generation prompt."""
        out: list[int] = []
        for role, text in messages:
            out += self.tokenize(self.format_message(role, text))
        out += self.tokenize(self.generation_prompt())
        return out

    def count(self, text: str) -> int:
        return len(self.tokenize(text, special=False))

    # -- running off the caller's thread -------------------------------------------------

    _executor: ThreadPoolExecutor | None = None

    def executor(self) -> ThreadPoolExecutor:
        """The one worker thread every model call runs on."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"cpu-{self.name}")
        return self._executor

    async def astream(self, tokens: Sequence[int], **kwargs) -> AsyncIterator[Step]:
        """``stream`` on the CPU worker thread; steps are delivered to the running loop.

        Leaving the ``async for`` early (or cancelling the task) sets the cancel
        event, so the worker stops within one token.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancel = kwargs.pop("cancel", None) or threading.Event()
        done = object()

        def work() -> None:
            try:
                for step in self.stream(tokens, cancel=cancel, **kwargs):
                    loop.call_soon_threadsafe(queue.put_nowait, step)
                loop.call_soon_threadsafe(queue.put_nowait, done)
            except BaseException as exc:  # handed to the awaiting side, raised there
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        future = loop.run_in_executor(self.executor(), work)
        try:
            while True:
                item = await queue.get()
                if item is done:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()
            await asyncio.shield(future)


# --------------------------------------------------------------------------------------
# llama-cpp-python


def _has_amx_build() -> bool:
    """True when the loaded ggml CPU backend was built with AMX kernels.

    Why this exists: on Intel CPUs with AMX, llama-cpp-python's default
    (native) build routes matrix products through the AMX "extra buffer type",
    which segfaults in ``ggml_backend_amx_mul_mat`` on any batch of two or more
    tokens (every real prompt). Loading the model with ``use_extra_bufts =
    False`` avoids that code path and keeps AVX-512. We switch extra buffer
    types off only where the build has AMX, because on other CPUs they carry
    useful weight repacking (AVX2, ARM) that we must not take away.
    """
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    return "AMX_INT8 = 1" in info or "AMX = 1" in info


_load_lock = threading.Lock()


@contextlib.contextmanager
def _llama_defaults(*, extra_bufts: bool, n_seq_max: int):
    """``Llama()`` takes model and context parameters from llama.cpp's defaults and has
    no arguments for the two we need, so swap the default functions for the duration
    of one load (under ``_load_lock``, so concurrent loads do not see each other's patch):

    - ``use_extra_bufts`` (model): off on AMX builds, see ``_has_amx_build``;
    - ``n_seq_max`` with a unified KV cache (context): room for several processes'
      sequences at once, so the scheduler can batch them; unified, so every sequence
      can use the whole context window.
    """
    from llama_cpp import llama as llama_module

    lib = llama_module.llama_cpp
    model_defaults, context_defaults = lib.llama_model_default_params, lib.llama_context_default_params

    def model_params():
        p = model_defaults()
        p.use_extra_bufts = extra_bufts
        return p

    def context_params():
        p = context_defaults()
        p.n_seq_max = n_seq_max
        p.kv_unified = True
        return p

    lib.llama_model_default_params, lib.llama_context_default_params = model_params, context_params
    try:
        yield
    finally:
        lib.llama_model_default_params, lib.llama_context_default_params = model_defaults, context_defaults


def default_threads() -> int:
    """Physical cores available to us: llama.cpp decodes slower with hyperthreads."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        available = os.cpu_count() or 1
    import psutil

    physical = psutil.cpu_count(logical=False) or available
    return max(1, min(available, physical))


FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
              10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
              16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 30: "BF16"}

MAX_SEQS = 8
"""Sequences in one context: sequence 0 for the running process, 1.. for batched rounds."""

BLOCK = 64
"""Prompts are evaluated in blocks at multiples of this position (see ``_eval_blocks``)."""

CHATML = ("<|im_start|>{role}\n{text}<|im_end|>\n", "<|im_start|>assistant\n")


def split_template(template: str, eos: str, bos: str) -> tuple:
    """A Jinja chat template cut into per-message pieces: ``(plain, render, sys_only,
    generation_prompt)`` as ``format_message`` uses them. Raises where the template is not
    additive (rendering [system, msg] does not start with rendering [system])."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    plain = Jinja2ChatFormatter(template, eos, bos, add_generation_prompt=False)
    gen = Jinja2ChatFormatter(template, eos, bos, add_generation_prompt=True)

    def render(fmt, msgs):
        return fmt(messages=[{"role": r, "content": c} for r, c in msgs]).prompt

    sys_only = render(plain, [("system", "S")])
    with_user = render(plain, [("system", "S"), ("user", "U")])
    with_gen = render(gen, [("system", "S"), ("user", "U")])
    if not (with_user.startswith(sys_only) and with_gen.startswith(with_user)):
        raise ValueError("template is not additive")
    return plain, render, sys_only, with_gen[len(with_user):]


class TemplatedCPU(CPU):
    """A CPU whose chat template is ``_fmt`` (from ``split_template``), or ChatML when it
    has none: the embedded CPU reads it from the GGUF, a remote one from the server."""

    _fmt = None
    tool_format = toolcall.SYSCALL
    """How this model calls tools: its template's own format, or llmos's ``<syscall>``."""

    def use_template(self, template: str | None, eos: str, bos: str, where: str) -> None:
        """Render messages with ``template`` (Jinja source); ChatML where there is none or
        it cannot be cut per message. ``template_source`` says which, and why."""
        self._fmt, self.tool_format = None, toolcall.SYSCALL
        if not template:
            self.template_source = f"chatml (the {where} has no chat template)"
            return
        try:
            self._fmt = split_template(template, eos, bos)
        except Exception as exc:  # a template we cannot split: say so, use ChatML
            self.template_source = f"chatml ({where} template unusable: {type(exc).__name__})"
            return
        self.template_source = where
        self.tool_format = toolcall.detect(template)

    def format_message(self, role: str, text: str) -> str:
        if role == "tool":  # a device's output, in the role this template gives tool results
            role = self.tool_format.result_role
        if self._fmt is None:
            return CHATML[0].format(role=role, text=text)
        plain, render, sys_only, _ = self._fmt
        if role == "system":
            return render(plain, [("system", text)])
        return render(plain, [("system", "S"), (role, text)])[len(sys_only):]

    def generation_prompt(self) -> str:
        return CHATML[1] if self._fmt is None else self._fmt[3]

    def tool_section(self, tools: list[dict]) -> str | None:
        """What the template adds to a system message when it is given ``tools``: the text
        that, appended to a system prompt, renders exactly as the template would render it
        with those tools. None where the template puts tools elsewhere (Llama 3.1 puts them
        in the first user message) or renders them in a way that is not an append."""
        if self._fmt is None or not self.tool_format.native:
            return None
        plain = self._fmt[0]
        mark = "\x00llmos-system\x00"
        system = [{"role": "system", "content": mark}]
        try:
            without = plain(messages=system).prompt
            with_tools = plain(messages=system, tools=tools).prompt
        except Exception:  # a template that refuses this list of tools
            return None
        head, found, tail = without.partition(mark)
        if not found or not with_tools.startswith(head + mark) or not with_tools.endswith(tail):
            return None
        section = with_tools[len(head) + len(mark):len(with_tools) - len(tail)]
        if not section.strip() or self.format_message("system", mark + section) != with_tools:
            return None
        return section


class LlamaCPU(TemplatedCPU):
    """A GGUF run in-process by llama-cpp-python."""

    can_snapshot = True
    max_batch = MAX_SEQS - 1

    def __init__(self, path: str | Path, *, n_ctx: int = 4096, n_threads: int | None = None,
                 name: str | None = None) -> None:
        import llama_cpp

        self.path = Path(path)
        self.name = name or self.path.stem
        self.n_threads = n_threads or default_threads()
        self.extra_bufts = not _has_amx_build()
        started = time.perf_counter()
        try:
            with _load_lock, _llama_defaults(extra_bufts=self.extra_bufts, n_seq_max=MAX_SEQS):
                self.llm = llama_cpp.Llama(
                    str(self.path), n_ctx=n_ctx, n_batch=512, n_threads=self.n_threads,
                    n_threads_batch=self.n_threads, verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            size = self.path.stat().st_size if self.path.exists() else 0
            raise ModelError(
                f"llama.cpp could not load {self.path} ({size:,} bytes): the file is truncated, "
                f"damaged or of an unsupported architecture ({exc})"
            ) from None
        self.load_s = time.perf_counter() - started
        self.n_ctx = self.llm.n_ctx()
        self._vocab = self.llm._model.vocab
        self._n_vocab = self.llm.n_vocab()
        # llama_get_logits_ith returning a plain address (llama-cpp-python's binding returns a
        # float pointer object); a prototype of our own leaves the shared binding untouched.
        self._logits_at = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32)(
            ctypes.cast(llama_cpp.llama_get_logits_ith, ctypes.c_void_p).value)
        self._logit_views: dict[int, object] = {}
        self._eog: dict[int, bool] = {}
        self._pieces: dict[int, bytes] = {}
        self._canonical = 0
        self._setup_template()

    # -- tokens ------------------------------------------------------------------------

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        if not text:
            return []
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def piece(self, token: int) -> bytes:
        """The exact bytes of one token (llama-cpp-python's own detokenize cuts
        pieces longer than 32 bytes, e.g. a newline and 40 spaces)."""
        cached = self._pieces.get(token)
        if cached is not None:
            return cached
        import llama_cpp

        size = 64
        while True:
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, size, 0, True)
            if n >= 0:
                break
            size = -n
        data = buf.raw[:n]
        self._pieces[token] = data
        return data

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def is_eog(self, token: int) -> bool:
        known = self._eog.get(token)
        if known is None:
            import llama_cpp

            known = self._eog[token] = bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))
        return known

    # -- chat template -----------------------------------------------------------------

    def _setup_template(self) -> None:
        """Derive per-message chunks from the model's Jinja chat template.

        A template renders a whole conversation; we need one message at a time
        so each page carries its own tokens. Render [system] and [system, msg]
        and take the difference; where that is not a clean prefix (an exotic
        template), fall back to ChatML.
        """
        template = self.llm.metadata.get("tokenizer.chat_template")
        eos = self.detokenize([self.llm.token_eos()]) if self.llm.token_eos() >= 0 else ""
        bos = self.detokenize([self.llm.token_bos()]) if self.llm.token_bos() >= 0 else ""
        self.use_template(template, eos, bos, "gguf")

    # -- generation --------------------------------------------------------------------

    def logits(self, idx: int = -1):
        """The logits at batch index ``idx`` of the last decode, as a numpy view (no copy).

        Views are kept by address: llama.cpp reuses its logits buffer from one decode to
        the next, and building a view costs more than the greedy argmax over it (it is
        on every token's path)."""
        address = self._logits_at(self.llm._ctx.ctx, idx)
        if not address:
            raise RuntimeError(f"llama.cpp has no logits at batch index {idx}")
        view = self._logit_views.get(address)
        if view is None:
            import numpy as np

            if len(self._logit_views) > 4 * MAX_SEQS:  # the buffer moved (it grew): start afresh
                self._logit_views.clear()
            view = np.ctypeslib.as_array((ctypes.c_float * self._n_vocab).from_address(address))
            self._logit_views[address] = view
        return view

    def _top(self, n: int, idx: int = -1) -> list[tuple[str, float]]:
        import numpy as np

        logits = self.logits(idx)
        idx = np.argpartition(logits, -n)[-n:]
        idx = idx[np.argsort(-logits[idx])]
        z = logits - logits.max()
        probs = np.exp(z[idx]) / np.exp(z).sum()
        return [(self.piece(int(i)).decode("utf-8", errors="replace"), float(p)) for i, p in zip(idx, probs)]

    def held_tokens(self) -> list[int]:
        return self.llm.input_ids[: self.llm.n_tokens].tolist()

    def snapshot(self) -> Snapshot:
        """Per-sequence state API (``llama_state_seq_get_data``): the KV of sequence 0 only,
        a few MB, where ``Llama.save_state`` would also copy a ~100 MB logits array."""
        import llama_cpp

        ctx = self.llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0)
        return Snapshot(bytes(memoryview(buf)[:written]), self.held_tokens(), self._canonical)

    def restore(self, snap: Snapshot) -> None:
        import llama_cpp

        self._truncate(0)
        if snap.tokens:
            src = (ctypes.c_uint8 * len(snap.data)).from_buffer_copy(snap.data)
            if llama_cpp.llama_state_seq_set_data(self.llm._ctx.ctx, src, len(snap.data), 0) == 0:
                raise RuntimeError("llama.cpp refused the KV snapshot")
            self.llm.input_ids[: len(snap.tokens)] = snap.tokens
            self.llm.n_tokens = len(snap.tokens)
            self._canonical = snap.canonical

    def _truncate(self, keep: int) -> None:
        self.llm._ctx.kv_cache_seq_rm(0, keep, -1)
        self.llm.n_tokens = keep
        self._canonical = min(self._canonical, keep)

    def _eval_blocks(self, tokens: list[int], start: int) -> None:
        """Evaluate ``tokens[start:]`` in blocks aligned to multiples of BLOCK.

        Why: llama.cpp's numbers for a position depend slightly on the batch it
        was evaluated in. Evaluating prompts only in blocks at fixed positions,
        and reusing cached KV only up to a block boundary that was evaluated
        this way, makes a prompt's KV state the same whether it was reused or
        read fresh, so greedy output does not depend on what ran before it
        (another process, an earlier turn, a context switch).
        """
        llm = self.llm
        pos = start
        while pos < len(tokens):
            end = min(len(tokens), (pos // BLOCK + 1) * BLOCK)
            llm.eval(tokens[pos:end])
            pos = end
        self._canonical = max(self._canonical, (len(tokens) // BLOCK) * BLOCK)

    def _common_prefix(self, tokens: list[int], limit: int) -> int:
        held = self.llm.input_ids
        keep, limit = 0, min(limit, self.llm.n_tokens, len(tokens))
        while keep < limit and held[keep] == tokens[keep]:
            keep += 1
        return keep

    def prefill(self, tokens: Sequence[int]) -> int:
        """Make the context hold exactly ``tokens`` with fresh logits for the last one.

        Keeps the longest prefix already in the KV cache that ends on a
        canonical block boundary, and evaluates only the rest; returns how many
        tokens were reused.
        """
        tokens = list(tokens)
        keep = self._common_prefix(tokens, min(self._canonical, len(tokens) - 1))
        keep -= keep % BLOCK
        self._truncate(keep)
        self._eval_blocks(tokens, keep)
        return keep

    def load_tokens(self, prompt: Sequence[int], generated: Sequence[int] = ()) -> int:
        """The prompt as ``prefill`` reads it, then generated tokens one at a time, as they
        were evaluated when they were generated: the same KV state, bit for bit."""
        prompt, generated = list(prompt), list(generated)
        if self._common_prefix(prompt + generated, len(prompt) + len(generated)) == len(prompt) + len(generated) \
                and self.llm.n_tokens == len(prompt) + len(generated):
            return len(prompt) + len(generated)
        reused = self.prefill(prompt)
        for token in generated:
            self.llm.eval([token])
        return reused

    def _sampler(self, sampling, seed: int, grammar: str | None, lazy: str | None):
        """The sampling chain: grammar first (strict, or lazy from a trigger pattern), the
        repetition penalty, then greedy at temperature 0, else top-k/top-p/min-p/temperature
        with a seeded draw. (Plain greedy decoding does not use it: see ``Decoding.greedy``.)"""
        from llama_cpp import _internals as internals

        from llmos.kernel.sampling import REPEAT_WINDOW

        chain = internals.LlamaSampler()
        if grammar:
            # llama.cpp returns no sampler for a grammar it cannot parse, and adding that to
            # the chain crashes: build it here and refuse the grammar with a clear error.
            import llama_cpp

            vocab = self.llm._model.vocab
            if lazy:
                patterns = (ctypes.c_char_p * 1)(lazy.encode())
                sampler = llama_cpp.llama_sampler_init_grammar_lazy_patterns(
                    vocab, grammar.encode(), b"root", patterns, 1, (llama_cpp.llama_token * 0)(), 0)
            else:
                sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
            if not sampler:
                raise UsageError("llama.cpp could not parse the grammar (see its log for the rule)")
            llama_cpp.llama_sampler_chain_add(chain.sampler, sampler)
        if sampling.repeat_penalty != 1.0:
            chain.add_penalties(self._n_vocab, REPEAT_WINDOW, sampling.repeat_penalty, 0.0, 0.0)
        if sampling.temperature <= 0:
            chain.add_greedy()
        else:
            if sampling.top_k > 0:
                chain.add_top_k(sampling.top_k)
            chain.add_top_p(sampling.top_p, 1)
            if sampling.min_p > 0:
                chain.add_min_p(sampling.min_p, 1)
            chain.add_temp(sampling.temperature)
            chain.add_dist(seed)
        return chain

    def decoding(self, tokens: Sequence[int], **params) -> Decoding:
        """A generation ready to run (``run``) or to join a batch (the scheduler)."""
        return Decoding(self, tokens, **params)

    def stream(self, tokens, **params):
        return self.run(self.decoding(tokens, **params))

    def run(self, d: Decoding) -> Iterator[Step]:
        """Run one generation on sequence 0. Each step is yielded right after its token
        was sampled and before it is evaluated: the safe point for a context switch."""
        t0 = time.perf_counter()
        d.result.reused_tokens = self.prefill(d.tokens)
        d.result.prefill_s = time.perf_counter() - t0
        d.started = t0
        while True:
            yield from d.next(-1)
            if d.done:
                return
            self.llm.eval([d.last])

    # -- several sequences at once (the scheduler's batched rounds) --------------------

    def seq_load(self, seq: int, snap: Snapshot) -> None:
        """Put a snapshot (taken from any sequence) into sequence ``seq``; others untouched."""
        import llama_cpp

        self.seq_clear(seq)
        src = (ctypes.c_uint8 * len(snap.data)).from_buffer_copy(snap.data)
        if llama_cpp.llama_state_seq_set_data(self.llm._ctx.ctx, src, len(snap.data), seq) == 0:
            raise RuntimeError("llama.cpp refused the KV snapshot")

    def seq_save(self, seq: int, tokens: list[int], canonical: int) -> Snapshot:
        import llama_cpp

        ctx = self.llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, seq)
        buf = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buf, size, seq)
        return Snapshot(bytes(memoryview(buf)[:written]), tokens, canonical)

    def seq_clear(self, seq: int) -> None:
        self.llm._ctx.kv_cache_seq_rm(seq, 0, -1)

    def seq_trim(self, seq: int, keep: int) -> None:
        """Drop sequence ``seq``'s KV state from position ``keep`` on."""
        self.llm._ctx.kv_cache_seq_rm(seq, keep, -1)

    def resume(self, d: Decoding) -> Iterator[Step]:
        """Continue on sequence 0 a generation that was started elsewhere (a batched round):
        the context holds ``d.context()``, and ``d.last`` waits to be evaluated."""
        while not d.done:
            self.llm.eval([d.last])
            yield from d.next(-1)

    def decode_batch(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """Evaluate (seq, token, pos, logits?) entries in one llama.cpp batch; the logits of
        entry i, when asked for, are at batch index i."""
        import llama_cpp

        batch = llama_cpp.llama_batch_init(len(entries), 0, 1)
        try:
            for i, (seq, token, pos, logits) in enumerate(entries):
                batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, pos, 1, logits
                batch.seq_id[i][0] = seq
            batch.n_tokens = len(entries)
            if llama_cpp.llama_decode(self.llm._ctx.ctx, batch) != 0:
                raise RuntimeError("llama.cpp could not decode the batch (context full?)")
        finally:
            llama_cpp.llama_batch_free(batch)

    # -- the "two files" ---------------------------------------------------------------

    def info(self) -> dict:
        import llama_cpp

        meta = self.llm.metadata
        arch = meta.get("general.architecture", "")
        file_type = meta.get("general.file_type")
        system_info = llama_cpp.llama_print_system_info().decode(errors="replace")
        flags = [part.split("=")[0].strip() for part in system_info.replace("CPU :", "").split("|")
                 if part.strip().endswith("= 1")]
        return {
            "weights": {
                "path": str(self.path),
                "size_bytes": self.path.stat().st_size,
                "name": meta.get("general.name", self.name),
                "architecture": arch,
                "parameters": self.llm._model.n_params(),
                "quantization": FILE_TYPES.get(int(file_type), f"type {file_type}") if file_type else "unknown",
                "context_length_trained": int(meta.get(f"{arch}.context_length", 0) or 0),
                "chat_template": "tokenizer.chat_template" in meta,
                "vocab_size": self.llm.n_vocab(),
                "license": meta.get("general.license", ""),
            },
            "runtime": {
                "engine": "llama.cpp via llama-cpp-python",
                "llama_cpp_python": llama_cpp.__version__,
                "build_flags": flags,
                "threads": self.n_threads,
                "context_window": self.n_ctx,
                "extra_buffer_types": self.extra_bufts,
                "chat_format": self.template_source,
                "load_s": round(self.load_s, 3),
            },
        }
