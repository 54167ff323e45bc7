"""benchmarks/effect.py (issue 27): the paired statistics, the README block rendered from a saved JSON, byte for byte,
and the run claims that let two processes share one benchmark."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch

import benchmarks._common as common
from benchmarks import effect
from benchmarks._common import readme_block

FIXTURE = Path(__file__).parent / "fixtures" / "effect_small.json"
SAVED = effect.ROOT / "benchmarks" / "results" / "effect_cpu.json"
#: A frozen old-format result (one top-level provenance, MRKD measured before the photo-disjoint split, n = 4 ablation).
OLD_FORMAT = effect.ROOT / "benchmarks" / "results" / "effect_history" / "effect_cpu_before_photo_split.json"


def old_format_text() -> str:
    """:data:`OLD_FORMAT` with the entries of MRKD's and CQD's second regimes (added after it was saved) from the small
    fixture, saved without records of their own, so the top-level provenance stands for them as for CQD and MiPKD."""
    old, small = json.loads(OLD_FORMAT.read_text()), json.loads(FIXTURE.read_text())
    entry = {k: v for k, v in small["methods"]["mrkd_cnniqa"].items() if k != "measured"}
    cqd_fit = {k: v for k, v in small["methods"]["cqd_fit"].items() if k != "measured"}
    old["methods"] = {"mrkd": old["methods"]["mrkd"], "mrkd_cnniqa": entry, "cqd": old["methods"]["cqd"],
                      "cqd_fit": cqd_fit, "mipkd": old["methods"]["mipkd"]}  # fmt: skip
    for key in ("iqa_pretrain_cnniqa_test_srcc", *effect.PRETRAINED_KEYS["cqd_fit"]):
        old["pretrained"][key] = small["pretrained"][key]
    return json.dumps(old, indent=1)


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
    # fewer errors than the paper's teacher (33 %), whose student gained 3.4 points: the errors do not explain it
    assert "which does not explain it: the paper's VGG-M teacher was wrong on 33.0 %" in text
    assert "gained 3.4 points over fine-tuning" in text


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
    first_cqd = block.split("### CQD (recognition")[1].split("### CQD, second regime")[0]
    assert "Agreement (top-1" not in first_cqd and "CQD is below fine-tuning" in first_cqd


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
    saved = json.loads(OLD_FORMAT.read_text())
    caveat = "**Measured under an earlier split:**"
    assert "iqa_split" not in saved and caveat in effect.render(saved)
    assert caveat not in effect.render({**saved, "iqa_split": effect.IQA_SPLIT})


# ------------------------------------------------------------------------------- --only and per-method provenance
OTHER_CQD_MIPKD = ("cqd", "mipkd")


@pytest.fixture
def fake_stages(monkeypatch):
    """Stage functions that train nothing: each method's pre-training gives its pretrained keys, its stages copy the
    fixture's entry with its first row's values shifted (so a replaced entry differs) and call ``stage_done``."""
    small = json.loads(FIXTURE.read_text())
    calls: list[str] = []

    def pretrain(method):
        def fn(bench):
            calls.append(f"pretrain {method}")
            return {k: small["pretrained"][k] for k in effect.PRETRAINED_KEYS[method]}

        return fn

    def stages(method):
        def fn(bench, res, stage_done):
            calls.append(f"stages {method}")
            entry = json.loads(json.dumps(small["methods"][method]))
            later = ["agreement", "grad_ratio"] if method != "mipkd" else ["grad_ratio", "ablation"]
            diagnostics = {k: entry.pop(k) for k in later}  # the stages after the first, as in the real ones
            next(iter(entry["rows"].values()))["mean"] += 0.125
            res["methods"][method] = entry
            stage_done()
            entry.update(diagnostics)
            stage_done()

        return fn

    for m in effect.METHODS:
        monkeypatch.setitem(effect.PRETRAIN, m, pretrain(m))
        monkeypatch.setitem(effect.STAGES, m, stages(m))
    return calls


def test_only_keeps_the_other_methods_byte_for_byte_and_replaces_the_named_one(tmp_path, fake_stages, readme):
    old_text = old_format_text()
    saved = tmp_path / "effect.json"
    saved.write_text(old_text)
    effect.main(["--only", "mrkd", "--json", str(saved), "--out", str(tmp_path / "runs"), "--readme"])
    assert fake_stages == ["pretrain mrkd", "stages mrkd"]  # no other method's start or stages
    old, new = json.loads(old_text), json.loads(saved.read_text())
    for m in OTHER_CQD_MIPKD:
        assert json.dumps(new["methods"][m]) == json.dumps(old["methods"][m])
        for key in effect.PRETRAINED_KEYS[m]:
            assert json.dumps(new["pretrained"][key]) == json.dumps(old["pretrained"][key])
    kept = {k: v for k, v in old["timings"].items() if not k.startswith(("iqa_pretrain/", "mrkd"))}
    assert {k: v for k, v in new["timings"].items() if k in kept} == kept and set(new["timings"]) == set(kept)
    for key in ("machine", "worker_processes", "elapsed_minutes", "wall_minutes_runs", "seeds", "ablation_seeds"):
        assert new[key] == old[key]  # the old top-level provenance still stands for CQD and MiPKD
    assert "iqa_split" not in new and new["complete"] is True
    mrkd = new["methods"]["mrkd"]
    assert mrkd["rows"] != old["methods"]["mrkd"]["rows"]
    prov = mrkd["measured"]
    assert prov["iqa_split"] == effect.IQA_SPLIT and prov["re_measured"] is True and prov["threads"] == 1
    assert {"date_utc", "machine", "worker_processes", "elapsed_minutes", "wall_minutes_runs"} <= set(prov)
    block = readme_block(readme.read_text(), "effect")
    assert block == effect.render(new)
    # one sentence per measurement: the old one for CQD and MiPKD, the new one for MRKD; no earlier-split caveat
    kept = "MRKD (CNNIQA regime), CQD, CQD (30-epoch teacher regime) and MiPKD: measured on AMD EPYC (x86_64, 2 CPUs)"
    assert kept in block
    assert f"MRKD: re-measured after the photo-disjoint split, {prov['date_utc']} UTC on " in block
    tail = block.rsplit("\n", 1)[1]
    assert tail.count(": measured ") + tail.count(": re-measured ") == 2 and "Measured" not in tail
    assert "**Measured under an earlier split:**" not in block and "PARTIAL" not in block
    # a second --only run for another method keeps the re-measured MRKD entry as it is
    effect.main(["--only", "cqd", "--json", str(saved), "--out", str(tmp_path / "runs")])
    again = json.loads(saved.read_text())
    assert json.dumps(again["methods"]["mrkd"]) == json.dumps(mrkd)
    assert json.dumps(again["methods"]["mipkd"]) == json.dumps(old["methods"]["mipkd"])


def test_mixed_provenance_renders_the_same_whatever_the_key_order(tmp_path):
    saved = json.loads(OLD_FORMAT.read_text())
    record = {"date_utc": "2026-12-07 10:00", "machine": saved["machine"], "threads": 1, "worker_processes": 1}
    saved["methods"]["mrkd"]["measured"] = record | {"elapsed_minutes": 20.0, "wall_minutes_runs": 30.0}
    saved["methods"]["mipkd"]["measured"] = record | {"elapsed_minutes": 5.0, "wall_minutes_runs": 6.0}
    text = effect.render(saved)
    reordered = {**saved, "methods": dict(reversed(list(saved["methods"].items())))}
    assert effect.render(reordered) == text
    tail = text.rsplit("\n", 1)[1]
    # the undated (older) measurement first, then the dated ones in METHODS order within one date
    assert tail.index("CQD: measured on") < tail.index("MRKD: measured 2026-12-07 10:00 UTC") < tail.index("MiPKD:")
    assert "sum to 30.0 minutes" in tail and "sum to 6.0 minutes" in tail and "sum to 92.0 minutes" in tail


def test_the_split_caveat_follows_the_mrkd_record_not_the_top_level_one():
    saved = json.loads(OLD_FORMAT.read_text())
    caveat = "**Measured under an earlier split:**"
    own = {"machine": saved["machine"], "wall_minutes_runs": 1.0}
    saved["methods"]["mrkd"]["measured"] = own | {"iqa_split": effect.IQA_SPLIT}
    assert caveat not in effect.render(saved)  # the top level has no split, MRKD's own record has the current one
    saved["iqa_split"] = effect.IQA_SPLIT
    saved["methods"]["mrkd"]["measured"] = own  # MRKD's own record has none: measured under the earlier split
    assert caveat in effect.render(saved)


def test_only_without_a_saved_file_runs_just_those_methods(tmp_path, fake_stages):
    out = tmp_path / "new.json"
    effect.main(["--only", "mipkd,cqd", "--json", str(out), "--out", str(tmp_path / "runs")])
    assert fake_stages == ["pretrain cqd", "pretrain mipkd", "stages cqd", "stages mipkd"]
    res = json.loads(out.read_text())
    assert set(res["methods"]) == {"cqd", "mipkd"} and res["complete"] is False
    assert set(res["pretrained"]) == {*effect.PRETRAINED_KEYS["cqd"], *effect.PRETRAINED_KEYS["mipkd"]}
    text = effect.render(res)
    assert "**PARTIAL RESULTS**" in text and text.split("### MRKD")[1].split("\n\n")[1] == "not run yet"
    assert text.count(" UTC on ") == 1 and "Measured " in text  # CQD and MiPKD: one measurement, one sentence


def test_a_full_run_measures_every_method_once_and_writes_one_sentence(tmp_path, fake_stages):
    out = tmp_path / "full.json"
    effect.main(["--json", str(out), "--out", str(tmp_path / "runs"), "--workers", "1"])
    assert fake_stages == [*(f"pretrain {m}" for m in effect.METHODS), *(f"stages {m}" for m in effect.METHODS)]
    res = json.loads(out.read_text())
    assert res["complete"] is True and res["iqa_split"] == effect.IQA_SPLIT and res["worker_processes"] == 1
    records = [{k: v for k, v in res["methods"][m]["measured"].items() if k != "iqa_split"} for m in effect.METHODS]
    assert all(r == records[0] for r in records) and len(records) == len(effect.METHODS)
    tail = effect.render(res).rsplit("\n", 1)[1]
    assert tail.startswith("Measured ") and "this process and 1 `--worker` process(es)" in tail


def test_a_file_is_complete_only_when_every_method_finished_its_last_stage():
    saved = json.loads(FIXTURE.read_text())
    assert effect.is_finished(saved)
    del saved["methods"]["mipkd"]["ablation"]
    assert not effect.is_finished(saved)
    del saved["methods"]["mipkd"]
    assert not effect.is_finished(saved)


@pytest.mark.parametrize("value", ["mrkd,foo", "", "MRKD"])
def test_an_unknown_only_name_is_a_one_line_error_naming_the_choices(value, capsys):
    with pytest.raises(SystemExit) as err:
        effect.main(["--only", value])
    assert err.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert "--only" in lines[-1] and "choices: mrkd, mrkd_cnniqa, cqd, cqd_fit, mipkd" in lines[-1]


def test_only_refuses_to_overwrite_a_file_that_is_no_effect_result(tmp_path, fake_stages, capsys):
    other = tmp_path / "other.json"
    other.write_text('{"benchmark": "speed"}')
    with pytest.raises(SystemExit) as err:
        effect.main(["--only", "mrkd", "--json", str(other), "--out", str(tmp_path / "runs")])
    assert err.value.code == 2 and "already exists" in capsys.readouterr().err
    assert other.read_text() == '{"benchmark": "speed"}' and fake_stages == []


def test_a_worker_with_only_trains_just_those_groups_and_waits_for_their_starts(tmp_path, monkeypatch):
    seen: list[list[str]] = []
    monkeypatch.setattr(effect, "work", lambda bench, names: seen.append(list(names)))
    effect.main(["--worker", "--only", "mrkd", "--out", str(tmp_path)])
    assert seen == [["mrkd", "mrkd_urkd", "mrkd_baseline"]]
    effect.main(["--worker", "--out", str(tmp_path)])
    assert seen[1] == list(effect.WORKER_ORDER)


def test_the_worker_passes_again_until_its_groups_are_finished(tmp_path, monkeypatch):
    jobs: list[str] = []
    finished = iter([False, False, True])  # another process still holds the start: two more passes
    monkeypatch.setattr(effect.Bench, "job", lambda self, name: jobs.append(name) or [])
    monkeypatch.setattr(effect, "group_finished", lambda bench, name: next(finished))
    effect.work(effect.Bench(tmp_path, wait=False), ["mrkd"], poll=0)
    assert jobs == ["mrkd", "mrkd", "mrkd"]


def _finished_run(folder: Path, results: dict) -> None:
    folder.mkdir(parents=True)
    (folder / "recipe.yaml").write_text("{}\n")
    (folder / "results.json").write_text(json.dumps({"results": results}))


@pytest.mark.parametrize("key", ["mrkd", "mrkd_cnniqa"])
def test_only_mrkd_runs_the_real_mrkd_stages_on_finished_runs_and_trains_nothing(tmp_path, monkeypatch, key):
    """The real pre-training and stage functions of each MRKD regime over run folders found finished (nothing
    trained), with its two model-loading diagnostics replaced by constants; each regime reads its own groups."""
    out = tmp_path / "runs"
    pretrain = {"mrkd": "iqa_pretrain", "mrkd_cnniqa": "iqa_pretrain_cnniqa"}[key]
    _finished_run(out / pretrain / "seed0", {"test": {"student": {"overall": {"srcc": 0.5}}}})
    (out / "iqa_pretrain" / "seed0").mkdir(parents=True, exist_ok=True)
    (out / "iqa_pretrain" / "seed0" / "iqa_trunk.pt").write_bytes(b"")  # already extracted
    other = "mrkd_cnniqa" if key == "mrkd" else "mrkd"
    _finished_run(out / f"{other}_baseline" / "seed0", {})  # the other regime's runs are never read
    for group, shift in ((f"{key}_baseline", 0.0), (f"{key}_urkd", 0.01), (key, 0.02)):
        for seed in effect.SEEDS:
            student = {
                "overall": {"srcc": 0.3 + shift + seed / 100},
                "groups": {"01": {"srcc": 0.1}, "02": {"srcc": 0.2}},
            }
            results = {"test": {"student": student, "teacher": {"overall": {"srcc": 0.25}}}}
            _finished_run(out / group / f"seed{seed}", results)
    read: list[str] = []
    monkeypatch.setattr(effect, "mrkd_agreement", lambda folder: read.append(folder.parent.name) or 0.5)
    monkeypatch.setattr(effect, "grad_ratio", lambda folder, task, terms: read.append(folder.parent.name) or 0.25)
    monkeypatch.setattr("distill.experiments.repeats.run_repeats", lambda *a, **k: pytest.fail("trained a run"))
    saved = tmp_path / "effect.json"
    saved.write_text(old_format_text())
    effect.main(["--only", key, "--json", str(saved), "--out", str(out)])
    old, new = json.loads(old_format_text()), json.loads(saved.read_text())
    mrkd = new["methods"][key]
    assert set(read) == {f"{key}_baseline", f"{key}_urkd", key}
    assert mrkd["rows"]["mrkd"]["mean"] == pytest.approx(0.355) and mrkd["rows"]["baseline"]["mean"] == pytest.approx(
        0.335
    )
    assert mrkd["comparisons"]["mrkd_vs_baseline"]["mean_diff"] == pytest.approx(0.02)
    assert mrkd["agreement"]["mrkd"]["mean"] == 0.5 and mrkd["grad_ratio"]["mrkd"]["mean"] == 0.25
    assert new["pretrained"][effect.PRETRAINED_KEYS[key][0]] == 0.5 and new["complete"] is True
    assert mrkd["measured"]["out"] == str(out) and mrkd["measured"]["elapsed_minutes"] is not None
    assert {m: new["methods"][m] for m in OTHER_CQD_MIPKD} == {m: old["methods"][m] for m in OTHER_CQD_MIPKD}
    assert new["methods"][other] == old["methods"][other]


def test_the_mrkd_reading_follows_its_intervals_when_the_student_gains():
    entry = json.loads(FIXTURE.read_text())["methods"]["mrkd"]
    base = entry["comparisons"]["mrkd_vs_baseline"]
    assert base["shown"] == "better"
    entry["gap"]["shown"] = None  # its partner is not shown better
    entry["comparisons"]["mrkd_vs_urkd"] |= {"shown": None}
    text = effect.mrkd_reading(entry)
    assert "the student ends above the baseline" in text and "although its partner is not shown better" in text
    assert "not shown to come from the paper's unequal rates" in text and "does not lift the student" not in text
    assert "weak evidence" not in text  # the interval's lower end is far from zero
    base["ci"] = [base["mean_diff"] * 0.01, base["mean_diff"] * 2]
    text = effect.mrkd_reading(entry, shown_elsewhere=0, compared=6)
    assert "of the 6 MRKD intervals" in text and "weak evidence of a small effect" in text
    entry["comparisons"]["mrkd_vs_urkd"]["shown"] = "better"
    assert "the gain is tied to the unequal learning rates" in effect.mrkd_reading(entry)
    base["shown"] = None
    assert "the student ends above" not in effect.mrkd_reading(entry)


def test_a_cqd_teacher_wrong_more_often_than_the_papers_is_named_as_such():
    saved = json.loads(FIXTURE.read_text())
    saved["methods"]["cqd"]["gap"]["teacher_clean"] = 50.0
    del saved["methods"]["cqd_fit"]  # its teacher (95 %) is wrong less often than the paper's
    text = effect.render(saved)
    assert "wrong on 50.00 % of the clean test views, more often than the paper's VGG-M teacher (33.0 %" in text
    assert "does not explain it" not in text


def test_only_cqd_fit_runs_the_real_second_cqd_stages_on_finished_runs_and_trains_nothing(tmp_path, monkeypatch):
    """The second CQD regime's real pre-training and stages over finished run folders (nothing trained), with its
    model-loading diagnostics replaced by constants: it compares CQD with the 30-epoch teacher against the same
    fine-tuning runs as the first regime, and splits both regimes' students by their own teacher."""
    out = tmp_path / "runs"
    _finished_run(out / "cqd_pretrain" / "seed0", {"test": {"student": {"overall": {"top1": 0.5}}}})
    teacher = {
        "test": {"student": {"overall": {"top1": 0.9}}},
        "test_low_resolution": {"student": {"overall": {"top1": 0.4}}},
    }
    _finished_run(out / "cqd_teacher_fit" / "seed0", teacher)
    _finished_run(out / "cqd_teacher" / "seed0", teacher)
    for group, base in (("cqd_finetune", 0.60), ("cqd", 0.58), ("cqd_fit", 0.70)):
        for seed in effect.SEEDS:
            student = {"overall": {"top1": base + seed / 200}}
            _finished_run(
                out / group / f"seed{seed}", {"test": {"student": student, "teacher": {"overall": {"top1": 0.4}}}}
            )
    split_by: list[tuple[str, str]] = []

    def by_teacher(student_pt, teacher_pt, recipe_file):
        split_by.append((student_pt.parent.parent.name, teacher_pt.parent.parent.name))
        return {"teacher_right": 80.0, "teacher_wrong": 20.0, "repeats_teacher_error": 50.0}

    monkeypatch.setattr(effect, "cqd_agreement", lambda s, t, r: 70.0)
    monkeypatch.setattr(effect, "grad_ratio", lambda folder, task, terms: 4.0)
    monkeypatch.setattr(
        effect, "cqd_teacher_fit", lambda t, r: {"cqd_teacher": 72.0, "cqd_teacher_fit": 98.0}[t.parent.parent.name]
    )
    monkeypatch.setattr(effect, "cqd_by_teacher", by_teacher)
    monkeypatch.setattr("distill.experiments.repeats.run_repeats", lambda *a, **k: pytest.fail("trained a run"))
    saved = tmp_path / "effect.json"
    saved.write_text(old_format_text())
    effect.main(["--only", "cqd_fit", "--json", str(saved), "--out", str(out)])
    old, new = json.loads(old_format_text()), json.loads(saved.read_text())
    entry = new["methods"]["cqd_fit"]
    assert entry["comparisons"]["cqd_vs_finetune"]["mean_diff"] == pytest.approx(10.0)
    assert entry["gap"]["teacher_clean"] == pytest.approx(90.0) and entry["teacher_train_fit"] == {
        "first": 72.0,
        "second": 98.0,
    }
    assert set(split_by) == {
        *((g, "cqd_teacher") for g in ("cqd_finetune", "cqd")),
        *((g, "cqd_teacher_fit") for g in ("cqd_finetune", "cqd_fit")),
    }
    assert set(entry["by_teacher"]) == {"first", "second"} and set(entry["by_teacher"]["second"]) == {
        "cqd_finetune",
        "cqd",
    }
    assert {m: new["methods"][m] for m in ("cqd", "mipkd", "mrkd")} == {
        m: old["methods"][m] for m in ("cqd", "mipkd", "mrkd")
    }
    text = effect.render(new)
    assert "What the second regime below finds: this teacher fits only 72.00 %" in text
    assert "and top-1 follows (+10.00" in text


def test_cqd_by_teacher_splits_the_test_views_by_the_teachers_clean_view(monkeypatch):
    labels = torch.tensor([0, 1, 2, 3, 4])
    teacher = torch.tensor([0, 1, 2, 0, 0])  # right on the first three, wrong (class 0) on the last two
    student = torch.tensor([0, 1, 1, 0, 4])  # right on 2 of 3 where the teacher is right; repeats one error, fixes one

    def views(model_pt, recipe_file, split, view):
        assert split == "test"
        return (student if view == "input" else teacher), labels

    monkeypatch.setattr(effect, "cqd_views", views)
    out = effect.cqd_by_teacher(Path("s.pt"), Path("t.pt"), Path("r.yaml"))
    assert out == pytest.approx({"teacher_right": 200 / 3, "teacher_wrong": 50.0, "repeats_teacher_error": 50.0})
