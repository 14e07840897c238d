"""The gate before a device call (``kernel/intent.py``): statements are answered in words."""

from __future__ import annotations

import pytest

from llmos.kernel.intent import asks, required, unasked


@pytest.mark.parametrize("text", [
    "What is 1234*5678?", "whats 17 squared", "Compute 987654321 + 123456789.", "calc 64 / 0.5",
    "Search my notes for the Wi-Fi password.", "Tell me the current time in UTC.", "Convert 5 hours into minutes",
    "Please add 3 and 4", "I need the date", "Can you check the clock", "15% of 240", "2**10",
    "Write a haiku about autumn.", "how many seconds in a week", "My dog is Biscuit. What is 2+2?",
])
def test_requests_questions_and_sums_may_call(text):
    assert asks(text)


@pytest.mark.parametrize("text", [
    "My dog is called Biscuit.", "I live in Lisbon.", "Our team has 12 people.", "I was born in 1990.",
    "The meeting moved to Thursday at 3.", "Thanks!", "I'm learning to play the cello.", "",
])
def test_statements_do_not(text):
    assert not asks(text)


GRANTS = {"calc", "clock", "files", "search"}


@pytest.mark.parametrize("text", [
    "What is 1234*5678?", "whats 17 squared", "How much is 15% of 240?", "Please calculate 12 + 30.",
    "How many pets is that in total? Use the calculator: 3 + 2", "How many pets is that in total? Use the calculator.",
    "If I have 3 boxes of 48 eggs, how many eggs is that?", "How much is 3 nights at 145 euros a night?",
    "How many minutes are in 7 hours?", "How many days are there in 3 weeks?",
])
def test_sums_must_come_from_the_calculator(text):
    assert required(text, GRANTS) == {"calc"}


@pytest.mark.parametrize("text", ["What time is it?", "What's the date today?", "Is it morning or evening? Check the clock."])
def test_the_time_must_come_from_the_clock(text):
    assert required(text, GRANTS) == {"clock"}


@pytest.mark.parametrize("text", [
    "What time is Friday lunch? It's in my meeting notes.", "Search my notes for the Wi-Fi password.",
    "What is my boat called? Look in my notes.", "Search my files for the printer.",
])
def test_the_users_notes_must_come_from_a_search(text):
    assert required(text, GRANTS) == {"search"}
    assert required(text, {"files"}) == {"files"}  # no search: the files device reads them


@pytest.mark.parametrize("text", [
    "What year was my sister born?", "Our team has 12 people.", "The meeting is at 3-4 pm.",
    "What is the capital of France?", "How many moons does Mars have?", "How do I calculate compound interest?",
    "I keep my notes in a blue notebook.", "How much is 2 kg in pounds?",
])
def test_other_inputs_leave_the_choice_to_the_model(text):
    assert not required(text, GRANTS)


def test_a_device_that_is_not_granted_is_never_forced():
    assert not required("What is 2 + 2?", {"clock"}) and not required("What time is it?", {"calc"})
    assert not required("Search my notes for the boat.", {"calc", "clock"})


def test_a_forced_call_leaves_out_the_optional_arguments_nobody_asked_for():
    # The default model asked for Tokyo's time, in Java's date syntax, for "What time is it?".
    assert unasked("What time is it?", "clock") == {"tz", "format"}
    assert unasked("What time is it in Tokyo right now?", "clock") == {"format"}
    assert unasked("Tell me the current time in UTC.", "clock") == {"format"}
    assert unasked("Search my notes for the boat.", "search") == {"k", "where", "pid"}
    assert unasked("What is 2 + 2?", "calc") == set()
