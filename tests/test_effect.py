"""benchmarks/effect.py (issue 27): the paired statistics, the README block rendered from a saved JSON, byte for byte,
and the run claims that let two processes share one benchmark."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest

import benchmarks._common as common
from benchmarks import effect
from benchmarks._common import readme_block

FIXTURE = Path(__file__).parent / "fixtures" / "effect_small.json"
SAVED = effect.ROOT / "benchmarks" / "results" / "effect_cpu.json"


def test_paired_statistics_are_the_t_interval_of_the_mean_difference():
    out = effect.paired([1.0, 2.0, 3.0, 4.0], [0.5, 1.0, 2.5, 3.0])  # differences 0.5, 1, 0.5, 1
    sd = math.sqrt(sum((d - 0.75) ** 2 for d in (0.5, 1.0, 0.5, 1.0)) / 3)
    half = 3.182446305284263 * sd / 2  # t(0.975, 3), from a t table
    assert out["n"] == 4 and out["mean_diff"] == pytest.approx(0.75)
    assert out["ci"] == pytest.approx([0.75 - half, 0.75 + half])
    assert (out["positive"], out["negative"], out["shown"]) == (4, 0, "better")


@pytest.mark.parametrize(
    ("method", "baseline", "shown", "positive"),
    [
        ([1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, 2.0], None, 2),  # mean 0: the interval holds zero
        ([0.5, 0.6, 0.45, 0.55], [0.5, 0.5, 0.5, 0.5], None, 2),  # positive mean, interval still holds zero
        ([0.1, 0.2, 0.1, 0.15], [0.3, 0.35, 0.32, 0.4], "worse", 0),
    ],
)
def test_an_effect_is_shown_only_when_the_interval_excludes_zero(method, baseline, shown, positive):
    out = effect.paired(method, baseline)
    assert out["shown"] == shown and out["positive"] == positive
    low, high = out["ci"]
    assert (low > 0 or high < 0) == (shown is not None)


def test_paired_refuses_unpaired_values():
    with pytest.raises(ValueError, match="differ in length"):
        effect.paired([1.0, 2.0], [1.0])


@pytest.fixture
def readme(tmp_path, monkeypatch):
    """A README copy with an empty effect block; the benchmark writes into it instead of the real one."""
    page = tmp_path / "README.md"
    page.write_text("# x\n\n<!-- readme-numbers:effect -->\nold\n<!-- /readme-numbers:effect -->\n\ntail\n")
    monkeypatch.setattr(common, "README", page)
    return page


def test_the_block_is_rendered_from_the_saved_json_byte_for_byte(readme, capsys):
    effect.main(["--from", str(FIXTURE), "--readme"])
    first = readme.read_text()
    saved = json.loads(FIXTURE.read_text())
    assert readme_block(first, "effect") == effect.render(saved)
    assert first.endswith("<!-- /readme-numbers:effect -->\n\ntail\n")
    effect.main(["--from", str(FIXTURE), "--readme"])
    assert readme.read_text() == first
    text = capsys.readouterr().out
    # each verdict follows from its interval: shown above zero, shown below zero, not shown
    row = "| MRKD vs baseline | 0.6500 ± 0.0100 | 0.6000 ± 0.0200 | +0.0500 [+0.0252, +0.0748] | 3/3 | 3 |"
    assert row + " MRKD beats baseline: effect shown" in text
    assert "CQD is below fine-tuning: the opposite effect is shown" in text
    assert "no effect shown: the 95 % interval includes zero (MiPKD vs scratch)" in text
    assert "PARTIAL" not in text
    # the readings follow the numbers: a better teacher; students above bicubic (27 dB) get no under-training note
    assert "the large-lr model is shown better than its student" in text and "below bicubic" not in text
    assert "wrong on 10.00 % of the clean test views" in text  # CQD not better; its teacher has 90 % clean top-1


def test_students_below_bicubic_are_called_under_trained():
    saved = json.loads(FIXTURE.read_text())
    saved["methods"]["mipkd"]["gap"]["bicubic"] = 29.0
    assert "every student, the scratch one included, stays below bicubic (29.000 dB)" in effect.render(saved)


def test_a_partial_result_says_so_and_marks_what_is_missing(tmp_path, readme):
    saved = json.loads(FIXTURE.read_text())
    saved["complete"] = False
    del saved["methods"]["mipkd"], saved["methods"]["cqd"]["agreement"]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(saved))
    effect.main(["--from", str(partial), "--readme"])
    block = readme_block(readme.read_text(), "effect")
    assert "**PARTIAL RESULTS**" in block
    assert block.split("### MiPKD")[1].split("\n\n")[1] == "not run yet"
    assert "Agreement (top-1" not in block and "CQD is below fine-tuning" in block


@pytest.mark.skipif(not SAVED.is_file(), reason="the benchmark's saved result is not in the tree yet")
def test_the_readme_block_is_what_the_saved_result_renders():
    assert readme_block(common.README.read_text(), "effect") == effect.render(json.loads(SAVED.read_text()))


def test_a_run_claimed_by_a_live_process_is_skipped_and_a_dead_claim_is_taken_over(tmp_path):
    bench = effect.Bench(tmp_path, wait=False)
    folder = tmp_path / "g" / "seed0"
    lock = effect.Bench._take(folder)
    assert lock is not None and lock.read_text() == str(os.getpid())
    assert effect.Bench._take(folder) is None  # this (live) process holds it
    assert bench.runs("mrkd", "g", [0]) == []  # skipped, nothing trained
    lock.write_text("999999999")  # a process id that is not running
    taken = effect.Bench._take(folder)
    assert taken == lock and lock.read_text() == str(os.getpid())
    taken.unlink()


def test_a_finished_run_is_reused_without_training(tmp_path):
    folder = tmp_path / "g" / "seed3"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURE, folder / "unrelated.json")
    (folder / "results.json").write_text(json.dumps({"results": {"test": {}}}))
    runs = effect.Bench(tmp_path).runs("no_such_recipe", "g", [3])  # a missing recipe would fail if it ran
    assert runs == [{"seed": 3, "results": {"test": {}}}]


def test_mrkd_runs_saved_before_the_photo_disjoint_split_say_so():
    saved = json.loads((Path(effect.__file__).parent / "results" / "effect_cpu.json").read_text())
    caveat = "**Measured under an earlier split:**"
    assert "iqa_split" not in saved and caveat in effect.render(saved)
    assert caveat not in effect.render({**saved, "iqa_split": effect.IQA_SPLIT})
