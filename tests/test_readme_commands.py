"""The README's two quickstart commands: CI runs command 2 as written, and the pages the README links to exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def quickstart_commands() -> list[str]:
    """The bash blocks of the README's Quickstart section, in order."""
    section = (REPO / "README.md").read_text().split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_ci_runs_readme_command_2_unchanged_then_the_slow_suite():
    install, tests = quickstart_commands()
    assert install.endswith("distill run recipes/quickstart.yaml") and tests.endswith("&& pytest")
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert tests in lines, ".ci/run must run README command 2 exactly as written"
    commands = [line for line in lines if line and not line.startswith(("#", "set ", "cd "))]
    assert commands[-2:] == [tests, "pytest -m slow"], "CI runs command 2, then the slow suite in its environment"


def test_quickstart_states_how_long_each_command_takes_and_where_the_outputs_are():
    section = (REPO / "README.md").read_text().split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    first_screen = section[: section.index("**The numbers it prints**")]
    assert first_screen.count("minutes") >= 2 and "runs/quickstart_mrkd/" in first_screen
    assert "report.html" in first_screen and "student.pt" in first_screen


def test_every_relative_link_of_the_readme_and_docs_points_at_a_file():
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([\w./-]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.relative_to(REPO)} links to missing {target}"
