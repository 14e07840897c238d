"""The grammar checks the drawn token (``kernel/grammar_sampler.py``): greedy output is the same
as with llama.cpp's grammar-first chain, and sampled output still always fits the grammar."""

from __future__ import annotations


from llmos.devices.calc import CalcDevice
from llmos.devices.clock import ClockDevice
from llmos.kernel import syscall
from llmos.kernel.cpu import Generation
from llmos.kernel.sampling import Sampling

PROMPT = [("system", "You are helpful."), ("user", "What is 17 * 23? Use the calculator.")]


def _grammar_first(cpu, sampling, grammar):
    """The chain as llama.cpp builds it with the grammar first: every candidate is tested."""
    import llama_cpp
    from llama_cpp import _internals as internals

    chain = internals.LlamaSampler()
    llama_cpp.llama_sampler_chain_add(
        chain.sampler, llama_cpp.llama_sampler_init_grammar(cpu.llm._model.vocab, grammar.encode(), b"root"))
    chain.add_penalties(cpu.llm.n_vocab(), 64, sampling.repeat_penalty, 0.0, 0.0)
    chain.add_greedy()
    return chain


def _generate(cpu, sampling, grammar, seed=0):
    result = Generation()
    list(cpu.stream(cpu.chat_tokens(PROMPT), max_tokens=40, seed=seed, grammar=grammar, result=result,
                    **sampling.params()))
    return result.text


def test_greedy_tokens_are_those_of_the_grammar_first_chain(tiny_cpu, monkeypatch):
    grammar = syscall.grammar(syscall.specs([CalcDevice(), ClockDevice()]))
    sampling = Sampling(temperature=0.0, repeat_penalty=1.1)  # the chain, not the plain argmax
    checked = _generate(tiny_cpu, sampling, grammar)
    monkeypatch.setattr(type(tiny_cpu), "sampler", lambda self, s, seed, g, lazy: _grammar_first(self, s, g))
    assert _generate(tiny_cpu, sampling, grammar) == checked
    assert checked.startswith(f'{syscall.OPEN}{{"device":')  # held to a call (tiny's expr runs long)


def test_sampled_output_always_fits_the_grammar(tiny_cpu):
    grammar = syscall.grammar(syscall.specs([CalcDevice(), ClockDevice()]))
    sampling = Sampling(temperature=1.0, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.05)
    for seed in range(4):
        text = _generate(tiny_cpu, sampling, grammar, seed=seed)
        assert text == _generate(tiny_cpu, sampling, grammar, seed=seed)  # reproducible for a seed
        assert text.startswith(syscall.OPEN), text


def test_a_native_call_of_a_device_with_required_arguments_cannot_leave_them_out(tiny_cpu):
    """Seen with the default model: a forced search written as ``{"name": "search"}``, which ran
    without a query and failed. The clock, which requires nothing, may still be called bare."""
    from llmos.devices.search import SearchDevice
    from llmos.kernel import toolcall

    grammar = toolcall.grammar(syscall.specs([ClockDevice(), SearchDevice()]), lazy=False)

    def after(prefix: str):
        chain = tiny_cpu.sampler(Sampling(temperature=0.0), 0, grammar, None)
        for token in tiny_cpu.tokenize(prefix, special=False):
            assert chain._allowed(token), prefix
            chain.accept(token)
        return chain

    brace, comma = (tiny_cpu.tokenize(c, special=False)[0] for c in "},")
    search = after('{"name": "search"')
    assert search._allowed(comma) and not search._allowed(brace)
    assert after('{"name": "clock"')._allowed(brace)


def test_a_forced_clock_call_offers_no_zone_unless_one_was_asked_for(tmp_path):
    """``Dispatcher.grammar`` with ``leave_out``: the forced grammar for "What time is it?" has no
    ``tz`` (the clock then gives the local time); asked for Tokyo, it has."""
    from llmos.kernel import intent
    from llmos.kernel.fakecpu import FakeCPU
    from llmos.kernel.kernel import Kernel
    from tests.kernel.test_syscall import Devices

    kernel = Kernel.in_folder(FakeCPU(script=lambda prompt: ""), tmp_path, lock=False,
                              devices=Devices(ClockDevice()))
    try:
        proc = kernel.spawn("chat", "You are helpful.", grants={"clock"})

        def forced(text):
            only = intent.required(text, proc.grants)
            leave_out = {d: intent.unasked(text, d) for d in only}
            return kernel.syscalls.grammar(proc, forced=True, only=only, leave_out=leave_out)[0]

        assert '\\"tz\\"' not in forced("What time is it?") and '\\"format\\"' not in forced("What time is it?")
        assert '\\"tz\\"' in forced("What time is it in Tokyo right now?")
    finally:
        kernel.close()


def test_a_forced_calls_opening_is_read_with_the_prompt_and_the_model_writes_only_the_rest(tiny_cpu):
    """Jump-forward: the kernel knows which device a forced call names, so the call's opening is
    read with the prompt (one chunk) and the grammar goes on from there (``Decoding``'s ``opened``)."""
    import pytest

    from llmos.errors import UsageError

    grammar = syscall.grammar(syscall.specs([CalcDevice(), ClockDevice()]))
    opening = f'{syscall.OPEN}{{"device": "calc", "args":'
    head = tiny_cpu.tokenize(opening, special=False)
    result = Generation()
    steps = list(tiny_cpu.stream(tiny_cpu.chat_tokens(PROMPT) + head, max_tokens=80, grammar=grammar,
                                 opened=len(head), result=result, **Sampling(temperature=0.0).params()))
    assert steps[0].text == opening and result.text.startswith(opening)
    call = syscall.find(result.text)  # the model's part completed a valid call (tiny's expression is junk)
    assert call is not None and call.device == "calc" and set(call.args) == {"expr"}
    written = len(tiny_cpu.tokenize(result.text, special=False))
    assert 0 < len(result.tokens) <= written - len(head) + 2  # only what follows the opening was decoded
    wrong = tiny_cpu.tokenize(f'{syscall.OPEN}{{"device": "nope", "args":', special=False)
    with pytest.raises(UsageError, match="does not fit its grammar"):  # never llama.cpp's abort
        list(tiny_cpu.stream(tiny_cpu.chat_tokens(PROMPT) + wrong, max_tokens=8, grammar=grammar, opened=len(wrong),
                             **Sampling(temperature=0.7).params()))
