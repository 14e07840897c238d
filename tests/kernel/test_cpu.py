"""The CPU on the real tiny model: exact tokens, streaming, stops, grammar, threads."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from llmos.errors import ContextOverflow, UsageError
from llmos.kernel.sampling import GREEDY
from llmos.kernel.cpu import Generation


def chat(cpu, text: str, system: str = "You are a helpful assistant.") -> list[int]:
    return cpu.chat_tokens([("system", system), ("user", text)])


def test_multi_token_prompt_evaluates(tiny_cpu):
    # The AMX crash of the default llama.cpp build only shows on batches of 2+ tokens.
    tokens = chat(tiny_cpu, "Tell me about the sea. " * 20)
    assert len(tokens) > 100
    out = Generation()
    list(tiny_cpu.stream(tokens, max_tokens=8, result=out))
    assert out.prompt_tokens == len(tokens)
    assert len(out.tokens) >= 1


def test_detokenize_is_exact(tiny_cpu):
    for text in ["hello world", "line\n" + " " * 40 + "indented", "ünïcödé 😀 中文", "a\tb\r\nc"]:
        assert tiny_cpu.detokenize(tiny_cpu.tokenize(text, special=False)) == text


def test_chat_template_chunks_concatenate(tiny_cpu):
    system = tiny_cpu.format_message("system", "S")
    user = tiny_cpu.format_message("user", "U")
    assert "S" in system and "U" in user
    assert tiny_cpu.chat_tokens([("system", "S"), ("user", "U")]) == (
        tiny_cpu.tokenize(system) + tiny_cpu.tokenize(user) + tiny_cpu.tokenize(tiny_cpu.generation_prompt())
    )


LONG_SYSTEM = "You are a helpful assistant. " + "Answer the user's questions briefly and correctly. " * 8


def test_greedy_is_deterministic_and_answers(tiny_cpu):
    a, b = Generation(), Generation()
    prompt = chat(tiny_cpu, "What is the capital of France?", system=LONG_SYSTEM)
    list(tiny_cpu.stream(prompt, max_tokens=24, result=a))
    list(tiny_cpu.stream(prompt, max_tokens=24, result=b))
    assert a.text == b.text
    assert "Paris" in a.text
    assert b.reused_tokens >= 64  # the second run kept the first run's KV prefix


def test_greedy_picks_what_llama_cpps_greedy_sampler_picks(tiny_cpu):
    """Greedy decoding takes the argmax of the logits itself (``Decoding.greedy``); it must
    choose exactly the tokens llama.cpp's own greedy sampler chooses from the same state."""
    tokens = chat(tiny_cpu, "Write a short story about a lighthouse keeper.")
    ours = Generation()
    list(tiny_cpu.stream(tokens, max_tokens=48, result=ours))
    sampler = tiny_cpu.sampler(GREEDY, 0, None, None)
    theirs: list[int] = []
    tiny_cpu.prefill(tokens)
    while len(theirs) < len(ours.tokens):
        token = sampler.sample(tiny_cpu.llm._ctx, -1)
        if tiny_cpu.is_eog(token):
            break
        theirs.append(token)
        tiny_cpu.llm.eval([token])
    assert len(ours.tokens) > 20
    assert theirs == ours.tokens

def test_output_does_not_depend_on_what_ran_before(tiny_cpu):
    """Prompts are read in blocks at fixed positions, so reused KV equals fresh KV."""
    from llmos.kernel.cpu import Snapshot

    prompt = chat(tiny_cpu, "Tell me a story about a dragon. " * 20)
    tiny_cpu.restore(Snapshot(b"", []))
    fresh = Generation()
    list(tiny_cpu.stream(prompt, max_tokens=40, result=fresh))
    list(tiny_cpu.stream(chat(tiny_cpu, "Tell me a story about a dragon. " * 10 + "No, a cat."), max_tokens=5))
    again = Generation()
    list(tiny_cpu.stream(prompt, max_tokens=40, result=again))
    assert again.reused_tokens > 0
    assert again.tokens == fresh.tokens


def test_chunks_begin_at_pages_and_a_read_is_reused_where_both_were_cut_alike():
    from llmos.kernel.cpu import BLOCK, chunk_bounds, shared_bound

    assert chunk_bounds(150) == (0, BLOCK, 2 * BLOCK, 150)
    assert chunk_bounds(150, [0, 100, 100, 400]) == (0, BLOCK, 100, 150)  # cuts past the end ignored
    old = chunk_bounds(120, [0, 100])  # two pages, then the closing: (0, 64, 100, 120)
    new = chunk_bounds(200, [0, 100, 130])  # the same two pages and two more
    assert shared_bound(old, new, limit=110) == 100  # the pages' read, not the old closing's
    assert shared_bound(old, new, limit=99) == BLOCK  # tokens agree only so far
    assert shared_bound(old, chunk_bounds(200, [0, 90]), limit=150) == BLOCK  # cut elsewhere: only up to there


def test_a_prompt_read_in_page_chunks_reuses_its_pages_and_answers_as_if_read_fresh(tiny_cpu):
    """The next request repeats the pages: it reuses their read up to where the closing began,
    and greedy output equals a cold read of the same prompt."""
    from llmos.kernel.cpu import Snapshot

    pages = [tiny_cpu.tokenize(tiny_cpu.format_message("system", "You are a helpful assistant. " * 9)),
             tiny_cpu.tokenize(tiny_cpu.format_message("user", "Tell me about dragons and their hoards."))]
    closing = tiny_cpu.tokenize(tiny_cpu.generation_prompt())
    body = pages[0] + pages[1]
    first = body + closing
    assert len(body) % 64  # a page ends inside a block: reuse up to it needs the cut
    tiny_cpu.restore(Snapshot(b"", []))
    list(tiny_cpu.stream(first, max_tokens=12, cuts=[0, len(pages[0]), len(body)]))
    more = tiny_cpu.tokenize(tiny_cpu.format_message("assistant", "Dragons guard gold.")) + \
        tiny_cpu.tokenize(tiny_cpu.format_message("user", "And what do they eat?"))
    second = body + more + closing
    cuts = [0, len(pages[0]), len(body), len(body) + len(more)]
    reused = Generation()
    list(tiny_cpu.stream(second, max_tokens=30, cuts=cuts, result=reused))
    assert reused.reused_tokens == len(body)
    tiny_cpu.restore(Snapshot(b"", []))
    cold = Generation()
    list(tiny_cpu.stream(second, max_tokens=30, cuts=cuts, result=cold))
    assert cold.reused_tokens == 0 and len(cold.tokens) > 10
    assert reused.tokens == cold.tokens


def test_snapshot_restore_and_reprefill_resume_exactly(tiny_cpu):
    from llmos.kernel.cpu import Snapshot

    prompt = chat(tiny_cpu, "Explain how rain forms, step by step.")
    tiny_cpu.restore(Snapshot(b"", []))
    alone = Generation()
    list(tiny_cpu.stream(prompt, max_tokens=40, result=alone))
    for resume in ("restore", "reprefill"):
        tiny_cpu.restore(Snapshot(b"", []))
        out = Generation()
        for i, _ in enumerate(tiny_cpu.stream(prompt, max_tokens=40, result=out)):
            if i == 15:
                snap = tiny_cpu.snapshot()
                assert snap.tokens == prompt + out.tokens[:-1]
                list(tiny_cpu.stream(chat(tiny_cpu, "Something else entirely."), max_tokens=8))
                if resume == "restore":
                    tiny_cpu.restore(snap)
                else:
                    tiny_cpu.load_tokens(prompt, out.tokens[:-1])
                assert tiny_cpu.held_tokens() == snap.tokens
        assert out.tokens == alone.tokens, resume


def test_streamed_steps_add_up_to_the_text(tiny_cpu):
    out = Generation()
    pieces = [s.text for s in tiny_cpu.stream(chat(tiny_cpu, "Count from 1 to 10."), max_tokens=40, result=out)]
    assert "".join(pieces) == out.text
    assert out.stop_reason in {"eos", "length"}


def test_stop_string_is_not_emitted(tiny_cpu):
    prompt = chat(tiny_cpu, "What is the capital of France?")
    free = Generation()
    list(tiny_cpu.stream(prompt, max_tokens=24, result=free))
    words = free.text.split()
    assert len(words) > 3, free.text
    stop = words[3]  # a word the greedy answer is known to write (whatever it knows of France)
    out = Generation()
    text = "".join(s.text for s in tiny_cpu.stream(prompt, max_tokens=24, stop=[stop], result=out))
    assert out.stop_reason == "stop"
    assert stop not in text and text == out.text == free.text[:free.text.index(stop)]


def test_max_tokens(tiny_cpu):
    out = Generation()
    list(tiny_cpu.stream(chat(tiny_cpu, "Write a long story about a cat."), max_tokens=5, result=out))
    assert len(out.tokens) == 5 and out.stop_reason == "length"


def test_grammar_forces_parseable_json(tiny_cpu):
    grammar = r'''root ::= "{" ws "\"answer\":" ws num ws "}"
num ::= [0-9]+
ws ::= [ ]?'''
    out = Generation()
    list(tiny_cpu.stream(chat(tiny_cpu, "What is 2+2? Reply in JSON."), max_tokens=20, grammar=grammar, result=out))
    assert isinstance(json.loads(out.text)["answer"], int)


def test_top_candidates_are_probabilities(tiny_cpu):
    steps = list(tiny_cpu.stream(chat(tiny_cpu, "Say hello."), max_tokens=3, top_n=5))
    top = steps[0].top
    assert len(top) == 5
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True)
    assert 0 < sum(probs) <= 1.0001


def test_empty_and_oversized_prompts_are_refused(tiny_cpu):
    with pytest.raises(UsageError):
        list(tiny_cpu.stream([]))
    with pytest.raises(ContextOverflow, match="tokens"):
        list(tiny_cpu.stream([1] * (tiny_cpu.n_ctx + 1)))


async def test_astream_keeps_the_event_loop_responsive(tiny_cpu):
    ticks = 0
    stop = False

    async def ticker():
        nonlocal ticks
        while not stop:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    steps = [s async for s in tiny_cpu.astream(chat(tiny_cpu, "Write a poem about rain."), max_tokens=40)]
    stop = True
    await task
    assert len(steps) >= 10
    assert ticks >= 10  # the loop ran while the model generated on its own thread


async def test_cancel_stops_within_one_token(tiny_cpu):
    cancel = threading.Event()
    out = Generation()
    seen = 0
    async for _ in tiny_cpu.astream(chat(tiny_cpu, "Write a long story."), max_tokens=200, cancel=cancel, result=out):
        seen += 1
        if seen == 5:
            cancel.set()
            t = time.perf_counter()
    assert out.stop_reason == "interrupted"
    assert len(out.tokens) <= 6
    assert time.perf_counter() - t < 1.0
