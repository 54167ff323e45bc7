"""A measured speed figure says which CPU measured it, and several machines' figures are shown as a range."""

from __future__ import annotations

import json

from benchmarks import metrics_speed
from benchmarks._common import RESULTS_DIR, machine_info, machine_label


def test_machine_info_records_the_cpu_model_and_older_saves_say_it_was_not_recorded():
    info = machine_info()
    assert info["cpu_model"] and "load_1min" in info
    assert machine_label(info).startswith(info["cpu_model"])
    assert machine_label({"processor": "x86_64", "cpu_count": 2}) == "an x86_64 CPU, model not recorded; 2 CPUs"


def test_metrics_speed_shows_each_saved_machine_and_the_range_over_them(tmp_path, capsys):
    saved = json.loads((RESULTS_DIR / "metrics_speed_cpu.json").read_text())
    other = json.loads(json.dumps(saved))
    other["config"]["machine"]["cpu_model"] = "Test CPU 9000"
    other["results"]["psnr"]["scikit-image"]["distill_speedup"] = 0.85
    (tmp_path / "a.json").write_text(json.dumps(saved))
    (tmp_path / "b.json").write_text(json.dumps(other))
    metrics_speed.main(["--from", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    out = capsys.readouterr().out
    assert "| an x86_64 CPU, model not recorded; 2 CPUs, 1 threads" in out and "| Test CPU 9000 (x86_64, 2 CPUs)" in out
    first = saved["results"]["psnr"]["scikit-image"]["distill_speedup"]
    assert f"psnr vs scikit-image: 0.85–{first:.2f}×" in out
