"""The GGUF models a user already has, found where other tools keep them.

``llmos model list`` shows them; ``--model NAME`` takes their names. This module only
looks (folder listings, JSON manifests, each file's first four bytes, which must be
``b"GGUF"``); it never loads a model. Sources, in order, each layout checked in the
tool's own code or docs:

- **pulled**: ``pulled_dir()/<owner>--<repo>/<file>.gguf``; hidden folders (the
  ``.partial`` staging one) skipped.
- **huggingface**: the hub cache, read by ``huggingface_hub.scan_cache_dir`` (2.4:
  ``models--<owner>--<name>/snapshots/<commit>/<file>``, symlinks into ``blobs/``). Its
  folder is worked out per call the way huggingface_hub's ``constants.py`` does once at
  import: ``HF_HUB_CACHE``, ``HUGGINGFACE_HUB_CACHE``, ``HF_HOME/hub``, else
  ``$XDG_CACHE_HOME`` or ``~/.cache`` + ``huggingface/hub``. Model repos; one file per
  path in a repo (a revision a ref names first, then the newest); the snapshot path.
- **lmstudio**: ``<home>/models/<publisher>/<repo>/<file>.gguf`` (lmstudio.ai docs,
  "sideload"), or the ``downloadsFolder`` string of ``<home>/settings.json`` (lmstudio-ai/lms
  ``src/modelsFolder.ts``). Homes, all searched: ``$LMSTUDIO_HOME``, the path in
  ``~/.lmstudio-home-pointer``, ``~/.lmstudio``, ``~/.cache/lm-studio`` (older versions;
  lmstudio-js ``packages/lms-common-server/src/findLMStudioHome.ts``).
- **ollama**: ``$OLLAMA_MODELS`` else ``~/.ollama/models`` (ollama ``envconfig/config.go``),
  and the Linux service's ``/usr/share/ollama/.ollama/models``. A manifest is the JSON file
  ``manifests/<host>/<namespace>/<model>/<tag>`` (newer: ``manifests-v2/``, host
  ``ollama.com``, a symlink to a blob: ollama ``manifest/paths.go``); its layer of mediaType
  ``application/vnd.ollama.image.model`` has digest ``sha256:<hex>``, the file
  ``blobs/sha256-<hex>``. Names as ``ollama list`` gives them (``DisplayShortest``,
  ``types/model/name.go``): ``<model>:<tag>`` for the public registry's ``library``,
  ``<namespace>/<model>:<tag>`` elsewhere on it, ``<host>/<namespace>/<model>:<tag>`` on
  other hosts. Manifest lists (one name, several runners) are not read.
- **folder**: each path of ``[models] folders`` in config.toml, 4 folders deep (``~``
  expanded; a relative path is relative to the config file's folder).

A name is the file's stem lowercased (Ollama: its own name). A split GGUF
(``-00001-of-00003.gguf``) is listed once, by its first part, named without the suffix,
sized with all parts (a part missing: not listed). ``mmproj`` files (vision projectors)
are skipped. A file seen twice (same resolved path, or same name and size) is listed
once, first source wins; a name taken already, or a shipped model's, gets the source as
prefix (``lmstudio/<stem>``). Whatever cannot be read is skipped without a word.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from llmos.errors import UsageError
from llmos.kernel.models import ALIASES, KNOWN, pulled_dir
from llmos.paths import config_dir, load_config

RESERVED = set(KNOWN) | set(ALIASES)  # shipped models' names and their aliases ("default" among them)
FOLDER_DEPTH = 4
OLLAMA_SERVICE_DIR = Path("/usr/share/ollama/.ollama/models")
OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
OLLAMA_PUBLIC_HOSTS = ("registry.ollama.ai", "ollama.com")
_SPLIT = re.compile(r"^(.*)-(\d{5})-of-(\d{5})$", re.IGNORECASE)
_DIGEST = re.compile(r"^sha256[:-][0-9a-fA-F]{64}$")
Item = tuple[Path, str, "str | None"]  # path, where, name (None: from the file name)


@dataclass(frozen=True)
class Found:
    name: str  # what `--model NAME` accepts: unique in the list, case-insensitively
    path: Path  # the GGUF itself (Ollama: the blob; a split model: its first part)
    source: str  # "pulled" | "huggingface" | "lmstudio" | "ollama" | "folder"
    where: str  # for people: "Hugging Face cache: Qwen/Qwen2.5-0.5B-Instruct-GGUF", "Ollama: llama3.2:1b"
    size: int  # bytes, all parts of a split model


def find(config: dict | None = None) -> list[Found]:
    """Every GGUF found, in source order: pulled, huggingface, lmstudio, ollama, folder."""
    config = load_config() if config is None else config
    folders = _configured_folders(config)  # a bad config fails before any scan
    sources = {"pulled": _pulled(), "huggingface": _huggingface(), "lmstudio": _lmstudio(), "ollama": _ollama(),
               "folder": ((path, f"Folder: {folder}", None) for folder in folders
                          for path in _walk(config_dir() / Path(folder).expanduser(), FOLDER_DEPTH))}
    found: list[Found] = []
    names: set[str] = set()
    paths: set[Path] = set()
    copies: set[tuple[str, int]] = set()
    for source, items in sources.items():
        for path, where, name in items:
            if (model := _model(path, name)) is None:
                continue
            stem, parts = model
            try:
                size, real = sum(part.stat().st_size for part in parts), path.resolve()
            except (OSError, RuntimeError):  # unreadable, a split part missing, a symlink loop
                continue
            if real in paths or (stem.lower(), size) in copies or not _is_gguf(path):
                continue
            paths.add(real)
            copies.add((stem.lower(), size))
            final, n = stem, 2
            if final.lower() in RESERVED or final.lower() in names:
                final = f"{source}/{stem}"
            while final.lower() in names:
                final, n = f"{source}/{stem}-{n}", n + 1
            names.add(final.lower())
            found.append(Found(final, path, source, where, size))
    return found


def lookup(name: str, config: dict | None = None) -> Found | None:
    """The found model called ``name`` (exact, case-insensitive), or None."""
    return next((f for f in find(config) if f.name.lower() == name.lower()), None)


def _model(path: Path, name: str | None) -> tuple[str, list[Path]] | None:
    """(name, files) of a model file, a split GGUF's files being all its parts; None for a
    projector or a split GGUF's later part."""
    lower = path.name.lower()
    if name or not lower.endswith(".gguf") or "mmproj" in lower:
        return (name, [path]) if name else None
    stem, ext = path.name[:-5], path.name[-5:]
    if not (split := _SPLIT.match(stem)):
        return stem.lower(), [path]
    count = int(split[3])
    parts = [path.with_name(f"{split[1]}-{i:05d}-of-{split[3]}{ext}") for i in range(1, count + 1)]
    return (split[1].lower(), parts) if int(split[2]) == 1 else None


def _is_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"GGUF"
    except OSError:
        return False


def _walk(root: Path, depth: int) -> Iterator[Path]:
    """Every ``*.gguf`` under ``root`` at most ``depth`` folders down, sorted; hidden and
    unreadable folders skipped."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir():
                if depth > 0 and not entry.name.startswith("."):
                    yield from _walk(Path(entry.path), depth - 1)
            elif entry.name.lower().endswith(".gguf"):
                yield Path(entry.path)
        except OSError:
            continue


def pulled() -> list[Path]:
    """The GGUFs ``llmos model pull`` fetched and verified, sorted (``<owner>--<repo>/<file>``;
    the ``.partial`` staging folder is hidden, so never listed)."""
    root = pulled_dir()
    return [path for path in _walk(root, 1) if path.parent != root]


def _pulled() -> Iterator[Item]:
    for path in pulled():
        yield path, f"Pulled: {path.parent.name.replace('--', '/', 1)}", None


def _hf_cache() -> Path:
    env = os.environ
    if hub := env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE"):
        return Path(hub).expanduser()
    cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(env.get("HF_HOME") or cache / "huggingface").expanduser() / "hub"


def _huggingface() -> Iterator[Item]:
    try:
        from huggingface_hub import CacheNotFound, scan_cache_dir
    except ImportError:
        return
    try:
        info = scan_cache_dir(_hf_cache())  # a corrupt repo only lands in info.warnings
    except (CacheNotFound, OSError, ValueError):  # ValueError: a file, or unreadable refs
        return
    for repo in sorted(info.repos, key=lambda r: r.repo_id.lower()):
        if repo.repo_type != "model":
            continue
        taken: set[Path] = set()
        for rev in sorted(repo.revisions, key=lambda r: (not r.refs, -r.last_modified)):
            for file in sorted(rev.files, key=lambda f: str(f.file_path)):
                rel = file.file_path.relative_to(rev.snapshot_path)
                if file.file_name.lower().endswith(".gguf") and rel not in taken:
                    taken.add(rel)
                    yield file.file_path, f"Hugging Face cache: {repo.repo_id}", None


def _lmstudio() -> Iterator[Item]:
    home = Path.home()
    homes = [Path(os.environ["LMSTUDIO_HOME"])] if os.environ.get("LMSTUDIO_HOME") else []
    try:
        pointer = (home / ".lmstudio-home-pointer").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeError):
        pointer = ""
    homes += [home / pointer] if pointer else []
    folders = []
    for lms in [*homes, home / ".lmstudio", home / ".cache" / "lm-studio"]:
        try:
            custom = json.loads((lms / "settings.json").read_text(encoding="utf-8")).get("downloadsFolder")
        except (OSError, ValueError, AttributeError):
            custom = None
        folders += [Path(custom).expanduser()] if isinstance(custom, str) and custom else []
        folders.append(lms / "models")
    for root in dict.fromkeys(folders):
        for path in _walk(root, 3):
            where = "/".join(path.relative_to(root).parts[:-1]) or str(root)
            yield path, f"LM Studio: {where}", None


def _ollama_name(host: str, namespace: str, model: str, tag: str) -> str:
    if host.lower() not in OLLAMA_PUBLIC_HOSTS:
        return f"{host}/{namespace}/{model}:{tag}"
    return f"{model}:{tag}" if namespace.lower() == "library" else f"{namespace}/{model}:{tag}"


def _ollama() -> Iterator[Item]:
    env = os.environ.get("OLLAMA_MODELS", "").strip().strip("\"'")
    roots = [Path(env).expanduser() if env else Path.home() / ".ollama" / "models", OLLAMA_SERVICE_DIR]
    for root in dict.fromkeys(roots):
        for manifests in (root / "manifests-v2", root / "manifests"):
            for manifest in sorted(manifests.glob("*/*/*/*")):
                try:
                    doc = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else None
                except (OSError, ValueError):
                    continue
                layers = doc.get("layers") if isinstance(doc, dict) else None
                digests = [layer.get("digest") for layer in layers if isinstance(layer, dict) and
                           layer.get("mediaType") == OLLAMA_MODEL_LAYER] if isinstance(layers, list) else []
                if digests and _DIGEST.match(str(digests[0])):
                    name = _ollama_name(*manifest.relative_to(manifests).parts)
                    yield root / "blobs" / digests[0].replace(":", "-"), f"Ollama: {name}", name


def _configured_folders(config: dict) -> list[str]:
    section = config.get("models", {})
    folders = section.get("folders", []) if isinstance(section, dict) else []
    if not isinstance(folders, list) or not all(isinstance(f, str) for f in folders):
        raise UsageError("config.toml: [models] folders must be a list of paths")
    return folders
