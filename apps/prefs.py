"""The preference file: pairs of answers a person ranked, for preference training.

One JSON object per line with ``prompt``, ``chosen`` and ``rejected``: the
layout DPO trainers read (TRL's ``DPOTrainer``, for one), plus what the
pair came from (``model``, the two settings, a time) so a data set can be
filtered later. ``export`` writes only the three training fields, or
everything with ``full=True``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from llmos.errors import UsageError

FIELDS = ("prompt", "chosen", "rejected")


def path() -> Path:
    from llmos.paths import data_dir

    return data_dir() / "prefs.jsonl"


def append(prompt: str, chosen: str, rejected: str, **meta) -> int:
    """Add one ranked pair; returns how many pairs the file holds now."""
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    row = {"prompt": prompt, "chosen": chosen, "rejected": rejected, **meta, "time": time.time()}
    with target.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(read())


def read() -> list[dict]:
    """Every pair, oldest first; a damaged line is a one-line UsageError naming it."""
    target = path()
    if not target.exists():
        return []
    rows = []
    for number, line in enumerate(target.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise UsageError(f"{target}:{number} is not JSON; fix or delete that line") from None
        if not isinstance(row, dict) or any(not isinstance(row.get(k), str) for k in FIELDS):
            raise UsageError(f"{target}:{number} lacks prompt/chosen/rejected text")
        rows.append(row)
    return rows


def export(out: str | None, *, full: bool = False) -> tuple[int, str]:
    """Write the pairs as JSONL to ``out`` (a file, or stdout for None/"-")."""
    rows = [row if full else {k: row[k] for k in FIELDS} for row in read()]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if out in (None, "-"):
        import sys

        sys.stdout.write(text)
        return len(rows), "stdout"
    target = Path(out).expanduser()
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    return len(rows), str(target)
