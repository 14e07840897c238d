"""The remote disk: a real Chroma server (``chroma run``) on 127.0.0.1, through the kernel's pager.

The server is started once per session on a free port; the failure test starts
its own, kills it (SIGKILL) and restarts it on the same port.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from llmos.kernel.kernel import Kernel
from llmos.memory.disk import Disk
from llmos.memory.journal import Journal
from llmos.memory.page import Origin
from llmos.memory.swap import collection, turn_vectors
from tests.conftest import assert_swap_agrees, run_llmos
from tests.servers import chroma_server

pytestmark = pytest.mark.skipif(shutil.which("chroma") is None, reason="the chroma server command is not installed")

FACTS = [f"Note {i}: the locker code for room {100 + i} is {7000 + 37 * i}." for i in range(14)]


@pytest.fixture(scope="session")
def chroma(tmp_path_factory):
    s = chroma_server(tmp_path_factory.mktemp("chroma-data"), tmp_path_factory.mktemp("servers")).start()
    yield s
    s.stop()


def small_kernel(cpu, tmp_path, url: str) -> Kernel:
    return Kernel(cpu, ram=256, journal=Journal(tmp_path / "journal.sqlite3"), lock=False, disk_url=url)


def fill(kernel: Kernel):
    proc = kernel.spawn("chat", "You are a helpful assistant.")
    for fact in FACTS:
        kernel.add_page(proc, Origin.USER, fact)
    return proc


def test_pages_swap_out_to_the_server_and_fault_back_in(tiny_cpu, chroma, tmp_path, llmos_home):
    kernel = small_kernel(tiny_cpu, tmp_path, chroma.url)
    try:
        proc = fill(kernel)
        swapped = [p for p in proc.space.pages if not p.resident]
        assert swapped and proc.space.evictions == len(swapped)
        disk = kernel.backing.swap.disk
        assert disk.url == chroma.url and disk.path is None
        assert not (llmos_home / "data" / "disk").exists()  # nothing went to an embedded disk
        assert_swap_agrees(disk, kernel.journal, proc.pid)
        # a page fault finds the evicted fact on the server by its exact number and brings it back
        first = swapped[0]
        code = first.text.rsplit(" ", 1)[-1].rstrip(".")
        back = kernel.pager.fault(proc.space, f"what is the locker code {code}?")
        assert first.id in [p.id for p in back] and first.resident
        assert first.text in tiny_cpu.detokenize(proc.space.prompt_tokens())
        # the journal holds every page whatever the disk did
        assert [p.text for p in kernel.journal.pages(proc.pid) if p.origin is Origin.USER] == FACTS
    finally:
        kernel.close()


def test_the_server_holds_the_same_collections_and_vectors_as_the_embedded_disk(tiny_cpu, chroma, tmp_path):
    import chromadb
    from chromadb.config import Settings

    kernel = small_kernel(tiny_cpu, tmp_path, chroma.url)
    try:
        proc = fill(kernel)
        kernel.backing.settle([])
        raw = chromadb.HttpClient(host="127.0.0.1", port=chroma.port, settings=Settings(anonymized_telemetry=False))
        assert collection(proc.pid) in [c.name for c in raw.list_collections()]
        mine = [p.id for p in kernel.journal.pages(proc.pid) if not p.resident]  # the server is the module's
        got = raw.get_collection(collection(proc.pid)).get(ids=mine, include=["documents", "embeddings", "metadatas"])
        assert len(got["ids"]) == len(mine) > 0
        # vectors are the offline MiniLM embeddings computed here, as for the embedded disk
        prevs = kernel.journal.prev_texts(got["ids"])
        expected = turn_vectors(got["documents"], [prevs.get(i) for i in got["ids"]])
        assert np.allclose(np.asarray(got["embeddings"]), np.asarray(expected), atol=1e-5)
        assert {m["origin"] for m in got["metadatas"]} <= {"user", "kernel"}
        config = raw.get_collection(collection(proc.pid)).configuration_json
        assert config["hnsw"]["space"] == "cosine"
    finally:
        kernel.close()


def test_env_config_and_flags_choose_the_server(chroma, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOS_DISK_URL", chroma.url)
    assert Disk().url == chroma.url
    monkeypatch.delenv("LLMOS_DISK_URL")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "config.toml").write_text(f'[disk]\nurl = "{chroma.url}"\n')
    monkeypatch.setenv("LLMOS_HOME", str(tmp_path / "home"))
    assert Disk().url == chroma.url
    Disk().add("files", ids=["x"], texts=["a note on the server"], metadatas=[{"path": "x"}])
    out = run_llmos("df", "--json", home=tmp_path / "home")
    assert out.returncode == 0, out.stderr.decode()
    assert any(row["name"] == "files" for row in json.loads(out.stdout))


def test_a_down_server_is_one_line_naming_the_url(tmp_path):
    from tests.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    out = run_llmos("df", "--disk-url", url, home=tmp_path)
    err = out.stderr.decode().strip()
    assert out.returncode == 1 and err.startswith("llmos: error: no Chroma server at " + url)
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_server_that_dies_loses_no_page_and_swap_resumes_when_it_is_back(tiny_cpu, tmp_path):
    srv = chroma_server(tmp_path / "data", tmp_path).start()
    kernel = small_kernel(tiny_cpu, tmp_path, srv.url)
    events: list[tuple[str, dict]] = []
    kernel.listeners.append(lambda kind, data: events.append((kind, data)))
    try:
        proc = fill(kernel)
        assert proc.space.evictions > 0
        srv.kill()
        before = proc.space.evictions
        for i in range(6):
            kernel.add_page(proc, Origin.USER, f"While the disk is down, note {i} says {i * 11}.")
        errors = [d for k, d in events if k == "swap_error"]
        assert errors and srv.url in errors[-1]["detail"]
        assert proc.space.evictions == before  # nothing left RAM without a copy on disk
        users = [p for p in kernel.journal.pages(proc.pid) if p.origin is Origin.USER]
        assert len(users) == len(FACTS) + 6  # nothing lost
        srv.start()  # the same port and data
        kernel.add_page(proc, Origin.USER, "The disk is back.")
        assert proc.space.evictions > before
        assert_swap_agrees(kernel.backing.swap.disk, kernel.journal, proc.pid)
    finally:
        kernel.close()
        srv.stop()
