"""Mounting a folder: its text files, chunked, on the disk's ``"files"`` collection.

``mount(disk, path)`` walks a folder, reads every text file (prose, markdown,
code), cuts it into chunks of about 800-1200 characters at line boundaries and
writes each chunk with its file and line range, so the pager can later page
the right excerpt into RAM and cite where it came from.

The walk skips hidden folders and files (``.git``, ``.env``, ...) and build or
environment folders (``node_modules``, ``__pycache__``, virtualenvs). A file is
binary, and skipped, when its first 8 KB hold a NUL byte or it is not UTF-8; a
file that cannot be read (no permission, a dangling link, a FIFO or socket) is
skipped; both are counted, neither stops the mount. A line longer than a chunk
is cut by characters. A file gives at most :data:`MAX_CHUNKS_PER_FILE`
chunks and only that much of it is ever decoded, so a 50 MB one-line file
costs a hash pass and a bounded amount of memory; the rest is counted as
truncated.

Re-mounting is incremental: each chunk carries its file's SHA-256, so a file
whose content did not change is not re-read into the disk, a changed file's
old chunks are replaced and a vanished file's are deleted. Chunks are written
in one upsert per group of whole files, after the file's old chunks are
deleted: an interrupted mount leaves a file either whole or absent, and the
next mount re-indexes whatever is absent.

This module does not search (``Disk.query`` does) and does not watch folders
for changes: the user mounts again.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmos.errors import UsageError
from llmos.memory.disk import Disk
from llmos.memory.embed import embed

COLLECTION = "files"
CHUNK_TARGET = 1000
"""A chunk is closed at the first line end at or past this many characters ..."""
CHUNK_MAX = 1200
"""... and never grows past this many, unless one line is longer (then the line is cut)."""
MAX_CHUNKS_PER_FILE = 256
"""Chunks kept per file (about 256 KB of text); the rest of a file counts as truncated."""
SNIFF_BYTES = 8192
"""A NUL byte in this many leading bytes marks a file binary."""
FLUSH_CHUNKS = 64
"""Embed and write once this many chunks wait (always whole files)."""
SKIP_DIRS = frozenset(
    {"node_modules", "__pycache__", "venv", "env", "site-packages", "dist-packages", "bower_components"}
)
"""Folders never walked into, besides every hidden one."""

Progress = Callable[[int, int, str], None]
"""``progress(done, total, current_path)``, called as each file is finished."""


@dataclass
class MountReport:
    """What one mount did, for the CLI and ``llmos bench``."""

    root: str
    files_seen: int = 0
    files_indexed: int = 0
    """Files (new or changed) whose chunks were written."""
    files_unchanged: int = 0
    files_removed: int = 0
    """Files indexed before that vanished or can no longer be read; their chunks are gone."""
    skipped_binary: int = 0
    skipped_unreadable: int = 0
    skipped_empty: int = 0
    files_truncated: int = 0
    """Files longer than the chunk cap; only their first chunk_cap chunks are on the disk."""
    chunk_cap: int = MAX_CHUNKS_PER_FILE
    chunks_added: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0
    chunks_per_s: float = 0.0
    skipped: list[str] = field(default_factory=list)
    """Paths skipped as binary or unreadable (the first 100), for ``--verbose``."""


@dataclass
class Chunk:
    """A run of whole lines of one file (or a piece of one very long line)."""

    text: str
    line_start: int
    """1-based, inclusive."""
    line_end: int


def chunk_text(text: str, max_chunks: int = MAX_CHUNKS_PER_FILE) -> tuple[list[Chunk], bool]:
    """Cut ``text`` into chunks at line ends; returns (chunks, truncated)."""
    chunks: list[Chunk] = []
    parts: list[str] = []
    size = 0
    start = 1
    lineno = 0

    def close(end: int) -> None:
        nonlocal parts, size
        body = "".join(parts)
        if body.strip():
            chunks.append(Chunk(body, start, end))
        parts, size = [], 0

    for lineno, line in enumerate(text.splitlines(keepends=True), start=1):
        if len(chunks) >= max_chunks:
            return chunks[:max_chunks], True
        if parts and size + len(line) > CHUNK_MAX:
            close(lineno - 1)
        if not parts:
            start = lineno
        if len(line) > CHUNK_MAX:  # one huge line: cut it by characters
            for at in range(0, len(line), CHUNK_TARGET):
                if len(chunks) >= max_chunks:
                    return chunks, True
                parts, size = [line[at : at + CHUNK_TARGET]], 0
                close(lineno)
            continue
        parts.append(line)
        size += len(line)
        if size >= CHUNK_TARGET:
            close(lineno)
    if parts:
        close(lineno)
    if len(chunks) > max_chunks:
        return chunks[:max_chunks], True
    return chunks, False


@dataclass
class _Read:
    """A file as read for indexing: its hash, and its text when it is a text file."""

    sha256: str = ""
    text: str | None = None
    mtime: float = 0.0
    binary: bool = False
    unreadable: bool = False
    cut: bool = False
    """Only the file's head was decoded (it holds more than max_chunks chunks)."""


class NotText(ValueError):
    """Bytes that are no text file: ``str(exc)`` says why ("a binary file", "not UTF-8 text")."""


def looks_binary(head: bytes) -> bool:
    """The one test of a binary file in llmos (mounts, the files device, ``--app summarize``):
    a NUL byte in its first SNIFF_BYTES."""
    return b"\0" in head[:SNIFF_BYTES]


def decode_text(data: bytes, *, cut: bool = False) -> str:
    """``data`` as text; NotText when it is binary or not UTF-8. ``cut``: ``data`` is only the
    head of a file, so a character split at its very end is dropped, not refused."""
    if looks_binary(data):
        raise NotText("a binary file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if cut and exc.start >= len(data) - 3:
            return data[:exc.start].decode("utf-8")
        raise NotText("not UTF-8 text") from None


def _read(path: Path, max_chunks: int) -> _Read:
    """Hash the whole file; decode only what ``max_chunks`` chunks can hold."""
    try:
        st = os.stat(path)  # follows links: a dangling link is unreadable
        if not stat.S_ISREG(st.st_mode):
            return _Read(unreadable=True)  # FIFO, socket, device: opening could block forever
        keep = max_chunks * CHUNK_MAX * 4  # bytes; UTF-8 takes at most 4 per character
        digest = hashlib.sha256()
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        pieces: list[str] = []
        kept = 0
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
            if looks_binary(head):
                return _Read(binary=True)
            block = head
            while block:
                digest.update(block)
                if kept < keep:
                    pieces.append(decoder.decode(block[: keep - kept]))
                    kept += len(block)
                block = fh.read(1 << 20)
        cut = kept > keep
        if not cut:
            pieces.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        return _Read(binary=True)
    except OSError:
        return _Read(unreadable=True)
    return _Read(sha256=digest.hexdigest(), text="".join(pieces), mtime=st.st_mtime, cut=cut)


def _walk(root: Path, report: MountReport) -> Iterator[Path]:
    def unreadable_dir(exc: OSError) -> None:
        report.skipped_unreadable += 1
        _note(report, str(exc.filename))

    for folder, dirs, files in os.walk(root, onerror=unreadable_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder) / name


def _note(report: MountReport, path: str) -> None:
    if len(report.skipped) < 100:
        report.skipped.append(path)


def _root(path: str | Path) -> Path:
    root = Path(path).expanduser()
    try:
        root = root.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        raise UsageError(f"cannot mount {path}: no such folder") from None
    except OSError as exc:
        raise UsageError(f"cannot mount {path}: {exc.strerror}") from None
    if not root.is_dir():
        raise UsageError(f"cannot mount {path}: not a folder")
    if not os.access(root, os.R_OK | os.X_OK):
        raise UsageError(f"cannot mount {path}: permission denied")
    return root


def chunk_id(root: Path | str, path: Path | str, index: int) -> str:
    """Stable id of a chunk: the same file in two nested mounts gets two ids."""
    return hashlib.sha1(f"{root}\0{path}\0{index}".encode("utf-8", "surrogateescape")).hexdigest()


def shown(path: Path | str) -> str:
    """A path as valid text. A file name that is not UTF-8 (Python keeps its bytes as lone
    surrogates) gets U+FFFD for the bad bytes: chromadb, the journal and the terminal all
    need valid UTF-8. Ids still come from the real bytes (``chunk_id``)."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


_Record = tuple[str, str, str, dict[str, Any]]
"""(id, document, text to embed, metadata) of one chunk waiting to be written."""


def _records(root: Path, file: Path, read: _Read, chunks: list[Chunk]) -> list[_Record]:
    now = time.time()
    label = shown(os.path.relpath(file, root))
    records = []
    for index, chunk in enumerate(chunks):
        meta = {
            "path": shown(file),
            "line_start": chunk.line_start,
            "line_end": chunk.line_end,
            "file_sha256": read.sha256,
            "mount": shown(root),
            "mtime": read.mtime,
            "kind": "file",
            "created": now,
            "chunk": index,
        }
        # The vector also sees the file's path, so "the tokenizer's tests" can
        # find tests/test_tokenizer.py; the stored document is the chunk alone.
        records.append((chunk_id(root, file, index), chunk.text, f"{label}\n{chunk.text}", meta))
    return records


def mount(
    disk: Disk,
    path: str | Path,
    *,
    progress: Progress | None = None,
    max_chunks_per_file: int = MAX_CHUNKS_PER_FILE,
) -> MountReport:
    """Index the text files under ``path`` into the ``"files"`` collection."""
    began = time.perf_counter()
    root = _root(path)
    report = MountReport(root=shown(root), chunk_cap=max_chunks_per_file)

    # What this mount already holds: file -> (sha256, chunk ids). One read.
    stored: dict[str, tuple[str, list[str]]] = {}
    for hit in disk.get(COLLECTION, where={"mount": shown(root)}, texts=False):
        _sha, ids = stored.setdefault(str(hit.metadata.get("path")), (str(hit.metadata.get("file_sha256")), []))
        ids.append(hit.id)

    files = list(_walk(root, report))
    total = len(files)
    seen: set[str] = set()
    stale: list[str] = []
    pending: list[_Record] = []

    def flush() -> None:
        # Embed first (the slow part, and the one that can fail), then delete
        # the stale chunks, then write: a changed file's new chunks reuse its
        # old ids, and the window where a file is absent stays short.
        vectors = embed([p[2] for p in pending]) if pending else None
        if stale:
            disk.delete(COLLECTION, ids=stale)
            report.chunks_removed += len(stale)
            stale.clear()
        if pending:
            disk.add(
                COLLECTION,
                [p[0] for p in pending],
                [p[1] for p in pending],
                [p[3] for p in pending],
                embeddings=vectors,
            )
            report.chunks_added += len(pending)
            pending.clear()

    if progress:
        progress(0, total, "")
    for done, file in enumerate(files, start=1):
        key = shown(file)
        report.files_seen += 1
        read = _read(file, max_chunks_per_file)
        old = stored.get(key)
        if read.binary or read.unreadable:
            report.skipped_binary += read.binary
            report.skipped_unreadable += read.unreadable
            _note(report, key)
        elif old is not None and old[0] == read.sha256:
            report.files_unchanged += 1
            seen.add(key)
        else:
            chunks, truncated = chunk_text(read.text or "", max_chunks_per_file)
            if not chunks:
                report.skipped_empty += 1
            else:
                seen.add(key)
                if old is not None:
                    stale.extend(old[1])
                report.files_indexed += 1
                report.files_truncated += truncated or read.cut
                pending.extend(_records(root, file, read, chunks))
                if len(pending) >= FLUSH_CHUNKS:
                    flush()
        if progress:
            progress(done, total, key)

    for key, (_sha, ids) in stored.items():
        if key not in seen:
            stale.extend(ids)
            report.files_removed += 1
    flush()
    report.seconds = time.perf_counter() - began
    report.chunks_per_s = report.chunks_added / report.seconds if report.seconds > 0 else 0.0
    return report


def unmount(disk: Disk, path: str | Path) -> int:
    """Remove a mounted folder's chunks from the disk; returns how many went."""
    root = shown(Path(path).expanduser().resolve())
    ids = [hit.id for hit in disk.get(COLLECTION, where={"mount": root}, texts=False)]
    if not ids:
        known = ", ".join(mounts(disk)) or "none"
        raise UsageError(f"{path} is not mounted (mounted: {known})")
    disk.delete(COLLECTION, ids=ids)
    return len(ids)


def mounts(disk: Disk) -> list[str]:
    """The folders mounted on this disk."""
    return sorted({str(hit.metadata.get("mount")) for hit in disk.get(COLLECTION, texts=False)})
