"""The README's quickstart table is written by benchmarks/readme_numbers.py and must match what the code produces."""

from __future__ import annotations

import pytest

from benchmarks import readme_numbers as rn


def test_the_block_between_the_markers_is_replaced_and_nothing_else():
    text = f"intro\n{rn.BEGIN}\nold table\n{rn.END}\noutro\n"
    new = rn.replace_block(text, "| model |\n|---|")
    assert new == f"intro\n{rn.BEGIN}\n| model |\n|---|\n{rn.END}\noutro\n"
    assert rn.current_block(new) == "| model |\n|---|"
    with pytest.raises(SystemExit, match="no <!-- readme-numbers:quickstart -->"):
        rn.replace_block("no markers here", "x")


def test_the_readme_has_the_generated_block():
    assert rn.current_block(rn.README.read_text())


@pytest.mark.slow
def test_readme_quickstart_numbers_match_a_fresh_run(capsys):
    """Re-runs the quickstart (minutes): fails when the README and the code disagree."""
    code = rn.main(["--check"])
    assert code == 0, capsys.readouterr().out
