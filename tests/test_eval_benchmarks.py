"""benchmarks/scnn_prepare.py and benchmarks/tile_memory.py: they measure what they say and render saved runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import scnn_prepare, tile_memory

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def test_scnn_prepare_renders_the_saved_run_with_before_and_after(capsys) -> None:
    scnn_prepare.main(["--from", str(RESULTS / "scnn_prepare_cpu.json")])
    out = capsys.readouterr().out
    saved = json.loads((RESULTS / "scnn_prepare_cpu.json").read_text())
    assert f"| {saved['before_items_per_s_per_core']:.1f} |" in out and "852,891 pairs x 30 epochs" in out
    assert f"| {saved['after_items_per_s_per_core']:.1f} |" in out
    assert f"| {saved['before_fly_items_per_s_per_core']:.1f} |" in out  # generator 1's on-the-fly item
    j2k = saved["types"]["4"]
    assert f"| 4 jpeg2000 | {1000 * j2k['before_s'] / j2k['items']:.1f} |" in out and "issue 22's target 4x" in out


def test_tile_memory_report_names_each_pass() -> None:
    machine = {"cpu_count": 2, "threads": 2, "torch": "x"}
    rows = [{"tile": None, "overlap": None, "peak_mib": 900.0, "seconds": 3.0},
            {"tile": 48, "overlap": 16, "peak_mib": 200.0, "seconds": 5.0, "max_abs_diff": 0.01,
             "psnr_vs_whole_db": 50.0}]  # fmt: skip
    res = {"model": "swinir_m", "args": {"upscale": 4}, "lr_hw": [96, 128], "device": "cpu", "rows": rows,
           "machine": machine}  # fmt: skip
    text = tile_memory.report(res)
    assert "| whole image | 900 | 3.0 | - | - |" in text and "| tile 48, overlap 16 | 200 | 5.0 | 0.01 | 50.0 |" in text
    assert "96x128 LR image -> 384x512" in text


@pytest.mark.slow
def test_scnn_prepare_quick_measures_both_paths(capsys) -> None:
    res = scnn_prepare.main(["--quick", "--workers", "1"])
    assert res["written"] == res["items"] == 78
    assert res["before_items_per_s_per_core"] > 0 and res["read_items_per_s_per_core"] > 0


@pytest.mark.slow
def test_tile_memory_quick_measures_whole_and_tiled(capsys) -> None:
    res = tile_memory.main(["--quick"])
    whole, tiled = res["rows"]
    assert whole["tile"] is None and tiled["tile"] == 32 and tiled["psnr_vs_whole_db"] > 20
