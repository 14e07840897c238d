"""``search``: find text on the llmos disk by meaning (risk safe).

Queries the disk's ``files`` collection (chunks of folders the user mounted
with ``llmos mount``) and/or the swap collections (pages evicted from
processes' RAM, one collection per process, or only ``pid``'s) through
:class:`llmos.memory.disk.Disk`, nearest in meaning first, each hit with
where it came from (``path:first-last line`` or the page's process and
source); hits far behind the best are left out (:data:`SPREAD`). The disk is given to the constructor; without one the default disk
is opened on the first call, so listing devices never loads chromadb.

It does not mount, index or change anything.
"""

from __future__ import annotations

from typing import Any

from llmos.devices.base import Device, DeviceResult, Risk

EXCERPT = 600
"""Characters of each hit shown in the output (``data`` has the whole text)."""
SPREAD = 0.1
"""Hits more than this much farther (cosine distance) than the best hit are left out: noise
beside it, which a small model answers from. On the demo notes the right note is the nearest
for every question of ``llmos bench tools`` and the next is 0.12 to 0.6 farther ("Friday lunch":
team-meeting.md 0.54, bread.md 0.67); asked for ``k: 20``, the default model answered "Find my
bread recipe" with the boat note, and an oven question with the planted instruction of another."""


def _source(name: str, meta: dict[str, Any]) -> str:
    if name == "files":
        return f"{meta.get('path', '?')}:{meta.get('line_start', '?')}-{meta.get('line_end', '?')}"
    return f"swap pid {meta.get('pid', '?')} {meta.get('origin', '')} {meta.get('source', '')}".strip()


class SearchDevice(Device):
    name = "search"
    description = "search the user's mounted files (and swapped-out memory) by meaning; returns excerpts with sources"
    schema = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": 1000,
                      "description": "what to look for, in the user's words"},
            "k": {"type": "integer", "minimum": 1, "maximum": 20, "description": "how many excerpts (default 5)"},
            "where": {"type": "string", "enum": ["files", "swap", "all"],
                      "description": "files (default): the user's mounted files; swap: paged-out memory"},
            "pid": {"type": "integer", "minimum": 1,
                    "description": "with where=swap: only this process's memory (omit for all)"},
        },
        "required": ["query"],
        "additionalProperties": False,
    }
    risk = Risk.SAFE

    def __init__(self, disk: Any = None) -> None:
        self._disk = disk

    @property
    def disk(self) -> Any:
        if self._disk is None:
            from llmos.memory.disk import Disk

            self._disk = Disk()
        return self._disk

    def _swap_collections(self, pid: int | None) -> list[str]:
        """Existing swap collections (all processes', or one); never creates one."""
        from llmos.memory.swap import collection

        names = self.disk.names()
        if pid is not None:
            return [collection(pid)] if collection(pid) in names else []
        return [n for n in names if n == "swap" or n.startswith("swap-")]

    def call(self, args: dict) -> DeviceResult:
        k = args.get("k", 5)
        where = args.get("where", "files")
        collections = ["files"] if where in ("files", "all") else []
        if where in ("swap", "all"):
            collections += self._swap_collections(args.get("pid"))
        hits = []
        for name in collections:
            hits += [(hit.distance, name, hit) for hit in self.disk.query(name, args["query"], k)]
        hits.sort(key=lambda h: h[0])
        near = [h for h in hits[:k] if h[0] <= hits[0][0] + SPREAD]
        rows = [{"collection": name, "id": hit.id, "source": _source(name, hit.metadata),
                 "distance": round(dist, 4), "text": hit.text} for dist, name, hit in near]
        if not rows:
            return DeviceResult(output=f"nothing found on the disk (searched {where})", data=[])
        blocks = []
        for i, row in enumerate(rows, 1):
            text = row["text"] if len(row["text"]) <= EXCERPT else row["text"][:EXCERPT] + " [...]"
            blocks.append(f"[{i}] {row['source']} (distance {row['distance']:.2f})\n{text.strip()}")
        farther = min(k, len(hits)) - len(rows)
        if farther:
            blocks.append(f"({farther} farther hit{'s' if farther > 1 else ''} left out)")
        return DeviceResult(output="\n\n".join(blocks), data=rows)
