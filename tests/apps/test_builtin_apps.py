"""The built-in apps on the real tiny model and a real chromadb disk in a temp dir:
think's vote, compare's preference file, ask's citations and refusals, summarize's budget."""

from __future__ import annotations

import asyncio
import json

import pytest

from llmos.apps import prefs
from llmos.apps.launch import launch
from llmos.apps.think import correct, final_answer, vote
from llmos.kernel.kernel import Kernel
from llmos.kernel.proc import ProcState
from llmos.memory.page import Origin
from tests.conftest import run_llmos

NOTES = {
    "boat.md": "# The boat\nThe boat is called Marlin.\nIt was built in 1987 by Jon Pike in Bergen.\n"
               "Its engine was replaced in 2019.\n",
    "bread.md": "# Bread\nMix 500 g flour, 350 g water, 10 g salt and 5 g yeast.\nBake at 230 degrees for "
                "40 minutes.\n",
}


@pytest.fixture
def kernel(tiny_cpu, tmp_path):
    k = Kernel(tiny_cpu, lock=False, disk_path=tmp_path / "disk")
    yield k
    k.close()


def run(kernel, app, text, **kw):
    shown: list[str] = []
    result = asyncio.run(launch(kernel, app, text, on_text=lambda pid, t: shown.append(t), **kw))
    return result, "".join(shown)


def test_final_answers_are_normalised_and_voted():
    assert final_answer("3 + 4 = 7\nAnswer: 7.") == "7"
    assert final_answer("The answer is 1,200.0 apples") == "1200"
    assert final_answer("Answer: carbon dioxide (CO2)") == "carbon dioxide co2"
    assert vote(["7", "8", "", "8", "7"]) == ("7", 2)  # a tie goes to the earliest (the greedy one)
    assert vote(["", ""]) == ("", 0)
    assert correct("carbon dioxide co2", "carbon dioxide") and not correct("12", "120")


def test_think_votes_over_budget_samples_each_a_process(kernel):
    result, shown = run(kernel, "think", "What is 17 + 25?", options={"budget": 3, "tokens": 32})
    d = result.data
    assert shown.startswith("budget: 3 sample(s) x up to 32 tokens")
    assert len(d["answers"]) == 3 and (d["answer"], d["votes"]) == vote(d["answers"])
    assert f"({d['votes']} of 3 votes" in result.output
    samples = [p for p in kernel.procs.values() if p.app == "think" and p.pid != result.pid]
    assert len(samples) == 3 and all(p.state is ProcState.ZOMBIE for p in samples)
    assert result.tokens == d["tokens"] == sum(p.tokens_out for p in samples)


def test_compare_appends_the_picked_pair_and_exports_it(kernel, tmp_path):
    result, shown = run(kernel, "compare", "Name a colour.", options={"pick": "b", "width": 80})
    assert "A (temperature=0)" in shown and " | B (temperature=0.9,seed=1)" in shown
    a, b = result.data["a"]["text"], result.data["b"]["text"]
    assert a != b and result.data["saved"]
    (row,) = prefs.read()
    assert (row["prompt"], row["chosen"], row["rejected"]) == ("Name a colour.", b, a)
    assert row["model"] == "tiny" and row["chosen_settings"] == "temperature=0.9,seed=1"

    async def pick_a(question, choices):
        assert choices == ["a", "b", "skip"]
        return "a"

    result, _ = run(kernel, "compare", "Name an animal.", chooser=pick_a)
    assert result.data["pick"] == "a" and prefs.read()[-1]["chosen"] == result.data["a"]["text"]
    result, _ = run(kernel, "compare", "Name a tree.")  # nobody to ask: nothing saved
    assert not result.data["saved"] and len(prefs.read()) == 2
    out = tmp_path / "pairs.jsonl"
    proc = run_llmos("prefs", "export", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2 and all(set(line) == {"prompt", "chosen", "rejected"} for line in lines)


def test_ask_cites_the_pages_it_used_and_refuses_to_invent(kernel, tmp_path):
    result, shown = run(kernel, "ask", "Who built the boat Marlin?")
    assert result.data["citations"] == [] and result.tokens == 0 and "Nothing on the disk" in shown
    notes = tmp_path / "notes"
    notes.mkdir()
    for name, text in NOTES.items():
        (notes / name).write_text(text)
    kernel.mount(str(notes))
    result, shown = run(kernel, "ask", "Who built the boat Marlin, and when?")
    assert {"path": str(notes / "boat.md"), "lines": [1, 4]} in result.data["citations"]
    assert f"[1] {notes / 'boat.md'}:1-4" in shown and result.tokens > 0
    used = [p for p in kernel.procs[result.pid].space.pages if p.origin is Origin.FILE]
    assert {p.source for p in used} == {f"{c['path']}:{c['lines'][0]}-{c['lines'][1]}"
                                        for c in result.data["citations"]}
    result, shown = run(kernel, "ask", "What is the orbital period of Neptune in years?")
    assert result.data["citations"] == [] and result.tokens == 0 and "will not guess" in result.output


def test_summarize_reads_page_by_page_within_the_budget(kernel, tmp_path):
    doc = tmp_path / "log.md"
    doc.write_text("".join(f"Day {i}: the team moved {i * 10} boxes to shed {i % 3} and "
                           f"logged it in the ledger with care.\n" for i in range(1, 46)))
    result, shown = run(kernel, "summarize", str(doc), options={"budget": 40, "pages": 2})
    d = result.data
    assert d["pages_total"] >= 3 and d["pages_read"] == 2 and d["tokens"] <= 40 and result.output.strip()
    assert "more not read" in shown and d["sources"][0] == f"{doc}:1-{d['sources'][0].split('-')[-1]}"
    notes = [p for p in kernel.journal.pages(result.pid) if p.origin is Origin.SUMMARY]
    assert [p.source for p in notes] == d["sources"]


def test_summarize_refuses_missing_and_binary_paths_in_one_line(kernel, tmp_path):
    from llmos.errors import UsageError

    with pytest.raises(UsageError, match="no such file or folder"):
        run(kernel, "summarize", str(tmp_path / "nope.md"))
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02" * 10)
    with pytest.raises(UsageError, match="binary"):
        run(kernel, "summarize", str(tmp_path / "blob.bin"))
