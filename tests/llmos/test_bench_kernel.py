"""``llmos bench cpu`` and ``llmos bench sched`` run end to end on the tiny model and report
the fields the kernel issue asks for.

Smoke tests of the commands (a few tokens, one round), not timings: the figures
come from running the commands themselves (docs/bench/README.md).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_llmos


def test_bench_cpu_compares_the_kernel_with_raw_llama_cpp_and_times_a_cold_start(llmos_home):
    proc = run_llmos("bench", "cpu", "--model", "tiny", "--tokens", "16", "--rounds", "1", "--json",
                     home=llmos_home)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = json.loads(proc.stdout)
    assert out["model"] == "tiny" and out["rounds"] == 1
    assert out["raw_tok_s"] > 0 and out["llmos_tok_s"] > 0
    assert out["ratio"] == pytest.approx(out["llmos_tok_s"] / out["raw_tok_s"], abs=0.002)
    assert len(out["cold_runs"]) == 3 and all(r["warm"] in ("saved", "restored") for r in out["cold_runs"])
    assert [r["warm"] for r in out["cold_runs"]][1:] == ["restored", "restored"]  # hibernated by the first
    assert not any(r["disk"] for r in out["cold_runs"])  # a fresh data dir has no disk to search
    assert not list((llmos_home / "data").glob("journal*"))  # the user's process table is not touched
    assert list((llmos_home / "data" / "kv").glob("*.kv"))  # the hibernated prefix is the user's own
    assert out["cold_first_token_s"] > 0


def test_bench_sched_reports_ratio_fairness_and_the_batching_ceiling(llmos_home):
    proc = run_llmos("bench", "sched", "--model", "tiny", "--procs", "2", "--tokens", "8", "--repeat", "1",
                     "--json", home=llmos_home)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = json.loads(proc.stdout)
    assert out["procs"] == 2 and out["tokens_per_proc"] == [8, 8] and out["batch"] == 4
    assert out["single_tok_s"] > 0 and out["aggregate_tok_s"] > 0 and 0 < out["fairness"] <= 1
    assert len(out["raw_batch_ratios"]) == 1 and out["raw_batch_ratio"] > 0
    assert out["of_ceiling"] == pytest.approx(out["ratio"] / out["raw_batch_ratio"], abs=0.002)
    assert not list((llmos_home / "data").glob("journal*"))  # a throw-away data dir, not the user's
