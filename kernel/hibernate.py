"""Hibernation: the KV state of a pinned prefix, saved to the data dir.

Every process starts with the same pinned pages (the system prompt, later
the device schemas). Reading them costs the CPU a prefill on every cold
start; instead, their KV state is saved once, keyed by the model file and a
hash of the prefix tokens, and restored in milliseconds the next time.

The prefix is read in the chunks its pages give (``kernel/cpu.chunk_bounds``),
as every prompt that starts with those pages is, so a restored prefix gives
bit-identical output to a freshly read one. A file
that does not match (another model, a damaged file) is ignored and
rewritten; hibernation is an optimisation and never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

from llmos.kernel.cpu import CPU, Snapshot, chunk_bounds
from llmos.paths import data_dir

MAGIC = b"LLMOSKV1"


def _key(cpu: CPU, tokens: list[int], bounds: tuple[int, ...]) -> str:
    path = getattr(cpu, "path", None)
    ident = f"{path}:{path.stat().st_size if path else 0}:{cpu.n_ctx}".encode()
    h = hashlib.sha256(ident)
    h.update(struct.pack(f"<{len(tokens)}i", *tokens))
    h.update(struct.pack(f"<{len(bounds)}i", *bounds))  # the same tokens read in other chunks differ
    return h.hexdigest()[:32]


def prefix_file(cpu: CPU, tokens: list[int], bounds: tuple[int, ...]) -> Path:
    """Where the KV state of ``tokens`` read in chunks ``bounds`` (``chunk_bounds``) is kept."""
    folder = data_dir() / "kv"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{_key(cpu, tokens, bounds)}.kv"


def load(cpu: CPU, tokens: list[int], cuts: tuple[int, ...] = ()) -> Snapshot | None:
    """The hibernated KV state of ``tokens`` read with page starts ``cuts``, or None."""
    if not tokens:
        return None
    bounds = chunk_bounds(len(tokens), cuts)
    path = prefix_file(cpu, tokens, bounds)
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if not raw.startswith(MAGIC):
        return None
    (hlen,) = struct.unpack("<I", raw[8:12])
    try:
        header = json.loads(raw[12:12 + hlen])
    except ValueError:
        return None
    if header.get("tokens") != tokens or tuple(header.get("bounds") or ()) != bounds:
        return None
    return Snapshot(raw[12 + hlen:], tokens, bounds)


def save(cpu: CPU, snap: Snapshot) -> Path:
    path = prefix_file(cpu, snap.tokens, snap.bounds)
    header = json.dumps({"tokens": snap.tokens, "bounds": list(snap.bounds)}).encode()
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(MAGIC + struct.pack("<I", len(header)) + header + snap.data)
    os.replace(tmp, path)
    return path


def warm(cpu: CPU, tokens: list[int], cuts: tuple[int, ...] = ()) -> str:
    """Make the CPU hold ``tokens`` (the pinned pages, beginning at ``cuts``): restore them
    if hibernated, else read them and hibernate them. Runs on the CPU thread. Returns
    "restored", "saved" or "none"."""
    if not tokens or not cpu.can_snapshot:
        return "none"
    snap = load(cpu, tokens, cuts)
    if snap is not None:
        try:
            cpu.restore(snap)
            return "restored"
        except RuntimeError:
            pass  # damaged: read it again below and overwrite
    cpu.restore(Snapshot(b"", []))
    cpu.load_tokens(tokens, (), cuts)
    save(cpu, cpu.snapshot())
    return "saved"
