"""Tool calls in the model's own language: which format a model was trained on, and reading it back.

A model whose chat template has a tools section (Qwen2.5 and Qwen3, Hermes and
SmolLM3 with ``<tool_call>``, Llama 3.1+, Mistral, Phi-4, ...) was trained to
call functions in that format; asked in another one (llmos's ``<syscall>``
block) a 0.5B model writes the call as plain text that never runs. So the
kernel presents devices through the template's own tools section and reads
calls back in every form such models really write:

- ``<tool_call>{"name": "calc", "arguments": {...}}</tool_call>`` (Hermes, Qwen),
- the bare object, or the object in a fenced ```json block (what a small Qwen
  mostly writes), ``{"name": ..., "parameters": ...}`` (Llama 3.1),
  ``[TOOL_CALLS][{...}]`` (Mistral), a list of calls (the first one runs),
- llmos's own ``<syscall>{"device": ..., "args": ...}</syscall>`` block, and
  the ``{"device": ..., "args": ...}`` object without its tags.

A model whose template has no tools section keeps the ``<syscall>`` protocol
(``kernel/syscall.py``).

The grammar is lazy in both protocols: it switches on when the model has
opened a call, so ordinary answers are neither slowed nor bent. For the native
format the trigger is an object that starts with ``"name"`` naming a device
the process may call (as llama.cpp's server does), and the grammar takes it
from there: arguments that fit the device's schema, then the end of the call.
llama.cpp aborts the whole process if the text that completed the trigger does
not fit the grammar, so every point where the trigger can fire has a way out
(``junk``): the grammar can never refuse the trigger's own token.

What this module leaves out: running a call (``kernel/dispatch.py``) and the
``<syscall>`` protocol's text and grammar (``kernel/syscall.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from llmos.kernel import syscall
from llmos.kernel.syscall import Call, Spec, SyscallError


@dataclass(frozen=True)
class Format:
    """How one model family calls tools."""

    family: str
    """"hermes", "llama3", "mistral", "phi4", "json" (a template with tools but no known
    family: name/arguments objects) or "syscall" (no tools in the template: llmos's block)."""
    result_role: str = "tool"
    """The chat role a device's output is rendered with, as the template expects it."""

    @property
    def native(self) -> bool:
        return self.family != "syscall"


SYSCALL = Format("syscall", result_role="user")

_FAMILIES = (
    # (marker in the template source, format); the first that matches wins
    ("<tool_call>", Format("hermes")),
    ("[TOOL_CALLS]", Format("mistral")),
    ("<|tool_call|>", Format("phi4")),
    ("<|python_tag|>", Format("llama3", result_role="ipython")),
    ("ipython", Format("llama3", result_role="ipython")),
)


def detect(template: str | None) -> Format:
    """The tool-call format of a chat template (its Jinja source); SYSCALL without one."""
    if not template or "tools" not in template:
        return SYSCALL
    for marker, fmt in _FAMILIES:
        if marker in template:
            return fmt
    return Format("json")


def tools_json(specs: Sequence[Spec]) -> list[dict]:
    """Specs as the ``tools`` list chat templates take (OpenAI's function form), sorted by
    name so the rendered prompt, and so its hibernated KV state, stays the same."""
    return [{"type": "function", "function": {"name": s.name, "description": s.description,
                                              "parameters": s.schema}}
            for s in sorted(specs, key=lambda s: s.name)]


GENERIC_SECTION = (
    "\n\n# Tools\n\nYou may call one of these functions when it helps answer the user:\n<tools>\n{tools}\n</tools>\n\n"
    "To call one, write only a JSON object with the function's name and arguments and stop:\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n'
    "When no function is needed, answer in words."
)
"""The tools section for a template that takes tools somewhere other than the system
message (Llama 3.1 puts them in the first user message): written by llmos, in the form
that family's parser reads."""


def system_section(cpu, specs: Sequence[Spec]) -> str:
    """The text appended to a system prompt that teaches ``specs`` in the CPU's own format."""
    if not cpu.tool_format.native:
        return "\n\n" + syscall.prompt(list(specs))
    return native_section(cpu, specs)


def native_section(cpu, specs: Sequence[Spec]) -> str:
    """``specs`` as a tools section in the name/arguments JSON form: the template's own where it
    renders one into the system message, else llmos's generic one."""
    tools = tools_json(specs)
    section = cpu.tool_section(tools)
    if section is None:
        section = GENERIC_SECTION.format(tools="\n".join(json.dumps(t, ensure_ascii=False) for t in tools))
    return section


# -- reading calls back ----------------------------------------------------------------------

_OBJECT_START = re.compile(r'\{\s*"(?:name|device)"\s*:')
_STARTS = ('{"name"', '{"device"', '[{"name"', "<syscall>", "<tool_call>", "[tool_calls]", "<|tool_call|>",
           "<|python_tag|>", '```json{"name"', '```json{"device"', '```{"name"', '```json[{"name"',
           '```{"device"')
"""Every opening of a call, without whitespace and in lower case (``could_start``)."""


def _norm(text: str) -> str:
    return "".join(text.split()).lower()


def could_start(text: str) -> bool:
    """Whether ``text`` (from an opening character on) may still become a call's opening."""
    norm = _norm(text)
    return any(s.startswith(norm) or norm.startswith(s) for s in _STARTS)


def is_start(text: str) -> bool:
    norm = _norm(text)
    return any(norm.startswith(s) for s in _STARTS)


def find(text: str, names: Sequence[str] = ()) -> Call | None:
    """The first call in ``text`` in any recognised form, or None when it is an answer in words.

    ``names``: the devices the process may call; an object with only a ``name`` is a call
    when it names one of them (``{"name": "clock"}``). Raises SyscallError for a call that is
    there but broken (an unclosed block, JSON cut off), so the process gets an error page.
    """
    found = locate(text, names)
    return found[1] if found is not None else None


def locate(text: str, names: Sequence[str] = ()) -> tuple[int, Call] | None:
    """``find``, with where the call's opening begins in ``text`` (its tag or fence included):
    what comes before it are the answer's words."""
    block = text.find(syscall.OPEN)
    first = _first_object(text, set(names))
    if block >= 0 and (first is None or block < first[0]):
        call = syscall.find(text)
        return (block, call) if call is not None else None
    if first is None:
        return None
    at, call = first
    return _opening(text, at), call


def opening(text: str) -> int:
    """Where the first call's opening (a ``<syscall>`` block, or a ``{"name"`` / ``{"device"``
    object with its fence or tag) begins in ``text``, whole or broken; -1 without one."""
    found = [i for i in (text.find(syscall.OPEN),) if i >= 0]
    match = _OBJECT_START.search(text)
    if match is not None:
        found.append(_opening(text, match.start()))
    return min(found) if found else -1


_LEAD = re.compile(r"(?:```[a-zA-Z]*\s*|<tool_call>\s*|\[TOOL_CALLS\]\s*|<\|tool_call\|>\s*|<\|python_tag\|>\s*|\[\s*)$")


def _opening(text: str, at: int) -> int:
    """Where the call that starts with the object at ``at`` opens: its fence, tag or list."""
    while True:
        match = _LEAD.search(text, 0, at)
        if match is None or match.start() == at:
            return at
        at = match.start()


def _first_object(text: str, names: set[str]) -> tuple[int, Call] | None:
    decoder = json.JSONDecoder()
    for match in _OBJECT_START.finditer(text):
        at = match.start()
        try:
            data, end = decoder.raw_decode(text, at)
        except (json.JSONDecodeError, RecursionError, ValueError):
            name = re.match(r'\{\s*"(?:name|device)"\s*:\s*"([^"]{1,200})"', text[at:])
            if name and (name.group(1) in names or re.search(r'"(?:arguments|parameters|args)"', text[at:])):
                raise SyscallError(f"the call to {name.group(1)} is not complete JSON") from None
            continue
        call = _as_call(data, names, text[at:end])
        if call is not None:
            return at, call
    return None


def _as_call(data, names: set[str], raw: str) -> Call | None:
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("device"), str) and isinstance(data.get("args", {}), dict) \
            and set(data) <= {"device", "args"}:
        name, args = data["device"], data.get("args", {})
    elif isinstance(data.get("name"), str):
        name = data["name"]
        key = next((k for k in ("arguments", "parameters", "args") if k in data), None)
        if key is None:
            if name not in names or len(data) > 1:
                return None  # {"name": "Ada", "age": 3}: data, not a call
            args = {}
        else:
            args = data[key]
            if isinstance(args, str):  # OpenAI's form: the arguments as a JSON string
                try:
                    args = json.loads(args) if args.strip() else {}
                except (json.JSONDecodeError, RecursionError, ValueError):
                    raise SyscallError(f"the arguments of {name} are not JSON") from None
            if not isinstance(args, dict):
                raise SyscallError(f"the arguments of {name} must be a JSON object")
    else:
        return None
    if not syscall.is_text(name) or not syscall.is_text(args):
        raise SyscallError("the call holds a lone surrogate escape (\\ud800-\\udfff), which is not text")
    return Call(name, args, raw[:2000])


class Splitter:
    """Separates the words of an answer from a call while it streams.

    ``feed`` returns the text that is certainly words; text that may open a call is held
    back until it cannot (a fence that turns out to be ```python, a brace that is not
    ``{"name"``) or the generation ends. ``finish`` returns ``(words, call_text)``.
    """

    def __init__(self) -> None:
        self.pending = ""
        self.calling = False
        """True once the held text is a call's opening: the rest of the round is the call."""

    def feed(self, fragment: str) -> str:
        self.pending += fragment
        if self.calling:
            return ""
        out = []
        while self.pending:
            at = _next_opener(self.pending)
            if at < 0:
                out.append(self.pending)
                self.pending = ""
                break
            out.append(self.pending[:at])
            self.pending = self.pending[at:]
            if is_start(self.pending):
                self.calling = True
                break
            if could_start(self.pending):
                break  # wait for more text
            out.append(self.pending[0])
            self.pending = self.pending[1:]
        return "".join(out)

    def finish(self, is_call: bool) -> tuple[str, str]:
        """The held text as (words, call) once the round is over and the kernel knows."""
        held, self.pending = self.pending, ""
        return ("", held) if is_call else (held, "")


def _next_opener(text: str) -> int:
    found = [i for i in (text.find(c) for c in "<{[`") if i >= 0]
    return min(found) if found else -1


# -- the native grammar ------------------------------------------------------------------------

def trigger(specs: Sequence[Spec]) -> str:
    """The lazy-grammar pattern: an object opening with ``"name"`` and a callable device."""
    names = "|".join(re.escape(s.name) for s in sorted(specs, key=lambda s: s.name))
    return r'[\s\S]*?(\{\s*"name"\s*:\s*"(?:' + names + r')"[\s\S]*)'


def grammar(specs: Sequence[Spec], *, lazy: bool = True) -> str:
    """GBNF for one native call of any of ``specs``: ``{"name": N, "arguments": {...}}`` with
    arguments valid for N (``"parameters"`` is accepted for Llama's form). ``lazy``: for the
    trigger above, with a way out after the device name and after the call (module docstring)."""
    rules, arg_rule = syscall.argument_rules(specs)
    alts = []
    for i, spec in enumerate(sorted(specs, key=lambda s: s.name)):
        rule = f"device-{i}"
        name = json.dumps(json.dumps(spec.name))
        # The arguments may be left out only where none is required: a forced search was seen
        # written as {"name": "search"}, which ran without a query and failed.
        optional = "" if spec.schema.get("required") else "?"
        body = f'ws ("," ws argkey ws ":" ws {arg_rule[spec.name]} ws){optional} "}}"'
        if lazy:
            # After the name's closing quote: the call goes on (space, comma or brace) or it
            # is not a call we can hold (anything else), and the grammar lets it be.
            rules.append(f"{rule} ::= {name} ( {body} | junk )")
        else:
            rules.append(f"{rule} ::= {name} {body}")
        alts.append(rule)
    rules.append('argkey ::= "\\"arguments\\"" | "\\"parameters\\""')
    # Whitespace where the trigger may fire is the model's own (a pretty-printed call puts a
    # newline there); the converter's rules inside the arguments allow one space.
    rules.append("ws ::= [ \\t\\n]{0,12}")
    head = '"{" ws "\\"name\\"" ws ":" ws'
    if lazy:
        rules.append("junk ::= [ \\t\\n]{0,12} [^ \\t\\n,}] [^\\x00]*")
        rules.append("end ::= [ \\t\\n\\]},`]? [ \\t\\n\\]},`]? [ \\t\\n\\]},`]? [ \\t\\n\\]},`]? close?")
        rules.append('close ::= ("</tool_call>" | "```" | "<|/tool_call|>") [ \\t\\n]?')
        rules.append(f"root ::= {head} ({' | '.join(alts)}) end")
    else:
        rules.append(f"root ::= {head} ({' | '.join(alts)})")
    return "\n".join(rules) + "\n"
