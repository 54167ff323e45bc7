"""One process trains into a run folder at a time (distill.run.lock): a second ``distill run`` on a folder another
process is training into is refused in one line and changes nothing there, ``--force`` included; a killed holder
frees the folder; the lock file is gone once a run ends."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distill.run.lock import LOCK_FILE, RunFolderBusy, run_folder_lock
from tests.test_distributed import ROOT, register_toys, toy_recipe

HOLD = """
import sys, time
from distill.run.lock import run_folder_lock
with run_folder_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def hold(folder: Path) -> subprocess.Popen:
    """Another process holding ``folder``'s lock (as a training run does), once it has printed 'held'."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != LOCK_FILE
    }


@pytest.fixture
def finished_run(tmp_path, one_thread):
    from distill.cli import main

    register_toys()
    recipe = toy_recipe(tmp_path / "toy.yaml", "mrkd", group_by=None, epochs=1)
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(out)]) == 0
    assert not (out / LOCK_FILE).exists(), "the lock file is removed when the run ends"
    return recipe, out


@pytest.mark.parametrize("flags", [["--resume"], ["--auto-resume"], ["--force"]])
def test_a_second_run_on_a_folder_in_use_is_refused_and_changes_nothing(finished_run, flags, capsys):
    from distill.cli import main

    recipe, out = finished_run
    before = digest(out)
    holder = hold(out)
    try:
        assert main(["run", str(recipe), "--out", str(out), *flags]) == 2
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip().splitlines()
    assert f"another distill process (pid {holder.pid}) is training into this run folder" in err[-1]
    assert "nothing was written" in err[-1] and "Traceback" not in "\n".join(err)
    assert digest(out) == before, "the other process's run folder was left as it was (--force deleted nothing)"


def test_a_killed_holder_frees_the_folder_and_the_run_continues(finished_run):
    from distill.cli import main

    recipe, out = finished_run
    holder = hold(out)
    holder.send_signal(signal.SIGKILL)  # nothing tidies up: the file stays, the OS drops the lock
    holder.wait()
    assert (out / LOCK_FILE).exists()
    assert main(["run", str(recipe), "--out", str(out), "--resume"]) == 0
    assert not (out / LOCK_FILE).exists()


def test_the_python_api_takes_the_same_lock(tmp_path, one_thread):
    from distill.build import build_run
    from distill.recipe.check import load_recipe

    register_toys()
    recipe, resolved = load_recipe(toy_recipe(tmp_path / "toy.yaml", "mrkd", group_by=None, epochs=1))
    out = tmp_path / "api"
    holder = hold(out)
    try:
        run = build_run(recipe, resolved, out)
        with pytest.raises(RunFolderBusy, match="is training into this run folder"):
            run.trainer.fit()
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # the holder's file, nothing else
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_is_reentrant_in_one_process_and_exclusive_between_processes(tmp_path):
    folder = tmp_path / "f"
    with run_folder_lock(folder):
        with run_folder_lock(folder):
            assert (folder / LOCK_FILE).read_text().strip() == str(os.getpid())
        assert (folder / LOCK_FILE).exists(), "still held by the outer block"
        probe = subprocess.run(
            [sys.executable, "-c", HOLD, str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert probe.returncode == 1 and "RunFolderBusy" in probe.stderr
    assert not (folder / LOCK_FILE).exists()
    started = time.monotonic()
    holder = hold(folder)  # free again: another process takes it at once
    holder.kill()
    holder.wait()
    assert time.monotonic() - started < 60
