"""files / files_write: only inside the roots, whatever the path says or the links do."""

from __future__ import annotations

import os
import sys

import pytest

from llmos.devices.base import invoke
from llmos.devices.files import FilesDevice, FilesWriteDevice


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "boat.md").write_text("The boat is called Marigold.\n")
    (root / "blob.bin").write_bytes(b"\x00\x01\x02\x03" * 10)
    (root / "latin1.txt").write_bytes("caf\xe9 au lait, d\xe9j\xe0 vu ".encode("latin-1") * 3)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET")
    return root, outside


def test_read_and_list_inside_the_root(tree):
    root, _ = tree
    files = FilesDevice([root])
    assert invoke(files, {"op": "read", "path": "notes/boat.md"}).output == "The boat is called Marigold.\n"
    assert invoke(files, {"op": "read", "path": str(root / "notes" / "boat.md")}).error is None
    listing = invoke(files, {"op": "list", "path": "."})
    assert listing.output.splitlines() == ["blob.bin  40 B", "latin1.txt  66 B", "notes/"]


@pytest.mark.parametrize("path", ["../outside/secret.txt", "notes/../../outside/secret.txt", "notes/../notes/boat.md"])
def test_dotdot_is_refused_even_when_it_would_stay_inside(tree, path):
    result = invoke(FilesDevice([tree[0]]), {"op": "read", "path": path})
    assert "'..' is not allowed" in result.error and "SECRET" not in result.output


def test_absolute_paths_outside_the_roots_are_refused(tree):
    root, outside = tree
    for path in (str(outside / "secret.txt"), "/etc/passwd", "~/.ssh/id_rsa"):
        result = invoke(FilesDevice([root]), {"op": "read", "path": path})
        assert "outside the allowed folders" in result.error, path
        assert result.output == ""


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_symlinks_escaping_the_root_are_refused(tree):
    root, outside = tree
    os.symlink(outside / "secret.txt", root / "innocent.txt")
    os.symlink(outside, root / "door")
    os.symlink(root / "notes" / "boat.md", root / "inner-link.md")
    files = FilesDevice([root])
    for path in ("innocent.txt", "door/secret.txt", str(root / "door" / "secret.txt")):
        result = invoke(files, {"op": "read", "path": path})
        assert "through a symlink" in result.error and "SECRET" not in result.output, path
    assert "through a symlink" in invoke(files, {"op": "list", "path": "door"}).error
    assert invoke(files, {"op": "read", "path": "inner-link.md"}).output.startswith("The boat")  # stays inside
    write = invoke(FilesWriteDevice([root]), {"path": "innocent.txt", "text": "pwned", "mode": "overwrite"})
    assert "through a symlink" in write.error
    assert (outside / "secret.txt").read_text() == "TOP SECRET"


def test_binary_files_are_refused_with_a_clear_message(tree):
    files = FilesDevice([tree[0]])
    assert invoke(files, {"op": "read", "path": "blob.bin"}).error == \
        "files: blob.bin is a binary file; files reads text only"
    assert "not UTF-8 text" in invoke(files, {"op": "read", "path": "latin1.txt"}).error


def test_reads_stop_at_max_bytes_without_splitting_a_character(tree):
    root, _ = tree
    (root / "long.txt").write_text("é" * 1000)
    result = invoke(FilesDevice([root], max_bytes=101), {"op": "read", "path": "long.txt"})
    assert result.error is None and result.output.startswith("é" * 50)
    assert result.output.endswith("\n[... 1899 more bytes not read]")


def test_writes_create_then_refuse_to_clobber_unless_told(tree):
    root, _ = tree
    write = FilesWriteDevice([root])
    assert write.risk.value == "ask" and FilesDevice.risk.value == "safe"
    assert invoke(write, {"path": "notes/new.txt", "text": "one\n"}).error is None
    assert "exists; pass mode overwrite or append" in invoke(write, {"path": "notes/new.txt", "text": "x"}).error
    invoke(write, {"path": "notes/new.txt", "text": "two\n", "mode": "append"})
    assert (root / "notes" / "new.txt").read_text() == "one\ntwo\n"
    assert "does not exist" in invoke(write, {"path": "missing/dir/x.txt", "text": "x"}).error
    assert "'..' is not allowed" in invoke(write, {"path": "../escape.txt", "text": "x"}).error
    assert not (root.parent / "escape.txt").exists()
