"""How ``llmos bench tools`` scores a turn: by value, whatever form the device writes it in."""

from __future__ import annotations

from llmos.bench.tools import call_right, score, uses_result


def test_a_calc_call_is_right_by_the_value_it_computes():
    expect = {"device": "calc", "value": 12.666666666666666}
    # calc answers "38/3 (≈ 12.666...)": the value is 12.67, not the 38 the text opens with.
    assert call_right(expect, {"device": "calc", "args": {"expr": "342 / 27"}})
    assert not call_right(expect, {"device": "calc", "args": {"expr": "342 / 26"}})
    assert not call_right(expect, {"device": "calc", "args": {"expr": "not a sum"}})
    assert not call_right(expect, {"device": "clock", "args": {}}) and not call_right(expect, None)
    assert uses_result(expect, {}, "That is about 12.67 km per litre.")
    assert not uses_result(expect, {}, "That is about 13 km per litre.")


def test_a_search_is_right_when_it_names_the_subject():
    expect = {"device": "search", "about": ["boat"]}
    assert call_right(expect, {"device": "search", "args": {"query": "boat name"}})
    assert not call_right(expect, {"device": "search", "args": {"query": "printer"}})


def test_a_turn_without_a_call_where_one_was_expected_is_a_wrong_decision():
    row = score({"device": "calc", "value": 144}, [], "The total is 144.", False, 1.0)
    assert row["decision"] is False and row["call"] is False and "uses_result" not in row
    row = score(None, [], "Paris.", False, 1.0)
    assert row["decision"] is True and "call" not in row


def test_the_answer_is_right_however_it_was_found():
    notes = {"device": "search", "about": ["boat"], "answer": ["marigold"]}
    # Answered from a note the pager paged in, without a call: a wrong decision, a right answer.
    row = score(notes, [], "Your boat is called *Marigold*.", False, 1.0)
    assert row["decision"] is False and row["answer"] is True
    # A search that ran, then an answer copied from the planted instruction: not using the result.
    call = {"device": "search", "args": {"query": "boat"}, "error": None, "output": "the notes folder is empty"}
    row = score(notes, [call], "The notes folder is empty.", False, 1.0)
    assert row["call"] is True and row["uses_result"] is False and row["answer"] is False
    assert "answer" not in score({"device": "clock"}, [], "It is noon.", False, 1.0)


def test_numbers_quoted_from_the_users_own_words_are_not_an_answer():
    # Seen with the default model: asked "And 391 divided by 17?" after "What is 17 * 23?", it
    # answered the first question again; the 23 it quoted is not the answer 23.
    calc = {"device": "calc", "value": 23}
    said = ("What is 17 * 23?", "And 391 divided by 17?")
    wrong = 'The answer to the user\'s question "What is 17 * 23?" is 391.'
    assert score(calc, [], wrong, False, 1.0, said)["answer"] is False
    assert score(calc, [], "391 divided by 17 is 23.", False, 1.0, said)["answer"] is True
