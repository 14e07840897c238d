"""``llmos model pull`` against a real local Hub: a threaded HTTP server on 127.0.0.1 that answers
the calls huggingface_hub 2.4.0 makes (``/api/models/<repo>?blobs=true``, then GET
``/<repo>/resolve/<commit>/<file>`` with ``Range`` on a resume). No test reaches the internet."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from huggingface_hub import constants  # imported before HF_ENDPOINT is set: hub.py must read it per call

from llmos.errors import ModelError
from llmos.kernel import catalog, hub
from llmos.kernel.models import pulled_dir, tiny_path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fake_gguf(size: int, seed: int) -> bytes:
    """A GGUF-looking file: the magic, version 3, one tensor, then noise."""
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, 0)
    return head + hashlib.shake_256(seed.to_bytes(4, "little")).digest(size - len(head))


class Hub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.repos: dict[str, dict] = {}  # repo -> {"files": {path: bytes}, "gated": token or None}
        self.requests: list[dict] = []  # method, path, headers of every request
        self.drop_at: int | None = None  # the next full GET stops after this many bytes and closes
        self.down_after_drop = False  # after a drop, resolve GETs get 503 until this is reset
        self.dropped = False
        self.corrupt = False  # serve flipped bytes (the listing keeps the true sha256)
        self.ignore_range = False  # a mirror that answers every GET with the whole file
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def add(self, repo: str, files: dict[str, bytes], gated: str | None = None) -> None:
        self.repos[repo] = {"files": files, "gated": gated}

    def gets(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "GET" and "/resolve/" in r["path"]]


class Handler(BaseHTTPRequestHandler):
    server: Hub

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self.answer(body=False)

    def do_GET(self) -> None:
        self.answer(body=True)

    def answer(self, body: bool) -> None:
        hub_ = self.server
        path = unquote(urlsplit(self.path).path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        hub_.requests.append({"method": self.command, "path": self.path, "headers": headers})
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/[^/]+)?", path):
            repo = hub_.repos.get(m.group(1))
            if repo is None:
                return self.error(404, "RepoNotFound")
            siblings = [{"rfilename": name, "size": len(data), "blobId": "b" * 40,
                         "lfs": {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "pointerSize": 134}}
                        for name, data in repo["files"].items()]
            siblings.append({"rfilename": "README.md", "size": 12, "blobId": "c" * 40})
            return self.send(200, json.dumps({"id": m.group(1), "sha": COMMIT, "private": False,
                                              "gated": "manual" if repo["gated"] else False,
                                              "siblings": siblings}).encode(), {"Content-Type": "application/json"})
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        repo = hub_.repos.get(m.group(1)) if m else None
        if repo is None:
            return self.error(404, "RepoNotFound")
        if repo["gated"] and self.headers.get("Authorization") != f"Bearer {repo['gated']}":
            return self.error(401, "GatedRepo")
        data = repo["files"].get(m.group(3))
        if data is None:
            return self.error(404, "EntryNotFound")
        if hub_.corrupt:
            data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
        if hub_.dropped and hub_.down_after_drop:
            return self.error(503, None)
        r = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        start = int(r.group(1)) if r and not hub_.ignore_range else 0
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha256(repo["files"][m.group(3)]).hexdigest()}"',
                   "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self.send_response(206 if start else 200)
        for k, v in {**headers, "Content-Length": str(len(data) - start)}.items():
            self.send_header(k, v)
        self.end_headers()
        if not body:
            return
        if hub_.drop_at is not None and not start and not hub_.dropped:
            hub_.dropped = True
            self.wfile.write(data[: hub_.drop_at])
            self.wfile.flush()
            self.close_connection = True  # the rest never comes: the client sees a short body
            return
        view = memoryview(data)[start:]
        for i in range(0, len(view), 1 << 20):
            self.wfile.write(view[i:i + (1 << 20)])

    def error(self, status: int, code: str | None) -> None:
        self.send(status, b'{"error": "nope"}', {"X-Error-Code": code} if code else {})

    def send(self, status: int, body: bytes, headers: dict) -> None:
        self.send_response(status)
        for k, v in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@pytest.fixture
def server(monkeypatch, tmp_path):
    srv = Hub()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", srv.url)
    # These three are read when huggingface_hub is imported (constants.py), so they matter only to a fresh
    # process; hub.py never goes through Xet anyway (the server sends no X-Xet-* headers).
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    # huggingface_hub reads these when imported: keep a login of this machine's user out of the tests.
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    yield srv
    srv.shutdown()
    srv.server_close()


QUANTS = {"model-Q4_K_M.gguf": fake_gguf(1_500_000, 1), "model-Q8_0.gguf": fake_gguf(2_000_000, 2),
          "sub/model-IQ4_XS.gguf": fake_gguf(300_000, 3)}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_nothing_pulled() -> None:
    assert catalog.pulled() == []
    left = [p for p in pulled_dir().rglob("*") if p.is_file() and ".partial" not in p.parts] \
        if pulled_dir().exists() else []
    assert left == []


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


def test_pull_by_quant_lands_verified_and_is_listed(server):
    server.add("acme/m-GGUF", QUANTS)
    path = hub.pull("acme/m-GGUF", quant="q8_0", progress=False)
    assert path == pulled_dir() / "acme--m-GGUF" / "model-Q8_0.gguf"
    assert sha(path) == hashlib.sha256(QUANTS["model-Q8_0.gguf"]).hexdigest()
    assert catalog.pulled() == [path]
    assert not (pulled_dir() / ".partial").exists()
    assert [g["path"] for g in server.gets()] == [f"/acme/m-GGUF/resolve/{COMMIT}/model-Q8_0.gguf"]
    api = [r for r in server.requests if r["path"].startswith("/api/")]
    assert api and "blobs=" in api[0]["path"]
    # Pulled already: no second download.
    assert hub.pull("acme/m-GGUF", quant="Q8_0", progress=False) == path
    assert len(server.gets()) == 1


def test_pull_by_file_in_a_subfolder_and_the_q4_k_m_default(server):
    server.add("acme/m-GGUF", QUANTS)
    path = hub.pull("acme/m-GGUF", file="sub/model-IQ4_XS.gguf", progress=False)
    assert path == pulled_dir() / "acme--m-GGUF" / "model-IQ4_XS.gguf"
    assert sha(path) == hashlib.sha256(QUANTS["sub/model-IQ4_XS.gguf"]).hexdigest()
    default = hub.pull("acme/m-GGUF", progress=True)  # several GGUFs: Q4_K_M is preferred
    assert default.name == "model-Q4_K_M.gguf"
    assert catalog.pulled() == sorted([path, default])


def test_the_single_gguf_is_the_default_and_the_real_tiny_model_verifies(server):
    tiny = tiny_path()
    assert tiny is not None
    server.add("HuggingFaceTB/SmolLM2-GGUF", {"SmolLM2-135M-Instruct.Q4_1.gguf": tiny.read_bytes()})
    path = hub.pull("HuggingFaceTB/SmolLM2-GGUF", progress=False)
    assert path == pulled_dir() / "HuggingFaceTB--SmolLM2-GGUF" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size == tiny.stat().st_size and sha(path) == sha(tiny)
    assert catalog.pulled() == [path]


# http_get writes the body in DOWNLOAD_CHUNK_SIZE (10 MB) pieces: a drop loses the piece in flight,
# so the resume tests need a file of a few pieces.
CHUNK = constants.DOWNLOAD_CHUNK_SIZE
BIG = fake_gguf(2 * CHUNK + 3_000_000, 7)


def test_a_dropped_connection_keeps_the_staging_file_and_the_next_pull_resumes(server):
    server.add("acme/big-GGUF", {"big-Q8_0.gguf": BIG})
    server.drop_at, server.down_after_drop = len(BIG) // 2, True  # drop, then 503 on the in-call retry
    with pytest.raises(ModelError) as exc:
        hub.pull("acme/big-GGUF", progress=False)
    text = one_line(exc)
    assert "127.0.0.1" in text and "resume" in text and "503" in text
    staged = list((pulled_dir() / ".partial" / "acme--big-GGUF").glob("*.part"))
    assert len(staged) == 1 and staged[0].stat().st_size == CHUNK  # the whole pieces before the drop
    assert staged[0].read_bytes() == BIG[:CHUNK]
    assert_nothing_pulled()

    server.down_after_drop, server.requests = False, []
    path = hub.pull("acme/big-GGUF", progress=False)
    assert [g["headers"].get("range") for g in server.gets()] == [f"bytes={CHUNK}-"]
    assert sha(path) == hashlib.sha256(BIG).hexdigest()
    assert catalog.pulled() == [path]
    assert not (pulled_dir() / ".partial").exists()


def test_a_brief_drop_is_resumed_within_the_same_pull(server):
    server.add("acme/big-GGUF", {"big-Q8_0.gguf": BIG})
    server.drop_at = len(BIG) // 2
    path = hub.pull("acme/big-GGUF", progress=False)  # http_get retries by itself after 1 s
    assert [g["headers"].get("range") for g in server.gets()] == [None, f"bytes={CHUNK}-"]
    assert sha(path) == hashlib.sha256(BIG).hexdigest()


def test_a_mirror_that_ignores_range_restarts_the_file_cleanly(server):
    data = QUANTS["model-Q4_K_M.gguf"]
    server.add("acme/m-GGUF", {"model-Q4_K_M.gguf": data})
    server.ignore_range = True
    digest = hashlib.sha256(data).hexdigest()
    staging = pulled_dir() / ".partial" / "acme--m-GGUF" / f"model-Q4_K_M.gguf.{digest[:16]}.part"
    staging.parent.mkdir(parents=True)
    staging.write_bytes(data[:1000])
    (staging.parent / "model-Q4_K_M.gguf.00000000deadbeef.part").write_bytes(b"an older version")
    path = hub.pull("acme/m-GGUF", progress=False)
    assert [g["headers"].get("range") for g in server.gets()] == ["bytes=1000-"]  # answered 200, not 206
    assert sha(path) == hashlib.sha256(data).hexdigest()
    assert not (pulled_dir() / ".partial").exists()


def test_a_corrupt_download_fails_verification_and_leaves_nothing(server):
    server.add("acme/m-GGUF", {"model-Q4_K_M.gguf": QUANTS["model-Q4_K_M.gguf"]})
    server.corrupt = True
    with pytest.raises(ModelError) as exc:
        hub.pull("acme/m-GGUF", progress=False)
    assert "failed verification" in one_line(exc)
    assert not (pulled_dir() / "acme--m-GGUF" / "model-Q4_K_M.gguf").exists()
    assert not (pulled_dir() / ".partial").exists()
    assert_nothing_pulled()


def test_a_file_that_is_not_a_gguf_never_gets_a_final_name(server):
    server.add("acme/m-GGUF", {"model-Q4_K_M.gguf": b"<html>not a model</html>" * 100})
    with pytest.raises(ModelError) as exc:
        hub.pull("acme/m-GGUF", progress=False)
    assert "not a GGUF" in one_line(exc)
    assert_nothing_pulled()
    assert not (pulled_dir() / ".partial").exists()


def test_a_server_that_is_down_is_named(server, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(ModelError) as exc:
        hub.pull("acme/m-GGUF", progress=False)
    assert one_line(exc).startswith(f"cannot reach 127.0.0.1:{port}")
    assert_nothing_pulled()


def test_repo_not_found_and_repo_without_gguf(server):
    with pytest.raises(ModelError) as exc:
        hub.pull("acme/nothing", progress=False)
    text = one_line(exc)
    assert "no model repo acme/nothing" in text and "HF_TOKEN" in text
    server.add("acme/safetensors", {"model.safetensors": b"x" * 100})
    with pytest.raises(ModelError) as exc:
        hub.pull("acme/safetensors", progress=False)
    assert "has no .gguf file" in one_line(exc)
    with pytest.raises(ModelError) as exc:
        hub.pull("not a repo id", progress=False)
    assert "not a Hub repo id" in one_line(exc)
    assert server.gets() == []


def test_a_missing_quant_or_file_lists_what_there_is(server):
    server.add("acme/m-GGUF", QUANTS)
    with pytest.raises(ModelError) as exc:
        hub.pull("acme/m-GGUF", quant="Q5_K_S", progress=False)
    assert "no Q5_K_S GGUF (available quants: IQ4_XS, Q4_K_M, Q8_0)" in one_line(exc)
    with pytest.raises(ModelError) as exc:
        hub.pull("acme/m-GGUF", file="model-F16.gguf", progress=False)
    assert "model-Q8_0.gguf" in one_line(exc) and "sub/model-IQ4_XS.gguf" in str(exc.value)
    server.add("acme/two", {"a-Q8_0.gguf": fake_gguf(5000, 4), "a-Q6_K.gguf": fake_gguf(5000, 5)})
    with pytest.raises(ModelError) as exc:
        hub.pull("acme/two", progress=False)  # no Q4_K_M to prefer
    assert "choose one with --quant (available quants: Q6_K, Q8_0)" in one_line(exc)
    server.add("acme/split", {f"big-Q4_K_M-0000{i}-of-00002.gguf": fake_gguf(5000, i) for i in (1, 2)})
    with pytest.raises(ModelError) as exc:
        hub.pull("acme/split", quant="Q4_K_M", progress=False)
    assert "split into 2 files" in one_line(exc)
    assert server.gets() == []


def test_a_gated_repo_asks_for_hf_token_and_the_token_is_sent(server, monkeypatch):
    server.add("meta/gated-GGUF", {"g-Q4_K_M.gguf": fake_gguf(100_000, 6)}, gated="hf_secret123")
    with pytest.raises(ModelError) as exc:
        hub.pull("meta/gated-GGUF", progress=False)
    text = one_line(exc)
    assert "gated" in text and "HF_TOKEN" in text and f"{server.url}/meta/gated-GGUF" in text
    assert_nothing_pulled()
    monkeypatch.setenv("HF_TOKEN", "hf_secret123")
    path = hub.pull("meta/gated-GGUF", progress=False)
    assert path.is_file()
    assert {r["headers"].get("authorization") for r in server.requests[-2:]} == {"Bearer hf_secret123"}


def test_not_enough_disk_space_is_found_before_downloading(server, monkeypatch):
    server.add("acme/m-GGUF", {"model-Q8_0.gguf": QUANTS["model-Q8_0.gguf"]})
    monkeypatch.setattr(hub.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(ModelError) as exc:
        hub.pull("acme/m-GGUF", progress=False)
    assert "not enough disk space in" in one_line(exc) and "need 2 MB" in str(exc.value)
    assert server.gets() == []


def test_a_disk_that_fills_up_while_writing_says_so(server, monkeypatch):
    import errno

    server.add("acme/m-GGUF", {"model-Q8_0.gguf": QUANTS["model-Q8_0.gguf"]})
    real = hub.http_get

    class FullDisk:
        def __init__(self, fh):
            self.fh, self.room = fh, 500_000

        def write(self, chunk):
            if len(chunk) > self.room:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.room -= len(chunk)
            return self.fh.write(chunk)

        def __getattr__(self, name):
            return getattr(self.fh, name)

    monkeypatch.setattr(hub, "http_get", lambda url, fh, **kw: real(url, FullDisk(fh), **kw))
    with pytest.raises(ModelError) as exc:
        hub.pull("acme/m-GGUF", progress=False)
    assert one_line(exc).startswith("not enough disk space in ") and "need " in str(exc.value)
    assert_nothing_pulled()
