"""``python -m llmos.kernel.llama_server``: llama-cpp-python's OpenAI-compatible server
(``python -m llama_cpp.server``, the same arguments) for a remote CPU (``--cpu-url``),
loading its models the way the embedded CPU does (``llama.llama_defaults``).

Why it exists: on an Intel CPU with AMX, llama-cpp-python's default build crashes on
the first prompt of two or more tokens, and its server dies on its first request
(``kernel/llama.py``, ``_has_amx_build``). This wraps the server's own ``main`` in
the same workaround the embedded CPU loads with; on every other CPU it changes
nothing. The tests start their servers through it, so they run on such machines too.
"""

from __future__ import annotations

import runpy

from llmos.kernel.llama import llama_defaults


def main() -> None:
    with llama_defaults():
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
