"""Boot: from ``--model`` to a running CPU, with progress the user can see.

The shell and the plain commands both boot through here, so the first use of
the default model (joining and verifying 491 MB) shows a progress bar on
stderr whichever way llmos was started.
"""

from __future__ import annotations

import sys

from llmos.kernel import models
from llmos.kernel.cpu import LlamaCPU


def needs_join(name: str | None) -> bool:
    """True when resolving ``name`` will join the default model's parts (a few seconds)."""
    if models.effective_name(name) != "qwen":
        return False
    path = models.qwen_path()
    return not path.is_file() or path.stat().st_size != models.QWEN_SIZE


def resolve_model(name: str | None, *, quiet: bool = False, progress=None):
    """The model's path, joining the default model's parts on first use (with a progress bar)."""
    if progress is not None or not needs_join(name):
        return models.resolve(name, progress=progress)
    if quiet or not sys.stderr.isatty():
        return models.resolve(name, progress=_plain_progress() if not quiet else None)
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("joining and verifying the default model"), BarColumn(),
                  DownloadColumn(), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("join", total=models.QWEN_SIZE)
        return models.resolve(name, progress=lambda done, total: bar.update(task, completed=done))


def _plain_progress():
    """For a stderr that is not a terminal: one line at start and one at the end."""
    state = {"started": False}

    def progress(done: int, total: int) -> None:
        if not state["started"]:
            state["started"] = True
            print(f"llmos: first use: joining and verifying the default model ({total:,} bytes)...",
                  file=sys.stderr, flush=True)
        if done == total:
            print("llmos: model verified (sha256 ok)", file=sys.stderr, flush=True)

    return progress


def load_cpu(name: str | None = None, *, n_ctx: int = 4096, quiet: bool = False,
             progress=None) -> LlamaCPU:
    """Boot the CPU. ``progress(done, total)`` is called while the default model is joined
    on first use (the shell draws it); without it, a bar goes to stderr."""
    path = resolve_model(name, quiet=quiet, progress=progress)
    label = models.effective_name(name)
    return LlamaCPU(path, n_ctx=n_ctx, name=label if label in models.KNOWN else None)
