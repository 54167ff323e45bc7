"""The README's two quickstart commands: CI runs command 2 as written, and the pages the README links to exist."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import readme_commands
from benchmarks.readme_commands import quickstart_commands

REPO = Path(__file__).resolve().parents[1]


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


# ------------------------------------------------------------------ benchmarks/readme_commands.py (README's times)
def _repo_with_readme(tmp_path: Path, commands: list[str]) -> Path:
    """A git repository whose README's Quickstart has ``commands`` as its bash blocks."""
    repo = tmp_path / "repo"
    repo.mkdir()
    blocks = "\n".join(f"**{i}.**\n\n```bash\n{c}\n```\n" for i, c in enumerate(commands, 1))
    (repo / "README.md").write_text(f"# x\n\n## Quickstart\n\n{blocks}\n## Next\n")
    (repo / "test_ok.py").write_text("def test_one():\n    assert True\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    return repo


def test_readme_commands_times_install_and_job_apart_in_a_fresh_clone(tmp_path):
    py = sys.executable
    commands = [
        f"{py} -c 'import time; time.sleep(0.3)' && {py} -c 'import time; time.sleep(0.6); print(42)'",
        f"true && {py} -m pytest -q -p no:cacheprovider test_ok.py",
    ]
    repo = _repo_with_readme(tmp_path, commands)
    assert quickstart_commands(repo / "README.md") == commands
    work = tmp_path / "work"
    work.mkdir()
    one = readme_commands.measure_command(1, commands[0], work, repo=repo)
    assert one["exit_status"] == 0 and len(one["commit"]) == 40
    assert 0.3 <= one["install_s"] < one["wall_s"] and one["job_s"] >= 0.6
    assert "42" in (work / "command1.log").read_text()
    assert readme_commands.MARK not in (work / "command1.log").read_text()  # the mark is not part of the output
    two = readme_commands.measure_command(2, commands[1], work, repo=repo)
    assert two["exit_status"] == 0 and re.fullmatch(r"1 passed in [\d.]+s", two["pytest"])


def test_readme_commands_reports_a_failing_command_as_failed(tmp_path):
    repo = _repo_with_readme(tmp_path, ["true && false"])
    work = tmp_path / "work"
    work.mkdir()
    rec = readme_commands.measure_command(1, "true && false", work, repo=repo)
    assert rec["exit_status"] == 1 and rec["install_s"] is not None
    res = {"machine": {"cpu_model": "X", "processor": "x86_64", "cpu_count": 2}, "date": "d", "pip_cache": "p"}
    res["commands"] = {"1": rec}
    assert "FAILED" in readme_commands.header(res, 1) and "FAILED (exit status 1)" in readme_commands.render_text(res)


def test_readme_commands_blocks_render_from_the_saved_measurement(tmp_path):
    """--from FILE --readme writes the command headers and the table from the saved JSON, the same text twice."""
    saved = tmp_path / "m.json"
    rec = {
        "command": "a && b",
        "commit": "0" * 40,
        "exit_status": 0,
        "wall_s": 454.2,
        "install_s": 99.0,
        "job_s": 355.2,
        "load_1min_before": 0.1,
        "load_1min_after": 1.9,
        "srcc": {"teacher": 0.4, "student": 0.3},
    }
    res = {
        "machine": {"cpu_model": "AMD EPYC", "processor": "x86_64", "cpu_count": 2},
        "date": "2026-12-07 09:00 UTC",
        "pip_cache": "present",
        "commands": {"1": rec},
    }
    saved.write_text(json.dumps(res))
    page = tmp_path / "page.md"
    empty = "".join(
        f"<!-- readme-numbers:{n} -->\nold\n<!-- /readme-numbers:{n} -->\n"
        for n in ("command-1-time", "readme-commands")
    )
    page.write_text(empty)
    readme_commands.write_blocks(json.loads(saved.read_text()), page)
    first = page.read_text()
    assert "About 8 minutes" in first and "1 min 39 s to install, 5 min 55 s to train" in first
    assert "teacher test SRCC 0.4000, student test SRCC 0.3000" in first and "old" not in first
    readme_commands.write_blocks(json.loads(saved.read_text()), page)
    assert page.read_text() == first


def test_readme_commands_refuses_to_replace_a_json_it_did_not_write(tmp_path, capsys):
    existing = tmp_path / "keep.json"
    existing.write_text("{}")
    with pytest.raises(SystemExit) as exit_info:
        readme_commands.main(["--commands", "1", "--json", str(existing)])
    assert exit_info.value.code == 2 and existing.read_text() == "{}"
    assert "already exists" in capsys.readouterr().err


def test_readme_commands_combines_measurements_the_later_replacing_a_command_measured_again():
    def rec(status: int, commit: str) -> dict:
        return {"commit": commit, "exit_status": status, "wall_s": 9.0, "install_s": 1.0, "job_s": 8.0,
                "load_1min_before": 0.0, "load_1min_after": 0.0, "pytest": "1 passed in 1.00s"}  # fmt: skip

    machine = {"cpu_model": "X", "processor": "x86_64", "cpu_count": 2}
    first = {
        "machine": machine,
        "date": "day 1",
        "pip_cache": "p",
        "commands": {"1": rec(0, "a" * 40), "2": rec(1, "a" * 40)},
    }
    second = {"machine": machine, "date": "day 2", "pip_cache": "p", "commands": {"2": rec(0, "b" * 40)}}
    res = readme_commands.combine([first, second])
    assert res["commands"]["1"]["date"] == "day 1" and res["commands"]["1"]["commit"] == "a" * 40
    assert res["commands"]["2"]["date"] == "day 2" and res["commands"]["2"]["exit_status"] == 0
    table = readme_commands.render_text(res)
    assert "aaaaaaa, day 1" in table and "bbbbbbb, day 2" in table and "FAILED" not in table


def test_readme_time_headers_come_from_the_saved_measurement():
    """README's command headers are the script's rendering of benchmarks/results/readme_commands.json."""
    saved = json.loads((REPO / "benchmarks" / "results" / "readme_commands.json").read_text())
    text = (REPO / "README.md").read_text()
    for number in (1, 2):
        assert readme_commands.header(saved, number) in text
    table = readme_commands.render_text(saved)
    assert any(table in page.read_text() for page in [REPO / "README.md", *(REPO / "docs").glob("*.md")])
