"""Real servers on 127.0.0.1 for the remote CPU and disk tests: started on a free port,
waited for, stopped (or killed and restarted on the same port, for failure tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process. ``ready`` is a path that answers 200 once it serves."""

    def __init__(self, argv: list[str], port: int, ready: str, log: Path, timeout: float = 120) -> None:
        self.argv, self.port, self.ready, self.log, self.timeout = argv, port, ready, log, timeout
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        import httpx

        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
        out.close()
        deadline = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv[:3]} exited with {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(self.url + self.ready, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.argv[:3]} not ready after {self.timeout} s; see {self.log}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: the server dies as in a crash, mid-answer if it was answering."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def llama_server(model: Path | str, log_dir: Path, *, port: int | None = None, n_ctx: int = 2048,
                 threads: int | None = None) -> Server:
    """llama-cpp-python's server (extra ``llama-cpp-python[server]``) with ``model``, started
    through ``llmos.kernel.llama_server`` (its AMX workaround: the plain server crashes on
    its first request on such CPUs)."""
    port = port or free_port()
    argv = [sys.executable, "-m", "llmos.kernel.llama_server", "--model", str(model), "--host", "127.0.0.1",
            "--port", str(port), "--n_ctx", str(n_ctx)]
    if threads:
        argv += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    return Server(argv, port, "/v1/models", log_dir / f"llama-{port}.log")


def chroma_server(path: Path, log_dir: Path, *, port: int | None = None) -> Server:
    """``chroma run`` (chromadb's own server command) with its data in ``path``."""
    port = port or free_port()
    argv = ["chroma", "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
    return Server(argv, port, "/api/v2/heartbeat", log_dir / f"chroma-{port}.log")
