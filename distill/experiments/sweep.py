"""Sweeps: run the set of training runs behind a table on one machine or a SLURM cluster, resumably.

A *sweep* is whatever code asks ``repeats.run_repeats`` for results — ``distill run --seeds`` or a table benchmark.
That code gets its runs from a :class:`RunSource`, passed to it explicitly: :data:`INLINE` trains a missing run in
this process (no sweep at all); under :func:`run_sweep` the source is a :class:`Wave`, which trains nothing. The code
is executed in *waves*: in each, every run that has no complete ``results.json`` is recorded as a :class:`RunSpec`
and left out of the answer (``run_repeats`` returns the finished runs only), so one pass discovers every missing
run; the runs that do not wait on another pending run (a ``pretrained=`` path inside its folder) go to the
launcher; then the next wave starts. When a wave finds nothing missing, its output is the real one, built from the
run folders alone (what an inline pass would print once the runs exist); the output of a pass with pending runs
is thrown away.

Launchers (``--launcher``):

* ``inline`` — today's behaviour: one run after another in this process (no sweep at all);
* ``local`` — ``--jobs N`` runs at a time on this machine, each a ``python -m distill run`` subprocess. Plain
  subprocesses (through :mod:`concurrent.futures`) rather than submitit's local executor: a subprocess per run
  gives each run its own CUDA device (``CUDA_VISIBLE_DEVICES``) and thread budget (``OMP_NUM_THREADS``), its own
  log file, and needs no optional dependency;
* ``slurm`` — one SLURM job per run through `submitit <https://github.com/facebookincubator/submitit>`_ (the
  ``cluster`` extra), with partition, GPUs, time, account, qos passed through. A job that is pre-empted or reaches
  its time limit stops its run with a checkpoint and is requeued to continue it (:mod:`distill.experiments.requeue`).

Every run keeps its own run folder and starts with ``--auto-resume``, so a preempted or killed run continues from
its last checkpoint; re-running the same sweep command skips finished runs and re-submits failed or missing ones.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from distill.errors import DistillError, RecipeError
from distill.experiments.requeue import RequeuedRun
from distill.run.atomic import write_text
from distill.run.layout import RunFolder

T = TypeVar("T")
ERROR_FILE = "sweep_error.txt"
LOG_FILE = "sweep.log"
LAUNCHERS = ("inline", "local", "slurm")


# ------------------------------------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class RunSpec:
    """One training run of a sweep: a recipe, its ``--set`` overrides and its run folder."""

    recipe: Path
    out: Path
    overrides: tuple[str, ...] = ()

    def command(self, python: str = sys.executable) -> list[str]:
        """The command line that trains (or continues) this run."""
        recipe, out = self.recipe.resolve(), self.out.resolve()  # jobs may start in another working directory
        cmd = [python, "-m", "distill", "run", str(recipe), "--out", str(out), "--auto-resume"]
        for override in self.overrides:
            cmd += ["--set", override]
        return cmd

    def waits_on(self, other: RunSpec) -> bool:
        """Whether an override of this run names a file inside ``other``'s run folder (e.g. its ``student.pt``)."""
        folder = str(other.out.resolve()) + os.sep
        return other.out != self.out and any(folder in _abs_paths(o) for o in self.overrides)


def _abs_paths(override: str) -> str:
    """The override with every path-looking token made absolute, so relative and absolute spellings compare."""
    return " ".join(str(Path(t).resolve()) if os.sep in t else t for t in _tokens(override))


def _tokens(text: str) -> list[str]:
    for ch in "=,{}[]:'\"":
        text = text.replace(ch, " ")
    return text.split()


def is_complete(out: Path) -> bool:
    """A run is done when its ``results.json`` (written atomically, last) parses and holds results."""
    try:
        return "results" in json.loads(RunFolder(out).results.read_text())
    except (OSError, ValueError):
        return False


def read_results(out: Path) -> dict[str, Any]:
    """The parsed ``results.json`` of a finished run."""
    return json.loads(RunFolder(out).results.read_text())


class RunSource(Protocol):
    """Where table code (``repeats.run_repeats``) gets its runs: the one contract between a table and whoever
    trains. :data:`INLINE` trains in this process; a sweep's :class:`Wave` plans and trains nothing."""

    def reuse(self, out: Path) -> dict[str, Any]:
        """The ``results.json`` of the finished run in ``out``."""
        ...

    def run(self, spec: RunSpec) -> dict[str, Any] | None:
        """The ``results.json`` of a run that has none yet, after training it; ``None`` when it is only planned
        (left out of the table code's answer) or a :class:`~distill.errors.DistillError` when it failed."""
        ...


class InlineRuns:
    """The default :class:`RunSource`: a missing run trains here, now, through ``build.run_recipe`` (as
    ``distill run --auto-resume`` would)."""

    def reuse(self, out: Path) -> dict[str, Any]:
        return read_results(out)

    def run(self, spec: RunSpec) -> dict[str, Any]:
        from distill.build import run_recipe

        run_recipe(spec.recipe, list(spec.overrides), out=spec.out, resume="auto")
        return read_results(spec.out)


INLINE = InlineRuns()


@dataclass
class Outcome:
    """What became of one launched run: done, failed (with its one-line error) or submitted (still running)."""

    spec: RunSpec
    state: str  # "done" | "failed" | "submitted" | "scripted" (--scripts-only: written, not submitted)
    error: str = ""
    job_id: str = ""


# -------------------------------------------------------------------------------------------------- launchers
class Launcher(Protocol):
    """Runs a batch of independent runs. ``blocking`` launchers return when every run has finished."""

    name: str
    blocking: bool
    writes_data: bool  # write synthetic stand-ins here before launching (False for a scripts-only dry run)

    def launch(self, runs: Sequence[RunSpec]) -> list[Outcome]: ...


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("distill: error:")]
    return (errors or lines or ["exited without a message"])[-1].removeprefix("distill: error: ")


@dataclass
class LocalLauncher:
    """``jobs`` runs at a time, each a ``python -m distill run`` subprocess with its own log and thread budget.

    ``gpus``: device ids handed out one per running job (``CUDA_VISIBLE_DEVICES``); default: every visible CUDA
    device, none on a CPU machine. ``threads``: CPU threads per job (default: the cores divided among the jobs).
    """

    jobs: int = 1
    gpus: Sequence[str] | None = None
    threads: int | None = None
    python: str = sys.executable
    name: str = "local"
    blocking: bool = True
    writes_data: bool = True

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise RecipeError(f"--jobs {self.jobs}: must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise RecipeError(f"--threads-per-job {self.threads}: must be at least 1")
        if self.gpus is None:
            self.gpus = _visible_gpus()
        if self.threads is None:
            self.threads = max(1, (os.cpu_count() or 1) // self.jobs)

    def launch(self, runs: Sequence[RunSpec]) -> list[Outcome]:
        slots = list(range(self.jobs))
        lock = threading.Lock()

        def one(spec: RunSpec) -> Outcome:
            with lock:
                slot = slots.pop(0)
            try:
                return self._run(spec, slot)
            finally:
                with lock:
                    slots.append(slot)

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            return list(pool.map(one, runs))

    def _run(self, spec: RunSpec, slot: int) -> Outcome:
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(self.gpus[slot % len(self.gpus)])
        spec.out.mkdir(parents=True, exist_ok=True)
        (spec.out / ERROR_FILE).unlink(missing_ok=True)
        with open(spec.out / LOG_FILE, "ab") as log:
            log.write(f"$ {shlex.join(spec.command(self.python))}\n".encode())
            log.flush()
            proc = subprocess.run(spec.command(self.python), env=env, stdout=log, stderr=subprocess.PIPE)
            log.write(proc.stderr)
        if proc.returncode == 0 and is_complete(spec.out):
            return Outcome(spec, "done")
        error = _last_error_line(proc.stderr.decode(errors="replace"))
        error = f"exit {proc.returncode}: {error} (log: {spec.out / LOG_FILE})"
        write_text(spec.out / ERROR_FILE, error + "\n")
        return Outcome(spec, "failed", error)


def _visible_gpus() -> list[str]:
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


@dataclass
class SlurmOptions:
    """SLURM settings of every job of a sweep (one run = one job). ``extra``: any other sbatch option."""

    partition: str | None = None
    gpus_per_run: int = 1
    cpus_per_run: int | None = None
    time_min: int = 24 * 60
    mem: str | None = None
    account: str | None = None
    qos: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: str | Path) -> SlurmOptions:
        """Read a ``slurm:`` block (or a bare mapping) from a YAML file; unknown keys are an error."""
        import yaml

        try:
            doc = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise RecipeError(f"{path}: cannot read the SLURM settings ({err})") from None
        doc = doc.get("slurm", doc) if isinstance(doc, dict) else doc
        if not isinstance(doc, dict):
            raise RecipeError(f"{path}: expected a mapping of SLURM settings")
        allowed = list(cls.__dataclass_fields__)
        unknown = [k for k in doc if k not in allowed]
        if unknown:
            raise RecipeError(f"{path}: slurm.{unknown[0]}: unknown key; allowed: {', '.join(allowed)}")
        return cls(**doc)

    def executor_parameters(self) -> dict[str, Any]:
        """Parameters of :meth:`submitit.SlurmExecutor.update_parameters`."""
        params: dict[str, Any] = {"time": self.time_min, "nodes": 1, "ntasks_per_node": 1}
        if self.gpus_per_run:
            params["gpus_per_node"] = self.gpus_per_run
        for key in ("partition", "mem", "account", "qos"):
            if getattr(self, key) is not None:
                params[key] = getattr(self, key)
        if self.cpus_per_run is not None:
            params["cpus_per_task"] = self.cpus_per_run
        if self.extra:
            params["additional_parameters"] = dict(self.extra)
        return params


def job_name(spec: RunSpec) -> str:
    """``distill-<configuration>-<seed folder>``: what squeue shows for the run."""
    return f"distill-{spec.out.parent.name}-{spec.out.name}"


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise DistillError(
            '--launcher slurm needs submitit: pip install -e ".[cluster]" (or pip install submitit)'
        ) from None
    return submitit


@dataclass
class SlurmLauncher:
    """One SLURM job per run through submitit; job logs and ids go under ``folder``.

    With ``wait`` the launcher blocks until the jobs end (so chained runs proceed in one command); otherwise it
    submits and returns, and re-running the sweep command collects what finished and submits what is missing.
    """

    folder: Path
    options: SlurmOptions = field(default_factory=SlurmOptions)
    wait: bool = False
    python: str = sys.executable
    dry_run: bool = False
    name: str = "slurm"

    @property
    def blocking(self) -> bool:
        return self.wait

    @property
    def writes_data(self) -> bool:
        return not self.dry_run

    def executor(self) -> Any:
        submitit = _submitit()
        try:
            ex = submitit.SlurmExecutor(folder=str(self.folder / "%j"), python=self.python)
        except RuntimeError as err:  # submitit checks for srun
            raise DistillError(
                f"--launcher slurm: {err} Run the sweep on the cluster's login node, or use --launcher local"
            ) from None
        ex.update_parameters(**self.options.executor_parameters())
        return ex

    def script(self, spec: RunSpec) -> str:
        """The sbatch script of this run's job as submitit writes it, with the run's own command in place of
        submitit's pickled-callable runner: the SBATCH directives are the ones submitted. Needs no cluster."""
        _submitit()
        from submitit.slurm.slurm import _make_sbatch_string

        params = self.options.executor_parameters()
        return _make_sbatch_string(
            command=shlex.join(spec.command(self.python)),
            folder=str(self.folder / "%j"),
            job_name=job_name(spec),
            **params,
        )

    def launch(self, runs: Sequence[RunSpec]) -> list[Outcome]:
        if self.dry_run:  # write each job's script, submit nothing
            preview = self.folder / "dry_run"
            preview.mkdir(parents=True, exist_ok=True)
            for spec in runs:
                write_text(preview / f"{job_name(spec)}.sh", self.script(spec))
            return [Outcome(spec, "scripted", job_id=f"{preview}/{job_name(spec)}.sh") for spec in runs]
        ex = self.executor()
        submitted = []
        for spec in runs:
            spec.out.mkdir(parents=True, exist_ok=True)
            (spec.out / ERROR_FILE).unlink(missing_ok=True)
            ex.update_parameters(job_name=job_name(spec))
            job = ex.submit(RequeuedRun(spec.command(self.python)))  # requeued on pre-emption (requeue.py)
            write_text(spec.out / "slurm_job.txt", f"{job.job_id}\n")
            submitted.append((spec, job))
        if not self.wait:
            return [Outcome(spec, "submitted", job_id=str(job.job_id)) for spec, job in submitted]
        finished = []
        for spec, job in submitted:
            try:
                job.result()  # re-raises the job's failure
            except Exception as err:
                msg = f"slurm job {job.job_id}: {_last_error_line(str(err))}"
                write_text(spec.out / ERROR_FILE, msg + "\n")
                finished.append(Outcome(spec, "failed", msg, str(job.job_id)))
                continue
            state = "done" if is_complete(spec.out) else "failed"
            finished.append(Outcome(spec, state, "" if state == "done" else "no results.json", str(job.job_id)))
        return finished


# ------------------------------------------------------------------------------------------------------ waves
@dataclass
class Wave:
    """One pass of a sweep's code, as its :class:`RunSource`: finished runs are read (and counted), missing ones
    recorded for the launcher and left out of the answer, failed ones raise the error an inline run would."""

    failed: dict[Path, str]
    collect_only: bool = False
    pending: dict[Path, RunSpec] = field(default_factory=dict)
    done: set[Path] = field(default_factory=set)
    missing: list[Path] = field(default_factory=list)

    def reuse(self, out: Path) -> dict[str, Any]:
        self.done.add(out)
        return read_results(out)

    def run(self, spec: RunSpec) -> None:
        """Plan a missing run: its failure (as inline would raise), else recorded as pending (``None``)."""
        if spec.out in self.failed:
            raise DistillError(f"{spec.out}: {self.failed[spec.out]}")
        if self.collect_only:
            self.missing.append(spec.out)
            raise DistillError(f"{spec.out}: not run yet (re-run without --collect-only to run it)")
        self.pending[spec.out] = spec
        return None

    def ready(self) -> list[RunSpec]:
        """Pending runs that wait on no other pending run."""
        specs = list(self.pending.values())
        return [s for s in specs if not any(s.waits_on(o) for o in specs)]


@dataclass
class SweepSummary:
    """Runs done / submitted (running) / failed over a whole sweep, with the failures' one-line errors."""

    done: int = 0
    running: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    scripted: list[str] = field(default_factory=list)

    def render(self, launcher: str) -> str:
        counts = f"{self.done} runs done, {len(self.running)} running, {len(self.failed)} failed"
        counts += f", {len(self.missing)} not run" if self.missing else ""
        counts += f", {len(self.scripted)} job scripts written (not submitted)" if self.scripted else ""
        lines = [f"sweep ({launcher}): {counts}"]
        lines += [f"  running: {r}" for r in self.running]
        lines += [f"  script: {r}" for r in self.scripted]
        lines += [f"  not run: {m}" for m in self.missing]
        lines += [f"  failed: {out}: {err}" for out, err in self.failed.items()]
        return "\n".join(lines)


def run_sweep(
    build: Callable[[RunSource], T],
    launcher: Launcher,
    collect_only: bool = False,
    log: Callable[[str], None] = print,
) -> T | None:
    """Run ``build`` (code that asks the source it is given for runs, through ``run_repeats``) as a sweep: once per
    wave, each time with a fresh :class:`Wave` as its source. Returns its result once every run it needs has
    finished, or None when runs were submitted and are still running (non-blocking SLURM)."""
    failed: dict[Path, str] = {}
    summary = SweepSummary()
    while True:
        wave = Wave(failed, collect_only)
        try:
            result: T | None = build(wave)
            problem: Exception | None = None
        except Exception as err:
            if not wave.pending:
                raise
            result, problem = None, err
        if not wave.pending:
            summary.done = len(wave.done)
            summary.missing = [str(m) for m in wave.missing]
            log(summary.render(launcher.name))
            return result
        ready = wave.ready()
        if not ready:
            raise DistillError("sweep: the pending runs wait on each other: " + ", ".join(str(p) for p in wave.pending))
        waiting = len(wave.pending) - len(ready)
        log(
            f"sweep ({launcher.name}): launching {len(ready)} runs"
            + (f" ({waiting} wait on them)" if waiting else "")
            + (f"; planning stopped early: {problem}" if problem else "")
        )
        if launcher.writes_data:
            _write_synthetic_data(ready)
        outcomes = launcher.launch(ready)
        summary.done = len(wave.done) + sum(o.state == "done" for o in outcomes)
        for o in outcomes:
            if o.state == "failed":
                failed[o.spec.out] = o.error
                summary.failed[str(o.spec.out)] = o.error
            elif o.state == "submitted":
                summary.running.append(f"{o.spec.out} (job {o.job_id})")
            elif o.state == "scripted":
                summary.scripted.append(f"{o.spec.out}: {o.job_id}")
        if not launcher.blocking:
            waiting_runs = [str(p) for p in wave.pending if p not in {r.out for r in ready}]
            summary.running += [f"{p} (waits for a run above; re-run this command when they finish)" for p in
                                waiting_runs]  # fmt: skip
            log(summary.render(launcher.name))
            if summary.running:
                log("re-run the same command to collect finished runs and submit the missing ones")
            return None


def _write_synthetic_data(runs: Sequence[RunSpec]) -> None:
    """Write each synthetic stand-in the runs need once, here, before parallel runs would race to write it."""
    from distill.build import ensure_data
    from distill.recipe.check import load_recipe

    for spec in runs:
        try:
            recipe, _ = load_recipe(spec.recipe, list(spec.overrides))
        except DistillError:
            continue  # the run itself reports its recipe error
        ensure_data(recipe.data, recipe.source)


def launcher_from_options(
    name: str,
    jobs: int = 1,
    folder: str | Path = "runs/slurm",
    slurm: SlurmOptions | None = None,
    wait: bool = False,
    threads: int | None = None,
    dry_run: bool = False,
) -> Launcher | None:
    """The launcher named by ``--launcher`` (None for ``inline``)."""
    if name == "inline":
        return None
    if name == "local":
        return LocalLauncher(jobs=jobs, threads=threads)
    if name == "slurm":
        _submitit()
        if dry_run and wait:
            raise RecipeError("--scripts-only and --wait: choose one (nothing is submitted to wait for)")
        return SlurmLauncher(Path(folder), slurm or SlurmOptions(), wait=wait, dry_run=dry_run)
    raise RecipeError(f"--launcher {name!r}: unknown; choose from {', '.join(LAUNCHERS)}")


# -------------------------------------------------------------------------------------------- command line
def add_launcher_arguments(parser: Any) -> None:
    """The ``--launcher`` options shared by ``distill run --seeds`` and the table benchmarks."""
    g = parser.add_argument_group("launcher (how the runs are executed; see distill.experiments.sweep)")
    g.add_argument("--launcher", choices=LAUNCHERS, default="inline",
                   help="inline: one after another here (default); local: --jobs at a time as subprocesses; "
                        "slurm: one job per run through submitit (pip install -e '.[cluster]')")  # fmt: skip
    g.add_argument("--jobs", type=int, default=1, help="local: runs at a time (e.g. one per GPU)")
    g.add_argument("--threads-per-job", type=int, help="local: CPU threads per run (default: cores / jobs)")
    g.add_argument("--collect-only", action="store_true",
                   help="run nothing: print what the finished run folders give (missing runs are listed)")  # fmt: skip
    g.add_argument("--slurm-config", help="YAML file with a slurm: block (partition, gpus_per_run, time_min, ...)")
    g.add_argument("--partition", help="slurm: partition")
    g.add_argument("--gpus-per-run", type=int, help="slurm: GPUs per run (default 1)")
    g.add_argument("--cpus-per-run", type=int, help="slurm: CPUs per run")
    g.add_argument("--time-min", type=int, help="slurm: time limit per run in minutes (default 1440)")
    g.add_argument("--mem", help="slurm: memory per run, e.g. 64G")
    g.add_argument("--account", help="slurm: account")
    g.add_argument("--qos", help="slurm: quality of service")
    g.add_argument("--slurm-folder", default="runs/slurm", help="slurm: folder for submitit's job files and logs")
    g.add_argument("--wait", action="store_true", help="slurm: block until the jobs end (chained runs in one go)")
    g.add_argument("--scripts-only", action="store_true", help="slurm: write each job's sbatch script, submit nothing")


def slurm_options_from_args(args: Any) -> SlurmOptions:
    """SLURM settings: the ``--slurm-config`` file, then the command-line options on top."""
    opts = SlurmOptions.from_yaml(args.slurm_config) if args.slurm_config else SlurmOptions()
    for arg, key in (("partition", "partition"), ("gpus_per_run", "gpus_per_run"), ("cpus_per_run", "cpus_per_run"),
                     ("time_min", "time_min"), ("mem", "mem"), ("account", "account"), ("qos", "qos")):  # fmt: skip
        value = getattr(args, arg, None)
        if value is not None:
            setattr(opts, key, value)
    return opts


def launcher_from_args(args: Any) -> Launcher | None:
    """The launcher the parsed ``--launcher`` options ask for (None: inline)."""
    slurm = slurm_options_from_args(args) if args.launcher == "slurm" else None
    return launcher_from_options(
        args.launcher, args.jobs, args.slurm_folder, slurm, args.wait, args.threads_per_job, args.scripts_only
    )


def run_with_launcher(build: Callable[[RunSource], T], args: Any, log: Callable[[str], None] = print) -> T | None:
    """``build(INLINE)`` (runs train here, one after another), or a sweep under the launcher the arguments name."""
    launcher = launcher_from_args(args)
    if launcher is None and not args.collect_only:
        return build(INLINE)
    if launcher is None:
        launcher = LocalLauncher(jobs=1)
    return run_sweep(build, launcher, collect_only=args.collect_only, log=log)
