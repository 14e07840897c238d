"""The pager's backing store: the journal for every page, and swap on the disk, opened lazily.

``Pager`` (``memory/ram.py``) talks to a ``Backing``; ``LazySwap`` is the real
one. It records each page in the journal before it is used, and opens the disk
(chromadb and the embedding model, a second or more) only when something is
first swapped out or there is something on disk to search, so a conversation
that never swaps never loads chromadb.
"""

from __future__ import annotations

from pathlib import Path

from llmos.errors import DiskError
from llmos.memory.journal import Journal
from llmos.memory.page import Page
from llmos.memory import recall
from llmos.paths import configured_disk_url, data_dir


class LazySwap:
    """The pager's backing store, opening the disk (chromadb + embeddings) only when
    something is first swapped out or there is something on disk to search."""

    def __init__(self, journal: Journal, disk_path: Path | None, disk_url: str | None, signal: str) -> None:
        self.journal = journal
        self.disk_path = disk_path or data_dir() / "disk"
        # No explicit disk: the configured one (LLMOS_DISK_URL or config.toml), if any.
        self.disk_url = disk_url if disk_url is not None or disk_path is not None else configured_disk_url()
        self.signal = signal
        self._swap = None
        self._off = ""
        """Why the embedded disk refuses writes for the rest of this run ("" while it works)."""

    @property
    def opened(self) -> bool:
        """Whether the disk was opened in this run (it is opened when first needed)."""
        return self._swap is not None

    @property
    def swap(self):
        if self._swap is None:
            from llmos.memory.disk import Disk
            from llmos.memory.swap import Swap

            disk = Disk(url=self.disk_url) if self.disk_url else Disk(self.disk_path)
            self._swap = Swap(disk, self.journal, signal=self.signal)
        return self._swap

    def record(self, page: Page) -> None:
        self.journal.record_page(page)

    def swap_out(self, pages: list[Page]) -> None:
        self._write(lambda ps: self.swap.swap_out(ps), pages)

    def clean(self, pages: list[Page]) -> None:
        self._write(lambda ps: self.swap.clean(ps), pages)

    def _write(self, write, pages: list[Page]) -> None:
        if self._off:
            raise DiskError(f"swap is off until llmos restarts; the disk failed: {self._off}")
        try:
            write(pages)
        except Exception as exc:
            # Why: after a failed write (a full disk) the embedded chromadb was seen to hang
            # on the next write in the same process (py-spy: inside its Rust upsert). Pages
            # stay in RAM and in the journal; a restart opens the disk afresh. A Chroma server
            # is another process: its writes are retried, and resume when it is back.
            if not self.disk_url:
                self._off = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise

    def swap_in(self, pages: list[Page]) -> None:
        self.swap.swap_in(pages)

    def settle(self, resident: list[Page]) -> None:
        if self._swap is not None:
            self._swap.settle(resident)

    def search(self, pid: int, query: str, k: int, resident: list[Page]) -> list[Page]:
        if self._swap is None and self.disk_url is None and not self.disk_path.exists():
            return self._resident_hits(pid, query, k, resident)
        return self.swap.search(pid, query, k, resident)

    def _resident_hits(self, pid: int, query: str, k: int, resident: list[Page]) -> list[Page]:
        """Nothing was ever written to disk, so every page is resident: there is nothing to page
        in, and no reason to open the disk. But the input being answered may be the one that
        fills RAM, and the eviction after it takes the least recently used pages, which may be
        the very ones it asks about (``llmos run -c --ram 300``: the first turn's door code,
        evicted by the question about it, and the answer made one up). So the resident pages
        that hold the question's words are hits, and the fault marks them used."""
        by_id = {p.id: p for p in resident}
        return [by_id[i] for i, _ in recall.lexical(self.journal, pid, query, k + 8) if i in by_id][:k]
