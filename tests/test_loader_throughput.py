"""The loader benchmark's projections: loader bound vs FLOP bound per recipe, and the README block it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import loader_throughput as lt
from benchmarks import paper_shapes as ps


def _results() -> dict:
    cfg = {"seconds": 1, "batch": 16, "workers": [1, 2], "items": 4, "loader_workers": 8, "gpu_tflops": 100.0,
           "utilisation": 0.5, "machine": {"processor": "x", "cpu_count": 2, "torch": "t"}}  # fmt: skip
    div2k = {"dataset": "div2k", "recipes": {"mipkd_edsr_x4": 16}, "batch": 16, "image_size": "2040×1356",
             "formats": {"files": {"workers_1": 1.0, "workers_2": 1.6, "batch": 2},
                         "store": {"workers_1": 200.0, "workers_2": 300.0, "batch": 16}}}  # fmt: skip
    kadid = {"dataset": "kadid10k", "recipes": {"mrkd_kadid": 16}, "batch": 16, "image_size": "512×384",
             "formats": {"files": {"workers_1": 10.0}, "store": {"workers_1": 20.0}}}  # fmt: skip
    return {"config": cfg, "sets": {"div2k scale=4": div2k, "kadid10k crop=None": kadid}}


def test_bounds_and_winners(tmp_path: Path) -> None:
    shapes = {"rows": [{"recipe": "mipkd_edsr_x4", "projection": {"step_flops": 50e12 * 0.02}},
                       {"recipe": "mrkd_kadid", "projection": {"step_flops": 50e12 * 0.01}}]}  # fmt: skip
    b = lt.bounds(_results(), shapes, 8, 50e12)
    assert b["mipkd_edsr_x4"]["flop_s"] == pytest.approx(0.02)
    assert b["mipkd_edsr_x4"]["loader_s"] == pytest.approx({"files": 16 / 8, "store": 16 / 1600})
    assert b["mrkd_kadid"]["loader_s"]["store"] == pytest.approx(0.1)
    (tmp_path / "l.json").write_text(json.dumps(_results()))
    (tmp_path / "s.json").write_text(json.dumps(shapes))
    loader = lt.recipe_bounds(tmp_path / "s.json", tmp_path / "l.json", 8, 100.0, 0.5)
    row = {"recipe": "mipkd_edsr_x4", "projection": shapes["rows"][0]["projection"]}
    bound = ps.loader_bound(row, loader, 50e12)
    assert bound is not None
    assert (bound["winner_files"], bound["winner_store"]) == ("loader", "FLOPs")
    assert bound["step_files_s"] == pytest.approx(2.0) and bound["step_store_s"] == pytest.approx(0.02)
    assert ps.loader_bound({"recipe": "other", "projection": {"step_flops": 1}}, loader, 1.0) is None
    assert lt.recipe_bounds(tmp_path / "s.json", tmp_path / "missing.json") == {}


def test_markdown_states_targets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shapes = {"rows": [{"recipe": "mipkd_edsr_x4", "projection": {"step_flops": 50e12 * 0.02}},
                       {"recipe": "mrkd_kadid", "projection": {"step_flops": 50e12 * 0.01}}]}  # fmt: skip
    (tmp_path / "s.json").write_text(json.dumps(shapes))
    monkeypatch.setattr(lt, "PAPER_SHAPES", tmp_path / "s.json")
    text = lt.markdown(_results())
    assert "| div2k scale=4 | 1 | 2040×1356 | 2 / 16 | 1 / 0.8 | 200 / 150 | 200.0× |" in text
    assert "store ÷ files at 1 worker = 200× (scale=4) — **met**." in text
    assert "met by 1 of 2 recipes with `format: store`. Not met:" in text
    assert "- mrkd_kadid: loader 100 ms/step vs FLOP 10 ms/step (10.0×)" in text
