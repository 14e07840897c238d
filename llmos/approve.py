"""Asking the user on the terminal before a risky device call (``llmos run``, ``--app``).

The shell asks in a modal window instead (``llmos/tui/approval.py``); both are a
``Kernel.approver``: given the kernel's ``Approval``, they answer allow or refuse.
"""

from __future__ import annotations

import sys

from llmos.term import terminal_safe


async def terminal_approver(request) -> bool:
    """Ask on the terminal before a risky device call; with no terminal, refuse."""
    import asyncio

    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return False
    print(f"\nllmos: {terminal_safe(request.describe())}", file=sys.stderr)
    answer = await asyncio.to_thread(input, "allow this call? [y/N] ")
    return answer.strip().lower() in ("y", "yes")
