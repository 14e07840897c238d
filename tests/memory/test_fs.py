"""Mounting folders: real files, a real chromadb in a temp dir, the real embedding model."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from llmos.errors import UsageError
from llmos.memory import fs
from llmos.memory.disk import Disk

CAP = 6
"""A small chunk cap keeps the 5 MB one-line file from costing seconds of embedding."""

INVOICE_FUNCTION = '''\
def compute_invoice_tax(invoice, rate):
    """Sales tax owed on an invoice: the rate applied to each taxable line."""
    taxable = [line for line in invoice.lines if line.taxable]
    return round(sum(line.amount for line in taxable) * rate, 2)
'''


def filler(topic: str, n: int) -> str:
    return "".join(f"{topic} note {i}: nothing much to say here, just some padding text.\n" for i in range(n))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "sub").mkdir(parents=True)
    (root / "README.md").write_text("# Garden planner\n\nPlan which vegetables to sow each month.\n" + filler("garden", 40))
    code = filler("# misc", 30) + INVOICE_FUNCTION + filler("# more", 30)
    (root / "billing.py").write_text(code)
    (root / "notes.txt").write_text(filler("travel", 60))
    (root / "sub" / "deep.md").write_text("The lighthouse keeper logs the weather every night.\n")
    (root / "empty.txt").write_text("   \n")
    (root / "image.bin").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0" + os.urandom(2000))
    (root / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (root / "big.txt").write_text("z" * 5_000_000)  # one 5 MB line
    os.mkfifo(root / "pipe")  # reading would block: must be skipped, not opened
    (root / "dangling").symlink_to(root / "nowhere")
    for skipped in (".git", "node_modules", "__pycache__", ".venv"):
        (root / skipped).mkdir()
        (root / skipped / "x.md").write_text("should never be indexed")
    (root / ".env").write_text("SECRET=1\n")
    return root


@pytest.fixture
def disk(tmp_path: Path) -> Disk:
    return Disk(tmp_path / "disk")


def chunks_of(disk: Disk, path: Path) -> list:
    return sorted(disk.get("files", where={"path": str(path)}), key=lambda h: h.metadata["chunk"])


def test_chunks_break_at_line_ends_and_cut_only_overlong_lines() -> None:
    text = "".join(f"line {i} " + "x" * (i % 90) + "\n" for i in range(1, 400)) + "y" * 2500 + "\ntail\n"
    chunks, truncated = fs.chunk_text(text)
    assert not truncated
    assert "".join(c.text for c in chunks) == text
    lines = text.splitlines(keepends=True)
    for c in chunks:
        assert c.text == "".join(lines[c.line_start - 1 : c.line_end]) or c.line_start == c.line_end
        assert len(c.text) <= fs.CHUNK_MAX
    assert all(len(c.text) >= 800 for c in chunks[:-5])  # the long line and the tail are short pieces


def test_chunk_cap_bounds_a_huge_single_line() -> None:
    started = time.perf_counter()
    chunks, truncated = fs.chunk_text("a" * 5_000_000, max_chunks=10)
    assert truncated and len(chunks) == 10
    assert all(c.line_start == c.line_end == 1 for c in chunks)
    assert time.perf_counter() - started < 1.0


def test_reading_a_50_mb_file_decodes_only_what_the_cap_needs(tmp_path: Path) -> None:
    big = tmp_path / "huge.log"
    with big.open("w") as fh:
        for _ in range(50):
            fh.write("q" * 1_000_000)
    started = time.perf_counter()
    read = fs._read(big, fs.MAX_CHUNKS_PER_FILE)
    assert read.cut and read.text is not None
    assert len(read.text) <= fs.MAX_CHUNKS_PER_FILE * fs.CHUNK_MAX * 4
    assert time.perf_counter() - started < 5.0


def test_mount_counts_indexed_and_skipped_files(disk: Disk, folder: Path) -> None:
    calls: list[tuple[int, int, str]] = []
    report = fs.mount(disk, folder, max_chunks_per_file=CAP, progress=lambda *a: calls.append(a))
    assert report.root == str(folder.resolve())
    assert report.files_seen == 10  # hidden files and skipped folders are not seen at all
    assert report.files_indexed == 5  # README, billing, notes, deep, big
    assert report.skipped_binary == 2  # image.bin (NUL), latin1.txt (not UTF-8)
    assert report.skipped_unreadable == 2  # the FIFO and the dangling link
    assert report.skipped_empty == 1
    assert report.files_truncated == 1 and report.chunk_cap == CAP
    assert report.chunks_added == disk.count("files")
    assert report.chunks_per_s > 0
    assert calls[0] == (0, 10, "") and calls[-1][:2] == (10, 10)
    assert len(chunks_of(disk, folder / "big.txt")) == CAP
    indexed = {h.metadata["path"] for h in disk.get("files", texts=False)}
    assert not any("/." in p or "node_modules" in p or "__pycache__" in p for p in indexed)


def test_unreadable_file_is_skipped_and_counted(disk: Disk, tmp_path: Path) -> None:
    root = tmp_path / "locked"
    root.mkdir()
    (root / "open.txt").write_text("anyone can read this\n")
    secret = root / "secret.txt"
    secret.write_text("only the owner\n")
    secret.chmod(0)
    try:
        report = fs.mount(disk, root)
    finally:
        secret.chmod(0o600)
    # root (as in CI) reads a 000 file all the same; anyone else cannot
    readable = os.geteuid() == 0
    assert report.skipped_unreadable == (0 if readable else 1)
    assert report.files_indexed == (2 if readable else 1)


def test_chunk_metadata_points_at_the_lines(disk: Disk, folder: Path) -> None:
    fs.mount(disk, folder, max_chunks_per_file=CAP)
    lines = (folder / "billing.py").read_text().splitlines(keepends=True)
    for hit in chunks_of(disk, folder / "billing.py"):
        m = hit.metadata
        assert hit.text == "".join(lines[m["line_start"] - 1 : m["line_end"]])
        assert m["mount"] == str(folder.resolve()) and m["kind"] == "file"
        assert len(m["file_sha256"]) == 64 and m["mtime"] > 0 and m["created"] > 0


def test_query_finds_the_file_and_line_range(disk: Disk, folder: Path) -> None:
    fs.mount(disk, folder, max_chunks_per_file=CAP)
    hit = disk.query("files", "calculate the sales tax owed on an invoice", 1)[0]
    assert hit.metadata["path"] == str(folder / "billing.py")
    first, last = 31, 34  # the function's lines: 30 filler lines come first
    assert hit.metadata["line_start"] <= last and hit.metadata["line_end"] >= first
    assert "taxable" in hit.text
    hit = disk.query("files", "who records the weather at the lighthouse?", 1)[0]
    assert hit.metadata["path"] == str(folder / "sub" / "deep.md")
    assert (hit.metadata["line_start"], hit.metadata["line_end"]) == (1, 1)


def test_remount_without_changes_indexes_nothing(disk: Disk, folder: Path) -> None:
    first = fs.mount(disk, folder, max_chunks_per_file=CAP)
    again = fs.mount(disk, folder, max_chunks_per_file=CAP)
    assert again.files_indexed == 0 and again.chunks_added == 0 and again.chunks_removed == 0
    assert again.files_unchanged == first.files_indexed
    assert disk.count("files") == first.chunks_added


def test_remount_reindexes_only_the_changed_file_and_drops_its_old_chunks(disk: Disk, folder: Path) -> None:
    fs.mount(disk, folder, max_chunks_per_file=CAP)
    notes = folder / "notes.txt"
    old_ids = {h.id for h in chunks_of(disk, notes)}
    assert len(old_ids) > 2
    readme_before = chunks_of(disk, folder / "README.md")
    notes.write_text("Packing list: passport, charger, sunscreen.\n")
    (folder / "sub" / "deep.md").unlink()

    report = fs.mount(disk, folder, max_chunks_per_file=CAP)
    assert report.files_indexed == 1 and report.files_removed == 1
    assert report.chunks_added == 1
    now = chunks_of(disk, notes)
    assert [h.text for h in now] == ["Packing list: passport, charger, sunscreen.\n"]
    assert not disk.get("files", ids=sorted(old_ids - {now[0].id}))
    assert not chunks_of(disk, folder / "sub" / "deep.md")
    assert chunks_of(disk, folder / "README.md") == readme_before  # untouched, same created stamp
    assert disk.query("files", "what to pack for the trip", 1)[0].metadata["path"] == str(notes)


def test_mounts_and_unmount(disk: Disk, folder: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.md").write_text("A second folder.\n")
    fs.mount(disk, folder, max_chunks_per_file=CAP)
    fs.mount(disk, other)
    assert fs.mounts(disk) == sorted([str(folder.resolve()), str(other.resolve())])
    removed = fs.unmount(disk, other)
    assert removed == 1
    assert fs.mounts(disk) == [str(folder.resolve())]
    with pytest.raises(UsageError, match="not mounted"):
        fs.unmount(disk, other)


def test_missing_folder_or_a_file_is_a_clear_error(disk: Disk, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=f"cannot mount {tmp_path / 'absent'}: no such folder"):
        fs.mount(disk, tmp_path / "absent")
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        fs.mount(disk, afile)
