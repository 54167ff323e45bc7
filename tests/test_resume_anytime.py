"""Resume from any moment: time-based checkpoints and the checkpointed training-loss window.

A run stopped at any point and resumed ends with the uninterrupted run's weights, ``results.json`` results and a
byte-identical ``metrics.jsonl`` — including the running-loss records whose window the stop cut in two.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from distill.cli import main
from distill.data.iqa.synthetic_kadid import write_synthetic_kadid
from distill.engine.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "recipes" / "quickstart.yaml"


def tiny_quickstart(tmp: Path, data: Path, **train: object) -> Path:
    """The quickstart recipe on the tiny set at ``data``: a seconds-long run that logs a 3-step running loss."""
    settings = {"epochs": 3, "batch_size": 4, "eval_every": 1, "log_every": 3, "progress": False, **train}
    text = (
        f"_base_: {QUICKSTART}\n"
        f"data: {{root: {data}, synthetic: null}}\n"
        f"train: {json.dumps(settings)}\n"
        "eval: {group_by: distortion}\n"
        "output: {tensorboard: false}\n"
    )
    path = tmp / "tiny.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("resume_anytime")
    return write_synthetic_kadid(tmp / "kadid", n_refs=3, size=(40, 40), distortions=["gaussian_blur", "jpeg"])


def assert_identical_runs(a: Path, b: Path) -> None:
    """Same final weights, same selected results, byte-identical metrics.jsonl."""
    wa = torch.load(a / "checkpoints" / "last.pt", weights_only=True)
    wb = torch.load(b / "checkpoints" / "last.pt", weights_only=True)
    assert wa["step"] == wb["step"]
    assert all(torch.equal(wa["distiller"][k], wb["distiller"][k]) for k in wa["distiller"])
    sa = torch.load(a / "student.pt", weights_only=True)["state_dict"]
    sb = torch.load(b / "student.pt", weights_only=True)["state_dict"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (a, b))
    assert json.dumps(ra["results"], sort_keys=True) == json.dumps(rb["results"], sort_keys=True)
    assert (a / "metrics.jsonl").read_bytes() == (b / "metrics.jsonl").read_bytes()
    # the same output files, and the plots drawn from the whole evaluation history (before: from the resumed part)
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    plots = sorted(p.name for p in a.glob("per_*.png"))
    assert plots and all((a / n).read_bytes() == (b / n).read_bytes() for n in plots), plots


def test_stopped_inside_a_log_window_resumes_to_an_identical_log(data, tmp_path, monkeypatch):
    """Stopped after step 4 (log window 4–6 open, no evaluation due, a time-based checkpoint): identical log."""
    recipe = tiny_quickstart(tmp_path, data, checkpoint_minutes=1e-9)  # a checkpoint after every step
    assert main(["run", str(recipe), "--out", str(tmp_path / "full")]) == 0
    train_step = Trainer._train_step

    def stop_after_4(self, batch):  # type: ignore[no-untyped-def]
        if self.step == 4:
            raise KeyboardInterrupt
        return train_step(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", stop_after_4)
    assert main(["run", str(recipe), "--out", str(tmp_path / "cut")]) == 130
    state = torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 4, "the time-based checkpoint was written although no evaluation was due"
    assert state["running"]["n"] == 1, "step 4 is in the open log window"
    monkeypatch.setattr(Trainer, "_train_step", train_step)
    assert main(["run", str(recipe), "--out", str(tmp_path / "cut"), "--resume"]) == 0
    assert_identical_runs(tmp_path / "full", tmp_path / "cut")


def test_stopped_after_an_evaluation_resumes_to_the_same_outputs_and_plots(data, tmp_path, monkeypatch):
    """Stopped after the first evaluation: the resumed run's per-distortion plot covers every evaluation (it used
    to be drawn from the evaluations after the resume only, or not at all when fewer than two were left)."""
    recipe = tiny_quickstart(tmp_path, data, checkpoint_minutes=1e-9)
    assert main(["run", str(recipe), "--out", str(tmp_path / "full")]) == 0
    evals = [json.loads(line)["step"] for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "eval"]  # fmt: skip
    assert len(evals) >= 3
    train_step = Trainer._train_step

    def stop_after_second_evaluation(self, batch):  # type: ignore[no-untyped-def]
        if self.step == evals[1] + 1:
            raise KeyboardInterrupt
        return train_step(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", stop_after_second_evaluation)
    assert main(["run", str(recipe), "--out", str(tmp_path / "cut")]) == 130
    monkeypatch.setattr(Trainer, "_train_step", train_step)
    assert main(["run", str(recipe), "--out", str(tmp_path / "cut"), "--resume"]) == 0
    assert_identical_runs(tmp_path / "full", tmp_path / "cut")


def test_checkpoint_minutes_alone_decides_when_no_evaluation_is_due(data, tmp_path, monkeypatch):
    """A long interval writes no checkpoint between evaluations; a short one writes them."""
    saves: list[int] = []
    save = Trainer.save
    monkeypatch.setattr(Trainer, "save", lambda self: (saves.append(self.step), save(self))[1])
    for minutes, expect_between in ((60.0, False), (1e-9, True)):
        saves.clear()
        recipe = tiny_quickstart(tmp_path, data, checkpoint_minutes=minutes, epochs=1)
        assert main(["run", str(recipe), "--out", str(tmp_path / f"run{minutes}")]) == 0
        last = saves[-1]
        assert (len(saves) > 1) == expect_between, saves
        assert saves[:-1] == list(range(1, last)) if expect_between else saves == [last]


def _run(recipe: Path, out: Path, resume: bool, force: bool = False) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "distill", "run", str(recipe), "--out", str(out), *(["--resume"] if resume else [])]
    cmd += ["--force"] if force else []
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_sigkill_at_a_random_moment_then_resume_gives_the_uninterrupted_run(data, tmp_path, trial):
    """The quickstart (tiny override) SIGKILLed at a random moment of its run, then --resume (repeatedly if killed
    before its first checkpoint): weights, results.json results and metrics.jsonl equal the uninterrupted run's."""
    recipe = tiny_quickstart(tmp_path, data, checkpoint_minutes=0.003)  # about every 0.2 s, at no fixed step
    started = time.monotonic()
    full = _run(recipe, tmp_path / "full", resume=False)
    assert full.wait(timeout=600) == 0, full.stderr.read()[-2000:]  # type: ignore[union-attr]
    duration = time.monotonic() - started
    seed = random.randrange(2**32)
    moment = random.Random(seed).uniform(0.05, 0.95) * min(duration, 60.0)
    cut = _run(recipe, tmp_path / "cut", resume=False)
    time.sleep(moment)
    cut.send_signal(signal.SIGKILL)
    code = cut.wait(timeout=60)
    print(f"trial {trial}: seed {seed}, killed after {moment:.2f} s of a {duration:.1f} s run (exit {code})")
    for _ in range(3):
        resume = (tmp_path / "cut" / "checkpoints" / "last.pt").exists()
        proc = _run(recipe, tmp_path / "cut", resume=resume, force=not resume)  # a run lost before its checkpoint
        if proc.wait(timeout=600) == 0:
            break
        err = proc.stderr.read()  # type: ignore[union-attr]
        assert "already holds a run" in err, err[-2000:]  # only when the kill came after the run had finished
    assert_identical_runs(tmp_path / "full", tmp_path / "cut")
