"""Normal output carries no library warnings or INFO logs; ours are said once in our words; ``--debug`` shows all."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from distill import quiet
from distill.cli import main
from distill.deploy.model import TraceNote
from distill.metrics.correlation import FitWarning, plcc
from tests.test_resume_anytime import ROOT, data, tiny_quickstart  # noqa: F401 (fixture)


def library_lines(err: str) -> list[str]:
    """Lines a library printed: a warning (``…Warning: …``), or a log record not of distill's loggers."""
    return [
        line
        for line in err.splitlines()
        if "Warning" in line or (line.split(" ", 1)[0] in ("DEBUG", "INFO", "WARNING") and " distill" not in line)
    ]


@pytest.fixture(scope="module")
def run_dir(data, tmp_path_factory) -> Path:  # noqa: F811
    tmp = tmp_path_factory.mktemp("quiet")
    recipe = tiny_quickstart(tmp, data, epochs=1, progress=True)
    assert main(["run", str(recipe), "--out", str(tmp / "run")]) == 0
    return tmp / "run"


def test_libraries_log_errors_only_and_ours_info_unless_debug():
    try:
        quiet.install(debug=False)
        assert not logging.getLogger("torch._subclasses.fake_tensor").isEnabledFor(logging.INFO)  # printed at exit
        assert not logging.getLogger("PIL.Image").isEnabledFor(logging.WARNING)
        assert logging.getLogger("distill.build").isEnabledFor(logging.INFO)
        quiet.install(debug=True)
        assert logging.getLogger("PIL.Image").isEnabledFor(logging.INFO)
    finally:
        quiet.install(debug=False)


def test_our_warnings_are_said_once_and_a_librarys_not_at_all(capsys, monkeypatch):
    monkeypatch.setattr(quiet, "_said", set())
    with warnings.catch_warnings():
        quiet.install(debug=False)
        x, y = [1.0, 2.0, 4.0], [1.0, 3.0, 2.0]  # 3 samples cannot fit a 5-parameter curve
        plcc(x, y, fit="logistic5")
        plcc(x, y, fit="logistic5")
        warnings.warn("Converting a tensor to a Python boolean", torch.jit.TracerWarning, stacklevel=1)
        warnings.warn("a library's deprecation", DeprecationWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "distill: note: logistic5 fit skipped (3 samples or constant predictions); metrics with a logistic5 fit use "
        "the raw predictions where it cannot be fitted"
    ]
    assert quiet.said_notes() == {FitWarning}


def test_run_predict_export_profile_and_report_print_no_library_warning(run_dir, data, tmp_path, capfd):  # noqa: F811
    """The commands of a tiny run's life print only our lines on stderr (torchscript: one note instead of torch's
    TracerWarning)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for image in sorted((data / "images").glob("*.png"))[:2]:
        (photos / image.name).write_bytes(image.read_bytes())
    capfd.readouterr()
    student = str(run_dir / "student.pt")
    commands = [
        ["predict", student, str(photos), "--out", str(tmp_path / "scores.csv")],
        ["export", student, "--format", "torchscript", "--out", str(tmp_path / "m.ts")],
        ["export", student, "--format", "pt2", "--out", str(tmp_path / "m.pt2")],
        ["profile", student, "--repeats", "1", "--warmup", "0", "--shape", "3,32,32"],
        ["report", str(run_dir), "--out", str(tmp_path / "r.html")],
    ]
    for argv in commands:
        assert main(argv) == 0, argv
        err = capfd.readouterr().err
        assert library_lines(err) == [], (argv, err)
        if "torchscript" in argv:
            assert "distill: note: the TorchScript file is a trace for image batches [N, 3, H, W]" in err


@pytest.mark.slow
def test_the_command_line_prints_no_library_warning_and_debug_shows_them(run_dir, data, tmp_path):  # noqa: F811
    """As separate processes (what a user sees, atexit output included): run, predict, export (each format),
    profile and report; ``--debug`` shows torch's TracerWarning."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONWARNINGS", None)

    def distill(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "distill", *args]
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)

    recipe = run_dir.parent / "tiny.yaml"
    student = str(run_dir / "student.pt")
    images = str(next((data / "images").glob("*.png")))
    for args in (
        ["run", str(recipe), "--out", str(tmp_path / "run")],
        ["predict", student, images, "--out", str(tmp_path / "s.csv")],
        ["export", student, "--format", "torchscript", "--out", str(tmp_path / "m.ts")],
        ["export", student, "--format", "pt2", "--out", str(tmp_path / "m.pt2")],
        ["export", student, "--format", "onnx", "--out", str(tmp_path / "m.onnx")],
        ["profile", str(recipe), "--repeats", "1", "--warmup", "0", "--shape", "3,32,32"],
        ["report", str(run_dir), "--out", str(tmp_path / "r.html")],
    ):
        proc = distill(*args)
        assert proc.returncode in (0, 2), proc.stderr[-2000:]  # onnx: 0, or 2 without its packages
        assert library_lines(proc.stderr) == [], (args, proc.stderr)
    debug = distill("--debug", "export", student, "--format", "torchscript", "--out", str(tmp_path / "d.ts"))
    assert debug.returncode == 0 and "TracerWarning" in debug.stderr
    assert TraceNote.__name__ in debug.stderr
