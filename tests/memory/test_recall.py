"""The page fault's ranking steps (memory/recall.py) on real parts: the tiny model's tokenizer,
a real journal and chromadb in a temp dir, the real MiniLM embedder; and the mounted-file
relevance rule (memory/relevance.py) on a real mount."""

from __future__ import annotations

from pathlib import Path

from llmos.memory.disk import Disk
from llmos.memory.fs import mount
from llmos.memory.page import Origin, Page
from llmos.memory.recall import fuse, new_names
from llmos.memory.relevance import file_hits, shared_terms
from tests.memory.test_pager import pager, space_with_system  # noqa: F401 - fixture

FILLER = ["The weather was grey again, I stayed in and read.", "Sounds like a calm day, reading is nice.",
          "Work was busy, lots of meetings about the budget.", "Meetings can be tiring; take a short walk."]


def _talk(pager, space, turns):
    made = []
    for i, text in enumerate(turns):
        origin = Origin.USER if i % 2 == 0 else Origin.ASSISTANT
        made += pager.admit(space, Page(space.pid, origin, text))
    return made


def _scored(ids: list[str], top: float = 1.0) -> list[tuple[str, float]]:
    return [(i, top - n / 100) for n, i in enumerate(ids)]


def test_interleaving_keeps_the_best_of_each_signal_in_the_top_half():
    vector = _scored([f"v{i}" for i in range(20)])
    lexical = _scored([f"l{i}" for i in range(20)], top=9.0)
    top = sorted(fuse([vector, lexical], agree=False).items(), key=lambda kv: -kv[1])[:10]
    assert {i for i, _ in top} == {f"v{i}" for i in range(5)} | {f"l{i}" for i in range(5)}
    both = fuse([_scored(["a", "b"]), _scored(["b", "a"])])
    assert both["a"] == both["b"]
    one = fuse([_scored(["x", "y"]), _scored(["y"])])
    assert one["y"] > one["x"]


def test_a_page_both_signals_rank_high_beats_the_top_of_one_alone():
    """The answer 3rd in both lists, against the 1st of each list that the other does not have."""
    vector = [("a", 0.90), ("x", 0.86), ("c", 0.85)] + [(f"v{i}", 0.5 - i / 100) for i in range(20)]
    lexical = [("b", 9.0), ("y", 8.6), ("c", 8.5)] + [(f"l{i}", 4.0 - i / 10) for i in range(20)]
    fused = fuse([vector, lexical])
    assert max(fused, key=fused.get) == "c"
    interleaved = fuse([vector, lexical], agree=False)
    assert interleaved["c"] < interleaved["a"] == interleaved["b"]


def test_a_question_that_names_a_day_finds_what_was_said_that_day(pager):
    import datetime as dt

    from llmos.memory.recall import named_dates

    assert named_dates("What did I start on 3 June, 2023?") == [(dt.date(2023, 6, 3), True)]
    assert named_dates("as I said on June 3rd, 2023, or 2023-06-04") == [
        (dt.date(2023, 6, 3), True), (dt.date(2023, 6, 4), True)]
    assert named_dates("in May 2023") == [(dt.date(2023, 5, 1), False)]
    assert named_dates("on 31 June 2023, or in my 2023 plans") == []
    space = space_with_system(pager, 300)
    hobbies = ["pottery", "yoga", "chess", "rowing", "baking"]
    said = {}
    for n, hobby in enumerate(hobbies):
        day = dt.datetime(2023, 2 + n, 3, 12)
        for text in [f"I just started a {hobby} class, first lesson today!", "That sounds fun, enjoy it."] + FILLER:
            page = Page(space.pid, Origin.USER, text)
            page.created = day.timestamp()
            for made in pager.admit(space, page):
                if hobby in made.text:
                    said.setdefault(hobby, made)
    question = "What class did I start on 3 June, 2023?"
    assert pager.swap.search(space.pid, question, 5)[0].id == said["baking"].id
    pager.swap.steps = frozenset()
    assert pager.swap.search(space.pid, question, 5)[0].id != said["baking"].id


def test_a_name_in_many_pages_is_no_second_hop(tmp_path):
    from llmos.memory.journal import Journal
    from llmos.memory.recall import hop_limit

    assert hop_limit(600) == 18 and hop_limit(40) == 5
    journal = Journal(tmp_path / "journal.sqlite3")
    pages = [Page(1, Origin.USER, f"Thanks, Melanie! Day {i} was fine.", seq=i) for i in range(100)]
    journal.record_pages(pages + [Page(1, Origin.USER, "Pixel is part kelpie.", seq=100)])
    assert journal.page_span(1) == 101 and journal.page_span(2) == 0
    assert journal.lexical_count("Melanie", 1, cap=6) == 6  # counted no further than needed
    assert journal.lexical_count("Pixel", 1, cap=6) == 1 and journal.lexical_count("Pixel", 2, cap=6) == 0
    journal.close()
