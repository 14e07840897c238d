"""A remote CPU: any OpenAI-compatible server (llama-cpp-python's, llama.cpp's, vLLM, Ollama).

``RemoteCPU`` implements the ``CPU`` interface over HTTP, so the kernel runs
processes on a server exactly as on the embedded model:

- **prompt**: the kernel renders every page with the chat template and keeps
  its tokens; ``stream`` turns the prompt's tokens back into the exact text
  and sends it to ``POST /v1/completions`` with ``stream: true`` (SSE). Text,
  not token ids, because llama-cpp-python's server accepts only strings;
- **tokens**: the server's own tokenizer where it has an endpoint
  (llama-cpp-python: ``/extras/tokenize``; llama.cpp: ``/tokenize``), so RAM
  is counted exactly; otherwise tiktoken's offline cl100k encoding
  (``memory/tokens.py``), an estimate, so the context window is shrunk by a
  safety margin. A server tokenizer cannot give back special tokens
  (llama-cpp-python's ``/extras/detokenize`` drops ``<|im_start|>``), so the
  text of every token list we tokenized is remembered and a prompt, being a
  concatenation of such lists, is rebuilt from those pieces exactly. While the
  server is down, text gets stand-in ids (exact text, estimated count), so
  pages can still be admitted and journalled;
- **chat template**: ChatML (both built-in models use it), or the server's own
  template when it publishes one (llama.cpp's ``/props``);
- **grammar**: sent in the ``grammar`` field (llama-cpp-python and llama.cpp
  accept GBNF). A lazy grammar (a system call may start anywhere in the
  answer) has no OpenAI-compatible form, and a server may refuse grammars:
  then the model writes freely and the kernel's syscall parser reads its text
  (anything malformed becomes an error page, as always);
- **greedy decoding**: temperature 0 with the server's repeat penalty switched
  off, so the answer is the embedded CPU's answer on the same model
  (``tests/kernel/test_remote.py`` checks it);
- **failures**: a server that is down at start is a one-line ``CPUError``
  naming the URL. One that stops answering mid-generation (connection reset,
  timeout) does not fail the process: ``stream`` yields a ``Step`` whose
  ``blocked`` says why (the kernel marks the process BLOCKED), polls the
  server, and when it is back re-sends the prompt plus the text generated so
  far and goes on. What was already streamed is kept (and journalled by the
  kernel). Cancelling (kill, Ctrl-C) ends the wait.

A remote CPU has no KV state the scheduler could save, so ``can_snapshot`` is
False (the server keeps its own prompt cache), and it is not preemptible: a
paused stream would hold the server (llama-cpp-python's server even ends a
stream when another request arrives), so a generation runs to its end and
several cores are the way to run processes at once.

``Step.token`` and ``Generation.tokens`` hold -1 per streamed token: the
OpenAI API streams text, not ids; the count is right, the ids are unknown.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

from llmos.errors import ContextOverflow, LlmosError, UsageError, one_line
from llmos.kernel.cpu import Generation, Step, TemplatedCPU
from llmos.kernel.step import StopText

DEFAULT_TIMEOUT = 60.0
"""Seconds to wait to connect, or for the next streamed token, before the server counts as down."""
ESTIMATE_MARGIN = 0.85
"""Share of the server's context window used when tokens are only estimated (tiktoken)."""
RETRY_MIN_S, RETRY_MAX_S = 0.25, 1.0
"""Backoff between health checks while the server is down."""


class CPUError(LlmosError):
    """A remote CPU could not be used (down, refused the request, returned garbage)."""


class Unreachable(Exception):
    """The server stopped answering (internal: turns into a BLOCKED step and a retry)."""


def base_url(url: str) -> str:
    """``http://host:port`` from ``http://host:port``, ``.../v1`` or ``.../v1/``; UsageError if not a URL."""
    parts = urlsplit(url.strip())
    try:
        parts.port
    except ValueError:
        raise UsageError(f"cpu url {url!r} has a bad port; the form is http://host:port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"cpu url {url!r} is not of the form http://host:port")
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[:-3]
    return f"{parts.scheme}://{parts.netloc}{path}"


# --------------------------------------------------------------------------------------
# tokenizers


class ServerTokenizer:
    """The server's own tokenizer, with the text of every token list it returned remembered,
    so ``detokenize`` of a concatenation of those lists is exact (special tokens included)."""

    exact = True
    MAX_SEGMENTS = 50_000

    def __init__(self, cpu: RemoteCPU, kind: str) -> None:
        self.cpu = cpu
        self.kind = kind
        """"llama-cpp-python" (/extras/tokenize) or "llama.cpp" (/tokenize)."""
        self.name = f"server ({'/extras/tokenize' if kind == 'llama-cpp-python' else '/tokenize'})"
        self._lock = threading.Lock()
        self._ids: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self._texts: OrderedDict[tuple[int, ...], str] = OrderedDict()
        self._by_first: dict[int, set[tuple[int, ...]]] = {}
        self._serial = 0

    def tokenize(self, text: str) -> list[int]:
        if not text:
            return []
        with self._lock:
            ids = self._ids.get(text)
            if ids is not None:
                self._ids.move_to_end(text)
                if ids in self._texts:
                    self._texts.move_to_end(ids)
                return list(ids)
        try:
            if self.kind == "llama-cpp-python":
                ids = tuple(self.cpu._post("/extras/tokenize", {"input": text})["tokens"])
            else:
                ids = tuple(self.cpu._post("/tokenize", {"content": text, "add_special": False})["tokens"])
        except CPUError:
            return list(self._stand_in(text))
        self._remember(text, ids)
        return list(ids)

    def _stand_in(self, text: str) -> tuple[int, ...]:
        """Ids for ``text`` while the server cannot tokenize (it is down): a unique negative
        first id, so ``detokenize`` gives the exact text back, and as many ids as tiktoken
        counts. Prompts travel as text, so a page with stand-in ids works like any other;
        only its count is an estimate. Not cached: once the server is back, text gets real ids."""
        from llmos.memory.tokens import count

        with self._lock:
            self._serial += 1
            ids = (-1_000_000 - self._serial,) + (-1,) * max(0, count(text) - 1)
        self._remember(text, ids, cache_text=False)
        return ids

    def _remember(self, text: str, ids: tuple[int, ...], *, cache_text: bool = True) -> None:
        if not ids:
            return
        with self._lock:
            if cache_text:
                self._ids[text] = ids
            if ids not in self._texts:
                self._by_first.setdefault(ids[0], set()).add(ids)
            self._texts[ids] = text
            while len(self._texts) > self.MAX_SEGMENTS:
                old, _ = self._texts.popitem(last=False)
                self._by_first.get(old[0], set()).discard(old)
            while len(self._ids) > self.MAX_SEGMENTS:
                self._ids.popitem(last=False)

    def detokenize(self, tokens: Sequence[int]) -> str:
        """Known token lists give their exact text; runs of unknown tokens ask the server
        (which may drop special tokens: they were not produced here)."""
        tokens = list(tokens)
        out: list[str] = []
        unknown: list[int] = []
        i, n = 0, len(tokens)
        while i < n:
            found = None
            with self._lock:
                for seg in sorted(self._by_first.get(tokens[i], ()), key=len, reverse=True):
                    if tuple(tokens[i:i + len(seg)]) == seg:
                        found = seg, self._texts[seg]
                        break
            if found is None:
                unknown.append(tokens[i])
                i += 1
                continue
            if unknown:
                out.append(self._server_detokenize(unknown))
                unknown = []
            out.append(found[1])
            i += len(found[0])
        if unknown:
            out.append(self._server_detokenize(unknown))
        return "".join(out)

    def _server_detokenize(self, tokens: list[int]) -> str:
        tokens = [t for t in tokens if t >= 0]
        if not tokens:
            return ""
        if self.kind == "llama-cpp-python":
            return self.cpu._post("/extras/detokenize", {"tokens": tokens})["text"]
        return self.cpu._post("/detokenize", {"tokens": tokens})["content"]


class TiktokenTokenizer:
    """tiktoken's offline cl100k encoding: exact round trip of text, estimated counts."""

    exact = False
    name = "tiktoken cl100k (offline estimate)"

    def tokenize(self, text: str) -> list[int]:
        from llmos.memory.tokens import encode

        return encode(text)

    def detokenize(self, tokens: Sequence[int]) -> str:
        from llmos.memory.tokens import _encoding

        return _encoding().decode(list(tokens))


# --------------------------------------------------------------------------------------


class RemoteCPU(TemplatedCPU):
    """An OpenAI-compatible server as a CPU. See the module docstring."""

    can_snapshot = False
    preemptible = False
    max_batch = 1

    def __init__(self, url: str, *, n_ctx: int | None = None, timeout: float = DEFAULT_TIMEOUT,
                 retry_s: float | None = None, tokenizer=None, name: str | None = None) -> None:
        import httpx

        self.url = base_url(url)
        self.timeout = float(timeout)
        if not self.timeout > 0:
            raise UsageError(f"cpu timeout must be a positive number of seconds, not {timeout!r}")
        self.retry_s = retry_s
        """Give up after the server was unreachable this long (None: wait until it is back or the
        process is killed)."""
        self._client = httpx.Client(timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)))
        started = time.perf_counter()
        models = self._health(start=True)
        self.load_s = time.perf_counter() - started
        data = (models or {}).get("data") or [{}]
        self.model = str(data[0].get("id", "") or "model")
        self.name = name or f"{_stem(self.model)}@{urlsplit(self.url).netloc}"
        props = self._props()
        self.server_ctx = _first_int(
            data[0].get("max_model_len"),  # vLLM
            (props.get("default_generation_settings") or {}).get("n_ctx"),  # llama.cpp
            props.get("n_ctx"),
        )
        self.tokenizer = tokenizer if tokenizer is not None else self._detect_tokenizer()
        ctx = self.server_ctx or n_ctx or 4096
        if n_ctx and self.server_ctx:
            ctx = min(ctx, n_ctx)
        self.n_ctx = ctx if self.tokenizer.exact else int(ctx * ESTIMATE_MARGIN)
        self.grammar_ok = True
        """False once the server refused a grammar: the fallback parser reads plain text."""
        self.use_template(props.get("chat_template"), str(props.get("eos_token", "") or ""),
                          str(props.get("bos_token", "") or ""), "server (/props)")

    # -- HTTP ------------------------------------------------------------------------

    def _post(self, path: str, body: dict) -> dict:
        import httpx

        try:
            r = self._client.post(self.url + path, json=body)
        except httpx.TransportError as exc:
            raise CPUError(f"cannot reach the CPU at {self.url} ({one_line(exc)})") from None
        if r.status_code >= 400:
            raise CPUError(f"the CPU at {self.url} refused {path}: HTTP {r.status_code} {_error_text(r)}")
        try:
            return r.json()
        except ValueError:
            raise CPUError(f"the CPU at {self.url} answered {path} with something that is not JSON") from None

    def _health(self, *, start: bool = False) -> dict | None:
        """GET /v1/models: the model list when the server answers, else None (or, at start,
        a CPUError naming the URL)."""
        import httpx

        try:
            r = self._client.get(self.url + "/v1/models", timeout=min(self.timeout, 5.0))
            if r.status_code >= 400:
                raise CPUError(f"the CPU at {self.url} answered /v1/models with HTTP {r.status_code}; "
                               "is it an OpenAI-compatible server?")
            return r.json()
        except (httpx.TransportError, ValueError) as exc:
            if start:
                raise CPUError(f"cannot reach the CPU at {self.url} ({one_line(exc)}); "
                               "is the server running?") from None
            return None

    def _props(self) -> dict:
        """llama.cpp's /props (context size, chat template), {} elsewhere."""
        try:
            r = self._client.get(self.url + "/props", timeout=min(self.timeout, 5.0))
            return r.json() if r.status_code == 200 and isinstance(r.json(), dict) else {}
        except Exception:
            return {}

    def _detect_tokenizer(self):
        for kind, path, body in (("llama-cpp-python", "/extras/tokenize", {"input": "a"}),
                                 ("llama.cpp", "/tokenize", {"content": "a"})):
            try:
                r = self._client.post(self.url + path, json=body, timeout=min(self.timeout, 5.0))
                if r.status_code == 200 and isinstance(r.json().get("tokens"), list):
                    return ServerTokenizer(self, kind)
            except Exception:
                continue
        return TiktokenTokenizer()

    # -- tokens and template -----------------------------------------------------------

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        """``special=False`` (untrusted text): the prompt travels as text and the server reads
        control-token markup in it as control tokens, so ``<|`` is broken with a zero-width
        space: a document's ``<|im_start|>system`` stays words, not a fake turn."""
        if not special:
            text = text.replace("<|", "<\u200b|")
        return self.tokenizer.tokenize(text)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self.tokenizer.detokenize(tokens)

    # -- generation ----------------------------------------------------------------------

    def stream(self, tokens: Sequence[int], *, max_tokens: int = 512, stop: Sequence[str] = (),
               temperature: float = 0.0, seed: int = 0, grammar: str | None = None, top_n: int = 0,
               result: Generation | None = None, cancel: threading.Event | None = None,
               lazy: str | None = None, top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05,
               repeat_penalty: float = 1.0, cuts: Sequence[int] = ()) -> Iterator[Step]:
        # ``cuts`` are for a CPU that reads prompts in chunks (kernel/cpu.py); a server keeps
        # its own prompt cache.
        from llmos.kernel.sampling import REPEAT_WINDOW, LoopGuard

        tokens = list(tokens)
        if not tokens:
            raise UsageError("empty prompt: there is nothing to generate from")
        if len(tokens) + 1 > self.n_ctx:
            raise ContextOverflow(f"the prompt is {len(tokens):,} tokens but the context window holds "
                                  f"{self.n_ctx:,}; shorten it or raise --ctx")
        result = result if result is not None else Generation()
        result.prompt_tokens = len(tokens)
        prompt = self.detokenize(tokens)
        limit = max(1, min(max_tokens, self.n_ctx - len(tokens)))
        held = StopText(stop)
        stops = held.stops
        body: dict = {"prompt": prompt, "stream": True, "temperature": max(0.0, temperature),
                      "repeat_penalty": repeat_penalty, "repeat_last_n": REPEAT_WINDOW,
                      "frequency_penalty": 0.0, "presence_penalty": 0.0, "seed": seed}
        if stops:
            body["stop"] = stops
        if temperature > 0:
            body.update(top_k=top_k, top_p=top_p, min_p=min_p)
        if grammar and not lazy and self.grammar_ok:
            body["grammar"] = grammar
        if top_n:
            body["logprobs"] = top_n
        generated = ""  # everything the server streamed (before stop handling)
        count = 0
        finish = None
        loops = LoopGuard()
        started = time.perf_counter()
        t_first: float | None = None
        while True:
            if cancel is not None and cancel.is_set():
                finish = "interrupted"
                break
            body["prompt"] = prompt + generated
            body["max_tokens"] = limit - count
            events = self._sse(body)
            try:
                for text, top, reason in events:
                    if cancel is not None and cancel.is_set():
                        finish = "interrupted"
                        break
                    if text or top is not None:
                        if t_first is None:
                            t_first = time.perf_counter()
                            result.prefill_s = result.first_token_s = t_first - started
                        count += 1
                        result.tokens.append(-1)
                        generated += text
                        ready, stopped = held.feed(text)
                        if ready or not stopped:
                            result.text += ready
                            yield Step(-1, ready, top)
                        if stopped:
                            finish = "stop"
                            break
                        if ready and loops.looping(result.text):
                            result.text = result.text[:loops.cut]
                            held.rest()
                            finish = "loop"
                            break
                    if reason:
                        finish = reason
                        break
                    if count >= limit:
                        finish = "length"
                        break
                break
            except Unreachable as exc:
                why = f"cpu {self.url} unreachable, retrying ({exc})"
                yield Step(-1, "", None, blocked=why)
                if not self._wait_until_back(cancel, why):
                    finish = "interrupted"
                    break
            except CPUError:
                if "grammar" in body and self.grammar_ok and count == 0:
                    # a server that does not take GBNF: the kernel's parser reads plain text
                    self.grammar_ok = False
                    del body["grammar"]
                    continue
                raise
            finally:
                events.close()
        pending = held.rest()
        if pending:
            result.text += pending
            yield Step(-1, pending, None)
        if finish == "stop" and not stops:
            finish = "eos"
        result.stop_reason = finish or "eos"
        if t_first is not None:
            result.decode_s = time.perf_counter() - t_first

    def _sse(self, body: dict) -> Iterator[tuple[str, list | None, str | None]]:
        """POST /v1/completions with streaming: (text, top-n, finish reason) per event, until
        ``[DONE]``. A stream cut before ``[DONE]`` or a transport error raises ``Unreachable``."""
        import httpx

        try:
            with self._client.stream("POST", self.url + "/v1/completions", json=body) as r:
                if r.status_code >= 400:
                    r.read()
                    text = _error_text(r)
                    if "context window" in text or "exceed" in text:
                        raise ContextOverflow(f"the CPU at {self.url} says the prompt does not fit ({text}); "
                                              "lower --ctx to the server's context size")
                    raise CPUError(f"the CPU at {self.url} refused the request: HTTP {r.status_code} {text}")
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        event = json.loads(data)
                    except ValueError:
                        raise CPUError(f"the CPU at {self.url} streamed something that is not JSON") from None
                    if "error" in event:
                        raise CPUError(f"the CPU at {self.url} failed: {one_line(Exception(str(event['error'])))}")
                    choice = (event.get("choices") or [{}])[0]
                    yield choice.get("text") or "", _top(choice.get("logprobs")), choice.get("finish_reason")
            raise Unreachable("the stream ended before [DONE]")
        except httpx.TransportError as exc:
            raise Unreachable(one_line(exc)) from None

    def _wait_until_back(self, cancel: threading.Event | None, why: str) -> bool:
        """Poll the server until it answers (True) or the wait is cancelled (False)."""
        delay, since = RETRY_MIN_S, time.monotonic()
        cancel = cancel or threading.Event()
        while not cancel.is_set():
            if self._health() is not None:
                return True
            if self.retry_s is not None and time.monotonic() - since > self.retry_s:
                raise CPUError(f"{why}: gave up after {self.retry_s:g} s")
            cancel.wait(delay)
            delay = min(RETRY_MAX_S, delay * 2)
        return False

    # -- the "two files" -----------------------------------------------------------------

    def info(self) -> dict:
        return {
            "weights": {"name": self.model, "path": None, "where": f"on the server {self.url}"},
            "runtime": {
                "engine": "OpenAI-compatible server (/v1/completions, streamed)",
                "url": self.url,
                "tokenizer": self.tokenizer.name,
                "context_window": self.n_ctx,
                "server_context": self.server_ctx,
                "grammar": "sent to the server" if self.grammar_ok else "refused by the server: parsed from text",
                "chat_format": self.template_source,
                "timeout_s": self.timeout,
                "load_s": round(self.load_s, 3),
            },
        }

    def close(self) -> None:
        self._client.close()


def _stem(model: str) -> str:
    tail = model.replace("\\", "/").rsplit("/", 1)[-1]
    return tail[:-5] if tail.endswith(".gguf") else tail


def _first_int(*values) -> int | None:
    for v in values:
        try:
            if v is not None and int(v) > 0:
                return int(v)
        except (TypeError, ValueError):
            continue
    return None


def _error_text(r) -> str:
    try:
        data = r.json()
        err = data.get("error", data.get("detail", data)) if isinstance(data, dict) else data
        msg = err.get("message", err) if isinstance(err, dict) else err
        return one_line(Exception(str(msg)))
    except Exception:
        return one_line(Exception(r.text or r.reason_phrase))


def _top(logprobs) -> list[tuple[str, float]] | None:
    """The OpenAI completions ``logprobs.top_logprobs[0]`` as (piece, probability), best first."""
    if not isinstance(logprobs, dict):
        return None
    tops = logprobs.get("top_logprobs") or []
    if not tops or not isinstance(tops[0], dict):
        return None
    return sorted(((piece, math.exp(lp)) for piece, lp in tops[0].items()), key=lambda x: -x[1])
