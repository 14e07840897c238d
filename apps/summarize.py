"""``summarize``: a file or a folder, summarised within a token budget, page by page.

Map, then reduce, the way a kernel pages a large file through small RAM:
each excerpt (``Sys.read``: whole lines, about 1000 characters, with its
line range) is summarised by a forked process that holds only that page, so
a file larger than RAM still fits; each summary is written as a note into
this process's RAM; the final summary is generated from the notes with
``max_tokens`` equal to the budget, so it cannot exceed it. A folder is
mounted first and read from the disk. At most ``pages`` excerpts are read
(the rest are counted and reported, never silently dropped).
"""

from __future__ import annotations

import asyncio

from llmos.apps.sdk import App, Manifest, Sys
from llmos.errors import UsageError

CONCURRENT = 4
"""Page summaries generated together (one batched round on the CPU)."""


class SummarizeApp(App):
    manifest = Manifest(name="summarize", description="summarise a file or folder within a token budget",
                        options={"budget": 200, "pages": 16})
    system = "You write short, faithful summaries. Keep names, numbers and decisions; add nothing."

    async def main(self, sys: Sys) -> str:
        budget, limit = int(sys.option("budget")), int(sys.option("pages"))
        if budget < 16 or limit < 1:
            raise UsageError("--budget must be at least 16 tokens and pages at least 1")
        path = sys.input.strip()
        pages = await sys.read(path)
        read = pages[:limit]
        sys.write(f"summarising {len(read)} page(s) of {path} within {budget} tokens"
                  f"{f' ({len(pages) - len(read)} more not read: --opt pages=N)' if len(pages) > len(read) else ''}\n")
        per_page = max(32, min(96, budget))
        if len(read) == 1:
            await sys.admit(read[0])
        else:
            for start in range(0, len(read), CONCURRENT):
                group = read[start:start + CONCURRENT]
                summaries = await asyncio.gather(*(self._page(sys, page, per_page) for page in group))
                for page, text in zip(group, summaries):
                    await sys.note(f"{page.source}: {text}", source=page.source)
                    sys.write(f"  read {page.source}\n")
        reply = await sys.generate(f"Summarise {path} from the text above in at most {int(budget * 0.7)} "
                                   f"words.", max_tokens=budget)
        sys.write("\n")
        sys.data.update(budget=budget, tokens=reply.tokens, pages_read=len(read), pages_total=len(pages),
                        sources=[p.source for p in read])
        return reply.text

    async def _page(self, sys: Sys, page, tokens: int) -> str:
        child = await sys.fork()
        await child.admit(page)
        reply = await child.generate("Summarise the excerpt above in two or three sentences.", max_tokens=tokens)
        child.close()
        return reply.text.strip()
