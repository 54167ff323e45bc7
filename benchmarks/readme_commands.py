"""How long the README's two quickstart commands take on a fresh clone (``benchmarks.readme_commands``).

Each command is run exactly as the README spells it (its ``bash`` block, read from README.md), in its own fresh
``git clone`` of this repository's committed ``HEAD`` in a temporary folder, so it creates its own virtualenv and
installs from scratch as a new user's would. The command's last `` && `` separates installing from the job
(``distill run …`` / ``pytest``); a timestamp is printed between the two, so the wall time is split into
install and job without changing what runs. ``--slow`` then runs ``pytest -m slow`` in command 2's clone and
environment, as ``.ci/run`` does.

Recorded with each command: wall times, the machine (CPU model, count, 1-min load before and after), the commit,
whether pip had a download cache, and what the job printed: command 1's final test SRCC of both models (from the
clone's ``results.json``), pytest's summary line for the test suites.

``--json FILE`` saves the measurement; ``--from FILE --readme`` writes the README's command headers and the
measured table in docs/measured.md (their ``readme-numbers`` blocks) from a saved one, without running anything;
``--from A B …`` combines several (a command measured again in a later file replaces the earlier one; each row
keeps its own date and commit), and ``--json`` then saves the combination.
Uncommitted changes are not measured (the clone is of ``HEAD``): the script says so when the tree is dirty.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS_DIR, guard_outputs, machine_info, machine_label, write_readme_block
from distill.run.atomic import write_text

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DEFAULT_JSON = RESULTS_DIR / "readme_commands.json"
#: What each README command's job is called in the tables.
JOBS = {1: "train", 2: "tests"}
JOB_VERBS = {1: "train", 2: "run the tests"}
#: What ``--slow`` runs after command 2, in its clone and virtualenv (the second line of ``.ci/run``).
SLOW_COMMAND = ". .venv/bin/activate && pytest -m slow"
MARK = "__distill_readme_commands_installed__"


def quickstart_commands(readme: Path = README) -> list[str]:
    """The ``bash`` blocks of README's *Quickstart* section, in order (command 1, command 2)."""
    text = readme.read_text()
    if "## Quickstart" not in text:
        raise SystemExit(f"{readme} has no '## Quickstart' section")
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def split_command(command: str) -> tuple[str, str]:
    """(install, job): the command cut at its last `` && ``."""
    if " && " not in command:
        raise ValueError(f"the README command has no ' && ' between installing and its job: {command!r}")
    install, job = command.rsplit(" && ", 1)
    return install, job


def _timed_shell(script: str, cwd: Path, log: Path, env: dict[str, str]) -> tuple[int, float, float | None]:
    """Run ``script`` in bash, output to ``log``; (exit status, wall seconds, seconds until the install mark)."""
    start = time.monotonic()
    marked: float | None = None
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["bash", "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if marked is None and line.strip() == MARK:
                marked = time.monotonic() - start
                continue
            out.write(line)
            out.flush()
        status = proc.wait()
    return status, time.monotonic() - start, marked


def _pytest_summary(log: Path) -> str | None:
    """pytest's last summary line (``== 1104 passed, 8 skipped in 492.1s ==``), without the ``=`` rules."""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines()]
    summary = re.compile(r"^=*\s*(\d+ (passed|failed|errors?|skipped|deselected)|no tests ran)\b.* in [\d.]+s\b")
    found = [ln for ln in lines if summary.match(ln)]
    return found[-1].strip("= ").strip() if found else None


def _quickstart_srcc(clone: Path) -> dict[str, float] | None:
    """Command 1's final test SRCC of both models, from the clone's ``results.json``."""
    path = clone / "runs" / "quickstart_mrkd" / "results.json"
    if not path.is_file():
        return None
    test = json.loads(path.read_text()).get("results", {}).get("test", {})
    found = {role: float(test[role]["overall"]["srcc"]) for role in ("teacher", "student") if role in test}
    return found or None


def clone_head(dest: Path, repo: Path = ROOT) -> str:
    """A fresh clone of ``repo``'s committed ``HEAD`` at ``dest``; its commit."""
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(repo), str(dest)], check=True)
    return subprocess.run(
        ["git", "-C", str(dest), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def measure_command(number: int, command: str, work: Path, slow: bool = False, repo: Path = ROOT) -> dict[str, Any]:
    """Run README command ``number`` in a fresh clone of ``repo`` under ``work``; its times and what it printed."""
    clone = work / f"command{number}"
    commit = clone_head(clone, repo)
    install, job = split_command(command)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PIP_CONSTRAINT")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    load_before = os.getloadavg()[0]
    status, wall, installed = _timed_shell(
        f"{install} && echo {MARK} && {job}", clone, work / f"command{number}.log", env
    )
    record: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "commit": commit,
        "exit_status": status,
        "wall_s": round(wall, 1),
        "install_s": round(installed, 1) if installed is not None else None,
        "job_s": round(wall - installed, 1) if installed is not None else None,
        "load_1min_before": round(load_before, 2),
        "load_1min_after": round(os.getloadavg()[0], 2),
    }
    log = work / f"command{number}.log"
    if number == 1:
        record["srcc"] = _quickstart_srcc(clone)
    else:
        record["pytest"] = _pytest_summary(log)
    if slow and number == 2 and status == 0:
        slow_log = work / "slow.log"
        s_status, s_wall, _ = _timed_shell(SLOW_COMMAND, clone, slow_log, env)
        record["slow"] = {"exit_status": s_status, "wall_s": round(s_wall, 1), "pytest": _pytest_summary(slow_log)}
    if status != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
        print(f"README command {number} failed (exit {status}); the last lines of its output:\n{tail}", file=sys.stderr)
    return record


def measure(numbers: Sequence[int], slow: bool, keep: Path | None) -> dict[str, Any]:
    """Measure the README commands ``numbers`` (each in its own clone) one after another."""
    commands = quickstart_commands()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True).stdout
    if dirty.strip():
        print("note: the working tree has uncommitted changes; the clones measure the committed HEAD", file=sys.stderr)
    res: dict[str, Any] = {
        "benchmark": "readme_commands",
        "machine": machine_info(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "pip_cache": _pip_cache_state(),
        "commands": {},
    }
    work = keep or Path(tempfile.mkdtemp(prefix="distill-readme-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for number in numbers:
            if not 1 <= number <= len(commands):
                raise SystemExit(f"README has {len(commands)} quickstart commands; there is no command {number}")
            print(f"README command {number}: {commands[number - 1]}", flush=True)
            res["commands"][str(number)] = measure_command(number, commands[number - 1], work, slow)
            print(render_text(res), flush=True)
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return res


def combine(measurements: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Several saved measurements as one: the last file's machine and date, each command from the last file that
    measured it, carrying its own date."""
    res = {**measurements[-1], "commands": {}}
    for measurement in measurements:
        for key, rec in measurement["commands"].items():
            res["commands"][key] = {"date": measurement["date"], **rec}
    res["commands"] = dict(sorted(res["commands"].items()))
    return res


def _pip_cache_state() -> str:
    """Whether pip would reuse downloaded wheels (a first install on a new machine downloads them all)."""
    out = subprocess.run([sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True)
    folder = Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None
    if folder is None or not folder.exists() or not any(folder.iterdir()):
        return "empty (every wheel downloaded)"
    return "present (wheels pip downloaded before are reused; a first install on a new machine downloads them)"


# ----------------------------------------------------------------------------------------------- rendering
def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _about(seconds: float) -> str:
    """'about 8 minutes' — rounded to the nearest minute, for the README's command headers."""
    return f"about {max(1, round(seconds / 60))} minutes"


def _job_result(number: int, rec: dict[str, Any]) -> str:
    if rec["exit_status"] != 0:
        return f"FAILED (exit status {rec['exit_status']})"
    if number == 1:
        srcc = rec.get("srcc") or {}
        return (
            ", ".join(f"{role} test SRCC {srcc[role]:.4f}" for role in ("teacher", "student") if role in srcc) or "n/a"
        )
    return rec.get("pytest") or "n/a"


def header(res: dict[str, Any], number: int) -> str:
    """The line under README command ``number``'s title: its measured time split into install and job."""
    rec = res["commands"].get(str(number))
    if rec is None:
        return "Not measured yet (`python -m benchmarks.readme_commands`)."
    if rec["exit_status"] != 0 or rec["install_s"] is None:
        status = rec["exit_status"]
        return f"Last measured run FAILED (exit status {status}); see `benchmarks/results/readme_commands.json`."
    return (
        f"{_about(rec['wall_s']).capitalize()} on the 2-core development machine: "
        f"{_clock(rec['install_s'])} to install, {_clock(rec['job_s'])} to {JOB_VERBS[number]} "
        f"(measured {rec.get('date', res['date'])} by `python -m benchmarks.readme_commands`)."
    )


def render_text(res: dict[str, Any]) -> str:
    """The measured table (markdown), with how and where it was measured."""
    m = res["machine"]
    rows = [
        "| README command | wall | install | job | what the job printed | commit, date | 1-min load before → after |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, rec in sorted(res["commands"].items()):
        number, when = int(key), rec.get("date", res["date"])
        rows.append(
            f"| {number} ({JOBS.get(number, 'job')}) | {_clock(rec['wall_s'])} | {_clock(rec['install_s'])} | "
            f"{_clock(rec['job_s'])} | {_job_result(number, rec)} | {rec['commit'][:7]}, {when} | "
            f"{rec['load_1min_before']} → {rec['load_1min_after']} |"
        )
        slow = rec.get("slow")
        if slow:
            result = slow["pytest"] if slow["exit_status"] == 0 else f"FAILED (exit status {slow['exit_status']})"
            rows.append(
                f"| then `pytest -m slow` (the rest of `.ci/run`) | {_clock(slow['wall_s'])} | — | "
                f"{_clock(slow['wall_s'])} | {result} | {rec['commit'][:7]}, {when} | — |"
            )
    return "\n".join(rows) + (
        "\n\nEach command as the README spells it, in a fresh `git clone` (its own new virtualenv) on "
        f"{machine_label(m)}; pip's download cache: {res['pip_cache']}. Install = up to the command's last `&&`. "
        "Written by `python -m benchmarks.readme_commands --readme`; re-rendered from "
        "`benchmarks/results/readme_commands.json` by `python -m benchmarks.readme_commands --from "
        "benchmarks/results/readme_commands.json --readme`."
    )


def write_blocks(res: dict[str, Any], page: Path | None = None) -> None:
    """Write the command headers and the measured table (into ``page``, by default wherever their markers are)."""
    for number in (1, 2):
        if str(number) in res["commands"]:
            write_readme_block(f"command-{number}-time", header(res, number), page)
    write_readme_block("readme-commands", render_text(res), page)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", default="1,2", help="which README commands to run, comma-separated (default 1,2)")
    parser.add_argument("--slow", action="store_true", help="after command 2, run `pytest -m slow` in its clone")
    parser.add_argument("--keep", type=Path, help="clone into this folder and keep it (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="save the measurement here")
    parser.add_argument(
        "--from", dest="saved", type=Path, nargs="+", help="render saved measurements (combined) instead of running"
    )
    parser.add_argument("--readme", action="store_true", help="write the README/docs blocks")
    parser.add_argument("--force", action="store_true", help="replace an existing --json file")
    args = parser.parse_args(argv)
    guard_outputs(parser, args, files=("json",), folders=("keep",))
    if args.saved is not None:
        for path in args.saved:
            if not path.is_file():
                parser.error(f"--from {path}: no such file")
        res = combine([json.loads(path.read_text()) for path in args.saved])
        if args.json is not None and len(args.saved) > 1:
            from distill.errors import DistillError
            from distill.run.safe_write import check_new_file

            try:
                check_new_file(args.json, "--json", force=args.force)
            except DistillError as err:
                parser.exit(2, f"{parser.prog}: error: {err}\n")
            write_text(args.json, json.dumps(res, indent=2) + "\n")
        print(render_text(res))
    else:
        try:
            numbers = [int(n) for n in args.commands.split(",") if n.strip()]
        except ValueError:
            parser.error(f"--commands {args.commands!r}: comma-separated numbers, e.g. 1,2")
        res = measure(numbers, args.slow, args.keep)  # prints the table after each command
        if args.json is not None:
            write_text(args.json, json.dumps(res, indent=2) + "\n")
    if args.readme:
        write_blocks(res)
    failed = [
        k for k, rec in res["commands"].items() if rec["exit_status"] != 0 or (rec.get("slow") or {}).get("exit_status")
    ]
    return 1 if failed and args.saved is None else 0


if __name__ == "__main__":
    raise SystemExit(main())
