"""Malformed model output at every point of a system call: ``syscall.find`` (the block), the kernel's
``dispatch`` (the call) and ``turn`` (the loop around both). Whatever the model writes, the kernel
answers with a page (a KERNEL error page for anything wrong), never an exception.

``tests/kernel/test_syscall.py`` and ``tests/devices/test_bad_calls.py`` have the named cases; here
hypothesis generates the rest, against real devices (calc, clock, files on a temp root) and the
real tiny model.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmos.devices.calc import CalcDevice
from llmos.devices.clock import ClockDevice
from llmos.devices.files import FilesDevice
from llmos.kernel import syscall
from llmos.kernel.kernel import Kernel
from llmos.memory.journal import Journal
from llmos.memory.page import Origin, Page
from tests.kernel.test_syscall import Devices
from tests.reliability.strategies import any_char, fast, hostile_text


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                         hostile_text())
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(hostile_text(max_pieces=3), inner, max_size=4)), max_leaves=12)
"""Any JSON value (and what JSON escapes make of strings: controls, lone surrogates)."""

DEVICES = ["calc", "clock", "files", "recall", "ghost", ""]


def well_formed_args() -> st.SearchStrategy:
    """Arguments of the right shape for the real devices, with hostile strings in them."""
    return st.one_of(
        st.fixed_dictionaries({"expr": hostile_text()}),
        st.fixed_dictionaries({}, optional={"tz": hostile_text(), "format": hostile_text()}),
        st.fixed_dictionaries({"op": st.sampled_from(["read", "list"]),
                               "path": st.one_of(hostile_text(), st.sampled_from([".", "notes.md", "../x"]))}),
        st.fixed_dictionaries({"query": hostile_text()}),
    )


def block(device: str, args) -> str:
    return f"{syscall.OPEN}{json.dumps({'device': device, 'args': args})}{syscall.CLOSE}"


# -- the block: syscall.find -------------------------------------------------------------------


def check_find(text: str) -> None:
    """``find`` returns None or a Call of a str device and dict args, or raises SyscallError with a
    one-line message; nothing else, whatever ``text`` is."""
    try:
        call = syscall.find(text)
    except syscall.SyscallError as exc:
        message = str(exc)
        assert message and "\n" not in message and len(message) < 300, message
        return
    if call is None:
        assert syscall.OPEN not in text
        return
    assert isinstance(call, syscall.Call)
    assert isinstance(call.device, str) and isinstance(call.args, dict) and len(call.raw) <= 2000
    assert syscall.is_text(call.device) and syscall.is_text(call.args)  # the journal can hold it


@fast(200)
@given(st.text(any_char, max_size=200))
def test_find_on_arbitrary_text(text):
    check_find(text)
    check_find(f"Sure.{syscall.OPEN}{text}{syscall.CLOSE}")


@fast(200)
@given(device=st.one_of(st.sampled_from(DEVICES), hostile_text()), args=json_values, data=st.data())
def test_find_on_cut_and_mangled_call_blocks(device, args, data):
    """A valid call cut anywhere (max_tokens), with a character dropped or inserted, nested,
    doubled, or followed by more text: None, a Call or a SyscallError."""
    whole = block(device, args)
    check_find(whole)
    cut = data.draw(st.integers(0, len(whole)), label="cut")
    check_find(whole[:cut])
    at = data.draw(st.integers(0, len(whole)), label="at")
    check_find(whole[:at] + whole[at + 1:])
    check_find(whole[:at] + data.draw(st.sampled_from(['"', "{", "}", "\\", "<", "\x00", "\ud800"])) + whole[at:])
    check_find(syscall.OPEN + whole)  # nested
    check_find(whole[:cut] + whole)  # a cut block, then a whole one
    check_find(whole + whole)  # two calls: the first counts
    try:
        call = syscall.find(whole + " and then " + block("calc", {"expr": "1"}))
    except syscall.SyscallError:
        return
    assert call.device == device  # the first block is the call


@pytest.mark.parametrize("text, message", [
    (f"{syscall.OPEN}{'[' * 100_000}{']' * 100_000}{syscall.CLOSE}", "nested too deeply"),
    (f'{syscall.OPEN}{{"device": "calc", "args": {{"n": {"9" * 5000}}}}}{syscall.CLOSE}', "not usable JSON"),
    (f'{syscall.OPEN}{{"device": "calc", "args": {{"expr": "\\ud800"}}}}{syscall.CLOSE}', "lone surrogate"),
    (f'{syscall.OPEN}{{"device": "\\udcff", "args": {{}}}}{syscall.CLOSE}', "lone surrogate"),
    (f"{syscall.OPEN}{syscall.OPEN}{{\"device\": \"calc\", \"args\": {{}}}}{syscall.CLOSE}", "not JSON"),
    (f'{syscall.OPEN}{{"device": "calc", "args": "1+1"}}{syscall.CLOSE}', "JSON object"),
    (f'{syscall.OPEN}{{"device": 7, "args": {{}}}}{syscall.CLOSE}', '{"device": NAME'),
    (f'{syscall.OPEN}{{"device": "calc", "args": {{"expr": "1"}}', "not closed"),
], ids=["deep", "huge-int", "args-surrogate", "name-surrogate", "nested", "args-str", "name-int", "unclosed"])
def test_find_names_what_is_wrong(text, message):
    """Before the fix, the first two raised RecursionError and ValueError (out of the kernel's turn)."""
    with pytest.raises(syscall.SyscallError, match=message):
        syscall.find(text)


def test_find_reads_duplicate_keys_as_json_does():
    call = syscall.find(f'{syscall.OPEN}{{"device": "ghost", "device": "calc", "args": {{"expr": "1"}}, '
                        f'"args": {{"expr": "2"}}}}{syscall.CLOSE}')
    assert call.device == "calc" and call.args == {"expr": "2"}


# -- the call: Kernel.dispatch with real devices -------------------------------------------------


@pytest.fixture(scope="module")
def kernel(tiny_cpu, tmp_path_factory):
    root = tmp_path_factory.mktemp("files-root")
    (root / "notes.md").write_text("a note\x1b]0;pwned\x07\n", encoding="utf-8")
    # Its own journal and disk paths: a module-scoped fixture runs before the per-test LLMOS_HOME.
    home = tmp_path_factory.mktemp("kernel")
    k = Kernel(tiny_cpu, lock=False, journal=Journal(home / "journal.sqlite3"), disk_path=home / "disk",
               devices=Devices(CalcDevice(), ClockDevice(), FilesDevice(roots=[root])))
    yield k
    k.close()


@pytest.fixture(scope="module")
def proc(kernel):
    return kernel.spawn("chat", "You are helpful.", grants={"calc", "clock", "files"})


def dispatch(kernel, proc, device, args) -> Page:
    return asyncio.run(kernel.dispatch(proc, syscall.Call(device, args, "")))


def check_page(kernel, proc, device, args, page) -> None:
    assert isinstance(page, Page) and page.pid == proc.pid
    assert page.origin in (Origin.DEVICE, Origin.KERNEL)
    if page.origin is Origin.DEVICE:  # it ran: a granted device, arguments that fit its schema
        assert device in ("calc", "clock", "files") and isinstance(args, dict)
    elif device != "recall" or not isinstance(args, dict) or not isinstance(args.get("query"), str):
        assert "failed" in page.text and len(page.text) < 2000, page.text[:300]
    assert page.id in {p.id for p in kernel.journal.pages(proc.pid)}  # journalled before it is used
    assert proc.state.value in ("READY", "SLEEPING")


@fast(60)
@given(device=st.one_of(st.sampled_from(DEVICES), hostile_text(max_pieces=3)),
       args=st.one_of(json_values, well_formed_args()))
def test_dispatch_of_any_call_is_a_page(kernel, device, args):
    """Any device name, any JSON value as arguments (lists, strings, numbers, NaN, nested objects,
    controls and lone surrogates in strings): a page, never an exception."""
    proc = kernel.spawn("chat", "", grants={"calc", "clock", "files"})  # fresh: RAM never fills up
    try:
        check_page(kernel, proc, device, args, dispatch(kernel, proc, device, args))
    finally:
        kernel.kill(proc.pid)


@pytest.mark.parametrize("device, args, message", [
    ("recall", ["query"], "bad arguments for recall: arguments must be a JSON object, not list"),
    ("recall", "query", "arguments must be a JSON object, not str"),
    ("recall", {"query": "x" * 100_000}, "bad arguments for recall: query:"),
    ("recall", {"query": 5}, "5 is not of type 'string'"),
    ("\ud800", {}, "is not text"),
    ("calc", {"expr": "1+\udcff"}, "arguments of calc are not text"),
    (["calc"], {}, "a device name is a string, not list"),
    ("x" * 100_000, {}, "is not granted"),
], ids=["recall-list", "recall-str", "recall-huge", "recall-int", "name-surrogate", "args-surrogate",
        "name-list", "name-huge"])
def test_dispatch_names_what_is_wrong(kernel, proc, device, args, message):
    """Before the fix: recall with args that are no object raised AttributeError, a 100 KB recall
    query was echoed into RAM, a lone surrogate in a device name raised UnicodeEncodeError in the
    audit, a device name that is not a string raised sqlite3.ProgrammingError."""
    page = dispatch(kernel, proc, device, args)
    assert page.origin is Origin.KERNEL and message in page.text, page.text[:300]
    assert len(page.text) < 1000


def test_an_apps_unserializable_arguments_are_refused_and_audited(kernel, proc):
    args: dict = {"expr": "1"}
    args["self"] = args  # an app's call (apps/sdk.py) may pass any Python object
    page = dispatch(kernel, proc, "calc", args)
    assert page.origin is Origin.KERNEL and "not JSON data" in page.text
    assert kernel.journal.audit_log(1)[0]["args"] == {"(not JSON)": "dict"}


# -- the loop: Kernel.turn with the real tiny model ---------------------------------------------


def test_a_call_cut_by_max_tokens_is_an_error_page_and_the_process_goes_on(kernel):
    proc = kernel.spawn("chat", "You are helpful.", grants={"calc"})
    result = kernel.ask(proc, "What is 1234 * 5678?", max_tokens=6, mode="required")
    first = next(p for p in kernel.journal.pages(proc.pid) if p.origin is Origin.ASSISTANT)
    assert first.text.startswith(syscall.OPEN) and syscall.OPEN not in result.text  # a broken call is no words
    errors = [p for p in kernel.journal.pages(proc.pid) if p.origin is Origin.KERNEL]
    assert errors and errors[0].text == "syscall error: the syscall block was not closed (expected </syscall>)"
    assert proc.state.value == "SLEEPING"
    again = kernel.ask(proc, "Say hi.", max_tokens=2)  # the process still answers
    assert again.tokens and proc.state.value == "SLEEPING"


@pytest.mark.parametrize("max_tokens", [1, 3, 12])
def test_forced_calls_cut_at_any_length_never_raise(kernel, max_tokens):
    """A forced call cut anywhere (endless output is max_tokens long at most; a block cut before
    ``<syscall>`` is complete is no block): the turn returns, every round at most max_tokens
    long, and whatever went wrong is a one-line error page. Parametrized, not generated: each
    example is several rounds of the real model, and the 2-core test machine is shared."""
    proc = kernel.spawn("chat", "You are helpful.", grants={"calc", "clock"})
    try:
        result = kernel.ask(proc, "Compute 6*7 \x1b]0;pwned\x07.", max_tokens=max_tokens, mode="required")
        pages = kernel.journal.pages(proc.pid)
        rounds = [p for p in pages if p.origin is Origin.ASSISTANT]
        assert 1 <= len(rounds) <= 1 + 2 * 5 and len(result.tokens) <= max_tokens * len(rounds)
        first = rounds[0].text  # the forced round: a call, whole or cut (perhaps inside the tag)
        assert first.startswith(syscall.OPEN) or syscall.OPEN.startswith(first), first
        for page in pages:
            if page.origin is Origin.KERNEL:
                assert page.text.startswith("syscall ") and "\n" not in page.text, page.text
        assert proc.state.value == "SLEEPING"
    finally:
        kernel.kill(proc.pid)
