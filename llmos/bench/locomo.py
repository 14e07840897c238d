"""LoCoMo-shaped files, read as ``llmos bench paging --data`` conversations.

LoCoMo (Maharana et al., 2024, ``snap-research/LoCoMo``, ``data/locomo10.json``)
is a public set of long two-person conversations: ten samples of ~20 dated
sessions and ~400-700 turns each, with questions whose evidence turns are
known. It is not shipped (its licence is non-commercial and the shipped set
must be our own, ``bench/longmem.py``); a user who has the file passes it as
it is: ``llmos bench paging --data locomo10.json``.

How a sample becomes a conversation row (``{"id", "turns", "questions"}``):

- a turn's text is ``"<speaker>: <text>"``, as the conversation reads (who
  said a thing is part of what a question asks); a shared photo adds its
  caption, ``[shares a photo of ...]``, which is what the other person saw;
- a turn's date is its session's date (``"1:56 pm on 8 May, 2023"``);
- a question's kind is its category: 1 multi-hop, 2 temporal, 3 open-domain,
  4 single-hop. Category 5 (adversarial: the answer is not in the
  conversation) has no evidence to find and is left out, as are evidence ids
  that name no turn (a few are malformed in the source, such as ``D30:05``).
"""

from __future__ import annotations

import datetime as dt
import re

KINDS = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}


def is_locomo(data: object) -> bool:
    """A JSON list of samples with "qa" and "conversation" (what locomo10.json holds)."""
    return isinstance(data, list) and bool(data) and all(
        isinstance(s, dict) and "qa" in s and "conversation" in s for s in data)


def _date(text: str) -> str | None:
    """``"1:56 pm on 8 May, 2023"`` -> ``"2023-05-08"`` (None when it does not read)."""
    match = re.search(r"(\d{1,2}) (\w+),? (\d{4})", text or "")
    if not match:
        return None
    try:
        return dt.datetime.strptime(" ".join(match.groups()), "%d %B %Y").date().isoformat()
    except ValueError:
        return None


def conversation(sample: dict, n: int = 0) -> dict:
    """One LoCoMo sample as a ``bench paging`` conversation row."""
    conv = sample["conversation"]
    sessions = sorted((int(k.split("_")[1]), v) for k, v in conv.items()
                      if re.fullmatch(r"session_\d+", k) and isinstance(v, list))
    turns = []
    for number, session in sessions:
        date = _date(str(conv.get(f"session_{number}_date_time", "")))
        for turn in session:
            text = f"{turn['speaker']}: {turn['text']}"
            if turn.get("blip_caption"):
                text += f" [shares {turn['blip_caption']}]"
            turns.append({"id": turn["dia_id"], "speaker": turn["speaker"], "text": text, "date": date})
    known = {t["id"] for t in turns}
    questions = []
    for qa in sample["qa"]:
        kind = KINDS.get(qa.get("category"))
        ids = (part for e in qa.get("evidence", []) for part in re.split(r"[;,\s]+", str(e)))
        evidence = list(dict.fromkeys(e for e in ids if e in known))
        if kind and evidence:
            questions.append({"question": qa["question"], "evidence": evidence, "kind": kind})
    return {"id": sample.get("sample_id", f"locomo-{n}"), "turns": turns, "questions": questions}
