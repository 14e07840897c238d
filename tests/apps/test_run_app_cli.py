"""`llmos run --app` and `llmos bench think` through the installed command, as a user runs them."""

from __future__ import annotations

import json

from tests.conftest import run_llmos


def test_run_app_think_json_shows_budget_and_vote():
    proc = run_llmos("run", "--app", "think", "--budget", "2", "--opt", "tokens=16", "--model", "tiny", "--json",
                     "What is 2+3?")
    assert proc.returncode == 0, proc.stderr.decode()
    result = json.loads(proc.stdout)
    assert result["app"] == "think" and result["model"] == "tiny"
    assert result["data"]["budget"] == 2 and len(result["data"]["answers"]) == 2
    assert result["output"].startswith("Answer: ") and "of 2 votes" in result["output"]


def test_run_app_streams_to_stdout():
    proc = run_llmos("run", "--app", "think", "--budget", "1", "--opt", "tokens=8", "--model", "tiny", "1+1?")
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert out.startswith("budget: 1 sample(s) x up to 8 tokens") and "of 1 votes" in out


def test_bench_think_prints_accuracy_per_budget():
    proc = run_llmos("bench", "think", "--model", "tiny", "--limit", "1", "--budgets", "1,2", "--tokens", "8",
                     "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    result = json.loads(proc.stdout)
    assert [row["budget"] for row in result["curve"]] == [1, 2] and result["items"] == 1
    assert all(0 <= row["accuracy"] <= 1 for row in result["curve"]) and len(result["rows"][0]["answers"]) == 2
