"""Boot: from ``--model`` to a running CPU, with progress the user can see.

The shell and the plain commands both boot through here, so the first use of
the default model (joining and verifying 491 MB) shows a progress bar on
stderr whichever way llmos was started.

Remote CPUs are chosen by configuration, first found wins: ``--cpu-url``
(repeatable; the CLI puts it in ``LLMOS_CPU_URL``), ``LLMOS_CPU_URL`` (URLs
separated by spaces or commas), or config.toml::

    [cpu]
    url = ["http://10.0.0.5:8080", "http://10.0.0.6:8080"]   # or one string
    timeout = 60      # seconds to connect, or to wait for the next token
    retry = 600       # give up on a dead server after this long (default: never)

    [disk]
    url = "http://10.0.0.7:8000"   # a Chroma server (see memory/disk.py)

With URLs, ``--model`` is ignored: the server runs its own model.
"""

from __future__ import annotations

import os
import sys
import threading

from llmos.errors import UsageError
from llmos.kernel import models
from llmos.kernel.cpu import CPU
from llmos.kernel.llama import LlamaCPU


def needs_join(name: str | None) -> models.ModelSpec | None:
    """The shipped model whose parts resolving ``name`` will join first (seconds), or None."""
    spec = models.KNOWN.get(models.effective_name(name))
    return spec if spec is not None and spec.sha256 and not models.is_joined(spec) else None


def find_model(name: str | None):
    """The GGUF of a model ``llmos model list`` found on this machine (pulled, the Hugging Face
    cache, LM Studio, Ollama, config folders: ``kernel/catalog.py``) called ``name``, or None
    for a shipped name or a path."""
    from pathlib import Path

    from llmos.kernel import catalog

    label = models.effective_name(name)
    if label in models.KNOWN or Path(label).expanduser().exists():
        return None
    found = catalog.lookup(label)
    if found is None:
        return None
    models.check_gguf(found.path)
    return found.path


def resolve_model(name: str | None, *, quiet: bool = False, progress=None):
    """The model's path, joining the default model's parts on first use (with a progress bar).
    None when remote CPUs are configured: the server runs its own model, nothing is joined."""
    if cpu_urls():
        return None
    found = find_model(name)
    if found is not None:
        return found
    spec = needs_join(name)
    if progress is not None or spec is None:
        return models.resolve(name, progress=progress)
    if quiet or not sys.stderr.isatty():
        return models.resolve(name, progress=_plain_progress(spec.name) if not quiet else None)
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(f"joining and verifying the {spec.name} model"), BarColumn(),
                  DownloadColumn(), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("join", total=spec.size)
        return models.resolve(name, progress=lambda done, total: bar.update(task, completed=done))


def _plain_progress(name: str):
    """For a stderr that is not a terminal: one line at start and one at the end."""
    state = {"started": False}

    def progress(done: int, total: int) -> None:
        if not state["started"]:
            state["started"] = True
            print(f"llmos: first use: joining and verifying the {name} model ({total:,} bytes)...",
                  file=sys.stderr, flush=True)
        if done == total:
            print("llmos: model verified (sha256 ok)", file=sys.stderr, flush=True)

    return progress


def _cpu_config() -> dict:
    from llmos.paths import load_config

    cpu = load_config().get("cpu", {})
    return cpu if isinstance(cpu, dict) else {}


def cpu_urls(urls: list[str] | None = None) -> list[str]:
    """The remote CPUs to use ([] for the embedded one). See the module docstring."""
    if urls:
        return list(urls)
    env = os.environ.get("LLMOS_CPU_URL", "").replace(",", " ").split()
    if env:
        return env
    url = _cpu_config().get("url", [])
    found = [url] if isinstance(url, str) else url
    if not isinstance(found, list) or not all(isinstance(u, str) for u in found):
        raise UsageError('config.toml: [cpu] url must be a URL or a list of URLs like "http://host:8080"')
    return [u for u in found if u.strip()]


def _seconds(value, what: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0:
        raise UsageError(f"{what} must be a positive number of seconds, not {value!r}")
    return seconds


def cpu_timeout(value: float | None = None) -> float:
    """``--cpu-timeout``, else ``LLMOS_CPU_TIMEOUT``, else ``[cpu] timeout``, else 60 s."""
    from llmos.kernel.remote import DEFAULT_TIMEOUT

    for candidate, what in ((value, "--cpu-timeout"), (os.environ.get("LLMOS_CPU_TIMEOUT"), "LLMOS_CPU_TIMEOUT"),
                            (_cpu_config().get("timeout"), "config.toml [cpu] timeout")):
        seconds = _seconds(candidate, what)
        if seconds is not None:
            return seconds
    return DEFAULT_TIMEOUT


def load_remote(urls: list[str], *, n_ctx: int | None = None, timeout: float | None = None) -> list[CPU]:
    """One ``RemoteCPU`` per URL: the cores. They share the first one's tokenizer, so every
    page is counted once and any core can render any process's prompt."""
    from llmos.kernel.remote import RemoteCPU

    timeout = cpu_timeout(timeout)
    retry = _seconds(_cpu_config().get("retry"), "config.toml [cpu] retry")
    first = RemoteCPU(urls[0], n_ctx=n_ctx, timeout=timeout, retry_s=retry)
    return [first] + [RemoteCPU(u, n_ctx=n_ctx, timeout=timeout, retry_s=retry, tokenizer=first.tokenizer)
                      for u in urls[1:]]


DEFAULT_CTX = 4096
"""The context window when neither ``--ctx`` nor the model's settings give one."""


def load_llama(name: str | None = None, *, n_ctx: int | None = None, quiet: bool = False,
               progress=None) -> LlamaCPU:
    """The embedded CPU for ``--model`` ``name``, with the model's settings from config.toml
    (``kernel/settings.py``); an explicit ``n_ctx`` (``--ctx``) wins over the settings'."""
    from llmos.kernel.settings import for_model

    label = models.effective_name(name)
    conf = for_model(label)
    path = resolve_model(name, quiet=quiet, progress=progress)
    return LlamaCPU(path, n_ctx=n_ctx or conf.context or DEFAULT_CTX, n_threads=conf.threads,
                    name=label if label in models.KNOWN else None, n_gpu_layers=conf.n_gpu_layers or 0,
                    chat_template=conf.template(), sampling=conf.sampling())


def load_cores(name: str | None = None, *, n_ctx: int | None = None, quiet: bool = False,
               progress=None, urls: list[str] | None = None, timeout: float | None = None,
               disk: bool = True) -> list[CPU]:
    """Boot the CPU cores: the embedded model, or one ``RemoteCPU`` per configured server
    (``urls``, or see ``cpu_urls``). ``progress(done, total)`` is called while the default
    model is joined on first use (the shell draws it); without it, a bar goes to stderr.
    ``disk``: the caller will run processes, whose turns search the disk (``prefetch_disk``)."""
    if disk:
        prefetch_disk()
    remote = cpu_urls(urls)
    if remote:
        return load_remote(remote, n_ctx=n_ctx, timeout=timeout)
    return [load_llama(name, n_ctx=n_ctx, quiet=quiet, progress=progress)]


def load_cpu(name: str | None = None, **kwargs) -> CPU:
    """Boot one CPU (``load_cores``' first core): for tools that measure or use one model."""
    return load_cores(name, **kwargs)[0]


def prefetch_disk() -> threading.Thread | None:
    """Load the disk's libraries (chromadb and the embedding model) on a thread of their own
    while the CPU boots, when this boot will have a disk to search (one exists in the data
    dir, or a Chroma server is configured). Returns the thread, or None.

    Why: they take ~1.5 s to import and set up, and a process's first turn searches the
    disk (mounted files, swapped pages) before it answers, so a cold start with a disk
    waited for them after the model had loaded (first token 4.1 s with, 1.1 s without).
    The model load runs in C with the GIL released, so the two overlap. A failure here is
    left for the real open to report, with its own clear error."""
    from llmos.paths import configured_disk_url, data_dir

    try:
        wanted = (data_dir() / "disk").exists() or bool(configured_disk_url())
    except Exception:  # an unreadable config: the real open reports it
        return None
    if not wanted:
        return None

    def work() -> None:
        try:
            import llmos.memory.disk  # noqa: F401  (chromadb)
            from llmos.memory import embed

            embed.embed(["warm-up"])
        except Exception:
            pass

    thread = threading.Thread(target=work, name="llmos-disk-prefetch", daemon=True)
    thread.start()
    _background.append(thread)
    return thread


_background: list[threading.Thread] = []


def settle(timeout: float = 10.0) -> None:
    """Wait for the boot's background work (``prefetch_disk``) before the program exits.

    Why: a daemon thread still inside a native library (onnxruntime or chromadb's Rust core
    loading) when the interpreter tears down aborts the whole program ("terminate called
    without an active exception", exit 134) after it has done its work: ``llmos model
    --json`` did so about one run in two in a data dir with a disk. Joining costs nothing
    when the thread is done, and at most its second or two of loading when it is not; a
    thread stuck longer, or a Ctrl-C while waiting, is abandoned (the old risk, not a hang)."""
    try:
        while _background:
            _background.pop().join(timeout)
    except KeyboardInterrupt:
        pass
