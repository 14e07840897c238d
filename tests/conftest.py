"""Shared fixtures. Every test runs with LLMOS_HOME in a temp dir; no test reaches the network.

The models are the real ones: ``tiny`` (SmolLM2-135M) for most tests, loaded
once per session; the default model where a test checks answer content.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def pytest_configure(config) -> None:
    """Under ``pytest -n N`` (pytest-xdist) each worker, and every process it starts, runs on its
    own share of the CPUs: llama.cpp sizes its thread team by the CPUs it may use
    (``kernel/llama.py``, ``default_threads``), and two teams spinning on the same cores slow
    each other down several times over. Linux only (``sched_setaffinity``); elsewhere the
    workers share the CPUs as they are."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # "gw0", "gw1", ...
    if not worker or not hasattr(os, "sched_setaffinity"):
        return
    cpus = sorted(os.sched_getaffinity(0))
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker.removeprefix("gw"))
    os.sched_setaffinity(0, cpus[index::count] or [cpus[index % len(cpus)]])


@pytest.fixture(scope="session")
def shared_kv(tmp_path_factory) -> Path:
    """The hibernated prefixes of the whole session (``kernel/hibernate.py``): every test's
    data dir links its ``kv`` folder here, so a system prompt's KV state is read once per
    model and session, then restored (bit-identical, as on a user's second start) instead
    of read again by every test's first turn. A test about hibernation itself is marked
    ``own_kv`` and starts with an empty folder of its own."""
    return tmp_path_factory.mktemp("kv")


@pytest.fixture(autouse=True)
def llmos_home(tmp_path_factory, monkeypatch, shared_kv, request) -> Path:
    home = tmp_path_factory.mktemp("llmos-home")
    if request.node.get_closest_marker("own_kv") is None:
        _link_kv(home, shared_kv)
    monkeypatch.setenv("LLMOS_HOME", str(home))
    monkeypatch.delenv("LLMOS_MODEL", raising=False)
    for name in ("LLMOS_CPU_URL", "LLMOS_DISK_URL", "LLMOS_CPU_TIMEOUT"):  # the user's remote machines
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(scope="session")
def tiny_cpu():
    from llmos.kernel.llama import LlamaCPU
    from llmos.kernel.models import resolve

    return LlamaCPU(resolve("tiny"), n_ctx=2048, name="tiny")


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory, shared_kv) -> Path:
    """A data dir where the default model is joined once for the whole session."""
    home = tmp_path_factory.mktemp("shared-home")
    _link_kv(home, shared_kv)
    return home


def _link_kv(home: Path, shared_kv: Path) -> None:
    """``home``'s folder of hibernated prefixes is the session's (``shared_kv``)."""
    (home / "data").mkdir()
    (home / "data" / "kv").symlink_to(shared_kv, target_is_directory=True)


def run_llmos(*args: str, home: Path | str | None = None, input: bytes | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed ``llmos`` command as a user would."""
    env = dict(os.environ)
    if home is not None:
        env["LLMOS_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "llmos", *args], input=input, capture_output=True,
                          env=env, timeout=timeout)


def assert_swap_agrees(disk, journal, pid: int) -> None:
    """The invariant between swap (chromadb) and the journal for one process: swap holds
    every evicted page, and besides them only copies of resident pages, which the journal
    lists as pending (``memory/swap.py``). After a restart's recovery there are none of those."""
    from llmos.memory.swap import collection

    on_disk = {h.id for h in disk.get(collection(pid), texts=False)}
    pages = journal.pages(pid)
    evicted = {p.id for p in pages if not p.resident}
    resident = {p.id for p in pages if p.resident}
    pending = set(journal.swap_pending().get(pid, []))
    assert evicted <= on_disk, f"evicted pages missing from swap: {evicted - on_disk}"
    assert on_disk - evicted == pending, "a copy in swap that the journal does not know of, or the reverse"
    assert pending <= resident
