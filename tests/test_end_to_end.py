"""benchmarks/_end_to_end.py through gpu_path --device cpu: the real loader reading a tiny prepared store, timed
between step ends; the split of a step into compute and waiting."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmarks import gpu_path
from benchmarks._end_to_end import StepTimer, summarise

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "data.synthetic.args.n_refs=3",
    "data.synthetic.args.size=[24,24]",
    "data.train.args.crop=16",
    "data.synthetic.args.distortions=[jpeg,white_noise]",
    "train.batch_size=4",
]


def test_a_step_is_split_into_compute_and_waiting() -> None:
    trainer = SimpleNamespace(device=SimpleNamespace(type="cpu"), config=SimpleNamespace(num_workers=2, batch_size=8))
    trainer._train_step = lambda batch: None
    timer = StepTimer(trainer)
    assert trainer._train_step is timer
    timer.starts, timer.ends, timer.pinned = [0.0, 1.5, 3.5], [1.0, 2.0, 4.0], [False] * 3  # 0.5 s waits, 0.5 s steps
    res = summarise(timer, warmup=1)
    assert res["steps"] == 2 and res["e2e_s_per_step"] == pytest.approx(1.5)
    assert res["compute_s_per_step"] == pytest.approx(0.5) and res["wait_s_per_step"] == pytest.approx(1.0)
    assert res["data_share"] == pytest.approx(2 / 3) and res["num_workers"] == 2 and not res["pin_memory"]
    with pytest.raises(ValueError, match="at least one warm-up and one timed step"):
        summarise(timer, warmup=3)


@pytest.mark.slow  # two ResNet-10s built and stepped twice, a worker process: ~25 s on the shared 2 cores
def test_gpu_path_on_cpu_trains_through_the_real_loader_and_the_prepared_store(tmp_path: Path, capsys) -> None:
    argv = ["--device", "cpu", "--steps", "1", "--warmup", "1", "--workers", "1", "--data", str(tmp_path), "--formats",
            "store"]  # fmt: skip
    argv += [a for s in TINY for a in ("--set", s)] + [str(ROOT / "recipes" / "quickstart.yaml")]
    res = gpu_path.main(argv)
    rows = res["end_to_end"]["quickstart.yaml"]
    assert list(rows) == ["store"]
    r = rows["store"]
    assert r["format"] == "store" and r["reader"] == "Kadid10k"  # the reader was built with format: store
    assert (tmp_path / "quickstart_mrkd_kadid10k" / "distill_store" / "manifest.json").is_file()  # prepared first
    assert r["steps"] == 1 and r["num_workers"] == 1 and r["batch_size"] == 4
    assert r["e2e_s_per_step"] >= r["compute_s_per_step"] > 0
    assert not r["pin_memory"] and not r["batches_pinned"]  # nothing is pinned on the CPU
    out = capsys.readouterr().out
    assert "quickstart.yaml end to end (cpu)" in out and "no (cpu)" in out
    with pytest.raises(SystemExit):
        gpu_path.main(["--device", "cpu", "--formats", "lmdb"])
    assert "--formats: comma-separated store, files or torchvision, got 'lmdb'" in capsys.readouterr().err


def test_paper_shapes_rows_show_the_end_to_end_step_where_measured() -> None:
    from benchmarks import paper_shapes as ps

    assert ps._e2e({"e2e_step_s": 2.345}) == " (e2e 2.3)"
    assert ps._e2e({"step_s": 2.0}) == ""  # rows saved before it was measured
