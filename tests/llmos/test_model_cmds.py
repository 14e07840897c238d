"""``llmos model pull | list | use | NAME`` and ``--model NAME``, run as a user runs them: the
installed command in a subprocess, the Hub answered by a real HTTP server on 127.0.0.1
(``tests/kernel/test_hub.py``), models found in real folder layouts, the real tiny model."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

from llmos.kernel.models import tiny_path
from tests.conftest import run_llmos
from tests.kernel.test_hub import server  # noqa: F401  (the fixture)
from tests.llmos.test_cli import assert_one_line_error

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
NAME = "smollm2-135m-instruct.q4_1"


def listing(home=None) -> dict[str, dict]:
    proc = run_llmos("model", "list", "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    return {row["name"]: row for row in json.loads(proc.stdout)}


def test_pull_then_list_then_run_it_by_name(server, llmos_home):  # noqa: F811
    server.add(REPO, {FILE: tiny_path().read_bytes(), "README.md": b"# SmolLM2\n"})
    pulled = run_llmos("model", "pull", REPO, "--quant", "q4_1")
    assert pulled.returncode == 0, pulled.stderr
    assert "sha256 verified" in pulled.stdout.decode() and f"--model {NAME}" in pulled.stdout.decode()
    row = listing()[NAME]
    assert row["source"] == "pulled" and row["quantization"] == "Q4_1" and row["context_trained"] == 8192
    assert row["tools"] is False and row["installed"] and row["size_bytes"] == tiny_path().stat().st_size
    assert hashlib.sha256(open(row["path"], "rb").read()).hexdigest() == \
        hashlib.sha256(tiny_path().read_bytes()).hexdigest()
    ran = run_llmos("run", "--model", NAME, "--temperature", "0", "Say hello.")
    assert ran.returncode == 0 and ran.stdout.strip(), ran.stderr
    # ... and as the default, once chosen: `llmos model` (info) loads the pulled file.
    assert run_llmos("model", "use", NAME).returncode == 0
    info = json.loads(run_llmos("model", "--json").stdout)
    assert info["weights"]["path"] == row["path"] and listing()[NAME]["default"]


def test_a_pull_that_cannot_reach_the_hub_is_one_line_and_lists_nothing(server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    assert_one_line_error(run_llmos("model", "pull", REPO), "cannot reach 127.0.0.1:9")
    server.add("someone/no-gguf", {"README.md": b"nothing here"})
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    assert_one_line_error(run_llmos("model", "pull", "someone/no-gguf"), "has no .gguf file")
    assert_one_line_error(run_llmos("model", "pull", REPO), f"no model repo {REPO}")
    assert set(listing()) == {"qwen", "tiny", "coder-1.5b"}


def test_models_of_ollama_lm_studio_and_config_folders_are_listed_and_run(llmos_home, tmp_path, monkeypatch):
    tiny = tiny_path()
    home = tmp_path / "user"
    monkeypatch.setenv("HOME", str(home))
    for var in ("OLLAMA_MODELS", "LMSTUDIO_HOME", "HF_HOME", "HF_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hf-cache"))
    # Ollama: a manifest per model, the GGUF as a blob named by its digest.
    digest = hashlib.sha256(tiny.read_bytes()).hexdigest()
    models = home / ".ollama" / "models"
    (models / "blobs").mkdir(parents=True)
    os.symlink(tiny, models / "blobs" / f"sha256-{digest}")
    manifest = models / "manifests" / "registry.ollama.ai" / "library" / "smollm2" / "135m"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": [
        {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}", "size": tiny.stat().st_size}]}))
    # LM Studio: publisher/repo/file.gguf
    lms = home / ".lmstudio" / "models" / "bartowski" / "SmolLM2-GGUF"
    lms.mkdir(parents=True)
    shutil.copy(tiny, lms / "SmolLM2-Copy-Q4_1.gguf")  # copies: one file found twice is listed once
    # a folder of the user's, from config.toml
    mine = tmp_path / "my-models"
    mine.mkdir()
    shutil.copy(tiny, mine / "Tiny-Again.gguf")
    (llmos_home / "config.toml").write_text(f'[models]\nfolders = ["{mine}"]\n')

    rows = listing()
    assert rows["smollm2:135m"]["source"] == "ollama" and rows["smollm2:135m"]["quantization"] == "Q4_1"
    assert rows["smollm2-copy-q4_1"]["source"] == "lmstudio"
    assert rows["tiny-again"]["source"] == "folder" and rows["tiny-again"]["context_trained"] == 8192
    for name in ("smollm2:135m", "tiny-again"):
        ran = run_llmos("run", "--model", name, "--temperature", "0", "Say hello.")
        assert ran.returncode == 0 and ran.stdout.strip(), ran.stderr
    table = run_llmos("model", "list").stdout.decode()
    assert "smollm2:135m" in table and "Q4_1" in table


def test_use_keeps_the_users_config_and_refuses_an_unknown_name(llmos_home):
    config = llmos_home / "config.toml"
    config.write_text("# my settings\n[cpu]\ntimeout = 90  # slow machine\n")
    done = run_llmos("model", "use", "tiny")
    assert done.returncode == 0, done.stderr
    text = config.read_text()
    assert "# my settings" in text and "timeout = 90  # slow machine" in text and 'default = "tiny"' in text
    assert listing()["tiny"]["default"] and not listing()["qwen"]["default"]
    assert_one_line_error(run_llmos("model", "use", "llama-70b"), "no such model: llama-70b")
    assert config.read_text() == text  # a refused name changes nothing
    assert_one_line_error(run_llmos("run", "--model", "llama-70b", "hi"), "no such model", "llmos model list")


def test_per_model_settings_are_applied_and_shown(llmos_home, tmp_path):
    template = tmp_path / "chatml.jinja"
    template.write_text("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    config = llmos_home / "config.toml"
    config.write_text(f'[models.tiny]\ncontext = 1024\nthreads = 1\ntemperature = 0.3\n'
                      f'chat_template = "{template}"\n')
    info = json.loads(run_llmos("model", "tiny", "--json").stdout)
    assert info["runtime"]["context_window"] == 1024 and info["runtime"]["threads"] == 1
    assert info["runtime"]["chat_format"] == "config.toml"
    assert info["settings"] == {"context": 1024, "threads": 1, "temperature": 0.3, "chat_template": str(template)}
    shown = run_llmos("model", "tiny").stdout.decode()
    assert "settings      context = 1024, threads = 1" in shown and "1,024 in use" in shown
    assert json.loads(run_llmos("model", "tiny", "--ctx", "2048", "--json").stdout)["runtime"]["context_window"] == 2048
    config.write_text("[models.tiny]\ncontxt = 1024\n")
    assert_one_line_error(run_llmos("model", "tiny"), "unknown setting 'contxt'")
    config.write_text('[models.tiny]\nthreads = "many"\n')
    assert_one_line_error(run_llmos("run", "--model", "tiny", "hi"), "threads must be a whole number")
