"""Hostile input into the kernel and the disk: prompts (the real tiny model), mounted file names and
contents (the real disk: chromadb and the embedder in a temp dir), device output (a device of this
test and the real python device, dispatched through the kernel). Whatever comes in is kept exactly
(pages, journal, disk records), and nothing crashes. Making it safe to *show* is the display's job:
``test_terminal.py`` and ``test_tui_hostile.py``."""

from __future__ import annotations

import asyncio
import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmos.devices.base import MAX_OUTPUT, Device, DeviceResult, Risk, safe_text
from llmos.errors import UsageError
from llmos.kernel import syscall
from llmos.kernel.kernel import Kernel
from llmos.memory.journal import Journal
from llmos.memory.page import Origin, Trust
from tests.kernel.test_syscall import Devices
from tests.reliability.strategies import ESCAPES, fast, hostile_text


def no_surrogates(text: str) -> str:
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


class Hostile(Device):
    """A device whose output (or failure) is whatever the test sets."""

    name = "hostile"
    description = "returns what the test wants"
    schema = {"type": "object", "properties": {}, "additionalProperties": False}
    risk = Risk.SAFE

    def __init__(self) -> None:
        self.output: str = ""
        self.fail: str | None = None

    def call(self, args: dict) -> DeviceResult:
        if self.fail is not None:
            raise RuntimeError(self.fail)
        return DeviceResult(output=self.output)


@pytest.fixture(scope="module")
def hostile() -> Hostile:
    return Hostile()


@pytest.fixture(scope="module")
def kernel(tiny_cpu, tmp_path_factory, hostile):
    from llmos.devices.python import PythonDevice

    async def approve(request) -> bool:
        return True

    # Its own journal and disk paths: a module-scoped fixture runs before the per-test LLMOS_HOME.
    home = tmp_path_factory.mktemp("kernel")
    k = Kernel(tiny_cpu, lock=False, journal=Journal(home / "journal.sqlite3"), disk_path=home / "disk",
               devices=Devices(hostile, PythonDevice()), approver=approve)
    yield k
    k.close()


# -- (a) prompts ---------------------------------------------------------------------------------


@fast(20)
@given(text=hostile_text())
def test_any_prompt_is_a_turn_or_a_usage_error(kernel, text):
    """Escapes, controls, NUL, bidi overrides, lone surrogates, syscall tags, markup: the turn runs
    (4 tokens), the journal keeps the prompt exactly (lone surrogates, which no UTF-8 store or
    tokenizer takes, as U+FFFD), and blank input is a UsageError, not a crash. Before the fix a lone
    surrogate (``llmos run`` with argv bytes that are not UTF-8) raised UnicodeEncodeError."""
    proc = kernel.spawn("chat", "Be brief.")
    try:
        expected = no_surrogates(text)
        if not expected.strip():
            with pytest.raises(UsageError, match="empty input"):
                kernel.ask(proc, text, max_tokens=4)
            return
        result = kernel.ask(proc, text, max_tokens=4)
        assert len(result.tokens) <= 4
        pages = kernel.journal.pages(proc.pid)
        assert "".join(p.text for p in pages if p.origin is Origin.USER) == expected
        assert [p.text for p in pages if p.origin is Origin.ASSISTANT] == [result.text]
        assert proc.state.value == "SLEEPING"
    finally:
        kernel.kill(proc.pid)


# -- (c) device output ---------------------------------------------------------------------------


def dispatch(kernel, proc, device: str, args: dict):
    return asyncio.run(kernel.dispatch(proc, syscall.Call(device, args, "")))


@fast(25)
@given(output=st.one_of(hostile_text(max_pieces=30),  # and long enough to be cut at MAX_OUTPUT:
                        st.lists(st.sampled_from(ESCAPES + ["\ud800", "x"]), min_size=200, max_size=600).map("".join)))
def test_device_output_is_paged_in_exactly_as_untrusted_data(kernel, hostile, output):
    """Whatever a device returns becomes an untrusted DEVICE page holding exactly that text (made
    valid UTF-8, cut at MAX_OUTPUT): escapes are data for the model, never changed by the kernel."""
    proc = kernel.spawn("chat", "", grants={"hostile"})
    try:
        hostile.output, hostile.fail = output, None
        page = dispatch(kernel, proc, "hostile", {})
        expected = safe_text(output)
        expected = expected if len(expected) <= MAX_OUTPUT else \
            f"{expected[:MAX_OUTPUT]}\n[... {len(expected) - MAX_OUTPUT} more characters cut]"
        assert page.origin is Origin.DEVICE and page.trust is Trust.UNTRUSTED
        stored = [p for p in kernel.journal.pages(proc.pid) if p.origin is Origin.DEVICE]
        assert "".join(p.text for p in stored) == expected
        assert kernel.journal.audit_log(1)[0]["result_bytes"] == len(expected)
    finally:
        kernel.kill(proc.pid)


@fast(20)
@given(message=hostile_text())
def test_a_device_failing_with_a_hostile_message_is_a_one_line_error_page(kernel, hostile, message):
    proc = kernel.spawn("chat", "", grants={"hostile"})
    try:
        hostile.fail = message
        page = dispatch(kernel, proc, "hostile", {})
        assert page.origin is Origin.KERNEL and page.text.startswith("syscall hostile failed: hostile: ")
        assert "\n" not in page.text and syscall.is_text(page.text) and len(page.text) < 400
    finally:
        hostile.fail = None
        kernel.kill(proc.pid)


def test_the_python_devices_escapes_reach_the_page_unchanged(kernel):
    proc = kernel.spawn("chat", "", grants={"python"})
    code = r"print('title \x1b]0;pwned\x07 clip \x1b]52;c;cHduZWQ=\x07 csi \x9b2J bidi \u202e end')"
    page = dispatch(kernel, proc, "python", {"code": code})
    assert page.origin is Origin.DEVICE, page.text
    assert "title \x1b]0;pwned\x07 clip \x1b]52;c;cHduZWQ=\x07 csi \x9b2J bidi \u202e end" in page.text


# -- (b) mounted file names and contents ---------------------------------------------------------


@pytest.fixture(scope="module")
def disk(tmp_path_factory):
    from llmos.memory.disk import Disk

    return Disk(tmp_path_factory.mktemp("disk"))


def file_name() -> st.SearchStrategy[str]:
    """Names Linux allows (no "/" or NUL, at most 255 bytes), not hidden (the walk skips those)."""
    return hostile_text(surrogates=False, max_pieces=5).map(lambda n: n.replace("/", "").replace("\x00", "")) \
        .filter(lambda n: n.strip(".") and not n.startswith(".") and 0 < len(n.encode()) <= 200)


def contents() -> st.SearchStrategy[bytes]:
    return st.one_of(hostile_text(surrogates=False, max_pieces=20).map(lambda t: t.encode("utf-8")),
                     st.binary(max_size=40))


def kind(data: bytes) -> str:
    """What the mount's documented rules make of a file: binary (a NUL in the first 8 KB, or not
    UTF-8), empty (nothing but whitespace), or text."""
    if b"\0" in data[:8192]:
        return "binary"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "binary"
    return "text" if text.strip() else "empty"


def squeeze(text: str) -> str:
    return re.sub(r"\s", "", text)


@fast(12)
@given(files=st.dictionaries(file_name(), contents(), min_size=1, max_size=4), data=st.data())
def test_mount_keeps_hostile_names_and_contents_exactly(disk, tmp_path_factory, files, data):
    """Names with ESC, newlines, C1, bidi overrides and markup, contents with escapes and binary
    bytes: every file is indexed or skipped and counted, each chunk on the disk is the file's text
    and carries the file's exact path, and a second mount finds everything unchanged."""
    from llmos.memory.fs import COLLECTION, mount

    root = tmp_path_factory.mktemp("mount") / "a[" / data.draw(file_name(), label="folder")
    root.mkdir(parents=True)
    for name, body in files.items():
        (root / name).write_bytes(body)
    report = mount(disk, root)
    kinds = {name: kind(body) for name, body in files.items()}
    assert report.files_seen == len(files) and report.skipped_unreadable == 0
    assert report.skipped_binary == sum(k == "binary" for k in kinds.values())
    assert report.files_indexed == sum(k == "text" for k in kinds.values())
    assert report.skipped_empty == sum(k == "empty" for k in kinds.values())
    hits = disk.get(COLLECTION, where={"mount": str(root)})
    by_path: dict[str, list] = {}
    for hit in hits:
        by_path.setdefault(hit.metadata["path"], []).append(hit)
    assert set(by_path) <= {str(root / n) for n in files}
    for name, body in files.items():
        chunks = sorted(by_path.get(str(root / name), []), key=lambda h: h.metadata["chunk"])
        if kinds[name] != "text":
            assert not chunks
        else:  # in order, all of it: only chunks of nothing but whitespace are left out
            assert chunks and squeeze("".join(h.text for h in chunks)) == squeeze(body.decode("utf-8-sig"))
    again = mount(disk, root)
    assert again.files_unchanged == report.files_indexed and again.files_indexed == 0
    assert again.files_removed == 0 and again.chunks_added == 0


def test_mount_counts_named_hostile_files(disk, tmp_path):
    """The named cases, once each: ESC/OSC/C1/bidi/newline in names, escapes in contents, a NUL."""
    from llmos.memory.fs import COLLECTION, mount

    root = tmp_path / "hostile [" / "x] \x1b]0;pwned\x07"  # "[/x]" in the path: Rich markup if misread
    root.mkdir(parents=True)
    body = "hello \x1b[2J world\x1b]52;c;cHduZWQ=\x07 line\n\x9b bidi \u202e end\n".encode()
    names = ["nl\nname.md", "esc\x1b]0;pwned\x07.md", "c1\x9b31m.md", "bidi\u202egpj.md", "tab\tcr\r.md",
             "[bold]x.md", "-rf --no-preserve-root.md", "\u2028\ufeff.md"]
    for name in names:
        (root / name).write_bytes(body)
    (root / "nul.md").write_bytes(b"a\x00b")
    (root / "latin1.md").write_bytes(b"caf\xe9\n")
    report = mount(disk, root)
    assert (report.files_seen, report.files_indexed, report.skipped_binary) == (len(names) + 2, len(names), 2)
    hits = disk.get(COLLECTION, where={"mount": str(root)})
    assert {h.metadata["path"] for h in hits} == {str(root / n) for n in names}
    assert {h.text for h in hits} == {body.decode()}


def test_mount_of_a_file_name_that_is_not_utf8(disk, tmp_path):
    from llmos.memory.fs import mount

    root = tmp_path / "latin1-names"
    root.mkdir()
    (root / os.fsdecode(b"caf\xe9.md")).write_text("a note about coffee\n")
    (root / "ok.md").write_text("another note\n")
    report = mount(disk, root)  # indexed (the name shown with U+FFFD) or skipped and counted: no crash
    assert report.files_seen == 2 and report.files_indexed + report.skipped_unreadable == 2
