"""``Sys.read``: a file or a folder as page-sized excerpts with their line ranges.

A file is cut the way ``mount`` cuts it (``memory.fs.chunk_text``: whole
lines, about 1000 characters), so an excerpt cites the same ``path:a-b`` a
page fault would. A folder is mounted (incremental: unchanged files are not
re-read) and its excerpts are read back from the disk in file and line
order, which is what "summarise a mounted folder" means: the disk's copy.
"""

from __future__ import annotations

from pathlib import Path

from llmos.errors import UsageError


def excerpts(kernel, pid: int, path: str) -> list:
    from llmos.memory.page import Origin, Page, Trust

    target = Path(path).expanduser()
    if target.is_dir():
        return [Page(pid, Origin.FILE, text, trust=Trust.UNTRUSTED, source=source, resident=False)
                for source, text in _folder(kernel, target)]
    return [Page(pid, Origin.FILE, text, trust=Trust.UNTRUSTED, source=source, resident=False)
            for source, text in _file(target)]


def _file(target: Path) -> list[tuple[str, str]]:
    from llmos.memory.fs import chunk_text

    try:
        data = target.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"cannot read {target}: no such file or folder") from None
    except OSError as exc:
        raise UsageError(f"cannot read {target}: {exc.strerror or exc}") from None
    from llmos.memory.fs import NotText, decode_text

    try:
        text = decode_text(data)
    except NotText as why:
        raise UsageError(f"cannot read {target}: it is {why}") from None
    if not text.strip():
        raise UsageError(f"{target} is empty")
    chunks, _ = chunk_text(text)
    return [(f"{target.resolve()}:{c.line_start}-{c.line_end}", c.text) for c in chunks]


def _folder(kernel, target: Path) -> list[tuple[str, str]]:
    report = kernel.mount(str(target))
    hits = kernel.mounted(report.root)
    hits.sort(key=lambda h: (str(h.metadata.get("path")), int(h.metadata.get("line_start", 0))))
    out = [(f"{h.metadata.get('path')}:{h.metadata.get('line_start')}-{h.metadata.get('line_end')}", h.text)
           for h in hits if h.text and h.text.strip()]
    if not out:
        raise UsageError(f"{target} holds no text files to read")
    return out
