"""The shell: a Textual desktop that shows the machine working.

``run_shell(args)`` is what ``llmos`` with no subcommand runs. The modules,
by what they draw:

- ``app.py``: the application, boot screen, app-wide keys;
- ``shell.py``: the main screen and how a turn runs without blocking the UI;
- ``chat.py``: the conversation pane and the input line;
- ``ram.py``, ``cpu.py``, ``panels.py``: the side panels (RAM page map, CPU
  meter and next-word trace, processes, disk, devices);
- ``commands.py``: slash commands and the command palette;
- ``help.py``: the help screen;
- ``demo.py``: ``llmos demo``, a guided tour driven through the real shell;
- ``serve.py``: ``llmos serve``, the shell in a web browser (textual-serve).

Only this package imports textual (a test checks the layers below never do).
"""

from __future__ import annotations

import argparse


def run_shell(args: argparse.Namespace) -> int:
    """Boot the CPU and kernel inside the UI and run the shell until the user quits."""
    from llmos.kernel.boot import resolve_model
    from llmos.tui.app import LlmosApp

    # First use of the default model joins and verifies 491 MB: do it here, with a
    # progress bar on the terminal, before the UI takes the screen. Later runs: instant.
    resolve_model(args.model)
    app = LlmosApp(model=args.model, ctx=args.ctx)
    try:
        app.run()
    finally:
        app.close_kernel()
    if app.boot_error is not None:
        raise app.boot_error
    return app.return_code or 0
