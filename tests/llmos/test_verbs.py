"""The OS verbs as plain commands: mount, df, free, ps, kill, dmesg (real chromadb, real journal)."""

from __future__ import annotations

import json

from tests.conftest import run_llmos
from tests.llmos.test_cli import assert_one_line_error


def test_mount_then_df_then_remount(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "boat.md").write_text("# Boat\nThe boat is called Marigold and sleeps four.\n")
    (notes / "code.py").write_text("def area(r):\n    return 3.14159 * r * r\n")
    (notes / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    first = json.loads(run_llmos("mount", str(notes), "--json").stdout)
    assert first["files_indexed"] == 2 and first["skipped_binary"] == 1 and first["chunks_added"] >= 2
    again = json.loads(run_llmos("mount", str(notes), "--json").stdout)
    assert again["files_indexed"] == 0 and again["files_unchanged"] == 2
    rows = {r["name"]: r for r in json.loads(run_llmos("df", "--json").stdout)}
    assert rows["files"]["records"] == first["chunks_added"] and rows["files"]["bytes"] > 0


def test_mount_errors_are_one_line(tmp_path):
    assert_one_line_error(run_llmos("mount", str(tmp_path / "missing")), "missing")
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    assert_one_line_error(run_llmos("mount", str(afile)), "file.txt")


def test_corrupt_disk_is_reported_and_left_alone(llmos_home):
    disk = llmos_home / "data" / "disk"
    disk.mkdir(parents=True)
    (disk / "chroma.sqlite3").write_bytes(b"not a database" * 100)
    assert_one_line_error(run_llmos("df"), str(disk))
    assert (disk / "chroma.sqlite3").read_bytes() == b"not a database" * 100


def test_free_ps_kill_dmesg_after_a_paged_run():
    paste = "The locker code is 4471.\n" + "Some filler text about the weather today.\n" * 300 + "What is the code?"
    assert run_llmos("run", "--model", "tiny", "--ram", "300", "--max-tokens", "16", "-",
                     input=paste.encode()).returncode == 0
    rows = json.loads(run_llmos("ps", "--all", "--json").stdout)
    assert rows[0]["state"] == "ZOMBIE" and rows[0]["swapped_pages"] > 0 and rows[0]["evictions"] > 0
    assert json.loads(run_llmos("ps", "--json").stdout) == []  # exited processes are hidden by default
    assert json.loads(run_llmos("free", "--json").stdout) == []
    log = run_llmos("dmesg").stdout.decode()
    assert "spawn pid" in log and "evict" in log
    assert_one_line_error(run_llmos("kill", "12345"), "no running process")


def test_free_shows_a_live_process_by_region(tiny_cpu):
    from llmos.kernel.kernel import Kernel
    from llmos.memory.page import Origin

    kernel = Kernel(tiny_cpu, ram=300, lock=False)
    try:
        proc = kernel.spawn("chat", "You are a helpful assistant.")
        for i in range(30):
            kernel.add_page(proc, Origin.USER, f"Fact {i}: the door code of room {i} is {1000 + i}.")
        rows = json.loads(run_llmos("free", "--json").stdout)
    finally:
        kernel.close()
    [row] = rows
    assert row["pid"] == proc.pid and row["budget"] == 300
    assert row["resident_tokens"] == proc.space.resident_tokens
    assert row["regions"]["user"]["swapped_pages"] > 0 and row["regions"]["system"]["resident_pages"] == 1
    assert row["pressure"] in ("ok", "warning")


def test_run_says_when_no_mounted_file_was_used(tmp_path):
    """The chat must not pass an answer from the model alone for one read from the user's files."""
    from llmos.apps.chat import NO_FILE

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "boat.md").write_text("# Boat\nThe boat is called Marigold and sleeps four.\n")
    plain = run_llmos("run", "--model", "tiny", "--max-tokens", "8", "Name one colour.")
    assert plain.returncode == 0 and NO_FILE not in plain.stderr.decode()  # nothing mounted: nothing to say
    run_llmos("mount", str(notes))
    off_topic = run_llmos("run", "--model", "tiny", "--max-tokens", "8", "Name one colour.")
    assert off_topic.returncode == 0 and f"llmos: {NO_FILE}" in off_topic.stderr.decode()
    on_topic = run_llmos("run", "--model", "tiny", "--max-tokens", "8", "What is the boat called? Marigold?")
    assert on_topic.returncode == 0 and NO_FILE not in on_topic.stderr.decode()
