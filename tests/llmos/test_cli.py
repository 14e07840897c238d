"""`llmos run`, `llmos model` and bad input, through the installed command as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import run_llmos


def assert_one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    err = proc.stderr.decode()
    assert proc.returncode != 0
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("llmos: error:")
    for word in words:
        assert word in lines[0], lines[0]


def test_run_tiny_streams_an_answer():
    proc = run_llmos("run", "--model", "tiny", "Name three primary colours.")
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode().lower()
    assert sum(c in out for c in ("red", "blue", "yellow", "green")) >= 2


def test_run_reads_stdin():
    proc = run_llmos("run", "--model", "tiny", "-", input=b"What is the capital of France?")
    assert proc.returncode == 0
    assert "Paris" in proc.stdout.decode()


@pytest.mark.default_model
def test_default_model_answers_paris(shared_home):
    proc = run_llmos("run", "--stats", "What is the capital of France? Answer in one word.", home=shared_home)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "Paris" in proc.stdout.decode()
    stats = json.loads(proc.stderr.decode().strip().splitlines()[-1])
    assert stats["model"] == "qwen" and stats["tokens"] > 0


@pytest.mark.default_model
def test_model_info_shows_two_files(shared_home):
    proc = run_llmos("model", "--json", home=shared_home)
    assert proc.returncode == 0, proc.stderr.decode()
    info = json.loads(proc.stdout)
    w, r = info["weights"], info["runtime"]
    assert w["size_bytes"] == 491_400_064
    assert 400e6 < w["parameters"] < 700e6
    assert w["quantization"] == "Q4_K_M" and w["chat_template"] is True
    assert w["context_length_trained"] >= 32768
    assert r["llama_cpp_python"] and r["threads"] >= 1 and "AVX2" in r["build_flags"] or r["build_flags"]
    listing = json.loads(run_llmos("model", "list", "--json", home=shared_home).stdout)
    by_name = {row["name"]: row for row in listing}
    assert by_name["qwen"]["status"] == "ready" and by_name["tiny"]["installed"]


def test_model_list_before_first_use():
    listing = json.loads(run_llmos("model", "list", "--json").stdout)
    by_name = {row["name"]: row for row in listing}
    assert by_name["qwen"]["status"] == "joined on first use" and by_name["qwen"]["where"] == "shipped, joined on first use"
    assert by_name["qwen"]["quantization"] == "Q4_K_M" and by_name["qwen"]["tools"] is True  # read from part 1


def test_empty_prompt():
    assert_one_line_error(run_llmos("run", "--model", "tiny", "   "), "empty prompt")
    assert_one_line_error(run_llmos("run", "--model", "tiny", "-", input=b""), "empty prompt")


def test_missing_model_path(tmp_path):
    assert_one_line_error(run_llmos("run", "--model", str(tmp_path / "nope.gguf"), "hi"), "no such model")


def test_not_a_gguf(tmp_path):
    bad = tmp_path / "notes.gguf"
    bad.write_text("this is not a model\n" * 10)
    assert_one_line_error(run_llmos("run", "--model", str(bad), "hi"), "not a GGUF")


def test_truncated_gguf(tmp_path):
    from llmos.kernel.models import tiny_path

    cut = tmp_path / "cut.gguf"
    with tiny_path().open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(5_000_000))
    assert_one_line_error(run_llmos("run", "--model", str(cut), "hi"), "truncated")


def test_prompt_longer_than_context_is_paged_not_refused():
    paste = "START: the secret word is heliotrope.\n" + "filler line about nothing much.\n" * 600
    paste += "END: repeat the secret word from the start."
    proc = run_llmos("run", "--model", "tiny", "--ctx", "1024", "-", input=paste.encode())
    assert proc.returncode == 0, proc.stderr.decode()
    row = json.loads(run_llmos("ps", "--all", "--json").stdout)[0]
    assert row["swapped_pages"] > 0 and row["resident_tokens"] <= row["ram_budget"]


def test_binary_stdin():
    assert_one_line_error(run_llmos("run", "--model", "tiny", "-", input=b"\x00\x01\x02"), "binary")


def test_help_and_version_are_fast_and_light():
    code = ("import sys, time; t=time.perf_counter(); from llmos.cli import build_parser; build_parser();"
            "print(time.perf_counter()-t); print([m for m in ('llama_cpp','chromadb','textual','numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[1] == "[]"
    exe = shutil.which("llmos") or "llmos"
    started = time.perf_counter()
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("llmos ")
    assert subprocess.run([exe, "--help"], capture_output=True).returncode == 0
    # two whole interpreter starts; generous so a loaded CI box does not flake, and the
    # import list above is the real guard
    assert time.perf_counter() - started < 5
