"""The long-memory development set (``llmos/bench/longmem.py``) holds what its docstring promises.

No model, no network: the set is generated (a few conversations, well under a second) and
checked turn by turn. The paraphrase rule is recomputed here with its own word list, so a
change to the generator's check cannot quietly loosen the set.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

import pytest

from llmos.bench.longmem import KINDS, generate

# Function words only, written out here on purpose (not imported from the generator).
FUNCTION_WORDS = set("""
about after again also been before being both could didn does doing down during each from
have having here into just more most only other over same should some such than that their
them then there these they this those through under until very were what when where which
while will with would your
""".split())
ISO = re.compile(r"\d{4}-\d{2}-\d{2}")


def stems(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 4 and w not in FUNCTION_WORDS}


@pytest.fixture(scope="module")
def conversations() -> list[dict]:
    return generate(4, seed=11)


def _by_id(conv: dict) -> dict[str, dict]:
    return {t["id"]: t for t in conv["turns"]}


def _position(conv: dict) -> dict[str, int]:
    return {t["id"]: i for i, t in enumerate(conv["turns"])}


def _questions(conversations, kind):
    for conv in conversations:
        for q in conv["questions"]:
            if q["kind"] == kind:
                yield conv, q


def test_same_seed_gives_the_same_set_and_another_seed_a_different_one():
    assert generate(2, seed=5) == generate(2, seed=5)
    other = generate(2, seed=6)
    assert other != generate(2, seed=5)
    assert [t["text"] for t in other[0]["turns"]] != [t["text"] for t in generate(1, seed=5)[0]["turns"]]


def test_conversations_are_long_dated_and_alternate_speakers(conversations):
    ids = [t["id"] for conv in conversations for t in conv["turns"]]
    assert len(ids) == len(set(ids))  # unique over the whole set
    for conv in conversations:
        turns = conv["turns"]
        assert len(turns) >= 300
        assert [t["speaker"] for t in turns] == ["user", "assistant"] * (len(turns) // 2)
        sessions = [t["session"] for t in turns]
        assert sessions == sorted(sessions) and len(set(sessions)) >= 8
        dates = {}
        for t in turns:
            assert dates.setdefault(t["session"], t["date"]) == t["date"]  # one date a session
        days = [date.fromisoformat(dates[s]) for s in sorted(dates)]
        assert all(2 <= (b - a).days <= 14 for a, b in zip(days, days[1:]))
        for t in turns:
            words = len(t["text"].split())
            assert (8 <= words <= 45) if t["speaker"] == "user" else (10 <= words <= 50), t["text"]
            assert "{" not in t["text"] and "}" not in t["text"]  # every slot filled


def test_every_kind_is_asked_at_least_four_times_and_evidence_exists(conversations):
    for conv in conversations:
        turns = _by_id(conv)
        kinds = Counter(q["kind"] for q in conv["questions"])
        assert set(kinds) == set(KINDS) and min(kinds.values()) >= 4
        assert 24 <= len(conv["questions"]) <= 36
        for q in conv["questions"]:
            assert q["evidence"] and all(e in turns for e in q["evidence"]), q
            assert isinstance(q["answer"], str) and q["answer"] and q["question"].endswith("?")
        sessions = {turns[e]["session"] for q in conv["questions"] for e in q["evidence"]}
        assert {1, 2} <= sessions and len(sessions) == len({t["session"] for t in conv["turns"]})


def test_paraphrase_questions_share_no_content_word_with_their_evidence(conversations):
    seen = 0
    for conv, q in _questions(conversations, "paraphrase"):
        evidence = _by_id(conv)[q["evidence"][0]]
        assert len(q["evidence"]) == 1 and not stems(q["question"]) & stems(evidence["text"]), (q, evidence)
        seen += 1
    assert seen >= 16


def test_first_points_at_the_earliest_mention_and_update_at_the_latest(conversations):
    for kind in ("first", "update"):
        for conv, q in _questions(conversations, kind):
            position, turns = _position(conv), _by_id(conv)
            mentions = q["mentions"]
            assert len(mentions) >= (4 if kind == "first" else 2)
            assert [position[m] for m in mentions] == sorted(position[m] for m in mentions)
            assert len({turns[m]["session"] for m in mentions}) == len(mentions)  # one a session
            expected = min(mentions, key=position.get) if kind == "first" else max(mentions, key=position.get)
            assert q["evidence"] == [expected]
            if kind == "first":  # every mention names the topic, and nothing before the first does
                assert all(q["topic"].lower() in turns[m]["text"].lower() for m in mentions)
                earlier = conv["turns"][:position[expected]]
                assert not [t for t in earlier if q["topic"].lower() in t["text"].lower()]
            else:  # the latest value, stated in the latest mention only
                assert q["answer"] in turns[expected]["text"]
                assert not [m for m in mentions[:-1] if q["answer"] in turns[m]["text"]]


def test_when_answers_are_the_evidence_date_which_the_turn_never_spells_out(conversations):
    for conv, q in _questions(conversations, "when"):
        evidence = _by_id(conv)[q["evidence"][0]]
        assert q["question"].startswith("When ") and q["answer"] == evidence["date"]
        assert not ISO.search(evidence["text"])


def test_multihop_needs_two_sessions_and_the_second_turn_alone_does_not_match(conversations):
    for conv, q in _questions(conversations, "multihop"):
        turns = _by_id(conv)
        link, detail = (turns[e] for e in q["evidence"])
        assert len(q["evidence"]) == 2 and link["session"] < detail["session"]
        assert stems(q["question"]) & stems(link["text"])
        assert not stems(q["question"]) & stems(detail["text"])
        assert q["answer"] in detail["text"]


def test_fact_questions_have_decoys_and_one_turn_with_the_answer(conversations):
    for conv, q in _questions(conversations, "fact"):
        decoys = [t for t in conv["turns"] if t["id"] not in q["evidence"] and stems(t["text"]) & stems(q["question"])]
        assert len(decoys) >= 3, q
        holders = [t["id"] for t in conv["turns"] if q["answer"].lower() in t["text"].lower()]
        assert holders == q["evidence"], q  # said exactly once
    for conv in conversations:  # about a third of the facts sit in the assistant's reply to a request
        turns = _by_id(conv)
        speakers = Counter(turns[q["evidence"][0]]["speaker"] for q in conv["questions"] if q["kind"] == "fact")
        assert 1 <= speakers["assistant"] <= speakers["user"] / 1.5
