"""The disk: a real chromadb (embedded in a temp dir, or a real server on loopback)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llmos.errors import DiskError, UsageError
from llmos.memory.disk import Disk, Hit
from llmos.memory.embed import DIM

TEXTS = {
    "cat": "The cat slept all afternoon on the warm windowsill.",
    "stocks": "Share prices fell sharply after the central bank raised rates.",
    "python": "Use sorted() with a key function to order a list of tuples in Python.",
    "lisbon": "My sister moved to Lisbon last spring with her two dogs.",
}


@pytest.fixture
def disk(tmp_path: Path) -> Disk:
    return Disk(tmp_path / "disk")


def fill(disk: Disk, name: str = "swap") -> None:
    disk.add(
        name,
        ids=list(TEXTS),
        texts=list(TEXTS.values()),
        metadatas=[{"pid": 1 if key != "stocks" else 2, "key": key} for key in TEXTS],
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_query_on_an_empty_collection_returns_nothing(disk: Disk) -> None:
    assert disk.query("swap", "anything", 5) == []
    assert disk.count("swap") == 0


def test_add_then_query_finds_the_nearest_meaning(disk: Disk) -> None:
    fill(disk)
    hits = disk.query("swap", "a kitten napping in the sun", 2)
    assert [h.id for h in hits][0] == "cat"
    assert hits[0].text == TEXTS["cat"]
    assert hits[0].metadata == {"pid": 1, "key": "cat"}
    assert 0.0 <= hits[0].distance < hits[1].distance <= 2.0
    assert len(disk.query("swap", "cat", 50)) == 4  # k larger than the collection


def test_query_filters_by_metadata(disk: Disk) -> None:
    fill(disk)
    hits = disk.query("swap", "a kitten napping in the sun", 5, where={"pid": 2})
    assert [h.id for h in hits] == ["stocks"]


def test_query_accepts_a_precomputed_vector(disk: Disk) -> None:
    from llmos.memory.embed import embed

    fill(disk)
    vector = embed(["where does my sister live"])[0]
    assert disk.query("swap", "ignored", 1, vector=vector)[0].id == "lisbon"


def test_get_delete_count(disk: Disk) -> None:
    fill(disk)
    assert disk.count("swap") == 4
    assert disk.get("swap", ids=["python"]) == [
        Hit("python", TEXTS["python"], {"pid": 1, "key": "python"}, 0.0)
    ]
    assert {h.id for h in disk.get("swap", where={"pid": 1})} == {"cat", "python", "lisbon"}
    assert [h.text for h in disk.get("swap", ids=["cat"], texts=False)] == [""]
    disk.delete("swap", ids=["cat", "python"])
    assert disk.count("swap") == 2
    disk.delete("swap", where={"pid": 2})
    assert [h.id for h in disk.get("swap")] == ["lisbon"]
    with pytest.raises(ValueError):
        disk.delete("swap")


def test_add_is_an_upsert(disk: Disk) -> None:
    fill(disk)
    disk.add("swap", ["cat"], ["Dogs bark at the mail carrier."], [{"pid": 1}])
    assert disk.count("swap") == 4
    assert disk.get("swap", ids=["cat"])[0].text == "Dogs bark at the mail carrier."


def test_stats_counts_records_and_bytes(disk: Disk) -> None:
    fill(disk, "swap")
    disk.add("files", ["f1"], ["é" * 10], [{"kind": "file"}])
    rows = {row.name: row for row in disk.stats()}
    assert rows["swap"].records == 4
    assert rows["swap"].bytes == sum(len(t.encode()) for t in TEXTS.values()) + 4 * DIM * 4
    assert rows["files"].bytes == 20 + 4 * DIM
    assert rows["files"].disk_bytes == rows["swap"].disk_bytes > 0


def test_default_disk_lives_in_the_data_dir(llmos_home: Path) -> None:
    disk = Disk()
    assert disk.path == llmos_home / "data" / "disk"
    assert (disk.path / "chroma.sqlite3").exists()


def test_reopen_in_a_new_process_gives_the_same_results(disk: Disk) -> None:
    fill(disk)
    expected = [h.id for h in disk.query("swap", "where does my sister live", 3)]
    # chromadb alone (no llmos.memory.disk, no embedding function passed) must
    # rebuild MiniLM from the persisted configuration: that is what the
    # registration is for. chromadb's default would try to download and fail.
    script = textwrap.dedent(
        f"""
        import json, chromadb
        from chromadb.config import Settings
        import llmos.memory.embed
        client = chromadb.PersistentClient(path={str(disk.path)!r}, settings=Settings(anonymized_telemetry=False))
        col = client.get_collection("swap")
        res = col.query(query_texts=["where does my sister live"], n_results=3)
        print(json.dumps({{"ids": res["ids"][0], "ef": col.configuration["embedding_function"].name()}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"ids": expected, "ef": "llmos-minilm-l6-v2-int8"}


def test_corrupt_directory_is_a_disk_error_and_is_left_untouched(tmp_path: Path) -> None:
    good = tmp_path / "good"
    fill(Disk(good))
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    (bad / "chroma.sqlite3").write_bytes(b"garbage, not a database" * 1000)
    before = tree_digest(bad)
    with pytest.raises(DiskError) as err:
        Disk(bad)
    assert str(bad) in str(err.value)
    assert "\n" not in str(err.value)
    assert tree_digest(bad) == before
    # once the user restores the folder, the same process can open it
    shutil.copy(good / "chroma.sqlite3", bad / "chroma.sqlite3")
    assert Disk(bad).count("swap") == 4


def test_path_that_is_a_file_is_a_disk_error(tmp_path: Path) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me")
    for path in (afile, afile / "disk"):
        with pytest.raises(DiskError, match=str(afile)):
            Disk(path)
    assert afile.read_text() == "keep me"


def test_server_that_is_down_is_a_disk_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DiskError, match=url):
        Disk(url=url)


def test_malformed_url_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        Disk(url="127.0.0.1:8000")


@pytest.mark.skipif(shutil.which("chroma") is None, reason="the chroma server command is not installed")
def test_chroma_server_works_and_its_loss_is_a_disk_error(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        ["chroma", "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                disk = Disk(url=url)
                break
            except DiskError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        fill(disk)
        assert disk.query("swap", "a kitten napping in the sun", 1)[0].id == "cat"
        assert disk.stats()[0].disk_bytes is None
    finally:
        server.terminate()
        server.wait(timeout=30)
    with pytest.raises(DiskError, match=url):
        disk.count("swap")
