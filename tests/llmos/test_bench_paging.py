"""``llmos bench paging --data``: a LoCoMo-shaped file is read as it is published, and the
run reports the pager beside plain BM25. The sample below is written for this test in
LoCoMo's shape (it holds none of LoCoMo's text)."""

from __future__ import annotations

import json

from llmos.bench.locomo import conversation
from llmos.bench.paging import load_data
from tests.conftest import run_llmos

FILLER = [("Ana", "The weather was grey again, I stayed in and read."),
          ("Ben", "Sounds like a calm day, reading is nice."),
          ("Ana", "Work was busy, lots of meetings about the budget."),
          ("Ben", "Meetings can be tiring, take a short walk.")]


def _sample() -> dict:
    first = [("Ana", "Guess what, I signed up for a pottery class on Thursdays!"),
             ("Ben", "Nice! What will you make first?")] + FILLER * 3
    second = FILLER * 3 + [("Ben", "My cousin Teodor finally moved to Lisbon."),
                           ("Ana", "Lisbon is lovely in spring.")]

    def turns(session: int, lines: list[tuple[str, str]]) -> list[dict]:
        return [{"speaker": who, "dia_id": f"D{session}:{n}", "text": text} for n, (who, text) in enumerate(lines, 1)]

    session_2 = turns(2, second)
    session_2[0]["blip_caption"] = "a photo of a grey street"
    return {
        "qa": [
            {"question": "Which class did Ana sign up for?", "answer": "pottery", "evidence": ["D1:1"], "category": 4},
            {"question": "Where did Teodor move?", "answer": "Lisbon", "evidence": ["D2:13; D2:14"], "category": 1},
            {"question": "When did Ana sign up?", "answer": "May 2023", "evidence": ["D1:1", "D9:99"], "category": 2},
            {"question": "What did Ben's dog eat?", "adversarial_answer": "x", "evidence": ["D1:2"], "category": 5},
            {"question": "Broken evidence", "answer": "x", "evidence": ["D30:05"], "category": 4},
        ],
        "conversation": {"speaker_a": "Ana", "speaker_b": "Ben",
                         "session_1_date_time": "1:56 pm on 8 May, 2023", "session_1": turns(1, first),
                         "session_2_date_time": "10:37 am on 27 June, 2023", "session_2": session_2},
        "sample_id": "conv-test",
    }


def test_a_locomo_sample_becomes_a_conversation_row(tmp_path):
    row = conversation(_sample())
    assert row["id"] == "conv-test" and len(row["turns"]) == 28
    first = row["turns"][0]
    assert first == {"id": "D1:1", "speaker": "Ana", "date": "2023-05-08",
                     "text": "Ana: Guess what, I signed up for a pottery class on Thursdays!"}
    assert row["turns"][14]["text"].endswith("[shares a photo of a grey street]")
    assert row["turns"][-1]["date"] == "2023-06-27"
    # category 5 and evidence that names no turn are left out; "D2:13; D2:14" is two ids
    assert [(q["kind"], q["evidence"]) for q in row["questions"]] == [
        ("single-hop", ["D1:1"]), ("multi-hop", ["D2:13", "D2:14"]), ("temporal", ["D1:1"])]
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps([_sample()]))
    assert load_data(str(path)) == [row]


def test_bench_paging_runs_on_a_locomo_file_and_reports_the_bm25_margin(tmp_path):
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps([_sample()]))
    done = run_llmos("bench", "paging", "--data", str(path), "--ram", "256", "--json")
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout)
    assert result["questions"] == 3 and result["turns"] == 28 and result["pages_evicted"] > 0
    assert result["recall_by_kind"] == {"multi-hop": 1.0, "single-hop": 1.0, "temporal": 1.0}
    assert result["margin_over_bm25"] == round(result["recall_at_k"] - result["ranking_recall"]["bm25"]["@10"], 4)


def test_a_json_file_that_is_not_locomo_is_one_line(tmp_path):
    path = tmp_path / "other.json"
    path.write_text("[1, 2, 3]")
    done = run_llmos("bench", "paging", "--data", str(path))
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1 and "not of LoCoMo samples" in lines[0]
