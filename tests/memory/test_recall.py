"""The page fault's ranking steps (memory/recall.py) on real parts: the tiny model's tokenizer,
a real journal and chromadb in a temp dir, the real MiniLM embedder; and the mounted-file
relevance rule (memory/relevance.py) on a real mount."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llmos.memory.disk import Disk
from llmos.memory.fs import mount
from llmos.memory.page import Origin, Page
from llmos.memory.recall import by_relation, fuse, new_names
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


def test_a_second_hop_finds_the_detail_said_by_name_only(pager):
    space = space_with_system(pager, 300)
    turns = ["My sister Lena adopted a rescue dog last week, she named him Pixel.",
             "How lovely, a rescue dog is lucky to find a home."]
    turns += FILLER * 12
    turns += ["Pixel turned out to be part kelpie, according to the vet.", "Kelpies are clever herders."]
    turns += FILLER * 12
    made = _talk(pager, space, turns)
    detail = next(p for p in made if p.text.startswith("Pixel turned out"))
    assert not detail.resident, "the detail is on the disk before the question"
    assert new_names("What breed is my sister's dog?", [turns[0]]) == ["Lena", "Pixel"]
    got = pager.fault(space, "What breed is my sister's dog?", k=6)
    assert detail.id in [p.id for p in got]
    pager.swap.steps = frozenset({"neighbours"})
    assert detail.id not in [p.id for p in pager.swap.search(space.pid, "What breed is my sister's dog?", 6)]


def test_only_a_question_that_names_someone_by_relation_takes_a_second_hop():
    for question in ("What breed is my sister's dog?", "Where did my coworker go on his trip?",
                     "What do Melanie's kids like?", "When did Caroline meet up with her friends?",
                     "In which city will my team lead compete?"):
        assert by_relation(question), question
    # a third person's question names whom it is about: the first hits hold the answer
    for question in ("What did Caroline research?", "When did Jon go to Paris?", "Where does Tamsin live?"):
        assert not by_relation(question), question


def test_a_day_or_a_month_is_no_name_to_hop_to():
    assert new_names("Where is my friend?", ["I talk to Riley every Sunday, even in May."]) == ["Riley"]


def test_a_second_hop_follows_the_names_of_one_hit(pager):
    """The names of the best hit that has any are the bridge. A name in a lower hit (another
    subject) must not spend the hop's places: here "Matteo" is in as few pages as "Loopwell",
    and a search for the three hits' names together gave his pages the places."""
    space = space_with_system(pager, 300)
    turns = ["My old college roommate Frankie just started at a startup called Loopwell.",
             "Exciting! Startups move fast, Frankie will learn a lot."] + FILLER * 8
    turns += ["My father made a new friend at the allotments, a retired teacher called Matteo.",
              "Lovely, friends at the allotments are the best kind."] + FILLER * 4
    turns += ["Matteo got him hooked on orienteering.", "Orienteering keeps both body and mind busy."] + FILLER * 4
    turns += ["Loopwell apparently builds apps for dog walkers, of all things.",
              "A niche, but dog walkers are everywhere."] + FILLER * 8
    made = _talk(pager, space, turns)
    by_text = {p.text[:12]: p for p in made}
    first, other = by_text["My old colle"], by_text["My father ma"]
    scores = {first.id: 0.9, other.id: 0.8, by_text["Exciting! St"].id: 0.7}
    pages = {p.id: p for p in made}
    pager.swap._hop(space.pid, "What does my old college roommate's employer make?", scores, pages,
                    {p.id: p for p in space.pages if p.resident}, 30)
    added = [pages[i].text[:12] for i in scores if i not in (first.id, other.id, by_text["Exciting! St"].id)]
    assert added == ["Loopwell app"]


def test_the_reply_after_a_matching_question_comes_along(pager):
    space = space_with_system(pager, 300)
    turns = FILLER * 6 + ["Can you suggest a wine for dinner with the in-laws on Saturday?",
                          "A Rioja Reserva would be lovely with lamb, it has body without being heavy."] + FILLER * 12
    made = _talk(pager, space, turns)
    reply = next(p for p in made if p.text.startswith("A Rioja"))
    got = pager.fault(space, "What wine did you recommend for the in-laws?")
    assert reply.id in [p.id for p in got]


def test_a_file_that_holds_the_answer_is_found_and_an_unrelated_question_gets_nothing(tmp_path):
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "deel.eml").write_text(
        "From: Deel Billing <no-reply@billing.example>\nSubject: Payment receipt for invoice DL-2024-08-3391\n\n"
        "Thanks for your payment. Deel, Inc. has received the funds for the August contractor payroll.\n"
        "Payment method: ACH debit, Mercury checking account ending in 4417\nAmount charged: $6,318.40 USD\n"
        "Subtotal $5,850.00\nDeel platform fee $98.00\nCurrency conversion fee $370.40\nTotal $6,318.40\n")
    disk = Disk(tmp_path / "disk")
    mount(disk, folder)
    # 0.56 from the receipt in meaning: past the old 0.6-only rule's reach on some machines, and
    # found here because it also holds "Deel" and "paid"~"payment" is not needed.
    hits = file_hits(disk, "Find the $ value paid to Deel? If multiple, record all $ values paid.", 4)
    assert hits and "$6,318.40" in hits[0].text
    assert file_hits(disk, "What's a good name for a golden retriever?", 4) == []
    assert shared_terms(["Deel", "INV-20931", "charged"], "deel charge INV 20931") == ["Deel", "INV-20931", "charged"]


def test_one_common_word_far_away_does_not_page_a_note_in(tmp_path):
    """Seen in ``llmos bench tools`` with the demo notes mounted: "What is my dog called?" paged
    in "Our sailing boat is called Marigold" (0.77 away, one shared word), and "Why is the sky
    blue?" the boat's blue tin (0.88). A name far away still counts; a word that says where to
    look ("Check my notes") does not."""
    from importlib import resources

    from llmos.memory.relevance import distinctive

    disk = Disk(tmp_path / "disk")
    mount(disk, Path(str(resources.files("llmos").joinpath("demo/notes"))))
    for question in ("What is my dog called?", "Why is the sky blue?", "Our team has 12 people.",
                     "How much is 7 times 8?"):
        assert file_hits(disk, question, 4) == [], question
    assert "Marigold" in file_hits(disk, "What is my boat called?", 4)[0].text
    assert "12:30" in file_hits(disk, "What time is Friday lunch? It's in my meeting notes.", 4)[0].text
    assert distinctive("Deel", "Find the $ value paid to Deel?") and distinctive("Wi-Fi", "the Wi-Fi password")
    assert not distinctive("Check", "Check my notes.") and not distinctive("called", "my dog called?")


def test_a_reply_is_searched_with_the_turn_it_answers_and_a_new_subject_on_its_own():
    """``swap.turn_vectors``: the real MiniLM embeddings."""
    from llmos.memory.embed import embed
    from llmos.memory.page import later_part, part_source
    from llmos.memory.swap import turn_vectors

    texts = ["Yes, I really love them!", "My sister had twins yesterday, a boy and a girl!", "Paris."]
    prevs = ["Do you like cats?", "Clearing the startup programs can help until you replace the laptop.", None]
    vectors, own = turn_vectors(texts, prevs), embed(texts)
    question = embed(["Does she like cats?"])[0]
    # the reply goes on with its question: searched with it, a question about cats finds it
    assert float(vectors[0] @ question) > float(own[0] @ question) + 0.15
    assert abs(float(np.linalg.norm(vectors[0])) - 1.0) < 1e-5
    # a change of subject, and a first turn, keep their own text's embedding
    assert np.allclose(vectors[1], own[1]) and np.allclose(vectors[2], own[2])
    # the parts of a long paste go on with each other: only the first is a turn of its own
    assert later_part(part_source("user", 2, 3)) and later_part(part_source("notes.md part 1/2", 12, 12))
    assert not later_part(part_source("user", 1, 3)) and not later_part("user")


def test_a_when_question_finds_the_turn_that_says_when(pager):
    from llmos.memory.recall import asks_when, says_when

    assert asks_when("When did Jon get mentored?") and asks_when("how long have you had them?")
    assert not asks_when("What did Jon say about when to start?")
    assert says_when("I got mentored yesterday!") and says_when("We met in 2019, two years ago.")
    assert not says_when("Agony, but I love it.") and not says_when("In 20 minutes.")
    space = space_with_system(pager, 300)
    first, again = "We went to the new ramen place near the station, the broth was great.", \
        "We had ramen again last week, a different place."
    made = _talk(pager, space, FILLER + [first, "Nice, ramen is perfect in this weather."] + FILLER * 2 +
                 [again, "Good, glad it's done."] + FILLER * 2)
    said = {p.text: p for p in made}
    question = "When did we have ramen?"
    assert pager.swap.search(space.pid, question, 5)[0].id == said[again].id
    pager.swap.steps = frozenset(pager.swap.steps) - {"when"}
    assert pager.swap.search(space.pid, question, 5)[0].id != said[again].id
