"""``llmos bench ui`` measures while the model generates and reports what it promises.

No latency is asserted here (benchmarks are commands, not timed tests): this
only keeps the measurement working.
"""

from __future__ import annotations

from llmos.bench import ui


def test_bench_ui_reports_keypress_latency_during_generation():
    result = ui.run("tiny", keys=6)
    assert result["model"] == "tiny"
    assert result["n"] > 0 and result["idle_n"] == 6, "keys were timed while the answer streamed"
    assert 0 < result["keypress_p50_ms"] <= result["keypress_p95_ms"] <= result["keypress_max_ms"]
    assert result["tok_per_s"] > 0
    assert result["target_p95_ms"] == 50.0 and isinstance(result["ok"], bool)
