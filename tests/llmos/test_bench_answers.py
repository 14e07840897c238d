"""``llmos bench answers``: how an answer is scored, and the command's bad input."""

from __future__ import annotations

from llmos.bench.answers import _fifo, correct
from tests.conftest import run_llmos


def test_an_answer_is_right_when_it_holds_every_name_of_the_expected_one():
    assert correct("You work at Corvid Analytics now.", "Corvid Analytics")
    assert correct("You wanted it at a bowling alley.", "a bowling alley")  # "a" is no word to find
    assert not correct("You work at Brightline Labs.", "Corvid Analytics")
    assert not correct("Corvid, I think.", "Corvid Analytics")  # every name of it
    assert not correct("", "Corvid Analytics")


def test_every_name_and_number_must_be_there_and_half_of_the_words():
    assert correct("Yara became a parent recently.", "my sister Yara")
    assert not correct("Your sister became a parent.", "my sister Yara")
    assert correct("You hiked 12 km.", "twelve kilometres")  # the number, and half of the words
    assert not correct("It makes software.", "scheduling software for vineyards")  # one word of three
    assert correct("You hiked 12 kilometres.", "twelve kilometres")
    assert not correct("You hiked 13 kilometres.", "twelve kilometres")
    assert correct("An iPhone 11.", "iPhone 11") and not correct("An iPhone 12.", "iPhone 11")
    assert correct("A vegetable patch with tomatoes.", "a vegetable patch, mostly tomatoes and beans")
    assert not correct("A vegetable garden.", "a vegetable patch, mostly tomatoes and beans")


def test_a_day_is_right_however_people_write_it():
    for answer in ("On Tuesday 24 February 2026.", "February 24th, 2026", "on Feb 24", "2026-02-24",
                   "the 24th of February"):
        assert correct(answer, "2026-02-24"), answer
    assert not correct("On Tuesday 10 February 2026.", "2026-02-24")
    assert not correct("In February.", "2026-02-24")


class _Counter:
    """Tokens by words: enough to test which messages fit (``_fifo`` asks nothing else)."""

    def tokenize(self, text: str) -> list[str]:
        return text.split()

    def format_message(self, role: str, text: str) -> str:
        return f"{role}: {text}"


def test_the_baseline_keeps_the_system_prompt_and_the_most_recent_messages_that_fit():
    messages = [("system", "be brief"), ("user", "one two three"), ("assistant", "four five"), ("user", "six")]
    assert _fifo(_Counter(), messages, 5) == 2  # "assistant: four five", "user: six"
    assert _fifo(_Counter(), messages, 100) == 1  # all of them
    assert _fifo(_Counter(), messages, 1) == 4  # nothing fits: the system prompt alone


def test_bad_arguments_are_one_line_errors():
    for args in (["--dev", "0"], ["--ram", "100"]):
        done = run_llmos("bench", "answers", *args, timeout=60)
        err = done.stderr.decode()
        assert done.returncode != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
