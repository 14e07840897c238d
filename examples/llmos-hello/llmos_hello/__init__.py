"""llmos-hello: one app and one device, the smallest complete llmos plugin.

``letters`` is a device (a tool the model or an app can call): small models
cannot count letters, a function can. ``hello`` is an app (a program that
runs as a process): it asks the device how many letters the user's name has
and has the model write a greeting that mentions it. See docs/plugins.md.
"""

from __future__ import annotations

from llmos import App, Device, DeviceResult, Manifest, Risk, Sys
from llmos.errors import UsageError

__version__ = "0.1.0"


class LettersDevice(Device):
    name = "letters"
    description = "count the letters of a word, or how often one letter occurs in it"
    schema = {"type": "object",
              "properties": {"word": {"type": "string", "minLength": 1, "maxLength": 200},
                             "letter": {"type": "string", "minLength": 1, "maxLength": 1}},
              "required": ["word"], "additionalProperties": False}
    risk = Risk.SAFE

    def call(self, args: dict) -> DeviceResult:
        word = args["word"]
        if "letter" in args:
            n = word.lower().count(args["letter"].lower())
            return DeviceResult(output=f"{args['letter']!r} occurs {n} time(s) in {word!r}", data=n)
        n = sum(ch.isalpha() for ch in word)
        return DeviceResult(output=f"{word!r} has {n} letters", data=n)


class HelloApp(App):
    manifest = Manifest(name="hello", description="greets you, counting the letters of your name",
                        devices=("letters",), max_tokens=48, options={"style": "friendly"})
    system = "You write one short greeting line. No lists, no questions."

    async def main(self, sys: Sys) -> str:
        words = sys.input.strip().split()
        if not words:
            raise UsageError("give a name, e.g. llmos run --app hello Ada")
        name = words[0]
        count = await sys.call("letters", word=name)
        if not count.ok:
            sys.exit(f"could not count the letters of {name}: {count.error}")
        sys.data["letters"] = count.output
        reply = await sys.generate(f"Write a {sys.option('style')} one-line greeting for {name}. "
                                   f"Mention that {count.output}.")
        return reply.text
