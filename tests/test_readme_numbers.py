"""The README's quickstart table is written by benchmarks/readme_numbers.py and must match what the code produces."""

from __future__ import annotations

import copy
import json

import pytest

from benchmarks import readme_numbers as rn
from benchmarks._common import README, block_file, readme_block, write_readme_block


def test_the_block_between_the_markers_is_replaced_and_nothing_else(tmp_path):
    readme = tmp_path / "README.md"
    begin, end = "<!-- readme-numbers:quickstart -->", "<!-- /readme-numbers:quickstart -->"
    readme.write_text(f"intro\n{begin}\nold table\n{end}\noutro\n{begin.replace('quickstart', 'other')}\n")
    write_readme_block("quickstart", "| model |\n|---|", readme)
    assert readme.read_text() == (
        f"intro\n{begin}\n| model |\n|---|\n{end}\noutro\n{begin.replace('quickstart', 'other')}\n"
    )
    assert readme_block(readme.read_text(), "quickstart") == "| model |\n|---|"
    readme.write_text("no markers here")
    with pytest.raises(SystemExit, match="no <!-- readme-numbers:quickstart -->"):
        write_readme_block("quickstart", "x", readme)


@pytest.mark.parametrize(
    "name",
    [
        "quickstart",
        "paper-shapes",
        "data-pipeline",
        "basicsr-loop",
        "metrics-speed",
        "distiller-overhead",
        "scnn-prepare",
        "tile-memory",
    ],
)
def test_the_readme_or_a_docs_page_has_each_generated_block(name):
    page = block_file(name)
    assert readme_block(page.read_text(), name), f"no readme-numbers:{name} block in README.md or docs/*.md"
    # the README's own quickstart block stays on the first screen, beside the command that produces it
    assert (page == README) == (name == "quickstart")


def _measurement(teacher: float, student: float, cpu: str | None, seeds: dict | None = None) -> dict:
    saved = json.loads((rn.RESULTS / "quickstart_old_split" / "quickstart_earlier_machine.json").read_text())
    out = copy.deepcopy(saved)
    out["machine"]["cpu_model"] = cpu
    out["seeds"] = seeds or {
        "0": {"teacher": {"srcc": teacher, "plcc": 0.3}, "student": {"srcc": student, "plcc": 0.2}}
    }
    return out


def test_the_band_is_the_recorded_values_widened_by_the_largest_difference_between_cpus():
    a, b = _measurement(0.40, 0.26, None), _measurement(0.38, 0.27, "CPU B")
    stats = rn.band([a, b])
    assert stats["teacher", "srcc"]["low"] == pytest.approx(0.38 - 0.02)
    assert stats["teacher", "srcc"]["high"] == pytest.approx(0.40 + 0.02)
    assert stats["student", "srcc"]["low"] == pytest.approx(0.26 - 0.02)  # the widest difference, not its own 0.01
    inside, lines = rn.check(_measurement(0.41, 0.25, "CPU C"), [a, b])
    assert inside and "not equal to any saved seed-0 run (this CPU: CPU C" in lines[-1]
    outside, lines = rn.check(_measurement(0.43, 0.25, "CPU C"), [a, b])
    assert not outside and any("OUTSIDE" in line and line.startswith("teacher  srcc") for line in lines)
    assert rn.check(b, [a, b])[1][-1].startswith("equal to the saved seed-0 run of CPU B")


def test_seeds_widen_the_band_to_two_standard_deviations_and_the_table_says_so():
    seeds = {str(k): {"teacher": {"srcc": v, "plcc": v}, "student": {"srcc": v, "plcc": v}} for k, v in
             enumerate([0.30, 0.40, 0.50])}  # fmt: skip
    several, other = _measurement(0, 0, "CPU A", seeds), _measurement(0.31, 0.31, "CPU B")
    stats = rn.band([several, other])
    assert stats["teacher", "srcc"]["std"] == pytest.approx(0.1)
    assert stats["teacher", "srcc"]["low"] == pytest.approx(0.30 - 0.2) and stats["teacher", "srcc"]["high"] == 0.51
    table = rn.render_table([other, several])
    assert "seeds 0, 1, 2 on CPU A" in table and "0.400 ± 0.100" in table
    assert "seed 0 on CPU A (x86_64, 2 CPUs)" in table and "seed 0 on CPU B" in table
    one = rn.render_table([_measurement(0.4, 0.2, None)])
    assert "seed 0 on an x86_64 CPU, model not recorded" in one and "0.400–0.400" in one


def test_readme_block_is_what_the_saved_measurements_render():
    saved = rn.load(sorted(rn.RESULTS.glob("quickstart_*.json")))
    assert readme_block(README.read_text(), "quickstart") == rn.render_table(saved)


@pytest.mark.slow
def test_readme_quickstart_numbers_match_a_fresh_run(capsys):
    """Re-runs the quickstart (minutes): fails when this machine's run is outside the README's band."""
    code = rn.main(["--check"])
    assert code == 0, capsys.readouterr().out


def test_label_references_score_the_test_images_by_training_means_of_type_and_of_type_and_level():
    from types import SimpleNamespace as S

    def ds(rows):
        return S(samples=[S(distortion=d, level=lv, score=y) for d, lv, y in rows])

    train = ds([("a", 1, 4.0), ("a", 2, 2.0), ("b", 1, 3.5), ("b", 2, 1.0)])
    test = ds([("a", 1, 4.5), ("a", 2, 2.5), ("b", 1, 3.0), ("b", 2, 0.5)])
    refs = rn.label_references(train, test)
    assert refs["type and level"] == pytest.approx(1.0)  # the level means order the test images exactly
    assert refs["type"] == pytest.approx(0.4472, abs=1e-4)  # type means 3.0 / 2.25: ties within each type


def test_the_verdict_needs_every_seed_of_both_models_at_the_threshold():
    def measured(values):
        seeds = {str(k): {"teacher": {"srcc": v, "plcc": v}, "student": {"srcc": v, "plcc": v}} for k, v in
                 enumerate(values)}  # fmt: skip
        m = _measurement(0, 0, "CPU A", seeds)
        m["setup"]["label_references"] = {"type": 0.33, "type and level": 0.81}
        m["cpu_seconds"] = {"0": 300.0, "1": 306.0, "2": 294.0}
        return m

    good = rn.render_table([measured([0.75, 0.72, rn.INFORMATIVE_SRCC])])
    assert "**yes**" in good and "type gives 0.330, of its type and level 0.810" in good
    assert "seed 0 5.0, seed 1 5.1, seed 2 4.9" in good
    assert "**no**" in rn.render_table([measured([0.75, 0.72, rn.INFORMATIVE_SRCC - 0.01])])


def test_check_trains_with_the_thread_count_of_a_measurement_from_this_cpu():
    """--check reproduces a saved seed 0 bit for bit only at its thread count: it takes the one saved on this CPU."""
    here = rn.machine_info()["cpu_model"]
    other = {"machine": {"cpu_model": "Some Other CPU"}, "threads": 8}
    assert rn.saved_threads([other, {"machine": {"cpu_model": here}, "threads": 1}]) == 1
    assert rn.saved_threads([other]) == 2
