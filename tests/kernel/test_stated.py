"""``kernel/stated.py``: whether an answer holds something of its device's result. The answers
are ones the default model gave in ``llmos bench tools``."""

from __future__ import annotations

from llmos.kernel.stated import states


def test_a_number_of_the_result_within_rounding_is_stated():
    assert states("17 squared is 289.", "289", "whats 17 squared")
    assert states("Each pays about 16.67.", "50/3 (≈ 16.66666666666666666666666666666666666667)",
                  "Split 50 between 3 people, how much each?")
    assert states("It is 19:04 now.", "Friday 04 December 2026, 19:04:02 UTC (UTC+00:00)", "What time is it?")


def test_an_answer_with_nothing_of_the_result_is_not():
    assert not states("189", "289", "whats 17 squared")
    assert not states("The capital of Italy is Rome.", "435", "How much is 3 nights at 145 euros a night?")
    # An earlier answer copied with the question's own numbers in it.
    assert not states("The total cost of 50 pizzas is $50.", "50/3 (≈ 16.67)", "Split 50 between 3 people?")


def test_a_text_result_is_stated_by_one_of_its_words():
    found = "[1] notes/boat.md:1-5 (distance 0.35)\n# The boat\nOur sailing boat is called *Marigold*."
    assert states("Your boat is called Marigold.", found, "What's the name of my boat? Look in my notes.")
    assert not states("I'm sorry, I cannot help with that.", found, "What's the name of my boat?")
    assert states("Done.", "0", "What is 0 * 5?")  # nothing the question did not hold: it cannot tell
