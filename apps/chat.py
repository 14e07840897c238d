"""``chat``, the default app: a conversation turn with paging and devices.

The shell's own process is a chat; ``llmos run`` without ``--app`` is one
chat turn. The kernel does the work: the input is paged, relevant pages
fault in from swap and mounted files, granted devices are called as the
model decides.
"""

from __future__ import annotations

from llmos.apps.sdk import DEFAULT_SYSTEM, App, Manifest, Sys


class ChatApp(App):
    manifest = Manifest(name="chat", description="conversation with paging and devices (the default)")
    system = DEFAULT_SYSTEM

    async def main(self, sys: Sys) -> str:
        reply = await sys.generate(sys.input)
        sys.data["stop_reason"] = reply.stop_reason
        return reply.text
