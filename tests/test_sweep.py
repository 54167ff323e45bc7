"""Sweeps (distill.experiments.sweep): the local launcher gives the inline results, a killed sweep finishes only what is
missing, failures are listed, SLURM job scripts carry the settings and the resume flag."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from distill.errors import DistillError
from distill.experiments.repeats import aggregate, collect_repeats, run_repeats
from distill.experiments.sweep import (
    ERROR_FILE,
    INLINE,
    LocalLauncher,
    Outcome,
    RunSource,
    RunSpec,
    SlurmLauncher,
    SlurmOptions,
    Wave,
    run_sweep,
)

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "recipes" / "quickstart.yaml")


def tiny(tmp: Path) -> list[str]:
    """Overrides that make the quickstart a seconds-long run on its own tiny synthetic set."""
    sets = [
        f"data.root={tmp / 'data'}",
        f"data.synthetic.root={tmp / 'data'}",
        "data.synthetic.args.n_refs=5",
        "data.synthetic.args.size=[48,48]",
        "data.synthetic.args.distortions=[gaussian_blur,white_noise,jpeg]",
        "train.epochs=1",
        "train.batch_size=8",
        "train.progress=false",
        "output.tensorboard=false",
    ]
    return [a for s in sets for a in ("--set", s)]


def distill(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "distill", *args], capture_output=True, text=True, env=env, timeout=900, **kw
    )


def results(out: Path, seeds: list[int]) -> list[dict]:
    return [json.loads((out / f"seed{s}" / "results.json").read_text())["results"] for s in seeds]


@pytest.mark.slow  # tens of seconds of CPU: the default suite stays under ~10 min on 2 cores
def test_local_launcher_gives_the_inline_results_and_collect_only_reprints_them(tmp_path):
    common = ["run", QUICKSTART, "--seeds", "0,1", *tiny(tmp_path)]
    inline = distill(*common, "--out", str(tmp_path / "inline"))
    assert inline.returncode == 0, inline.stderr
    local = distill(*common, "--out", str(tmp_path / "local"), "--launcher", "local", "--jobs", "2",
                    "--threads-per-job", "1")  # fmt: skip
    assert local.returncode == 0, local.stderr
    assert results(tmp_path / "inline", [0, 1]) == results(tmp_path / "local", [0, 1])
    assert "sweep (local): launching 2 runs" in local.stdout
    assert "sweep (local): 0 runs done" not in local.stdout and "2 runs done, 0 running, 0 failed" in local.stdout

    def table(text: str, out: Path) -> str:
        return "\n".join(ln for ln in text.replace(str(out), "OUT").splitlines() if not ln.startswith("sweep"))

    assert table(local.stdout, tmp_path / "local") == table(inline.stdout, tmp_path / "inline")
    # each run has its own folder and log; nothing failed
    for s in (0, 1):
        assert (tmp_path / "local" / f"seed{s}" / "sweep.log").is_file()
        assert not (tmp_path / "local" / f"seed{s}" / ERROR_FILE).exists()
    # the table can be re-printed from the run folders at any time, without training
    again = distill(*common, "--out", str(tmp_path / "local"), "--collect-only")
    assert again.returncode == 0, again.stderr
    assert table(again.stdout, tmp_path / "local") == table(inline.stdout, tmp_path / "inline")
    assert "2 runs done" in again.stdout
    # collect-only on nothing: one line naming the missing run, exit 2
    empty = distill(*common, "--out", str(tmp_path / "empty"), "--collect-only")
    assert empty.returncode == 2 and "Traceback" not in empty.stderr
    assert "not run yet" in empty.stderr and "seed0" in empty.stderr


@pytest.mark.slow
def test_a_killed_sweep_finishes_only_what_is_missing_and_equals_an_uninterrupted_one(tmp_path):
    seeds = [0, 1, 2]
    common = ["run", QUICKSTART, "--seeds", ",".join(map(str, seeds)), *tiny(tmp_path)]
    whole = distill(*common, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "cut"
    cmd = [sys.executable, "-m", "distill", *common, "--out", str(out), "--launcher", "local", "--jobs", "1",
           "--threads-per-job", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    first = out / "seed0" / "results.json"
    deadline = time.time() + 600
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and the run it was training
    proc.wait()
    assert first.exists() and not (out / "seed2" / "results.json").exists()
    stamp = first.stat().st_mtime_ns
    again = distill(*cmd[3:])
    assert again.returncode == 0, again.stderr
    assert first.stat().st_mtime_ns == stamp  # the finished run was not run again
    launched = [ln for ln in again.stdout.splitlines() if "launching" in ln]
    assert launched and "launching 2 runs" in launched[0]
    assert results(out, seeds) == results(tmp_path / "whole", seeds)


def test_a_failed_run_is_listed_with_its_error_and_not_hidden(tmp_path):
    fake = tmp_path / "fail.py"
    fake.write_text("import sys\nprint('distill: error: boom at step 3', file=sys.stderr)\nsys.exit(2)\n")
    launcher = LocalLauncher(jobs=2, threads=1, gpus=[], python=sys.executable)
    specs = [RunSpec(Path(QUICKSTART), tmp_path / f"seed{s}") for s in (0, 1)]
    launcher.python = str(tmp_path / "py")
    (tmp_path / "py").write_text(f"#!/bin/sh\nexec {sys.executable} {fake}\n")
    (tmp_path / "py").chmod(0o755)
    outcomes = launcher.launch(specs)
    assert [o.state for o in outcomes] == ["failed", "failed"]
    assert all("boom at step 3" in o.error and "exit 2" in o.error for o in outcomes)
    assert "boom at step 3" in (tmp_path / "seed0" / ERROR_FILE).read_text()

    logs: list[str] = []

    def build(source: RunSource) -> str:
        try:
            source.run(specs[0])
        except DistillError as err:  # a failed run reaches the table code as the inline error would
            return f"stopped: {err}"
        return "pending"

    text = run_sweep(build, launcher, log=logs.append)
    assert text is not None and text.startswith("stopped:") and "boom at step 3" in text
    assert "1 failed" in logs[-1] and "boom at step 3" in logs[-1]


def test_runs_that_load_another_runs_weights_wait_for_it():
    teacher = RunSpec(Path("t.yaml"), Path("/runs/teacher/seed0"))
    student = RunSpec(Path("s.yaml"), Path("/runs/kd/seed0"),
                      ("models.teacher.args.pretrained=/runs/teacher/seed0/student.pt",))  # fmt: skip
    flow = RunSpec(Path("s.yaml"), Path("/runs/kd2/seed0"),
                   ("models.teacher.args={name: edsr, pretrained: '/runs/teacher/seed0/student.pt'}",))  # fmt: skip
    other = RunSpec(Path("s.yaml"), Path("/runs/teacher/seed01"))  # a prefix of the name is not a folder inside
    wave = Wave(failed={})
    for spec in (student, teacher, flow, other):
        assert wave.run(spec) is None  # planned, not trained
    assert wave.ready() == [teacher, other]


def _table(root: Path, sets: list[str]) -> Callable[[RunSource], str]:
    """A table over a teacher run and a student run that loads the teacher's student.pt, asking ``source``."""
    load = [f"models.teacher.args.pretrained={root / 'teacher' / 'seed0' / 'student.pt'}"]

    def table(source: RunSource) -> str:
        teacher = run_repeats(QUICKSTART, [0], root / "teacher", sets, source=source)
        kd = collect_repeats(QUICKSTART, [0], root / "kd", [*sets, *load], source=source)
        cells = [aggregate(runs, "test", "student", "srcc").format(6) for runs in (teacher, kd.runs)]
        return f"teacher {cells[0]} | kd {cells[1]} | failed {kd.failure_lines('kd')}"

    return table


def test_a_planning_pass_records_the_runs_a_table_needs_and_trains_nothing(tmp_path):
    sets = [s for s in tiny(tmp_path) if s != "--set"]
    table = _table(tmp_path, sets)
    wave = Wave(failed={})
    assert table(wave) == "teacher n/a (n=0) | kd n/a (n=0) | failed []"  # pending runs are left out, not faked
    teacher, kd = tmp_path / "teacher" / "seed0", tmp_path / "kd" / "seed0"
    assert list(wave.pending) == [teacher, kd]
    assert {"train.seed=0", "data.train.args.split_seed=0"} <= set(wave.pending[kd].overrides)  # the repeat's seeds
    assert [s.out for s in wave.ready()] == [teacher]  # the student loads the teacher's weights: it waits
    assert not (tmp_path / "teacher").exists() and not (tmp_path / "kd").exists() and not (tmp_path / "data").exists()
    # a run that failed earlier reaches the table code as its error: collect_repeats lists it
    failed = Wave(failed={kd: "exit 2: boom"})
    assert "kd seed 0: " in table(failed) and "boom" in table(failed) and list(failed.pending) == [teacher]
    # --collect-only: a missing run is an error naming it, never trained
    collect = Wave(failed={}, collect_only=True)
    with pytest.raises(DistillError, match=r"teacher/seed0: not run yet"):
        table(collect)


@dataclass
class FinishRuns:
    """A blocking launcher that finishes each run by writing the results.json a run would (no training; the slow
    tests above train for real), recording each wave's runs."""

    waves: list[list[Path]] = field(default_factory=list)
    name: str = "fake"
    blocking: bool = True
    writes_data: bool = False

    def launch(self, runs: Sequence[RunSpec]) -> list[Outcome]:
        self.waves.append([r.out for r in runs])
        for r in runs:
            srcc = 0.5 if r.out.parent.name == "teacher" else 0.25
            r.out.mkdir(parents=True)
            (r.out / "results.json").write_text(json.dumps({"results": {"test": {"student": {"overall": {
                "srcc": srcc}}}}}))  # fmt: skip
        return [Outcome(r, "done") for r in runs]


def test_a_sweeps_table_equals_the_inline_table_once_the_runs_exist(tmp_path):
    sets = [s for s in tiny(tmp_path) if s != "--set"]
    table = _table(tmp_path, sets)
    launcher = FinishRuns()
    logs: list[str] = []
    swept = run_sweep(table, launcher, log=logs.append)
    assert launcher.waves == [[tmp_path / "teacher" / "seed0"], [tmp_path / "kd" / "seed0"]]  # the student waited
    assert "launching 1 runs (1 wait on them)" in logs[0] and "2 runs done, 0 running, 0 failed" in logs[-1]
    assert swept == "teacher 0.500000 (n=1) | kd 0.250000 (n=1) | failed []"
    assert table(INLINE) == swept  # inline, the same table from the same run folders (complete: nothing trains)
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("results.json")}
    assert table(INLINE) == swept  # the inline source reads the same runs: the same table, nothing trained again
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("results.json")} == stamps


def test_slurm_job_script_carries_partition_time_gpus_account_and_the_resuming_command(tmp_path):
    pytest.importorskip("submitit")
    config = tmp_path / "slurm.yaml"
    config.write_text("slurm:\n  partition: gpu\n  gpus_per_run: 2\n  time_min: 90\n  account: proj\n"
                      "  qos: high\n  extra: {constraint: a100}\n")  # fmt: skip
    opts = SlurmOptions.from_yaml(config)
    spec = RunSpec(Path("recipes/mrkd_tid.yaml"), tmp_path / "runs" / "seed0", ("train.seed=0",))
    script = SlurmLauncher(tmp_path / "slurm", opts).script(spec)
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=90", "#SBATCH --gpus-per-node=2",
                 "#SBATCH --account=proj", "#SBATCH --qos=high", "#SBATCH --constraint=a100"):  # fmt: skip
        assert line in script, line
    command = [ln for ln in script.splitlines() if "distill run" in ln]
    assert command, script
    assert "recipes/mrkd_tid.yaml" in command[0] and "--auto-resume" in command[0]
    assert f"--out {tmp_path / 'runs' / 'seed0'}" in command[0] and "--set train.seed=0" in command[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text("slurm:\n  partiton: gpu\n")
    with pytest.raises(DistillError, match=r"bad\.yaml: slurm\.partiton: unknown key; allowed: partition"):
        SlurmOptions.from_yaml(bad)


def test_slurm_without_submitit_and_launcher_without_seeds_are_one_line_errors(tmp_path, monkeypatch):
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    (tmp_path / "submitit.py").write_text("raise ImportError('no submitit here')\n")
    res = distill("run", QUICKSTART, "--seeds", "0", "--launcher", "slurm", "--out", str(tmp_path / "o"), env=env)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().count("\n") == 0 and 'pip install -e ".[cluster]"' in res.stderr
    res = distill("run", QUICKSTART, "--launcher", "local", "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and "only with --seeds" in res.stderr


@pytest.mark.slow  # tens of seconds of CPU: the default suite stays under ~10 min on 2 cores
def test_auto_resume_starts_a_new_run_and_continues_a_checkpointed_one(tmp_path):
    out = tmp_path / "run"
    first = distill("run", QUICKSTART, *tiny(tmp_path), "--out", str(out), "--auto-resume")
    assert first.returncode == 0, first.stderr
    again = distill("run", QUICKSTART, *tiny(tmp_path), "--out", str(out), "--auto-resume")
    assert again.returncode == 0, again.stderr  # plain `run` would refuse the existing run folder
    assert json.loads((out / "results.json").read_text())["results"]


@pytest.mark.slow
def test_mrkd_tables_local_launcher_prints_the_inline_table(tmp_path, monkeypatch, capsys):
    from benchmarks.mrkd_tables import main as mrkd_tables

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # inline runs on the thread count the subprocesses get
    try:
        inline = mrkd_tables(["--scale", "smoke", "--tables", "1", "--out", str(tmp_path / "a")])
    finally:
        torch.set_num_threads(threads)
    local = mrkd_tables(["--scale", "smoke", "--tables", "1", "--out", str(tmp_path / "b"),
                         "--launcher", "local", "--jobs", "2", "--threads-per-job", "1"])  # fmt: skip
    assert local == inline
    assert "6 runs done, 0 running, 0 failed" in capsys.readouterr().out


def test_seeds_table_shows_the_task_default_metrics_when_the_recipe_names_none(tmp_path, capsys):
    from distill.cli import main

    argv = ["run", QUICKSTART, "--seeds", "0", *tiny(tmp_path), "--set", "eval.metrics=null", "--out", str(tmp_path)]
    assert main(argv) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("model"))
    assert header.split() == ["model", "srcc", "plcc"], header
