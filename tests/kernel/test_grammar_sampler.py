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
