"""The embedded CPU: a GGUF run in-process by llama-cpp-python (``LlamaCPU``).

It implements ``BatchingCPU`` (``kernel/cpu.py``): one llama.cpp context with a
unified KV cache holding up to MAX_SEQS sequences, prompts read in chunks cut
at page starts (``chunk_bounds``), per-sequence KV snapshots, greedy decoding
straight from the logits, and a sampler chain (grammar, repetition penalty, top-k/top-p/min-p) otherwise.
Every call that touches the context runs on the scheduler's one thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from llmos.errors import ModelError, UsageError
from llmos.kernel.cpu import BatchingCPU, Snapshot, TemplatedCPU, chunk_bounds, shared_bound
from llmos.kernel.decode import Decoding
from llmos.kernel.ggufinfo import FILE_TYPES
from llmos.kernel.grammar_sampler import GrammarChain
from llmos.kernel.step import Step


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
def llama_defaults(*, n_seq_max: int | None = None):
    """``Llama()`` takes model and context parameters from llama.cpp's defaults and has
    no arguments for the two we need, so swap the default functions for the duration
    of one load (under ``_load_lock``, so concurrent loads do not see each other's patch):

    - ``use_extra_bufts`` (model): off on AMX builds, see ``_has_amx_build``;
    - ``n_seq_max`` with a unified KV cache (context): room for several processes'
      sequences at once, so the scheduler can batch them; unified, so every sequence
      can use the whole context window. None: llama.cpp's default (one sequence).

    ``kernel/llama_server.py`` holds it around llama-cpp-python's own server. It yields
    whether extra buffer types are on.
    """
    extra_bufts = not _has_amx_build()
    from llama_cpp import llama as llama_module

    lib = llama_module.llama_cpp
    model_defaults, context_defaults = lib.llama_model_default_params, lib.llama_context_default_params

    def model_params():
        p = model_defaults()
        p.use_extra_bufts = extra_bufts
        return p

    def context_params():
        p = context_defaults()
        if n_seq_max is not None:
            p.n_seq_max = n_seq_max
            p.kv_unified = True
        return p

    lib.llama_model_default_params, lib.llama_context_default_params = model_params, context_params
    try:
        yield extra_bufts
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


MAX_SEQS = 8
"""Sequences in one context: sequence 0 for the running process, 1.. for batched rounds."""

class LlamaCPU(TemplatedCPU, BatchingCPU):
    """A GGUF run in-process by llama-cpp-python."""

    max_batch = MAX_SEQS - 1

    def __init__(self, path: str | Path, *, n_ctx: int = 4096, n_threads: int | None = None,
                 name: str | None = None, n_gpu_layers: int = 0, chat_template: str | None = None,
                 sampling: dict | None = None) -> None:
        """``chat_template`` (Jinja source) replaces the GGUF's; ``sampling`` (parameter names to
        values) replaces those of the authors' recommendation in the chat default
        (``kernel/settings.py``, ``kernel/sampling.py``).
        ``n_gpu_layers`` only matters to a GPU build of llama.cpp; a CPU build ignores it."""
        import llama_cpp

        self.path = Path(path)
        self.name = name or self.path.stem
        self.n_threads = n_threads or default_threads()
        self.n_gpu_layers = n_gpu_layers
        self.chat_template = chat_template
        self.sampling_override = sampling or None
        started = time.perf_counter()
        try:
            with _load_lock, llama_defaults(n_seq_max=MAX_SEQS) as self.extra_bufts:
                self.llm = llama_cpp.Llama(
                    str(self.path), n_ctx=n_ctx, n_batch=512, n_threads=self.n_threads,
                    n_threads_batch=self.n_threads, n_gpu_layers=n_gpu_layers, verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            size = self.path.stat().st_size if self.path.exists() else 0
            raise ModelError(
                f"llama.cpp could not load {self.path} ({size:,} bytes): the file is truncated, "
                f"damaged or of an unsupported architecture ({exc})"
            ) from None
        self.load_s = time.perf_counter() - started
        self.n_ctx = self.llm.n_ctx()
        self.n_batch = self.llm.n_batch
        self._vocab = self.llm._model.vocab
        self._n_vocab = self.llm.n_vocab()
        # llama_get_logits_ith returning a plain address (llama-cpp-python's binding returns a
        # float pointer object); a prototype of our own leaves the shared binding untouched.
        self._logits_at = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32)(
            ctypes.cast(llama_cpp.llama_get_logits_ith, ctypes.c_void_p).value)
        self._logit_views: dict[int, object] = {}
        self._eog: dict[int, bool] = {}
        self._pieces: dict[int, bytes] = {}
        self._bounds: tuple[int, ...] = ()
        """Sequence 0's canonical read (``chunk_bounds``)."""
        self._setup_template()

    def close(self) -> None:
        """Free the model and its context now (a switch to another model), not at exit."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.llm.close()

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
        template = self.chat_template or self.llm.metadata.get("tokenizer.chat_template")
        eos = self.detokenize([self.llm.token_eos()]) if self.llm.token_eos() >= 0 else ""
        bos = self.detokenize([self.llm.token_bos()]) if self.llm.token_bos() >= 0 else ""
        self.use_template(template, eos, bos, "config.toml" if self.chat_template else "gguf")

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

    def top(self, n: int, idx: int = -1) -> list[tuple[str, float]]:
        """The ``n`` most likely next tokens at batch index ``idx``, with their probabilities."""
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
        """Sequence 0, the running process's, saved with the per-sequence state API: its KV
        only, a few MB, where ``Llama.save_state`` would also copy a ~100 MB logits array."""
        return self.seq_save(0, self.held_tokens(), self._bounds)

    def restore(self, snap: Snapshot) -> None:
        self._truncate(0)
        if snap.tokens:
            self.seq_load(0, snap)
            self.llm.input_ids[: len(snap.tokens)] = snap.tokens
            self.llm.n_tokens = len(snap.tokens)
            self._bounds = snap.bounds

    def _truncate(self, keep: int) -> None:
        self.llm._ctx.kv_cache_seq_rm(0, keep, -1)
        self.llm.n_tokens = keep
        self._bounds = tuple(b for b in self._bounds if b <= keep)

    def _common_prefix(self, tokens: list[int], limit: int) -> int:
        held = self.llm.input_ids
        keep, limit = 0, min(limit, self.llm.n_tokens, len(tokens))
        while keep < limit and held[keep] == tokens[keep]:
            keep += 1
        return keep

    def prefill(self, tokens: Sequence[int], cuts: Sequence[int] = ()) -> int:
        """Make the context hold exactly ``tokens`` with fresh logits for the last one.

        The prompt is read in the chunks ``chunk_bounds(len(tokens), cuts)`` gives (``cuts``:
        where its pages begin). What the context already holds is kept up to the last chunk
        bound that the earlier read shares (``shared_bound``); only the rest is evaluated.
        Returns how many tokens were reused.
        """
        tokens = list(tokens)
        bounds = chunk_bounds(len(tokens), cuts)
        keep = shared_bound(self._bounds, bounds, self._common_prefix(tokens, len(tokens) - 1))
        self._truncate(keep)
        llm = self.llm
        for start, end in zip(bounds, bounds[1:]):
            if start >= keep:
                llm.eval(tokens[start:end])
        self._bounds = bounds
        return keep

    def load_tokens(self, prompt: Sequence[int], generated: Sequence[int] = (), cuts: Sequence[int] = ()) -> int:
        """The prompt as ``prefill`` reads it, then generated tokens one at a time, as they
        were evaluated when they were generated: the same KV state, bit for bit."""
        prompt, generated = list(prompt), list(generated)
        if self._common_prefix(prompt + generated, len(prompt) + len(generated)) == len(prompt) + len(generated) \
                and self.llm.n_tokens == len(prompt) + len(generated):
            return len(prompt) + len(generated)
        reused = self.prefill(prompt, cuts)
        for token in generated:
            self.llm.eval([token])
        return reused

    def sampler(self, sampling, seed: int, grammar: str | None, lazy: str | None):
        """The sampling chain: the repetition penalty, then greedy at temperature 0, else
        top-k/top-p/min-p/temperature with a seeded draw; a grammar (strict, or lazy from a
        trigger pattern) checks the drawn token (``kernel/grammar_sampler.py``). (Plain greedy
        decoding does not use it: see ``Decoding.greedy``.)"""
        from llama_cpp import _internals as internals

        from llmos.kernel.sampling import REPEAT_WINDOW

        chain = internals.LlamaSampler()
        sampler = None
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
        return GrammarChain(chain, sampler, self._n_vocab) if sampler else chain

    def sample(self, sampler, idx: int) -> int:
        """Draw a token from the logits at batch index ``idx`` with a ``sampler`` chain."""
        if isinstance(sampler, GrammarChain):  # it tests the drawn token itself
            return sampler.sample(self.logits(idx))
        return sampler.sample(self.llm._ctx, idx)

    def decoding(self, tokens: Sequence[int], **params) -> Decoding:
        """A generation ready to run (``run``) or to join a batch (the scheduler)."""
        return Decoding(self, tokens, **params)

    def stream(self, tokens, **params):
        return self.run(self.decoding(tokens, **params))

    def run(self, d: Decoding) -> Iterator[Step]:
        """Run one generation on sequence 0. Each step is yielded right after its token
        was sampled and before it is evaluated: the safe point for a context switch."""
        t0 = time.perf_counter()
        d.result.reused_tokens = self.prefill(d.tokens, d.cuts)
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

    def seq_save(self, seq: int, tokens: list[int], bounds: tuple[int, ...]) -> Snapshot:
        """Sequence ``seq``'s KV state, labelled with the tokens it holds."""
        import llama_cpp

        ctx = self.llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, seq)
        buf = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buf, size, seq)
        return Snapshot(bytes(memoryview(buf)[:written]), tokens, bounds)

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
                "tool_calls": self.tool_format.family,
                "n_gpu_layers": self.n_gpu_layers,
                "load_s": round(self.load_s, 3),
            },
        }
