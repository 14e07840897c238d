"""``llmos bench soak`` runs end to end and reports what the reliability issue asks for.

A smoke test of the command (two short rounds), not a timing: the figures come
from running the command itself (see README, Reliability).
"""

from __future__ import annotations

import json

from tests.conftest import run_llmos


def test_soak_reports_rss_curve_and_budgets(llmos_home):
    proc = run_llmos("bench", "soak", "--hours", "0.01", "--every", "18", "--procs", "2", "--tokens", "8",
                     "--ram", "200", "--ctx", "512", "--snapshot-mb", "1", "--samples", "2", "--json",
                     home=llmos_home)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = json.loads(proc.stdout)
    assert out["turns"] == 4 and out["procs"] == 2 and out["tokens_generated"] > 0
    assert out["rss_curve"] and all(c["rss_mb"] > 0 for c in out["rss_curve"])
    assert out["snapshot_peak_bytes"] <= out["snapshot_budget_bytes"] == 1024 * 1024
    assert 0 < out["ram_peak_resident_tokens"] <= out["ram_budget_tokens"] == 200
    assert out["bounded"] is True and out["journal_bytes"] > 0
