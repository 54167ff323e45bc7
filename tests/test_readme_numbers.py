"""The README's quickstart table is written by benchmarks/readme_numbers.py and must match what the code produces."""

from __future__ import annotations

import pytest

from benchmarks import readme_numbers as rn
from benchmarks._common import README, readme_block, write_readme_block


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
def test_the_readme_has_each_generated_block(name):
    assert readme_block(README.read_text(), name)


@pytest.mark.slow
def test_readme_quickstart_numbers_match_a_fresh_run(capsys):
    """Re-runs the quickstart (minutes): fails when the README and the code disagree."""
    code = rn.main(["--check"])
    assert code == 0, capsys.readouterr().out
