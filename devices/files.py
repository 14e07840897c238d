"""``files`` and ``files_write``: the user's files, inside the roots the user chose.

``files`` (risk safe) reads a text file or lists a folder; ``files_write``
(risk ask: the user approves each write) writes a text file. Both take paths
relative to a root (the first root unless the path names another one through
an absolute path inside it) and refuse everything else:

- a path with a ``..`` component, even one that would stay inside;
- an absolute path that is not inside a root;
- a path that resolves (symlinks followed, ``os.path.realpath``) outside
  every root: a link inside a root pointing out is an escape, refused;
- for writes, a parent folder that does not exist (no folder is created).

Containment is checked on the resolved path, which is then opened. Between
the check and the open a local process could swap a folder for a link; that
race is out of scope (the attacker here is text in the model's context, not
a process on the machine). Binary files (a NUL byte in the first 8 KB, or not
UTF-8) are refused with a message; reads stop at ``max_bytes``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from llmos.devices.base import Device, DeviceResult, Risk
from llmos.errors import DeviceError

MAX_READ = 256 * 1024
MAX_LIST = 500


class Roots:
    """The folders a files device may touch, resolved once."""

    def __init__(self, roots: Sequence[str | os.PathLike[str]] | None = None) -> None:
        chosen = list(roots) if roots else [Path.cwd()]
        self.roots = [Path(os.path.realpath(Path(r).expanduser())) for r in chosen]

    def resolve(self, path: str) -> Path:
        """The real path of ``path``, or DeviceError when it is not inside a root."""
        if not path or "\x00" in path:
            raise DeviceError("empty path or a path with a NUL byte")
        raw = Path(path).expanduser() if path.startswith("~") else Path(path)
        if ".." in raw.parts:
            raise DeviceError(f"{path!r}: '..' is not allowed in paths")
        candidate = raw if raw.is_absolute() else self.roots[0] / raw
        real = Path(os.path.realpath(candidate))
        for root in self.roots:
            if real == root or root in real.parents:
                return real
        where = ", ".join(str(r) for r in self.roots)
        if raw.is_absolute() and not any(candidate == r or r in candidate.parents for r in self.roots):
            raise DeviceError(f"{path!r} is outside the allowed folders ({where})")
        raise DeviceError(f"{path!r} leads outside the allowed folders ({where}) through a symlink")

    def show(self, real: Path) -> str:
        """``real`` relative to its root, as the model should write it back."""
        for root in self.roots:
            if real == root or root in real.parents:
                rel = real.relative_to(root)
                return str(rel) if root == self.roots[0] else str(real)
        return str(real)


def _read_text(path: Path, max_bytes: int) -> tuple[str, int]:
    """The file's text (at most ``max_bytes``) and how many bytes were left out."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        data = fh.read(max_bytes)
    from llmos.memory.fs import NotText, decode_text

    try:
        text = decode_text(data, cut=len(data) < size)
    except NotText as why:
        raise DeviceError(f"{path.name} is {why}; files reads text only") from None
    return text, max(0, size - len(data))


class FilesDevice(Device):
    name = "files"
    description = "read a text file or list a folder, inside the folders the user allowed"
    schema = {
        "type": "object",
        "properties": {
            "op": {"type": "string", "enum": ["read", "list"]},
            "path": {"type": "string", "minLength": 1, "maxLength": 4096},
        },
        "required": ["op", "path"],
        "additionalProperties": False,
    }
    risk = Risk.SAFE

    def __init__(self, roots: Sequence[str | os.PathLike[str]] | None = None, max_bytes: int = MAX_READ) -> None:
        self.roots = Roots(roots)
        self.max_bytes = max_bytes

    def call(self, args: dict) -> DeviceResult:
        path = self.roots.resolve(args["path"])
        if not path.exists():
            raise DeviceError(f"{args['path']!r} does not exist")
        if args["op"] == "list":
            return self._list(path)
        if path.is_dir():
            raise DeviceError(f"{args['path']!r} is a folder; use op list")
        if not path.is_file():
            raise DeviceError(f"{args['path']!r} is not a regular file")
        text, left = _read_text(path, self.max_bytes)
        note = f"\n[... {left} more bytes not read]" if left else ""
        return DeviceResult(output=text + note, data={"path": str(path), "bytes_left": left})

    def _list(self, path: Path) -> DeviceResult:
        if not path.is_dir():
            raise DeviceError(f"{self.roots.show(path)!r} is not a folder")
        entries = sorted(os.scandir(path), key=lambda e: e.name)
        rows = []
        for entry in entries[:MAX_LIST]:
            kind = "link" if entry.is_symlink() else "dir" if entry.is_dir() else "file"
            size = entry.stat(follow_symlinks=False).st_size if kind == "file" else None
            rows.append({"name": entry.name, "kind": kind, "bytes": size})
        lines = [f"{r['name']}{'/' if r['kind'] == 'dir' else ''}" + (f"  {r['bytes']} B" if r["bytes"] is not None
                                                                         else "") for r in rows]
        if len(entries) > MAX_LIST:
            lines.append(f"[... {len(entries) - MAX_LIST} more entries]")
        return DeviceResult(output="\n".join(lines) or "(empty folder)", data={"path": str(path), "entries": rows})


class FilesWriteDevice(Device):
    name = "files_write"
    description = "write a text file inside the folders the user allowed (asks the user first)"
    schema = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "minLength": 1, "maxLength": 4096},
            "text": {"type": "string", "maxLength": 200_000},
            "mode": {"type": "string", "enum": ["create", "overwrite", "append"]},
        },
        "required": ["path", "text"],
        "additionalProperties": False,
    }
    risk = Risk.ASK

    def __init__(self, roots: Sequence[str | os.PathLike[str]] | None = None) -> None:
        self.roots = Roots(roots)

    def call(self, args: dict) -> DeviceResult:
        path = self.roots.resolve(args["path"])
        if path in self.roots.roots:
            raise DeviceError(f"{args['path']!r} is a root folder, not a file")
        if not path.parent.is_dir():
            raise DeviceError(f"folder {self.roots.show(path.parent)!r} does not exist")
        if path.exists() and not path.is_file():
            raise DeviceError(f"{args['path']!r} exists and is not a regular file")
        mode = args.get("mode", "create")
        flags = {"create": "x", "overwrite": "w", "append": "a"}[mode]
        try:
            with path.open(flags, encoding="utf-8", newline="") as fh:
                fh.write(args["text"])
        except FileExistsError:
            raise DeviceError(f"{args['path']!r} exists; pass mode overwrite or append") from None
        data = args["text"].encode("utf-8", "replace")
        return DeviceResult(output=f"wrote {len(data)} bytes to {self.roots.show(path)} ({mode})",
                            data={"path": str(path), "bytes": len(data), "mode": mode})
