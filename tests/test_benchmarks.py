"""Benchmarks stay runnable: a seconds-long smoke run of each (timing targets live in the scripts, not here)."""

from __future__ import annotations

from benchmarks.engine_overhead import main as engine_overhead


def test_engine_overhead_quick_run_measures_and_matches_the_hand_loop(capsys):
    res = engine_overhead(["--quick"])
    assert res["equivalence"]["allclose"], "engine and hand loop must do the same math"
    assert res["ratio"] > 0 and res["engine"]["median_s_per_step"] > 0 and res["hand"]["median_s_per_step"] > 0
    assert "ratio" in capsys.readouterr().out
