"""kernel/catalog.py: the GGUFs a user already has, on real directory layouts in tmp.

Each source's layout is built as its tool writes it (Hugging Face cache with blobs,
snapshot symlinks and refs; Ollama manifests and sha256 blobs; LM Studio's
publisher/repo folders). The "models" are a few bytes starting with b"GGUF": nothing
is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from llmos.errors import UsageError
from llmos.kernel import catalog
from llmos.kernel.catalog import find, lookup
from llmos.kernel.models import pulled_dir
from llmos.paths import config_file


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """A fake home with none of the tools' folders, and no tool's environment variable."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME",
                 "OLLAMA_MODELS", "LMSTUDIO_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(catalog, "OLLAMA_SERVICE_DIR", tmp_path / "usr-share-ollama" / "models")
    return home


def gguf(path: Path, size: int = 32, fill: bytes = b"\0") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + fill * (size - 4))
    return path


def hf_repo(cache: Path, repo_id: str, files: dict[str, bytes], commit: str = "c" * 40,
            kind: str = "models") -> Path:
    """A repo as huggingface_hub downloads it: blobs by hash, snapshot symlinks, refs/main."""
    repo = cache / f"{kind}--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    for name, content in files.items():
        blob = repo / "blobs" / hashlib.sha256(content).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(content)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def ollama_model(root: Path, ref: str, content: bytes = b"GGUF" + b"\1" * 60,
                 media: str = "application/vnd.ollama.image.model", folder: str = "manifests") -> Path:
    """An Ollama pull: the blob and its manifest at manifests/<host>/<namespace>/<model>/<tag>."""
    digest = hashlib.sha256(content).hexdigest()
    blob = root / "blobs" / f"sha256-{digest}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(content)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": "sha256:" + "0" * 64, "size": 10},
        "layers": [{"mediaType": "application/vnd.ollama.image.license", "digest": "sha256:" + "1" * 64,
                    "size": 5},
                   {"mediaType": media, "digest": f"sha256:{digest}", "size": len(content)}],
    }
    path = root / folder / ref
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    return blob


def by_name(found) -> dict:
    return {f.name: f for f in found}


# -- nothing there ------------------------------------------------------------------------------

def test_no_source_present_is_an_empty_list():
    assert find({}) == []
    assert lookup("anything", {}) is None


def test_config_none_reads_config_toml_and_no_models_section_is_fine(tmp_path):
    assert find() == []
    gguf(tmp_path / "mine" / "Phi-3-Mini.gguf")
    config_file().write_text(f'[models]\nfolders = ["{tmp_path / "mine"}"]\n')
    assert [f.name for f in find()] == ["phi-3-mini"]


# -- pulled -----------------------------------------------------------------------------------------

def test_pulled_models_are_found_and_the_staging_folder_is_not():
    path = gguf(pulled_dir() / "Qwen--Qwen2.5-0.5B-Instruct-GGUF" / "qwen2.5-0.5b-instruct-q4_k_m.gguf", 40)
    gguf(pulled_dir() / ".partial" / "half.gguf")
    gguf(pulled_dir() / "stray.gguf")  # not in the <owner>--<repo> layout
    (found,) = find({})
    assert found == catalog.Found("qwen2.5-0.5b-instruct-q4_k_m", path, "pulled",
                                  "Pulled: Qwen/Qwen2.5-0.5B-Instruct-GGUF", 40)


# -- Hugging Face cache ---------------------------------------------------------------------------

def test_huggingface_cache_gguf_files_of_model_repos(home):
    cache = home / ".cache" / "huggingface" / "hub"
    snapshot = hf_repo(cache, "Qwen/Qwen2.5-0.5B-Instruct-GGUF", {
        "qwen2.5-0.5b-instruct-q4_k_m.gguf": b"GGUF" + b"\2" * 96,
        "mmproj-qwen-f16.gguf": b"GGUF" + b"\3" * 20,
        "README.md": b"# readme",
    })
    hf_repo(cache, "someone/gguf-dataset", {"data.gguf": b"GGUF" + b"\4" * 10}, kind="datasets")
    (found,) = find({})
    assert found.name == "qwen2.5-0.5b-instruct-q4_k_m"
    assert found.path == snapshot / "qwen2.5-0.5b-instruct-q4_k_m.gguf"  # the snapshot path, not the blob
    assert found.path.is_symlink()
    assert (found.source, found.where, found.size) == (
        "huggingface", "Hugging Face cache: Qwen/Qwen2.5-0.5B-Instruct-GGUF", 100)


def test_huggingface_cache_honours_hf_hub_cache_and_hf_home(tmp_path, monkeypatch):
    hf_repo(tmp_path / "hubcache", "a/one-GGUF", {"one.gguf": b"GGUF1234"})
    hf_repo(tmp_path / "hfhome" / "hub", "b/two-GGUF", {"two.gguf": b"GGUF5678"})
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hfhome"))
    assert [f.name for f in find({})] == ["two"]
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hubcache"))  # wins over HF_HOME
    assert [f.name for f in find({})] == ["one"]


def test_huggingface_two_revisions_of_one_file_are_listed_once(home):
    cache = home / ".cache" / "huggingface" / "hub"
    hf_repo(cache, "a/m-GGUF", {"m.gguf": b"GGUF" + b"old!"}, commit="1" * 40)
    new = hf_repo(cache, "a/m-GGUF", {"m.gguf": b"GGUF" + b"new!!"}, commit="2" * 40)  # refs/main -> 2
    (found,) = find({})
    assert (found.path, found.size) == (new / "m.gguf", 9)


def test_a_corrupt_or_odd_huggingface_cache_is_no_error(home, tmp_path, monkeypatch):
    cache = home / ".cache" / "huggingface" / "hub"
    hf_repo(cache, "good/model-GGUF", {"good.gguf": b"GGUF" + b"\5" * 8})
    (cache / "models--broken--nosnapshots").mkdir()  # no snapshots folder
    (cache / "not-a-repo").mkdir()
    (cache / "models--dangling--link" / "snapshots" / ("d" * 40)).mkdir(parents=True)
    (cache / "models--dangling--link" / "snapshots" / ("d" * 40) / "x.gguf").symlink_to("../../blobs/gone")
    assert [f.name for f in find({})] == ["good"]
    monkeypatch.setenv("HF_HUB_CACHE", str(gguf(tmp_path / "a-file-not-a-folder")))
    assert find({}) == []


# -- LM Studio --------------------------------------------------------------------------------------

def test_lmstudio_models_folders_current_older_and_custom(home, tmp_path):
    current = gguf(home / ".lmstudio" / "models" / "lmstudio-community" / "Qwen2.5-7B-GGUF" / "Qwen2.5-7B-Q4_K_M.gguf", 50)
    gguf(home / ".lmstudio" / "models" / "lmstudio-community" / "Qwen2.5-7B-GGUF" / "mmproj-model-f16.gguf")
    gguf(home / ".cache" / "lm-studio" / "models" / "TheBloke" / "Old-GGUF" / "old.Q4_0.gguf")
    custom = tmp_path / "big-disk" / "lms"
    gguf(custom / "bartowski" / "Custom-GGUF" / "custom-q8_0.gguf")
    (home / ".lmstudio" / "settings.json").write_text(json.dumps({"downloadsFolder": str(custom), "other": 1}))
    found = by_name(find({}))
    assert set(found) == {"qwen2.5-7b-q4_k_m", "old.q4_0", "custom-q8_0"}
    assert found["qwen2.5-7b-q4_k_m"] == catalog.Found(
        "qwen2.5-7b-q4_k_m", current, "lmstudio", "LM Studio: lmstudio-community/Qwen2.5-7B-GGUF", 50)
    assert found["custom-q8_0"].where == "LM Studio: bartowski/Custom-GGUF"
    assert all(f.source == "lmstudio" for f in found.values())


def test_lmstudio_home_pointer_and_a_bad_settings_file(home, tmp_path):
    moved = tmp_path / "moved-lmstudio"
    gguf(moved / "models" / "pub" / "repo" / "moved.gguf")
    (home / ".lmstudio-home-pointer").write_text(f"{moved}\n")
    (moved / "settings.json").write_text("{not json")
    assert [f.name for f in find({})] == ["moved"]


# -- Ollama -----------------------------------------------------------------------------------------

def test_ollama_models_named_as_ollama_names_them(home):
    root = home / ".ollama" / "models"
    blob = ollama_model(root, "registry.ollama.ai/library/llama3.2/1b")
    ollama_model(root, "registry.ollama.ai/someuser/mymodel/latest", b"GGUF" + b"\2" * 10)
    ollama_model(root, "hf.co/bartowski/Qwen2.5-GGUF/Q4_K_M", b"GGUF" + b"\3" * 10)
    found = by_name(find({}))
    assert set(found) == {"llama3.2:1b", "someuser/mymodel:latest", "hf.co/bartowski/Qwen2.5-GGUF:Q4_K_M"}
    assert found["llama3.2:1b"] == catalog.Found("llama3.2:1b", blob, "ollama", "Ollama: llama3.2:1b", 64)
    assert blob.name.startswith("sha256-") and len(blob.name) == 7 + 64


def test_ollama_models_env_and_the_linux_service_folder(home, tmp_path, monkeypatch):
    ollama_model(home / ".ollama" / "models", "registry.ollama.ai/library/ignored/latest", b"GGUF-home")
    ollama_model(tmp_path / "custom", "registry.ollama.ai/library/custom/7b", b"GGUF-custom")
    ollama_model(catalog.OLLAMA_SERVICE_DIR, "registry.ollama.ai/library/service/latest", b"GGUF-service")
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "custom"))
    assert [f.name for f in find({})] == ["custom:7b", "service:latest"]


def test_ollama_newer_manifests_v2_symlinked_to_a_blob(home):
    root = home / ".ollama" / "models"
    ollama_model(root, "ollama.com/library/qwen3/4b", folder="manifests-v2")
    manifest = root / "manifests-v2" / "ollama.com" / "library" / "qwen3" / "4b"
    data = manifest.read_bytes()
    stored = root / "blobs" / f"sha256-{hashlib.sha256(data).hexdigest()}"
    stored.write_bytes(data)
    manifest.unlink()
    manifest.symlink_to(os.path.relpath(stored, manifest.parent))
    assert [f.name for f in find({})] == ["qwen3:4b"]


def test_ollama_what_is_not_a_readable_gguf_model_is_skipped(home):
    root = home / ".ollama" / "models"
    ollama_model(root, "registry.ollama.ai/library/good/latest")
    ollama_model(root, "registry.ollama.ai/library/safetensors/latest", b"PK\3\4 not a gguf")
    ollama_model(root, "registry.ollama.ai/library/adapter-only/latest", b"GGUF-adapter",
                 media="application/vnd.ollama.image.adapter")
    broken = root / "manifests" / "registry.ollama.ai" / "library" / "broken" / "latest"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"schemaVersion": 2, "layers": [')
    (root / "manifests" / "registry.ollama.ai" / "library" / "list" / "latest").parent.mkdir(parents=True)
    (root / "manifests" / "registry.ollama.ai" / "library" / "list" / "latest").write_text("[1, 2]")
    missing = root / "manifests" / "registry.ollama.ai" / "library" / "missing" / "latest"
    missing.parent.mkdir(parents=True)
    missing.write_text(json.dumps({"layers": [{"mediaType": catalog.OLLAMA_MODEL_LAYER,
                                               "digest": "sha256:" + "e" * 64}]}))
    sneaky = root / "manifests" / "registry.ollama.ai" / "library" / "sneaky" / "latest"
    sneaky.parent.mkdir(parents=True)
    outside = gguf(home / "outside.gguf")  # a digest that is a path must not reach it
    sneaky.write_text(json.dumps({"layers": [{"mediaType": catalog.OLLAMA_MODEL_LAYER,
                                              "digest": str(outside)}]}))
    assert [f.name for f in find({})] == ["good:latest"]


# -- folders from config.toml -----------------------------------------------------------------------

def test_configured_folders_searched_four_deep(home, tmp_path):
    models = home / "models"
    top = gguf(models / "Mistral-7B-Instruct.Q4_K_M.gguf", 70)
    gguf(models / "a" / "b" / "c" / "d" / "deep.gguf")
    gguf(models / "a" / "b" / "c" / "d" / "e" / "too-deep.gguf")
    (models / "empty.gguf").write_bytes(b"")
    (models / "text.gguf").write_text("not a model")
    gguf(tmp_path / "other" / "second.gguf")
    config = {"models": {"folders": ["~/models", str(tmp_path / "other"), str(tmp_path / "missing")]}}
    found = find(config)
    assert [f.name for f in found] == ["mistral-7b-instruct.q4_k_m", "deep", "second"]
    assert found[0] == catalog.Found("mistral-7b-instruct.q4_k_m", top, "folder", "Folder: ~/models", 70)
    assert found[2].where == f"Folder: {tmp_path / 'other'}"


@pytest.mark.parametrize("folders", ["~/models", {"a": 1}, [1, 2], ["~/ok", None]])
def test_configured_folders_not_a_list_of_paths_is_a_usage_error(folders):
    with pytest.raises(UsageError, match=r"config.toml: \[models\] folders must be a list of paths"):
        find({"models": {"folders": folders}})


def test_unreadable_folders_and_files_are_skipped(home, monkeypatch):
    gguf(home / "models" / "ok.gguf")
    gguf(home / "models" / "locked" / "inside.gguf")
    gguf(home / "models" / "unreadable.gguf")
    scandir, open_ = os.scandir, Path.open

    def denied(real):  # as chmod 000 would, also when the tests run as root
        def call(path, *args, **kwargs):
            if Path(path).name in ("locked", "unreadable.gguf"):
                raise PermissionError(13, "Permission denied", str(path))
            return real(path, *args, **kwargs)
        return call

    monkeypatch.setattr(os, "scandir", denied(scandir))
    monkeypatch.setattr(Path, "open", denied(open_))
    assert [f.name for f in find({"models": {"folders": ["~/models"]}})] == ["ok"]


# -- naming: split files, collisions, reserved names, duplicates ------------------------------------

def test_a_split_gguf_is_listed_once_by_its_first_part(home):
    models = home / "models"
    first = gguf(models / "Qwen2.5-72B-Q4_K_M-00001-of-00003.gguf", 100)
    gguf(models / "Qwen2.5-72B-Q4_K_M-00002-of-00003.gguf", 100, b"\1")
    gguf(models / "Qwen2.5-72B-Q4_K_M-00003-of-00003.gguf", 50, b"\1")
    gguf(models / "incomplete-00001-of-00002.gguf")  # its second part is missing: not listed
    (found,) = find({"models": {"folders": ["~/models"]}})
    assert (found.name, found.path, found.size) == ("qwen2.5-72b-q4_k_m", first, 250)


def test_a_later_split_part_or_a_projector_is_not_a_model():
    assert catalog._model(Path("m-00002-of-00003.gguf"), None) is None
    assert catalog._model(Path("mmproj-m-f16.gguf"), None) is None
    assert catalog._model(Path("m.safetensors"), None) is None
    assert catalog._model(Path("M-00001-of-00002.GGUF"), None) == (
        "m", [Path("M-00001-of-00002.GGUF"), Path("M-00002-of-00002.GGUF")])


def test_name_collisions_get_the_source_as_prefix(home, tmp_path):
    gguf(home / ".lmstudio" / "models" / "pub" / "repo" / "Llama-3-8B.gguf", 40)
    gguf(tmp_path / "one" / "llama-3-8b.gguf", 41)
    gguf(tmp_path / "two" / "LLAMA-3-8B.gguf", 42)
    found = find({"models": {"folders": [str(tmp_path / "one"), str(tmp_path / "two")]}})
    assert [(f.name, f.source, f.size) for f in found] == [
        ("llama-3-8b", "lmstudio", 40), ("folder/llama-3-8b", "folder", 41), ("folder/llama-3-8b-2", "folder", 42)]


def test_shipped_model_names_are_reserved(home):
    for stem in ("qwen", "Tiny", "coder-1.5b", "default", "smollm2"):
        gguf(home / "models" / f"{stem}.gguf")
    names = [f.name for f in find({"models": {"folders": ["~/models"]}})]
    assert sorted(names) == ["folder/coder-1.5b", "folder/default", "folder/qwen", "folder/smollm2", "folder/tiny"]


def test_the_same_file_from_two_sources_is_listed_once(home, tmp_path):
    snapshot = hf_repo(home / ".cache" / "huggingface" / "hub", "a/shared-GGUF", {"shared.gguf": b"GGUF" + b"\7" * 20})
    linked = tmp_path / "links"
    linked.mkdir()
    (linked / "renamed.gguf").symlink_to(snapshot / "shared.gguf")  # same resolved file
    gguf(home / ".lmstudio" / "models" / "pub" / "repo" / "copied.gguf", 30)
    gguf(tmp_path / "copies" / "copied.gguf", 30)  # same name and size: a copy
    found = find({"models": {"folders": [str(linked), str(tmp_path / "copies")]}})
    assert [(f.name, f.source) for f in found] == [("shared", "huggingface"), ("copied", "lmstudio")]


def test_lookup_is_exact_and_case_insensitive(home):
    ollama_model(home / ".ollama" / "models", "registry.ollama.ai/library/llama3.2/1b")
    gguf(home / "models" / "Phi-3-Mini-4K.Q4_K_M.gguf")
    config = {"models": {"folders": ["~/models"]}}
    assert lookup("LLAMA3.2:1B", config).source == "ollama"
    assert lookup("phi-3-mini-4k.q4_k_m", config).name == "phi-3-mini-4k.q4_k_m"
    assert lookup("PHI-3-MINI-4K.Q4_K_M", config).source == "folder"
    assert lookup("phi-3-mini", config) is None
    assert lookup("llama3.2", config) is None
