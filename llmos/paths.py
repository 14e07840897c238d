"""Where llmos keeps its files.

Config lives in ``~/.config/llmos/config.toml`` and data (joined model files,
the disk, the journal, KV snapshots, logs) in ``~/.local/share/llmos/``, the
XDG places as platformdirs gives them on each OS. ``LLMOS_HOME`` overrides both:
with it set, config is ``$LLMOS_HOME/config.toml`` and data is
``$LLMOS_HOME/data``. Tests always set it to a temp dir.

Base layer: stdlib, platformdirs and tomlkit only.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from llmos.errors import UsageError


def home_override() -> Path | None:
    value = os.environ.get("LLMOS_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    home = home_override()
    if home is not None:
        return home
    import platformdirs

    return Path(platformdirs.user_config_dir("llmos", appauthor=False))


def data_dir() -> Path:
    """The data dir, created on first use."""
    home = home_override()
    if home is not None:
        path = home / "data"
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("llmos", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_file() -> Path:
    return config_dir() / "config.toml"


def load_config() -> dict:
    """The user's config.toml as a dict ({} when there is none)."""
    path = config_file()
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read config {path}: {exc}") from None


def set_config(table: str, key: str, value) -> Path:
    """Set ``[table] key = value`` in config.toml, keeping the rest of the file as the user
    wrote it (comments, order: tomlkit edits the document, it does not re-serialise a dict).
    Written to a temporary file and renamed, so a crash never leaves half a config."""
    import tomlkit

    path = config_file()
    try:
        doc = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.ParseError) as exc:
        raise UsageError(f"cannot read config {path}: {exc}") from None
    section = doc.get(table)
    if section is None:
        section = doc[table] = tomlkit.table()
    elif not isinstance(section, dict):
        raise UsageError(f"config {path}: {table} is not a table")
    section[key] = value
    tmp = path.with_suffix(".toml.tmp")
    try:
        tmp.write_text(tomlkit.dumps(doc), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write config {path}: {exc.strerror or exc}") from None
    return path


def configured_disk_url() -> str | None:
    """The Chroma server the user configured: ``LLMOS_DISK_URL``, else ``[disk] url`` in
    config.toml; None for the embedded disk. (``--disk-url`` sets ``LLMOS_DISK_URL``.)
    Here, not in memory/disk.py, so asking costs no chromadb import (0.5 s of a cold start)."""
    url = os.environ.get("LLMOS_DISK_URL", "").strip()
    if url:
        return url
    disk = load_config().get("disk", {})
    url = disk.get("url") if isinstance(disk, dict) else None
    if url is not None and not isinstance(url, str):
        raise UsageError("config.toml: [disk] url must be a string like \"http://host:8000\"")
    return url.strip() or None if url else None
