"""The tour ``llmos demo`` runs: seven steps, each a caption and what a presenter would do.

1. ``/model``: an LLM is two files, the weights and the program that runs them;
2. a question: next-word prediction, the CPU panel's top-5 candidates;
3. RAM fills (a fact, then long pasted notes) until the pager evicts pages to
   swap; ``/free`` shows what is resident and what is swapped;
4. a question about the evicted fact: a page fault brings its page back;
5. two more processes at once (``/spawn TEXT``, twice): the scheduler switches
   between them;
6. ``/mount`` of a small notes folder (``llmos/demo/notes``) with a planted
   prompt injection; a question pages in the file excerpt, fenced and labelled
   as untrusted data;
7. a process granted the sandboxed ``python`` device is asked about the same
   notes; its device call stops for approval, and the approval window shows
   the exact call and the untrusted file text in its context (the presenter
   answers Y or N; an unattended tour allows it after a few seconds: the
   sandbox has no network and no access to the user's files).

A step is an async function of the ``DemoDriver`` (``demo.py``): it types
into the shell as a user would (``d.type``) and records what it caused in
``d.facts`` (evictions, page faults, switches...), so that a test can check
that each step did what its caption says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.panel import Panel
from rich.text import Text

from llmos.memory.page import Origin, Trust
from llmos.memory.ram import render
from llmos.tui.chat import UserMessage

if TYPE_CHECKING:
    from llmos.tui.demo import DemoDriver

NOTES = Path(__file__).resolve().parent.parent / "demo" / "notes"
"""The folder step 6 mounts (package data). One file in it is a planted prompt injection."""
INJECTED = "team-meeting.md"

FACT = "Remember this for later: my locker code is 4711."
RECALL = "What is my locker code?"
PASTED = [
    ("The Danube", "The Danube rises in the Black Forest and flows about 2,850 km to the Black Sea. "
     "It passes through ten countries and four capitals: Vienna, Bratislava, Budapest and Belgrade. "
     "For centuries it was a border of the Roman Empire, and today barges still carry grain, ore and "
     "timber along it. Its delta in Romania is one of the largest wetlands in Europe, home to pelicans "
     "and more than three hundred kinds of birds."),
    ("Tides", "Tides are the rise and fall of the sea caused mostly by the Moon's gravity, with help "
     "from the Sun. Most coasts see two high and two low tides a day, about 12 hours and 25 minutes "
     "apart. When Sun and Moon line up, at new and full moon, the tides are strongest (spring tides); "
     "at the quarter moons they are weakest (neap tides). The Bay of Fundy in Canada has the largest "
     "range in the world, more than 15 metres."),
    ("The bicycle", "The first bicycles, around 1817, had no pedals: riders pushed with their feet. "
     "Pedals on the front wheel came in the 1860s, then the tall penny-farthing, and in 1885 the "
     "safety bicycle with a chain to the rear wheel, close to today's design. Pneumatic tyres followed "
     "in 1888. Bicycles gave many people, and many women in particular, a new freedom to travel on "
     "their own, and they are still the most efficient way to move a person on land."),
    ("Honeybees", "A honeybee colony has one queen, thousands of female workers and, in summer, a few "
     "hundred male drones. Workers change jobs as they age: cleaning cells, feeding larvae, building "
     "comb, guarding the entrance and finally foraging. A forager tells her sisters where flowers are "
     "with the waggle dance: the angle of the dance gives the direction relative to the Sun, and its "
     "length gives the distance. A colony can make more than 25 kg of honey in a good year."),
]
"""Long notes pasted into the conversation in step 3 (no question asked) to fill RAM."""


@dataclass
class DemoStep:
    slug: str
    """Names the screenshot: ``demo-{n}-{slug}.svg``."""
    title: str
    caption: str
    """One line saying what the audience is seeing."""
    run: Callable[[DemoDriver], Awaitable[None]]


# -- the steps --------------------------------------------------------------------------


async def step_model(d: DemoDriver) -> None:
    await d.type("/model")


async def step_predict(d: DemoDriver) -> None:
    await d.type("In one sentence: why is the sky blue?")
    d.facts["traced_tokens"] = len(d.shell.query_one("#cpu").trace)


async def step_fill_ram(d: DemoDriver) -> None:
    kernel, proc = d.shell.kernel, d.shell.proc
    await d.type(FACT)
    fact = next(p for p in proc.space.pages if p.origin is Origin.USER and "4711" in p.text)
    pasted = 0
    # Paste notes until the fact's page has gone to swap (a few suffice at DEMO_RAM).
    while fact.resident and pasted < 3 * len(PASTED):
        title, text = PASTED[pasted % len(PASTED)]
        pasted += 1
        await d.shell.conversation.add(UserMessage(f"*pasted note, no question asked:* **{title}**\n\n{text}"))
        await asyncio.to_thread(kernel.add_page, proc, Origin.USER, f"{title}\n\n{text}")
        await d.pause(0.8)
    await d.type("/free")
    d.facts.update(pasted=pasted, evictions=proc.space.evictions, fact_swapped=not fact.resident)


async def step_page_fault(d: DemoDriver) -> None:
    proc = d.shell.proc
    faults, seen = proc.space.faults, len(d.events)
    await d.type(RECALL)
    fact = next(p for p in proc.space.pages if p.origin is Origin.USER and "4711" in p.text)
    paged_in = [i for kind, data in d.events[seen:] if kind == "page_in" for i in data["page_ids"]]
    d.facts.update(faults=proc.space.faults - faults, fact_paged_in=fact.id in paged_in)


async def step_two_processes(d: DemoDriver) -> None:
    kernel = d.shell.kernel
    switches = kernel.sched.stats.switches
    # Two fresh processes, each asked for a long answer: both want the CPU at once.
    await d.type("/spawn Write a short story about a lighthouse keeper and a storm.", wait=False)
    await d.type("/spawn Write a short story about a fox who learns to fly a kite.")
    alive = [r for r in kernel.ps() if r["state"] != "ZOMBIE"]
    d.facts.update(processes=len(alive), switches=kernel.sched.stats.switches - switches)


async def step_files(d: DemoDriver) -> None:
    shell = d.shell
    await d.type(f"/mount {d.notes}")
    report = shell.mounts.get(str(d.notes.resolve()))
    await d.type("What is the office Wi-Fi password in my notes? Say which file it is in.")
    # (The excerpt may be back on disk already: a long answer can push it out again.)
    files = [p for p in shell.proc.space.pages if p.origin is Origin.FILE]
    injected = next((p for p in files if INJECTED in p.source), None)
    if injected is not None:
        await shell.system(Panel(Text(render(injected)), title="what the CPU read: fenced, labelled untrusted",
                                 title_align="left", border_style="yellow"))
    else:
        await shell.system("no excerpt of the planted note was paged in for this question")
    d.facts.update(files_indexed=report.files_indexed if report else 0, file_pages=len(files),
                   injected_fenced=injected is not None and injected.trust is Trust.UNTRUSTED)


DEVICE_QUESTION = 'My notes say the Wi-Fi password is "harbour-lights-42". Count its characters with python.'
APPROVAL_SECONDS = 4.0
"""How long an unattended tour shows the approval window before it answers yes."""


async def step_devices(d: DemoDriver) -> None:
    from llmos.tui.approval import ApprovalScreen

    shell, kernel, proc = d.shell, d.shell.kernel, d.shell.proc
    # The process that read the planted note gets one device: python (risk ask: sandboxed,
    # and every call waits for approval).
    await d.type("/grant python")
    # This turn's first answer must be a device call (what apps that need a call use), so
    # the step shows an approval whatever the model; the call itself is the model's.
    # Greedy for this one turn: a sampled call was seen to run its code string on to max_tokens
    # (cut: an error page, no approval to show); the tour must show the same thing every time.
    from llmos.kernel.sampling import GREEDY

    shell.mode, sampling, shell.sampling = "required", shell.sampling, GREEDY
    try:
        await d.type(DEVICE_QUESTION, wait=False)
        await d.until(lambda: isinstance(shell.app.screen, ApprovalScreen) or not shell.busy, 600,
                      "a device call")
        modal = shell.app.screen
        if isinstance(modal, ApprovalScreen):
            request = modal.request
            d.facts.update(approval=request.describe(), untrusted_sources=list(request.untrusted_sources))
            await asyncio.sleep(0.3)
            d.screenshot("demo-7-approval.svg", "llmos demo · 7. the approval window")
            if d.options.manual:
                await d.until(lambda: shell.app.screen is not modal, 3600, "the presenter's answer")
            else:
                await d.pause(APPROVAL_SECONDS)
                if shell.app.screen is modal:
                    modal.action_answer(True)
        await d.until(lambda: not shell.busy, 600, "the answer")
    finally:
        shell.mode, shell.sampling = "auto", sampling
    ran = [p for p in proc.space.pages if p.origin is Origin.DEVICE]
    d.facts.update(device_pages=len(ran), device_calls=len(kernel.journal.audit_log(10)))


STEPS = [
    DemoStep("model", "The two files of an LLM",
             "A model is two files: a big file of learned weights, and a small program that runs them.",
             step_model),
    DemoStep("predict", "Next-word prediction",
             "All the model does is predict the next token: the CPU panel shows its top 5 guesses for each.",
             step_predict),
    DemoStep("ram", "Context window = RAM",
             "The context window is RAM, cut into pages. Near full, the pager moves the oldest pages to "
             "swap on disk (□).", step_fill_ram),
    DemoStep("fault", "Page fault",
             "The answer is in a page on disk: before the turn, a page fault brings it back (green flash).",
             step_page_fault),
    DemoStep("switch", "Two apps, one CPU",
             "Two processes share the CPU: the scheduler switches every 32 tokens, saving and restoring "
             "each one's state.", step_two_processes),
    DemoStep("files", "Retrieval = disk",
             "/mount indexes a folder; a question pages in the excerpt it needs, fenced as untrusted data (▨).",
             step_files),
    DemoStep("devices", "Devices need approval",
             "A device call waits for you: the window shows the exact call and the untrusted file text "
             "(the planted attack) in the context.", step_devices),
]
