"""``chat``, the default app: a conversation turn with paging and devices.

The shell's own process is a chat; ``llmos run`` without ``--app`` is one
chat turn. The kernel does the work: the input is paged, relevant pages
fault in from swap and mounted files, granted devices are called as the
model decides.
"""

from __future__ import annotations

from llmos.apps.sdk import DEFAULT_SYSTEM, App, Manifest, Sys

CHAT_SYSTEM = DEFAULT_SYSTEM
"""The chat's system prompt: the shell's process, ``llmos run`` and ``--app chat`` all use it."""

CHAT_DEVICES = ("calc", "clock", "files", "plot", "python", "search", "shell", "web")
"""What a chat process started by the shell may call. The risky ones (python, shell, web)
still stop for the user's approval every time; config may deny a device outright."""


NO_FILE = "no mounted file matched: this answer is the model's own"
"""Said under a chat answer (the shell's footnote, ``llmos run`` on stderr) when files are
mounted and none was in RAM for it (``Kernel.no_file_used``): an answer that sounds sure
must not pass for one read from the user's files."""


def spawn_chat(kernel, devices=CHAT_DEVICES):
    """A chat process (the shell's own, ``/spawn``, ``/new``), granted ``devices`` when the
    kernel has a device table."""
    grants = set(devices) if kernel.devices is not None else set()
    return kernel.spawn("chat", system=CHAT_SYSTEM, grants=grants)


class ChatApp(App):
    manifest = Manifest(name="chat", description="conversation with paging and devices (the default)")
    system = CHAT_SYSTEM

    async def main(self, sys: Sys) -> str:
        reply = await sys.generate(sys.input)
        sys.data["stop_reason"] = reply.stop_reason
        return reply.text
