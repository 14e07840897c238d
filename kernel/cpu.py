"""The CPU: a language model that turns a token stream into the next token.

``CPU`` is the interface the kernel schedules onto; ``BatchingCPU`` what the
scheduler may additionally drive token by token and batch. ``LlamaCPU``
(``kernel/llama.py``) runs a GGUF in-process with llama-cpp-python;
``RemoteCPU`` (``kernel/remote.py``) an OpenAI-compatible server. The interface is deliberately small:

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
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from llmos.kernel import toolcall
from llmos.kernel.decode import Decoding
from llmos.kernel.step import Generation, Step  # re-exported: what ``stream`` yields and fills in


@dataclass
class Snapshot:
    """A process's saved CPU state: the KV cache of one sequence and the tokens it holds."""

    data: bytes
    tokens: list[int]
    bounds: tuple[int, ...] = ()
    """Where the prompt chunks of its canonical read began, and where the read ended
    (``chunk_bounds``); the KV state before the last bound is reusable (``shared_bound``)."""

    @property
    def nbytes(self) -> int:
        return len(self.data)


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
    tool_format = toolcall.SYSCALL
    """How this model calls tools: its template's own format, or llmos's ``<syscall>``."""

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
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        cuts: Sequence[int] = (),
    ) -> Iterator[Step]:
        """Generate from ``tokens``. ``grammar`` (GBNF) constrains the output; with ``lazy``
        (a regex with one group) it applies only from where the pattern first matches. The
        sampling parameters are ``kernel/sampling.Sampling``'s (temperature 0: greedy).
        ``cuts``: where the prompt's pages begin, for a CPU that reads prompts in chunks
        (``chunk_bounds``); others ignore them."""

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

    def load_tokens(self, prompt: Sequence[int], generated: Sequence[int] = (), cuts: Sequence[int] = ()) -> int:
        """Make the context hold ``prompt + generated`` by evaluating what is not already
        there (the fallback when no snapshot exists); ``cuts``: where the prompt's pages
        begin (``chunk_bounds``). Returns how many were reused."""
        return 0

    def chat_tokens(self, messages: Sequence[tuple[str, str]]) -> list[int]:
        """The prompt tokens for (role, text) messages, ending with the generation prompt."""
        out: list[int] = []
        for role, text in messages:
            out += self.tokenize(self.format_message(role, text))
        out += self.tokenize(self.generation_prompt())
        return out

    def tool_section(self, tools: list[dict]) -> str | None:
        """What the model's template adds to a system message given ``tools`` (see
        ``TemplatedCPU``); None where it has none."""
        return None

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


class BatchingCPU(CPU):
    """A CPU the scheduler can drive token by token and batch: one context holding several
    processes' KV sequences (sequence 0 runs one process; 1.. hold batched ones).

    The scheduler asks this of it, and nothing more:

    - ``decoding(tokens, **params)``: a generation ready to run (``kernel/decode.py``);
      ``run(d)`` runs it on sequence 0 and ``resume(d)`` continues one started in a batch;
    - ``seq_save`` / ``seq_load`` / ``seq_clear`` / ``seq_trim``: per-sequence KV state;
    - ``decode_batch(entries)``: (seq, token, pos, logits?) in one decode, at most
      ``n_batch`` entries;
    - for ``Decoding``: ``logits(idx)``, ``top(n, idx)``, ``sampler(...)`` and
      ``sample(sampler, idx)``, ``piece(token)``, ``is_eog(token)``.

    ``LlamaCPU`` is the real one; ``kernel/fakecpu.py`` a deterministic stand-in for
    tests about scheduling alone.
    """

    can_snapshot = True
    n_batch: int = 512
    """Tokens one ``decode_batch`` call may take."""

    @abstractmethod
    def decoding(self, tokens: Sequence[int], **params) -> Decoding: ...

    @abstractmethod
    def run(self, d: Decoding) -> Iterator[Step]: ...

    @abstractmethod
    def resume(self, d: Decoding) -> Iterator[Step]: ...

    @abstractmethod
    def seq_save(self, seq: int, tokens: list[int], bounds: tuple[int, ...]) -> Snapshot: ...

    @abstractmethod
    def seq_load(self, seq: int, snap: Snapshot) -> None: ...

    @abstractmethod
    def seq_clear(self, seq: int) -> None: ...

    @abstractmethod
    def seq_trim(self, seq: int, keep: int) -> None: ...

    @abstractmethod
    def decode_batch(self, entries: list[tuple[int, int, int, bool]]) -> None: ...

    @abstractmethod
    def logits(self, idx: int = -1): ...

    @abstractmethod
    def top(self, n: int, idx: int = -1) -> list[tuple[str, float]]: ...

    @abstractmethod
    def sampler(self, sampling, seed: int, grammar: str | None, lazy: str | None): ...

    @abstractmethod
    def sample(self, sampler, idx: int) -> int: ...

    @abstractmethod
    def piece(self, token: int) -> bytes: ...

    @abstractmethod
    def is_eog(self, token: int) -> bool: ...


BLOCK = 64
"""The most tokens of one page a prompt chunk holds (see ``chunk_bounds``)."""


def chunk_bounds(length: int, cuts: Sequence[int] = ()) -> tuple[int, ...]:
    """Where a prompt of ``length`` tokens is cut into the chunks it is evaluated in: at every
    ``cut`` (where a page begins) and every BLOCK tokens after it; the last bound is ``length``.

    Why chunks at all: llama.cpp's numbers for a position depend slightly on the batch it was
    evaluated in. A prompt read in chunks that are a function of its pages alone has the same
    KV state whether it was reused from an earlier read or read fresh, so greedy output does
    not depend on what ran before it (another process, an earlier turn, a context switch).
    Why at page starts: the next request repeats the pages and changes what follows them (the
    answer, a device result, the next message), so a read cut where its last page ended is
    reused up to there; with chunks at fixed multiples of BLOCK it was reused only up to the
    last multiple, and the rest re-read (on average BLOCK/2 tokens a request, ~0.15 s with the
    default model on two cores). A prompt without cuts is cut every BLOCK tokens from 0."""
    starts = sorted({c for c in cuts if 0 < c < length} | {0})
    out: list[int] = []
    for start, end in zip(starts, starts[1:] + [length]):
        out += range(start, end, BLOCK)
    return (*out, length) if length else ()


def shared_bound(held: Sequence[int], new: Sequence[int], limit: int) -> int:
    """How much of an earlier canonical read (bounds ``held``) a new prompt (bounds ``new``)
    can reuse, given that their first ``limit`` tokens agree: the last bound up to ``limit``
    before which both were cut the same way."""
    keep = 0
    for a, b in zip(held, new):
        if a != b or a > limit:
            break
        keep = a
    return keep

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
