"""SIGINT and SIGTERM lose no work: the run saves a checkpoint at the next step boundary, exits 130/143 with the exact
command that continues it, and the continued run ends equal to an uninterrupted one.

Run as a module it is the ``distill`` command line that, when ``DISTILL_TEST_PAUSE`` names a moment, prints
``PAUSE <moment>`` to stderr there and waits (up to 60 s) until a stop signal has arrived, so that a test can send the
signal at exactly that moment:

* ``step:N`` — just before training step N+1 (after step N's bookkeeping);
* ``eval:K`` — inside the K-th evaluation of this process (the models are being evaluated).
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from distill.cli import main
from distill.engine import interrupt
from distill.engine.interrupt import StopRequests
from distill.run.interrupted import TrainingInterrupted, interrupted_line, resume_command
from tests.test_resume_anytime import ROOT, assert_identical_runs, data, tiny_quickstart  # noqa: F401 (fixture)

PAUSE_ENV = "DISTILL_TEST_PAUSE"
SELF_SIGNAL_ENV = "DISTILL_TEST_SELF_SIGNAL"


# ---------------------------------------------------------------------------------------------- child process
def _wait_for_signal(trainer) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while trainer._stop.signum is None and time.monotonic() < deadline:
        time.sleep(0.005)


def install_pause(spec: str) -> None:
    """Patch the engine so that it prints ``PAUSE spec`` and waits for a signal at ``spec`` (module docstring)."""
    from distill.engine.trainer import Trainer

    kind, _, n_text = spec.partition(":")
    n = int(n_text)
    if kind == "step":
        train_step = Trainer._train_step

        def pausing_step(self: Trainer, batch):  # type: ignore[no-untyped-def]
            if self.step == n and self._stop is not None and self._stop.signum is None:
                print(f"PAUSE {spec}", file=sys.stderr, flush=True)
                _wait_for_signal(self)
            return train_step(self, batch)

        Trainer._train_step = pausing_step  # type: ignore[method-assign]
    elif kind == "eval":
        evaluate = Trainer.evaluate
        calls = [0]

        def pausing_evaluate(self: Trainer, splits=None):  # type: ignore[no-untyped-def]
            if self._stop is not None:  # the loop's evaluations, not preflight's
                calls[0] += 1
                if calls[0] == n:
                    print(f"PAUSE {spec} (step {self.step})", file=sys.stderr, flush=True)
                    _wait_for_signal(self)
            return evaluate(self, splits)

        Trainer.evaluate = pausing_evaluate  # type: ignore[method-assign]
    else:
        raise ValueError(f"{PAUSE_ENV}: unknown moment '{spec}'")


def install_self_signal(spec: str) -> None:
    """``RANK:STEP:SIGNAL``: the process of that torchrun rank sends itself SIGNAL just before training step STEP+1."""
    from distill.engine.trainer import Trainer

    rank, step, name = spec.split(":")
    if os.environ.get("RANK", "0") != rank:
        return
    train_step = Trainer._train_step

    def signalling_step(self: Trainer, batch):  # type: ignore[no-untyped-def]
        if self.step == int(step) and self._stop is not None and self._stop.signum is None:
            os.kill(os.getpid(), getattr(signal, name))
        return train_step(self, batch)

    Trainer._train_step = signalling_step  # type: ignore[method-assign]


def _start(args: list[str], pause: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop(PAUSE_ENV, None)
    if pause:
        env[PAUSE_ENV] = pause
    cmd = [sys.executable, "-m", "tests.test_interrupts", *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)  # fmt: skip


def _default_sigint() -> None:
    """In the child: SIGINT as in a terminal, also when the tests run where it is ignored (a script's background
    job), which distill, like Python, would leave ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _signal_at_pause(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    """Read the child's stderr up to its ``PAUSE`` line, send ``sig``, and return (exit status, all of stderr)."""
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("PAUSE"):
            proc.send_signal(sig)
            break
    lines.append(proc.stderr.read())
    proc.stdout.read()  # type: ignore[union-attr]
    return proc.wait(timeout=300), "".join(lines)


def continue_args(stderr: str) -> list[str]:
    """The arguments of the command the interrupted run printed (``Continue with: distill ...``)."""
    last = [ln for ln in stderr.splitlines() if ln.startswith("distill: ")][-1]
    match = re.search(r"(?:Continue with|continue with|start it again with): distill (.*)$", last)
    assert match, f"no command to continue in the last line: {last!r}"
    return shlex.split(match.group(1))


def checkpoint_step(out: Path) -> int:
    return int(torch.load(out / "checkpoints" / "last.pt", weights_only=True)["step"])


def assert_same_results_file(a: Path, b: Path) -> None:
    """results.json equal apart from its timing field."""
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (a, b))
    ra.pop("finished", None), rb.pop("finished", None)
    assert ra == rb


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> tuple[Path, Path]:  # noqa: F811
    """The tiny quickstart (15 steps, 5 per epoch, an evaluation and a checkpoint after each epoch) run through."""
    tmp = tmp_path_factory.mktemp("interrupts")
    recipe = tiny_quickstart(tmp, data)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the OMP_NUM_THREADS=1 children: the same floating-point reductions
    try:
        assert main(["run", str(recipe), "--out", str(tmp / "full")]) == 0
    finally:
        torch.set_num_threads(threads)
    return recipe, tmp / "full"


# -------------------------------------------------------------------------------------------------- the tests
@pytest.mark.slow  # tens of seconds of CPU: the default suite stays under ~10 min on 2 cores
def test_sigint_before_the_first_checkpoint_and_sigterm_during_evaluation_lose_no_work(reference, tmp_path, one_thread):
    """SIGINT before step 3 (the first checkpoint is due at step 5), then, in the continued run, SIGTERM while the
    first evaluation runs: each stop saves, prints the command that continues, and the finished run equals the
    uninterrupted one (weights, results.json but its time, metrics.jsonl byte for byte)."""
    recipe, full = reference
    out = tmp_path / "cut"
    code, err = _signal_at_pause(_start(["run", str(recipe), "--out", str(out)], "step:2"), signal.SIGINT)
    assert code == 130, err[-3000:]
    assert checkpoint_step(out) == 3, "the step running when the signal came was finished and saved"
    assert "SIGINT received: stopping after the current step with a checkpoint; press Ctrl-C again" in err
    args = continue_args(err)
    assert args == ["run", str(recipe), "--out", str(out), "--resume"]

    code, err = _signal_at_pause(_start(args, "eval:1"), signal.SIGTERM)
    assert code == 143, err[-3000:]
    assert "distill: resuming at step 4/15 from the checkpoint of step 3" in err
    assert "stopped by SIGTERM after step 5/15; checkpoint saved" in err
    assert checkpoint_step(out) == 5
    assert continue_args(err) == args

    assert main(args) == 0
    assert_identical_runs(full, out)
    assert_same_results_file(full, out)


def test_a_second_ctrl_c_stops_at_once_and_says_so(tmp_path, monkeypatch):
    """The first Ctrl-C asks for a checkpoint; a repeat within the window is ignored; a later one raises at once."""
    # start from Python's own SIGINT handler: a background job of a non-interactive shell inherits SIGINT ignored,
    # and StopRequests rightly leaves an ignored signal alone
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    monkeypatch.setattr(interrupt, "REPEAT_WINDOW_S", 60.0)  # the repeat below is "within the window" on any machine
    try:
        _second_ctrl_c(tmp_path, monkeypatch)
    finally:
        signal.signal(signal.SIGINT, previous)


def _second_ctrl_c(tmp_path, monkeypatch) -> None:
    saves: list[int] = []

    class Fake:
        step, total_steps, out_dir, device, _saved_step = 7, 20, tmp_path, torch.device("cpu"), 5
        dist = type("D", (), {"enabled": False, "is_main": True})()

        def save(self) -> None:
            saves.append(self.step)

    lines: list[str] = []
    stop = StopRequests(Fake(), write=lines.append)
    with stop:
        assert signal.getsignal(signal.SIGINT) == stop._handle
        stop._handle(signal.SIGINT, None)
        stop._handle(signal.SIGINT, None)  # the same Ctrl-C delivered twice (terminal and torchrun)
        assert stop.requested() and lines == [
            "distill: SIGINT received: stopping after the current step with a checkpoint; press Ctrl-C again to stop "
            "at once without saving"
        ]
        monkeypatch.setattr(interrupt, "REPEAT_WINDOW_S", 0.0)
        stop._handle(signal.SIGTERM, None)  # a repeated SIGTERM keeps saving
        with pytest.raises(TrainingInterrupted) as stopped:
            stop._handle(signal.SIGINT, None)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "the handler is removed after the loop"
    assert not stopped.value.saved and stopped.value.exit_code == 130 and saves == []
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"")
    line = interrupted_line(stopped.value, ["run", "r.yaml", "--set", "train.epochs=2"], None, True)
    assert line == (
        f"distill: stopped at once by a second SIGINT at step 7/20, without saving; the last checkpoint "
        f"({tmp_path}/checkpoints/last.pt) is older. Continue with: distill run r.yaml --set train.epochs=2 --out "
        f"{tmp_path} --resume"
    )
    with pytest.raises(TrainingInterrupted) as stopped:
        _stop_after_request(Fake())
    assert stopped.value.saved and saves == [7] and stopped.value.exit_code == 143


def _stop_after_request(trainer: object) -> None:
    stop = StopRequests(trainer, write=lambda line: None)
    stop._handle(signal.SIGTERM, None)
    assert stop.requested()
    stop.stop_here()


def test_the_resume_command_keeps_the_arguments_and_names_the_run_folder():
    argv = ["run", "recipes/q.yaml", "--set", "a.b=1 2", "--out=x", "--auto-resume", "--quiet", "--debug"]
    assert resume_command(argv, Path("runs/q")) == (
        "distill run recipes/q.yaml --set 'a.b=1 2' --quiet --debug --out runs/q --resume"
    )
    seeds = ["run", "recipes/q.yaml", "--seeds", "0,1"]  # a seed sweep continues its unfinished seeds by itself
    assert resume_command(seeds, Path("runs/q/seed1")) == "distill run recipes/q.yaml --seeds 0,1"
    generic = interrupted_line(KeyboardInterrupt(), ["run", "r.yaml"], None, True)
    assert generic == "distill: interrupted; continue with: distill run r.yaml --auto-resume"


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_sigint_and_sigterm_at_random_moments_then_continue_give_the_uninterrupted_run(
    reference, tmp_path, trial, one_thread
):
    """Three signals (SIGINT or SIGTERM) at random moments of a run, each time continued with the command the run
    printed; the finished run equals the uninterrupted one."""
    recipe, full = reference
    started = time.monotonic()
    proc = _start(["run", str(recipe), "--out", str(tmp_path / "timing")])
    assert proc.wait(timeout=600) == 0
    duration = time.monotonic() - started
    seed = int.from_bytes(os.urandom(4), "little")  # not random.randrange: training seeds the global generator
    rng = random.Random(seed)
    out = tmp_path / "cut"
    args = ["run", str(recipe), "--out", str(out)]
    for _ in range(3):
        sig = rng.choice([signal.SIGINT, signal.SIGTERM])
        moment = rng.uniform(0.1, 0.9) * duration
        proc = _start(args)
        time.sleep(moment)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=600)
        print(f"trial {trial} (seed {seed}): {sig.name} after {moment:.2f} s of a {duration:.1f} s run: "
              f"exit {proc.returncode}; {err.strip().splitlines()[-1] if err.strip() else ''}")  # fmt: skip
        if proc.returncode == 0:
            break
        # stopped, perhaps after results.json but before the report and plots: continuing writes what is missing
        if proc.returncode in (-signal.SIGTERM, -signal.SIGINT):  # outside distill's handlers (Python's start-up,
            args = ["run", str(recipe), "--out", str(out), "--auto-resume"]  # SIGTERM before the loop): nothing saved
            continue
        assert proc.returncode == 128 + sig, err[-3000:]
        args = continue_args(err)
    else:
        assert main(args) == 0
    assert_identical_runs(full, out)
    assert_same_results_file(full, out)


@pytest.mark.slow
def test_under_ddp_one_signalled_rank_stops_every_rank_at_the_same_step(tmp_path):
    """torchrun, 2 processes: only rank 1 gets SIGTERM (before step 12); both ranks stop after step 12 and save one
    checkpoint; continuing on 2 processes gives the uninterrupted 2-process run bit for bit."""
    from tests.test_crash_resume import assert_same_run
    from tests.test_distributed import register_toys, torchrun, toy_recipe

    register_toys()
    recipe = toy_recipe(tmp_path / "toy.yaml", "mrkd", group_by=None)
    assert torchrun("run", str(recipe), "--out", str(tmp_path / "full")).returncode == 0
    os.environ[SELF_SIGNAL_ENV] = "1:11:SIGTERM"
    try:
        cut = torchrun("run", str(recipe), "--out", str(tmp_path / "cut"), module="tests.test_interrupts")
    finally:
        del os.environ[SELF_SIGNAL_ENV]
    assert cut.returncode != 0
    assert "stopped by SIGTERM after step 12/24; checkpoint saved" in cut.stderr, cut.stderr[-3000:]
    assert checkpoint_step(tmp_path / "cut") == 12
    resumed = torchrun("run", str(recipe), "--out", str(tmp_path / "cut"), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(tmp_path / "full", tmp_path / "cut")


if __name__ == "__main__":  # distill's command line, pausing at $DISTILL_TEST_PAUSE for a signal
    from tests.test_distributed import register_toys

    register_toys()
    if os.environ.get(PAUSE_ENV):
        install_pause(os.environ[PAUSE_ENV])
    if os.environ.get(SELF_SIGNAL_ENV):
        install_self_signal(os.environ[SELF_SIGNAL_ENV])
    sys.exit(main())


# ----------------------------------------------------------------------------------- SLURM pre-emption (submitit)
FAKE_RUN = """
import signal, sys, time
def stop(*_):
    print("distill: stopped by SIGTERM after step 3/9; checkpoint saved.", file=sys.stderr, flush=True)
    sys.exit(143)
signal.signal(signal.SIGTERM, stop)
print("training", file=sys.stderr, flush=True)
time.sleep(60)
"""


def test_a_preempted_slurm_job_stops_its_run_with_sigterm_and_requeues_the_same_command(tmp_path):
    """submitit's pre-emption hook (``checkpoint``) sends the run SIGTERM, waits for it to exit, and returns the
    same command for the requeued job; a run that fails on its own is the job's failure with its last line."""
    import pickle
    import threading

    from distill.experiments.requeue import RequeuedRun, RunStopped

    command = [sys.executable, "-c", FAKE_RUN]
    job = pickle.loads(pickle.dumps(RequeuedRun(command)))  # as submitit ships it
    returned: list[object] = []
    worker = threading.Thread(target=lambda: returned.append(job()))
    worker.start()
    deadline = time.monotonic() + 60
    while (job._proc is None or job._proc.poll() is not None or not job._proc.stderr) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the fake run has set its handler
    started = time.monotonic()
    delayed = job.checkpoint()
    worker.join(timeout=60)
    assert job._proc.returncode == 143 and time.monotonic() - started < 30
    assert returned == [""], "a run stopped for the requeue is not a failure"
    assert isinstance(delayed.function, RequeuedRun) and delayed.function.command == command
    assert pickle.loads(pickle.dumps(delayed.function)).command == command

    failing = RequeuedRun([sys.executable, "-c", "import sys; print('distill: error: boom', file=sys.stderr); 1/0"])
    with pytest.raises(RunStopped, match=r"exit 1: ZeroDivisionError"):
        failing()


@pytest.mark.slow
def test_a_preempted_slurm_job_continues_to_the_uninterrupted_run(reference, tmp_path, monkeypatch, one_thread):
    """The job's SIGUSR2 (as submitit handles it: ``checkpoint``, then the job exits) during training, then the
    requeued submission run to the end: the run equals the uninterrupted one."""
    from distill.experiments.requeue import RequeuedRun

    recipe, full = reference
    out = tmp_path / "cut"
    monkeypatch.setenv(PAUSE_ENV, "step:4")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    job = RequeuedRun([sys.executable, "-m", "tests.test_interrupts", "run", str(recipe), "--out", str(out),
                       "--auto-resume"])  # fmt: skip
    requeued: list[object] = []

    def submitit_handler(signum, frame):  # type: ignore[no-untyped-def]
        requeued.append(job.checkpoint())
        raise SystemExit(-1)  # submitit requeues the job, then exits

    class Relay:  # the job's stderr: the child's PAUSE line is when SLURM signals the job
        def write(self, text: str) -> None:
            sys.__stderr__.write(text)
            if text.startswith("PAUSE"):
                os.kill(os.getpid(), signal.SIGUSR2)

    previous, stderr = signal.signal(signal.SIGUSR2, submitit_handler), sys.stderr
    sys.stderr = Relay()  # type: ignore[assignment]
    try:
        with pytest.raises(SystemExit):
            job()
    finally:
        signal.signal(signal.SIGUSR2, previous)
        sys.stderr = stderr
    monkeypatch.delenv(PAUSE_ENV)
    assert job._proc is not None and job._proc.returncode == 143
    assert checkpoint_step(out) == 5
    (delayed,) = requeued
    assert delayed.function() == ""  # the requeued job
    assert_identical_runs(full, out)
    assert_same_results_file(full, out)
