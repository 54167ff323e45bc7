"""No writing command replaces a file it did not create or writes into another run's folder, unless --force.

One table: every command that writes × (an unrelated existing file, a run folder's checkpoints/last.pt, its
student.pt, a read-only target) → exit 2, one line, every file byte-identical and nothing new; ``--force``
overwrites where overwriting is possible (a read-only file stays refused).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from distill.cli import main
from distill.run.safe_write import check_new_file, is_run_folder, run_folder_of
from tests.test_mrkd_e2e import RECIPE, tiny

TARGETS = ("unrelated_file", "checkpoint", "student", "read_only")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A tiny finished quickstart run (``run/``) and its synthetic set (``kadid/``)."""
    tmp = tmp_path_factory.mktemp("safe_write")
    assert main(["run", RECIPE, "--out", str(tmp / "run"), *tiny(tmp, "train.epochs=1")]) == 0
    return tmp


@dataclass
class Env:
    tmp: Path  # this test's folder: targets of our own
    run: Path  # the finished run folder
    image: Path  # one image to predict on


@dataclass(frozen=True)
class Command:
    name: str
    argv: Callable[[Env, Path], list[str]]  # the command writing to the given target
    file_writer: bool = True  # writes one file (--force can replace an unrelated file)


COMMANDS = [
    Command("predict", lambda e, t: ["predict", str(e.run / "student.pt"), str(e.image), "--out", str(t)]),
    Command("export", lambda e, t: ["export", str(e.run / "student.pt"), "--out", str(t), "--size", "32"]),
    Command("report", lambda e, t: ["report", str(e.run), "--out", str(t)]),
    Command("convert", lambda e, t: ["convert", "vggm", str(e.tmp / "imagenet-vgg-m.mat"), str(t)]),
    Command(
        "profile",
        lambda e, t: ["profile", str(e.run / "student.pt"), "--json", str(t), "--repeats", "1", "--warmup", "0"],
    ),
    Command("data", lambda e, t: ["data", "kadid10k", str(t), "--set", "n_refs=1"], file_writer=False),
    Command(
        "data_fetch",
        lambda e, t: ["data", "fetch", "kadid10k", str(t), "--archive", str(e.tmp / "kadid10k.zip")],
        file_writer=False,
    ),
    Command("run", lambda e, t: ["run", RECIPE, "--out", str(t), *tiny(e.tmp)], file_writer=False),
]


def digest(*roots: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for r in roots for p in r.rglob("*") if p.is_file()}


def _read_only(path: Path) -> None:
    path.chmod(stat.S_IRUSR | stat.S_IRGRP)


@pytest.fixture
def env(finished, tmp_path) -> Env:
    image = next((finished / "kadid" / "images").iterdir())
    (tmp_path / "imagenet-vgg-m.mat").write_bytes(b"not read: the output is checked first")
    (tmp_path / "kadid10k.zip").write_bytes(b"not read either")
    return Env(tmp_path, finished / "run", image)


def target_of(kind: str, env: Env, file_writer: bool = True) -> Path:
    """The path a command is pointed at: an existing file of the user's own, a run's checkpoint or student, or a
    read-only target (a read-only file; for commands that write a folder, a new folder in a read-only one)."""
    if kind == "unrelated_file":
        path = env.tmp / "mine.txt"
        path.write_text("a file of the user's own\n")
        return path
    if kind == "checkpoint":
        return env.run / "checkpoints" / "last.pt"
    if kind == "student":
        return env.run / "student.pt"
    if not file_writer:
        locked = env.tmp / "locked"
        locked.mkdir()
        locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
        return locked / "new"
    path = env.tmp / "locked.txt"
    path.write_text("read-only\n")
    _read_only(path)
    return path


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("distill: error: "), err
    return err[0]


# every command × every target; and --force on a read-only target (which it must not replace either)
TABLE = [(c, kind, False) for c in COMMANDS for kind in TARGETS] + [
    (c, "read_only", True) for c in COMMANDS if c.file_writer
]


@pytest.mark.parametrize(
    ("command", "kind", "force"), TABLE, ids=[f"{c.name}-{k}{'-force' if f else ''}" for c, k, f in TABLE]
)
def test_a_writing_command_touches_nothing_it_should_protect(command, kind, force, env, capsys):
    target = target_of(kind, env, command.file_writer)
    before = digest(env.tmp, env.run.parent)
    capsys.readouterr()
    code = main([*command.argv(env, target), *(["--force"] if force else [])])
    line = _one_error_line(capsys)
    assert code == 2, line
    assert digest(env.tmp, env.run.parent) == before, "a file changed or appeared"
    assert not (target.parent.exists() and target.parent.name == "locked" and any(target.parent.iterdir()))
    assert str(target) in line, line


def test_data_and_fetch_never_write_into_a_run_folder(env, capsys):
    for argv in (
        ["data", "kadid10k", str(env.run / "synthetic"), "--set", "n_refs=1"],
        ["data", "fetch", "kadid10k", str(env.run / "kadid"), "--archive", str(env.tmp / "kadid10k.zip")],
    ):
        assert main(argv) == 2
        assert "the folder of another run" in _one_error_line(capsys)
    assert not (env.run / "synthetic").exists() and not (env.run / "kadid").exists()


@pytest.mark.parametrize(
    "command", [c for c in COMMANDS if c.file_writer and c.name != "convert"], ids=lambda c: c.name
)
def test_force_replaces_an_unrelated_file(command, env, capsys):
    target = target_of("unrelated_file", env)
    old = target.read_bytes()
    assert main([*command.argv(env, target), "--force"]) == 0, capsys.readouterr().err
    assert target.read_bytes() != old


def test_force_lets_convert_write_over_an_unrelated_file(env, monkeypatch, capsys):
    import types

    import distill.models.convert as convert

    def fake_convert(fmt: str, path: str, out: str, **kwargs) -> types.SimpleNamespace:
        torch.save({"w": torch.zeros(1)}, out)
        return types.SimpleNamespace(model="vgg_m", args={}, notes=[])

    monkeypatch.setattr(convert, "convert_file", fake_convert)
    target = target_of("unrelated_file", env)
    assert main(["convert", "vggm", str(env.tmp / "imagenet-vgg-m.mat"), str(target)]) == 2
    assert target.read_text() == "a file of the user's own\n"
    assert main(["convert", "vggm", str(env.tmp / "imagenet-vgg-m.mat"), str(target), "--force"]) == 0
    assert set(torch.load(target, weights_only=True)) == {"w"}


def test_defaults_beside_a_run_are_allowed_once_and_regenerated_reports_replace_themselves(env, capsys):
    run = env.run
    ts = run / "student.ts"
    ts.unlink(missing_ok=True)
    assert main(["export", str(run / "student.pt"), "--size", "32"]) == 0  # a new file beside the run it reads
    assert ts.is_file()
    before = ts.read_bytes()
    capsys.readouterr()  # the first export's own lines (its TorchScript note)
    assert main(["export", str(run / "student.pt"), "--size", "32"]) == 2  # not a second time
    assert "already exists" in _one_error_line(capsys) and ts.read_bytes() == before
    ts.unlink()
    page = run / "report.html"
    page.write_text("<html>an earlier page</html>")
    assert main(["report", str(run)]) == 0  # the run's own page is regenerated in place
    assert "an earlier page" not in page.read_text()


def test_run_into_a_finished_run_needs_resume_or_force(finished, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(finished / "run", run)
    sets = tiny(finished)
    before = digest(run)
    assert main(["run", RECIPE, "--out", str(run), *sets]) == 2
    assert "--resume" in _one_error_line(capsys) and digest(run) == before
    assert main(["run", RECIPE, "--out", str(run / "inner"), *sets]) == 2  # inside another run
    assert "inside the folder of another run" in _one_error_line(capsys) and digest(run) == before
    (run / "checkpoints" / "last.pt").unlink()  # a run that stopped before its first checkpoint
    (run / "student.pt").unlink()
    before = digest(run)
    assert main(["run", RECIPE, "--out", str(run), *sets]) == 2
    assert "pass --force to start afresh" in _one_error_line(capsys) and digest(run) == before
    assert main(["run", RECIPE, "--out", str(run), *sets, "--force"]) == 0
    records = (run / "metrics.jsonl").read_text().splitlines()
    assert len(records) == len(set(records)), "the old run's log was kept and appended to"
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "student.pt").is_file()


def test_resume_from_a_replaced_checkpoint_is_one_line_without_torch_text(finished, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(finished / "run", run)
    ckpt = run / "checkpoints" / "last.pt"
    for replacement in ("torchscript", "csv"):
        if replacement == "torchscript":
            torch.jit.save(torch.jit.trace(torch.nn.Linear(2, 2), torch.rand(1, 2)), str(ckpt))
        else:
            ckpt.write_text("path,score\na.png,3.1\n")
        assert main(["run", RECIPE, "--out", str(run), "--resume", *tiny(finished)]) == 2
        line = _one_error_line(capsys)
        assert f"{ckpt}: not a distill checkpoint" in line, line
        assert "weights_only" not in line and "trusted source" not in line
        assert ("TorchScript" if replacement == "torchscript" else "text file") in line


def test_run_folder_detection(tmp_path):
    run = tmp_path / "r"
    (run / "checkpoints").mkdir(parents=True)
    assert not is_run_folder(run)  # an empty checkpoints/ alone is not a run
    (run / "recipe.yaml").write_text("name: x\n")
    assert is_run_folder(run) and run_folder_of(run / "checkpoints" / "x.pt") == run.absolute()
    assert run_folder_of(tmp_path / "elsewhere.csv") is None
    with pytest.raises(Exception, match="the folder of another run"):
        check_new_file(run / "notes.txt")
    assert check_new_file(run / "notes.txt", force=True) == run / "notes.txt"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_force_never_replaces_a_read_only_file(env, capsys):
    target = target_of("read_only", env)
    assert main(["report", str(env.run), "--out", str(target), "--force"]) == 2
    assert "read-only" in _one_error_line(capsys) and target.read_text() == "read-only\n"


BENCHMARKS = [
    ("metrics_speed", lambda e, t: ["--quick", "--json", str(t)]),
    ("engine_overhead", lambda e, t: ["--quick", "--json", str(t)]),
    ("mrkd_tables", lambda e, t: ["--scale", "smoke", "--out", str(t)]),
]


@pytest.mark.parametrize(("module", "argv"), BENCHMARKS, ids=[b[0] for b in BENCHMARKS])
@pytest.mark.parametrize("kind", ["unrelated_file", "checkpoint", "read_only"])
def test_benchmarks_check_their_outputs_before_measuring(module, argv, kind, env, capsys):
    import importlib

    main_of = importlib.import_module(f"benchmarks.{module}").main
    target = target_of(kind, env, file_writer="--json" in argv(env, env.tmp))
    if kind == "checkpoint" and "--out" in argv(env, env.tmp):
        target = env.run / "bench"  # a folder inside another run
    before = digest(env.tmp, env.run.parent)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main_of(argv(env, target))
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and "error:" in err[0] and str(target) in err[0], err
    assert digest(env.tmp, env.run.parent) == before
