"""Benchmarks stay runnable: a seconds-long smoke run of each (timing targets live in the scripts, not here)."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.engine_overhead import main as engine_overhead


def test_engine_overhead_quick_run_measures_and_matches_the_hand_loop(capsys):
    res = engine_overhead(["--quick"])
    assert res["equivalence"]["allclose"], "engine and hand loop must do the same math"
    assert res["ratio"] > 0 and res["engine"]["median_s_per_step"] > 0 and res["hand"]["median_s_per_step"] > 0
    assert "ratio" in capsys.readouterr().out


@pytest.mark.slow  # tens of seconds of CPU: the default suite stays under ~10 min on 2 cores
def test_mrkd_tables_smoke_runs_recipes_and_prints_paper_numbers(tmp_path):
    from benchmarks.mrkd_tables import main as mrkd_tables

    printed = mrkd_tables(["--scale", "smoke", "--out", str(tmp_path)])
    assert set(printed) == {"1", "hard", "5", "6", "7"}
    assert "SYNTHETIC" in printed["1"] and "0.7447" in printed["1"]  # caption says synthetic; paper's MRKD SRCC
    assert "seeds [0]" in printed["1"] and "selection: last" in printed["1"] and "(n=1)" in printed["1"]
    assert "by_reference 80/20 (DBCNN's and HyperIQA's released code" in printed["1"]
    assert "Table 4 analog" in printed["hard"] and "Table 3 analog" in printed["hard"]
    # the paper's own types are reported (the smoke sets hold all of them) beside the ones our baseline found
    assert "paper hard 07 colour_saturation" in printed["hard"] and "paper easy 08 gaussian_blur" in printed["hard"]
    assert "our hard " in printed["hard"] and "type not in test set" not in printed["hard"]
    assert "0.8312" in printed["5"] and "random 80/20" in printed["5"]  # LIVEC: paper's ResNet50 MRKD SRCC
    assert "TID2013 → KADID-10k" in printed["6"] and "0.6013" in printed["6"]
    # table-7 rows at ratio 1 and at the MRKD recipe's ratio reuse the Table 1 runs instead of retraining
    runs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and p.name not in ("data", "recipes"))
    cells = ("tid", "kadid", "livec")
    assert runs == sorted(
        [f"{m}_{c}" for m in ("baseline", "urkd", "mrkd") for c in cells]
        + [f"{m}_{c}" for m in ("baseline", "mrkd") for c in ("tid_to_kadid", "kadid_to_tid")]
    )
    # every run is a composed recipe on the quickstart, trained and evaluated on the dataset its table names
    import yaml

    recipe = yaml.safe_load((tmp_path / "mrkd_tid_to_kadid" / "seed0" / "recipe.yaml").read_text())
    assert recipe["data"]["train"]["name"] == "tid2013" and recipe["data"]["eval"]["test"]["name"] == "kadid10k"


def test_mrkd_tables_paper_dry_run_prints_every_table_in_the_papers_protocol(tmp_path, capsys):
    from benchmarks.mrkd_tables import PAPER_HARD
    from benchmarks.mrkd_tables import main as mrkd_tables

    printed = mrkd_tables(["--scale", "paper", "--dry-run", "--out", str(tmp_path / "runs")])
    assert set(printed) == {"1", "hard", "5", "6", "7"}
    assert not (tmp_path / "runs").exists()  # nothing trained, no run folder
    for name, text in printed.items():
        assert "DRY RUN" in text and "seeds [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" in text, name
    assert "split: by_reference 80/20 (DBCNN's and HyperIQA's released code" in printed["1"]
    assert "0.8397" in printed["1"] and "·" in printed["1"]  # paper numbers beside empty cells, no number invented
    for table_name, types in PAPER_HARD.values():
        assert f"{table_name} analog" in printed["hard"]
        assert all(f"paper {'hard' if i < 2 else 'easy'} {code} " in printed["hard"] for i, code in enumerate(types))
    # 3 models × 3 methods × (TID, KADID, LIVEC) + 4 cross-dataset + 6 extra teacher lrs, 10 repeats each
    assert "37 configurations × 10 repeats = 370 training runs planned" in capsys.readouterr().out

    variant = mrkd_tables(
        ["--scale", "paper", "--dry-run", "--tables", "1", "--split", "random", "--out", str(tmp_path)]
    )
    assert "split: random 80/20 of the images (per-image variant, not the default" in variant["1"]


def test_mrkd_tables_show_n_and_list_failed_repeats(tmp_path, monkeypatch):
    import benchmarks.mrkd_tables as bench
    from distill.experiments.repeats import RepeatFailure, RepeatSet

    def result(seed: int, codes: list[str]) -> dict:
        scores = {"srcc": 0.5 + 0.1 * seed, "plcc": 0.4}
        groups = {c: {"srcc": 0.1 * i + 0.01 * seed, "plcc": 0.2} for i, c in enumerate(codes)}
        model = {"overall": scores, "groups": groups}
        return {"seed": seed, "results": {"test": {"student": model, "teacher": model}}}

    def fake(recipe, seeds, out_root, overrides, source=None):  # seed 2 of every configuration diverged
        codes = bench.TID_SMOKE if "tid" in str(recipe) else ["01", "02", "07", "20", "11", "10"]
        failed = RepeatFailure(2, "non-finite loss at step 3: term 'student/mse' = nan", f"{out_root}/seed2")
        return RepeatSet(list(seeds), [result(0, codes), result(1, codes)], [failed])

    monkeypatch.setattr(bench, "collect_repeats", fake)
    b = bench.Bench(bench.SCALES["smoke"], 3, tmp_path)
    one, hard = b.table1(), b.table_hard()
    assert "0.5500 ± 0.0707 (n=2)" in one
    assert "failed repeats (not in n)" in one and "baseline_tid seed 2: non-finite loss at step 3" in one
    assert "failed repeats (not in n)" in hard and "paper hard 16 mean_shift" in hard
    assert "our hard 01 additive_gaussian_noise" in hard  # type 01 has the lowest SRCC in the fake baseline


def test_metrics_speed_compares_at_equal_results(capsys):
    from benchmarks.metrics_speed import main as metrics_speed

    out = metrics_speed(["--quick", "--threads", "1"])
    for metric in ("psnr", "ssim"):
        row = out["results"][metric]
        assert set(row) == {"distill", "basicsr", "scikit-image"}
        assert all(r["max_abs_diff_to_distill"] <= 1e-6 and r["images_per_s"] > 0 for r in row.values())
    assert "distill speed-up" in capsys.readouterr().out


def test_data_pipeline_measures_every_distortion_and_reader(tmp_path, capsys):
    from benchmarks.data_pipeline import READERS
    from benchmarks.data_pipeline import main as data_pipeline
    from distill.data.iqa.distortions import KADID_TYPES

    out = data_pipeline(["--quick", "--threads", "1", "--workers", "0", "--data", str(tmp_path)])
    (rows,) = out["distortions"].values()  # one size
    assert len(rows) == len(KADID_TYPES)
    # deterministic types are checked equal batched vs per image; random ones are marked, never silently compared
    assert all((r["equal_outputs"] is None) == get for r, get in zip(rows.values(), _randomness()))
    assert all(r["batched_speedup_min"] <= r["batched_speedup"] <= r["batched_speedup_max"] for r in rows.values())
    assert all(r["vs_peer"] > 0 for r in rows.values() if "peer" in r)
    assert all(r["control_best"] > 0 and r["batched_speedup_best"] > 0 for r in rows.values())  # A/A and best-of
    assert set(out["readers"]) == set(READERS) and out["model_images_per_s"] > 0
    assert "reader / model" in capsys.readouterr().out


def test_basicsr_loop_trains_the_same_weights_as_basicsrs_own_loop(tmp_path, capsys):
    from benchmarks.basicsr_loop import main as basicsr_loop

    out = basicsr_loop(["--quick", "--data", str(tmp_path)])["result"]
    assert out["max_weight_diff"] == 0.0  # same model, batches, L1 and Adam: the same math, bit for bit on CPU
    assert out["model"] == {"num_feat": 32, "num_block": 8, "upscale": 2}
    assert 0 < out["engine_ms_per_step"] < out["profiled_ms_per_step"]
    assert len(out["paired_ratios"]) == len(out["control_paired"]) == 3
    assert "engine / basicsr" in capsys.readouterr().out


def test_data_pipeline_sizes_option():
    from benchmarks.data_pipeline import parse_sizes

    assert parse_sizes("64,256,512x384") == [(64, 64), (256, 256), (384, 512)]  # (height, width)
    with pytest.raises(argparse.ArgumentTypeError, match="512y384"):
        parse_sizes("64,512y384")


def _randomness() -> list[bool]:
    from distill.data.iqa.distortions import KADID_TYPES, get_distortion

    return [get_distortion(code).random for code in KADID_TYPES]


def test_distiller_overhead_compares_engine_and_hand_loops_on_recipes(tmp_path, capsys):
    from benchmarks.distiller_overhead import main as distiller_overhead

    args = ["recipes/mrkd_resnet10_cpu.yaml", "recipes/mrkd_resnet10_cpu_baseline.yaml", "--quick", "--threads", "1"]
    out = distiller_overhead([*args, "--data", str(tmp_path), "--set", "data.synthetic.args.n_refs=3"])
    assert [r["distiller"] for r in out["recipes"]] == ["mrkd", "supervised"]
    # the hand loop replays the engine's batches with the same optimizers: it must end with the same weights
    assert all(r["same_weights"] and r["ratio"] > 0 for r in out["recipes"])
    assert len(list(tmp_path.iterdir())) == 1  # both recipes read one shared synthetic set
    assert out["mrkd_vs_single"] > 1.0 and "MRKD step / single-model step" in capsys.readouterr().out


def test_gpu_path_skips_cleanly_without_cuda(monkeypatch, capsys):
    import torch

    from benchmarks.gpu_path import main as gpu_path

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "skipped" in gpu_path(["--quick"])
    assert "no CUDA device" in capsys.readouterr().out
