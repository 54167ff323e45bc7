"""The CQD benchmarks run at their smoke sizes and print what they measured beside the published numbers."""

from __future__ import annotations

import json

import pytest

from benchmarks import cqd_cache_speed, cqd_tables


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_cqd")
    printed = cqd_tables.main(["--scale", "smoke", "--out", str(out)])
    return out, printed


def test_smoke_scale_prints_the_three_tables_beside_the_published_numbers(smoke):
    out, printed = smoke
    assert set(printed) == {"1", "2", "3"}
    t1, t2, t3 = printed["1"], printed["2"], printed["3"]
    for row in ("Oracle", "No adaptation", "Fine-tuning", "Data augmentation", "Staged training", "CQD",
                "A-initialised CQD"):  # fmt: skip
        assert row in t1
    assert "64.4" in t1 and "39.4" in t1 and "Loc. + low res. (paper)" in t1  # published CQD / no-adaptation
    # one seed: no verdict, and no made-up "± 0.0" spread
    assert "CQD vs baselines: smoke: not a result" in t1 and "better in" not in t1
    assert "(n=1)" in t1 and "± 0.0" not in t1
    assert "Multi-resolution" in t2 and "54.0" in t2 and "high + low res." in t2
    assert "VGG-16 → VGG-m" in t3 and "64.6" in t3 and "72.4" in t3
    for text in (t1, t2, t3):  # every caption names the data source, split, seeds and selection
        assert "SYNTHETIC CUB-200-2011 layout" in text and "official train / test" in text
        assert "seeds [0]" in text and "selection: last epoch" in text
    assert "n/a" not in t1  # every cell was measured (a failed run would print n/a)
    assert json.loads((out / "tables.json").read_text())["1"] == t1


def test_runs_are_chained_per_seed_and_reused(smoke):
    out, printed = smoke
    cqd = (out / "recipes" / "cqd_low_resolution.yaml").read_text()
    assert "cub200_paired" in cqd and "low: 14" in cqd
    resolved = (out / "cqd_low_resolution" / "seed0" / "recipe.yaml").read_text()
    assert str(out / "oracle" / "seed0" / "student.pt") in resolved  # the teacher is the oracle of the same seed
    router = (out / "multires" / "seed0" / "recipe.yaml").read_text()
    assert str(out / "cqd_low_resolution" / "seed0" / "student.pt") in router
    assert len(list((out / "teacher_cache").glob("teacher-*.pt"))) == 2  # VGG-M and VGG-16 teachers, shared by runs
    stamp = (out / "oracle" / "seed0" / "results.json").stat().st_mtime_ns
    again = cqd_tables.main(["--scale", "smoke", "--out", str(out), "--tables", "3"])
    assert again["3"] == printed["3"]
    assert (out / "oracle" / "seed0" / "results.json").stat().st_mtime_ns == stamp  # reused, not retrained


def test_paper_scale_stops_at_once_without_the_real_data_or_weights(tmp_path, smoke, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the recipes name weights/ relative to the working folder: none here
    with pytest.raises(SystemExit, match="needs the real CUB-200-2011"):
        cqd_tables.main(["--scale", "paper", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()
    cub = smoke[0] / "data" / "cub"  # a folder in the official layout; a local weights file named instead of zoo:
    vggm = cqd_tables.RECIPES / "_parts" / "cub_vggm.yaml"
    monkeypatch.setattr(
        cqd_tables,
        "load_raw",
        lambda path: (
            {
                "models": {
                    "student": {
                        "args": {"pretrained": "weights/vgg_m_imagenet.pth" if path == vggm else "zoo:matconvnet_vgg16"}
                    }
                }
            },
            None,
        ),
    )
    with pytest.raises(SystemExit, match=r"local ImageNet weights; missing: weights/vgg_m_imagenet\.pth \("):
        cqd_tables.main(["--scale", "paper", "--data", str(cub), "--out", str(tmp_path / "o")])


def test_cache_speed_quick_measures_all_three_loops():
    res = cqd_cache_speed.main(["--quick", "--threads", "1"])
    assert set(res["loops"]) == {"plain", "cached", "online"}
    assert all(v["median_s_per_step"] > 0 for v in res["loops"].values())
    assert res["ratio_cached_vs_plain"] == pytest.approx(
        res["loops"]["cached"]["median_s_per_step"] / res["loops"]["plain"]["median_s_per_step"]
    )
    assert res["cache_seconds"] > 0 and res["cached_equals_online"]["allclose"]
    assert res["passed"] == (res["ratio_cached_vs_plain"] <= 1.05)
