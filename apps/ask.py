"""``ask``: answers a question from the mounted files and cites the pages it used.

The citations are not the model's words: they are the ``path:first-last``
sources of the file pages that were resident when the model answered, so
they cannot be invented. When the page fault finds nothing on the disk close
enough to the question (the pager's relevance cut-off), the app says so and
does not run the model at all: no answer is better than an invented one.
"""

from __future__ import annotations

from llmos.apps.sdk import App, Manifest, Sys

NOTHING = ("Nothing on the disk is relevant to this question, so I will not guess. "
           "Mount the folder that holds the answer (llmos mount PATH, or /mount in the shell) and ask again.")


class AskApp(App):
    manifest = Manifest(name="ask", description="answers from mounted files, citing the pages it used",
                        max_tokens=256, options={"k": 4})
    system = ("You answer questions using only the file excerpts you are given. Quote names and numbers "
              "exactly as they appear. If the excerpts do not contain the answer, say that you do not know.")

    async def main(self, sys: Sys) -> str:
        from llmos.memory.page import Origin

        found = [p for p in await sys.page_in(sys.input, k=int(sys.option("k"))) if p.origin is Origin.FILE]
        if not found:
            sys.data["citations"] = []
            sys.write(NOTHING)
            return NOTHING
        reply = await sys.generate(f"{sys.input}\nAnswer from the file excerpts above.")
        sources = list(dict.fromkeys(p.source for p in sys.memory() if p.origin is Origin.FILE))
        sys.data["citations"] = [_citation(s) for s in sources]
        footer = "\n\nSources:\n" + "\n".join(f"[{i}] {s}" for i, s in enumerate(sources, 1))
        sys.write(footer)
        return reply.text + footer


def _citation(source: str) -> dict:
    path, _, lines = source.rpartition(":")
    first, _, last = lines.partition("-")
    try:
        return {"path": path, "lines": [int(first), int(last)]}
    except ValueError:
        return {"path": source, "lines": None}
