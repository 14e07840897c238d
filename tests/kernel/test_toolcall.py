"""Tool calls in the model's own format: the parser, the stream splitter, the grammars, the
prompt, and the loop guard. No model is loaded here except tiny's vocabulary, where llama.cpp
itself must accept a grammar (a grammar it refuses would crash the sampler)."""

from __future__ import annotations

import pytest

from llmos.kernel import syscall, toolcall
from llmos.kernel.sampling import GREEDY, LoopGuard, Sampling, repeated_tail
from llmos.kernel.syscall import Spec, SyscallError

CALC = Spec("calc", "arithmetic", {"type": "object", "properties": {"expr": {"type": "string", "maxLength": 2000}},
                                   "required": ["expr"], "additionalProperties": False})
CLOCK = Spec("clock", "the time", {"type": "object", "properties": {"tz": {"type": "string"}}})
ODD = Spec("mcp.notes.any", "an MCP tool with every kind of schema", {"type": "object", "properties": {
    "value": {"description": "untyped: any JSON value"},
    "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    "mode": {"type": "string", "enum": ["fast", "slow"], "description": "how hard to try"},
    "nested": {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}},
    "format": {"type": "string", "maxLength": 10}}, "required": ["value"]})


@pytest.mark.parametrize("text, device, args", [
    ('{"name": "calc", "arguments": {"expr": "1234 * 5678"}}', "calc", {"expr": "1234 * 5678"}),
    ('Sure.\n```json\n{\n  "name": "calc",\n  "arguments": {"expr": "2+2"}\n}\n```', "calc", {"expr": "2+2"}),
    ('<tool_call>\n{"name": "clock", "arguments": {}}\n</tool_call>', "clock", {}),
    ('{"name": "clock", "parameters": {"tz": "UTC"}}', "clock", {"tz": "UTC"}),  # Llama 3.1
    ('[TOOL_CALLS][{"name": "calc", "arguments": "{\\"expr\\": \\"1\\"}"}]', "calc", {"expr": "1"}),  # Mistral
    ('{"name": "clock"}', "clock", {}),
    ('```json\n{"device": "calc", "args": {"expr": "3"}}\n```', "calc", {"expr": "3"}),  # llmos's own, untagged
    ('<syscall>{"device": "calc", "args": {"expr": "4"}}</syscall>', "calc", {"expr": "4"}),
    ('{"name": "ghost", "arguments": {}}', "ghost", {}),  # unknown: a call, so the process gets an error page
])
def test_every_form_a_model_writes_is_read_as_a_call(text, device, args):
    call = toolcall.find(text, ["calc", "clock"])
    assert call is not None and call.device == device and call.args == args


@pytest.mark.parametrize("text", ["The capital of France is Paris.", '{"name": "Ada", "age": 36}',
                                  "```python\nprint({'a': 1})\n```", "Use a dict like {\"a\": 1}."])
def test_words_and_data_are_not_calls(text):
    assert toolcall.find(text, ["calc", "clock"]) is None


def test_a_broken_call_is_an_error_not_words():
    with pytest.raises(SyscallError, match="calc"):
        toolcall.find('{"name": "calc", "arguments": {"expr": "1+', ["calc"])


def test_the_words_before_a_call_are_kept_apart_from_it():
    at, call = toolcall.locate('Let me compute that.\n```json\n{"name": "calc", "arguments": {"expr": "1"}}\n```',
                               ["calc"])
    assert call.device == "calc" and at == len("Let me compute that.\n")


def test_the_splitter_holds_a_call_back_from_the_words_while_it_streams():
    split = toolcall.Splitter()
    shown = "".join(split.feed(piece) for piece in ["Let me ", "compute. ``", '`json\n{"na', 'me": "calc"}', "\n```"])
    assert shown == "Let me compute. " and split.finish(True) == ("", '```json\n{"name": "calc"}\n```')
    split = toolcall.Splitter()
    shown = "".join(split.feed(piece) for piece in ["Code: ``", "`python\nprint({", '"a": 1})\n```'])
    assert shown.startswith("Code: ```python\nprint({") and split.finish(False)[1] == ""


def test_templates_are_sorted_into_their_families():
    assert toolcall.detect(None) is toolcall.SYSCALL
    assert toolcall.detect("{% for m in messages %}{{ m.content }}{% endfor %}") is toolcall.SYSCALL
    assert toolcall.detect("{% if tools %}<tool_call>{% endif %}").family == "hermes"
    assert toolcall.detect("{% if tools %}[TOOL_CALLS]{% endif %}").family == "mistral"
    assert toolcall.detect("{% if tools %}<|python_tag|>{% endif %}").result_role == "ipython"
    assert toolcall.detect("{% if tools %}{{ tools | tojson }}{% endif %}").family == "json"


def test_every_valid_schema_builds_a_grammar_llama_cpp_accepts(tiny_cpu):
    """Observation 7 of issue 15: an untyped property made the schema converter assert."""
    for grammar in (syscall.grammar([CALC, ODD], lazy=True), syscall.grammar([CALC, ODD]),
                    toolcall.grammar([CALC, CLOCK, ODD]), toolcall.grammar([CALC, ODD], lazy=False)):
        tiny_cpu.sampler(GREEDY, 0, grammar, None)  # raises UsageError if llama.cpp refuses it
    tiny_cpu.sampler(Sampling(temperature=0.7), 1, toolcall.grammar([CALC, ODD]), toolcall.trigger([CALC, ODD]))


FORCED = r"""
import re, sys
from llmos.kernel import toolcall
from llmos.kernel.llama import LlamaCPU
from llmos.kernel.models import resolve
from llmos.kernel.sampling import GREEDY
from llmos.kernel.syscall import Spec
specs = [Spec("calc", "", {"type": "object", "properties": {"expr": {"type": "string"}}}),
         Spec("clock", "", {"type": "object", "properties": {}})]
cpu = LlamaCPU(resolve("tiny"), n_ctx=512)
grammar, trigger = toolcall.grammar(specs), toolcall.trigger(specs)
for written in sys.argv[1:]:
    assert re.fullmatch(trigger, "Sure. " + written, re.S), written
    chain = cpu.sampler(GREEDY, 0, grammar, trigger)
    for token in cpu.tokenize("Sure. " + written, special=False):
        chain.accept(token)  # a refused piece aborts the process
print("survived")
"""


def test_the_lazy_native_grammar_never_refuses_the_text_that_triggered_it():
    """llama.cpp aborts the whole process when the text that completed a lazy trigger does not
    fit the grammar (an exception through its C API). Feed such texts, token by token, to a real
    sampler in a child process: the way out after the device name must take each of them."""
    import subprocess
    import sys

    texts = ['{"name": "calc"}}', '{\n  "name": "clock",\n  "arguments": {}}', '{"name":"calc" : 1',
             '[{"name": "clock"}]']
    proc = subprocess.run([sys.executable, "-c", FORCED, *texts], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "survived" in proc.stdout, proc.stderr[-2000:]


def test_the_prompt_carries_descriptions_required_marks_and_enum_values():
    line = syscall.describe_params(ODD.schema)
    assert "value: any, required (untyped: any JSON value)" in line
    assert 'mode: string, one of "fast"|"slow" (how hard to try)' in line
    shaped = syscall._shape(ODD.schema)["properties"]
    assert "format" in shaped and shaped["value"]["type"] == syscall.ANY_VALUE  # a property named format stays


def test_a_tail_that_repeats_a_phrase_is_a_loop_and_code_is_not():
    text = "A context window is what a model reads. " + "It holds the tokens the model can see at once. " * 4
    start, phrase = repeated_tail(text + "It holds the")
    assert text[start:].startswith(phrase) and len(phrase) >= 8
    assert repeated_tail("\n".join(f"print({i})" for i in range(40))) is None
    assert repeated_tail("|---" * 60) is None
    guard, said = LoopGuard(), ""

    def say(piece):
        nonlocal said
        said += piece
        return guard.looping(said)

    assert not any(say(piece) for piece in ["One sentence. ", "Another, different one."])
    assert any(say("and again we go round, ") for _ in range(12))
    assert said[:guard.cut].count("and again we go round") == 1
