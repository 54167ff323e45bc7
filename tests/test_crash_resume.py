"""Crash safety: a training process killed with SIGKILL at any moment resumes to the uninterrupted run's weights.

Run as a module it is the ``distill`` command line (with the toy components of ``tests.test_distributed``) that
SIGKILLs itself at the moment named by the ``DISTILL_TEST_KILL`` environment variable:

* ``step:N`` — just before training step N+1 (mid-epoch, work since the last checkpoint is lost);
* ``after-save:N`` — right after the N-th checkpoint of this process is on disk (between checkpoints);
* ``in-save:N`` — while the N-th checkpoint is being written: half of its bytes are in the temporary file;
* ``in-write:NAME`` — while the first file named NAME (``data.json``, ``results.json`` …) is being written: half of
  its bytes are in the temporary file. A file written any other way than through ``distill.run.atomic`` is not
  caught, and the process then finishes instead of dying, which the tests catch.

SIGKILL cannot be caught, so nothing (no ``finally``, no atexit) tidies up: what is on disk is what a power cut or an
OOM kill leaves.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from distill.run.checkpoint import CHECKPOINT_FORMAT
from tests.test_distributed import ATOL, ROOT, RTOL, final_weights, register_toys, torchrun, toy_recipe

KILL_ENV = "DISTILL_TEST_KILL"


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_kill(spec: str) -> None:
    """Patch the engine so that this process SIGKILLs itself at ``spec`` (see the module docstring)."""
    from distill.engine.trainer import Trainer

    kind, _, n_text = spec.partition(":")
    target = n_text
    n = int(n_text) if n_text.isdigit() else 0
    if kind == "step":
        train_step = Trainer._train_step

        def step_or_die(self: Trainer, batch):  # type: ignore[no-untyped-def]
            if self.step == n:
                _die()
            return train_step(self, batch)

        Trainer._train_step = step_or_die  # type: ignore[method-assign]
    elif kind == "after-save":
        save = Trainer.save
        saves = [0]

        def save_then_die(self: Trainer) -> None:
            save(self)
            saves[0] += 1
            if saves[0] == n:
                _die()

        Trainer.save = save_then_die  # type: ignore[method-assign]
    elif kind == "in-save":
        real_save = torch.save
        saves = [0]

        def half_save_then_die(obj, f, *args, **kwargs):  # type: ignore[no-untyped-def]
            if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
                saves[0] += 1
                if saves[0] == n:
                    buf = io.BytesIO()
                    real_save(obj, buf, *args, **kwargs)
                    f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                    f.flush()
                    os.fsync(f.fileno())
                    _die()
            return real_save(obj, f, *args, **kwargs)

        torch.save = half_save_then_die
    elif kind == "in-write":
        real_replace = os.replace

        def half_write_then_die(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
            if Path(dst).name == target:
                size = os.path.getsize(src)
                os.truncate(src, size // 2)
                _die()
            return real_replace(src, dst, *args, **kwargs)

        os.replace = half_write_then_die  # distill.run.atomic renames every finished temporary file through it
    else:
        raise ValueError(f"{KILL_ENV}: unknown moment '{spec}'")


def run_killable(
    recipe: Path, out: Path, kill: str | None, resume: bool = False, *extra: str
) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop(KILL_ENV, None)
    if kill:
        env[KILL_ENV] = kill
    cmd = [sys.executable, "-m", "tests.test_crash_resume", "run", str(recipe), "--out", str(out)]
    cmd += ["--resume"] if resume else []
    return subprocess.run([*cmd, *extra], cwd=ROOT, env=env, capture_output=True, text=True)


def checkpoint_step(out: Path) -> int:
    return int(torch.load(out / "checkpoints" / "last.pt", weights_only=True)["step"])


def temp_files(out: Path) -> list[Path]:
    return sorted(out.rglob("*.tmp"))


def assert_same_run(reference: Path, out: Path) -> None:
    """Bit-identical weights (training checkpoint and exported student), results and log as the reference run."""
    a = torch.load(reference / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert a["step"] == b["step"]
    assert all(torch.equal(a["distiller"][k], b["distiller"][k]) for k in a["distiller"])
    sa = torch.load(reference / "student.pt", weights_only=True)["state_dict"]
    sb = torch.load(out / "student.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (reference, out))
    assert json.dumps(ra["results"]) == json.dumps(rb["results"])
    log_a, log_b = ([json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()] for d in (reference, out))
    key = lambda r: (r["step"], r["kind"], r.get("split", ""))  # noqa: E731
    assert sorted(map(key, log_b)) == sorted(map(key, log_a)), "every record exactly once after the resumes"
    assert {key(r): r for r in log_a} == {key(r): r for r in log_b}
    assert not temp_files(out), "no temporary file of a killed write is left behind"


def test_sigkill_mid_epoch_between_and_during_checkpoints_resumes_bit_identically(tmp_path, one_thread):
    """One run killed three times — mid-epoch, mid-checkpoint-write, right after a checkpoint — then finished.

    24 steps (3 epochs × 8 batches of the 61-item toy set); checkpoints every 5 steps and after each epoch's
    evaluation (steps 5, 8, 10, 15, 16, 20, 24).
    """
    from distill.cli import main

    register_toys()
    recipe = toy_recipe(tmp_path / "toy.yaml", "mrkd", group_by=None)
    assert main(["run", str(recipe), "--out", str(tmp_path / "full")]) == 0  # the uninterrupted reference

    out = tmp_path / "cut"
    proc = run_killable(recipe, out, "step:11")  # mid epoch 2; last checkpoint at step 10
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert checkpoint_step(out) == 10

    proc = run_killable(recipe, out, "in-save:3", resume=True)  # resumed at 10, saves 15, 16, dies writing 20
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert checkpoint_step(out) == 16, "the complete checkpoint before the interrupted write is intact"
    (partial,) = temp_files(out)
    assert 0 < partial.stat().st_size < (out / "checkpoints" / "last.pt").stat().st_size

    proc = run_killable(recipe, out, "after-save:1", resume=True)  # redoes 17-20, dies right after saving 20
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert checkpoint_step(out) == 20
    assert not temp_files(out), "resuming removed the half-written temporary file"

    assert main(["run", str(recipe), "--out", str(out), "--resume"]) == 0  # finish (in this process: faster)
    assert_same_run(tmp_path / "full", out)


@pytest.mark.slow
@pytest.mark.parametrize("kill", ["step:3", "step:13", "after-save:2", "in-save:1", "in-save:4"])
def test_each_kill_moment_alone_resumes_bit_identically(tmp_path, kill):
    register_toys()
    recipe = toy_recipe(tmp_path / "toy.yaml", "mrkd", group_by=None)
    assert run_killable(recipe, tmp_path / "full", None).returncode == 0
    out = tmp_path / "cut"
    assert run_killable(recipe, out, kill).returncode == -signal.SIGKILL
    first_checkpoint_lost = not (out / "checkpoints" / "last.pt").exists()
    if first_checkpoint_lost:  # killed before, or while, writing the first checkpoint: start again
        proc = run_killable(recipe, out, None, resume=True)
        assert proc.returncode == 2 and "start it again with --force" in proc.stderr
    # the folder holds the lost run's recipe.yaml and log: starting afresh there replaces them (--force)
    proc = run_killable(recipe, out, None, not first_checkpoint_lost, *(["--force"] if first_checkpoint_lost else []))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_same_run(tmp_path / "full", out)


@pytest.mark.parametrize(
    "name",
    [
        "data.json",  # report data: written before results.json, which marks a run finished
        pytest.param("results.json", marks=pytest.mark.slow),
        pytest.param("student.pt", marks=pytest.mark.slow),
        pytest.param("report.html", marks=pytest.mark.slow),
    ],
)
def test_a_kill_while_a_run_writes_its_outputs_leaves_no_half_file_and_resumes_to_the_same(tmp_path, name, one_thread):
    """The files a finishing run writes are each whole or absent after a kill; ``--resume`` completes them."""
    from distill.cli import main

    register_toys()
    recipe = toy_recipe(tmp_path / "toy.yaml", "mrkd", group_by=None)
    assert main(["run", str(recipe), "--out", str(tmp_path / "full")]) == 0
    out = tmp_path / "cut"
    proc = run_killable(recipe, out, f"in-write:{name}")
    assert proc.returncode == -signal.SIGKILL, f"{name} was not written through a temporary file"
    assert not [p for p in out.rglob(name) if p.is_file()], "no half-written file under its real name"
    assert [p for p in temp_files(out) if p.name.startswith(f".{name}.")], "the half write stayed in its temporary"
    if name != "data.json":
        assert (out / "report" / "data.json").is_file(), "a run that reached results.json has its report data"
    assert main(["run", str(recipe), "--out", str(out), "--resume"]) == 0
    assert_same_run(tmp_path / "full", out)
    for d in (tmp_path / "full", out):
        json.loads((d / "report" / "data.json").read_text())
    assert (out / "report.html").is_file()


@pytest.mark.slow
def test_a_killed_two_process_run_resumes_on_two_processes_bit_identically(tmp_path):
    """torchrun (gloo, 2 CPU processes): rank 0 killed mid-epoch takes the job down; --resume finishes it."""
    register_toys()
    recipe = toy_recipe(tmp_path / "toy.yaml", "mrkd", group_by=None)
    assert torchrun("run", str(recipe), "--out", str(tmp_path / "full")).returncode == 0
    os.environ[KILL_ENV] = "step:13"
    try:
        killed = torchrun("run", str(recipe), "--out", str(tmp_path / "cut"), module="tests.test_crash_resume")
    finally:
        del os.environ[KILL_ENV]
    assert killed.returncode != 0
    assert checkpoint_step(tmp_path / "cut") == 10
    resumed = torchrun("run", str(recipe), "--out", str(tmp_path / "cut"), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(tmp_path / "full", tmp_path / "cut")


@pytest.mark.slow
def test_a_one_process_checkpoint_resumes_on_two_processes_with_the_same_global_batch(tmp_path):
    """The checkpoint holds the data position in global batches, so the process count may change on resume."""
    register_toys()
    recipe = toy_recipe(tmp_path / "toy.yaml", "mrkd", group_by=None)
    assert run_killable(recipe, tmp_path / "full", None).returncode == 0
    assert run_killable(recipe, tmp_path / "cut", "step:11").returncode == -signal.SIGKILL
    resumed = torchrun("run", str(recipe), "--out", str(tmp_path / "cut"), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = final_weights(tmp_path / "full"), final_weights(tmp_path / "cut")
    assert all(torch.allclose(a[k], b[k], rtol=RTOL, atol=ATOL) for k in a)
    log = [json.loads(x) for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["kind"] == "train"] == list(range(1, 25)), "each step logged once"


if __name__ == "__main__":  # distill's command line, SIGKILLing itself at $DISTILL_TEST_KILL
    from distill.cli import main

    register_toys()
    if os.environ.get(KILL_ENV):
        install_kill(os.environ[KILL_ENV])
    sys.exit(main())
