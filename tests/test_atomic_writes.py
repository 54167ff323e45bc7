"""Files are written whole or not at all (distill.run.atomic), and a run writes every file of its folder that way.

The kill-at-the-moment tests are in tests/test_crash_resume.py (``in-write:NAME``); here: the writer's own
contract, the clean-up of what a kill leaves, and that a whole run (``distill run`` with its report and plots)
opens no file of its folder for writing under the file's real name, which is how a kill leaves a half file.
"""

from __future__ import annotations

import builtins
import io
import os
from pathlib import Path

import pytest

from distill.run import atomic
from distill.run.checkpoint import remove_stale_temp_files


def test_a_write_that_fails_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old")

    def fail(fh):
        fh.write(b"half")
        raise KeyboardInterrupt  # what Ctrl-C mid-write raises

    with pytest.raises(KeyboardInterrupt):
        atomic.write_atomic(target, fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_writers_create_folders_and_replace_whole_files(tmp_path):
    target = tmp_path / "a" / "b" / "page.html"
    assert atomic.write_text(target, "é" * 3) == target
    assert target.read_text(encoding="utf-8") == "ééé"
    atomic.write_bytes(target, b"x")
    assert target.read_bytes() == b"x"
    atomic.write_with(target, lambda buf: buf.write(b"from a buffer"))
    assert target.read_bytes() == b"from a buffer"
    assert [p.name for p in target.parent.iterdir()] == ["page.html"]


def test_what_a_kill_left_is_cleared_in_the_run_folder_and_never_the_users_own_files(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "report").mkdir()
    (run / "teacher_cache").mkdir()
    left = [
        run / ".results.json.k2j4l1x0.tmp",
        run / ".results.json.tmp",  # the name older versions used
        run / "checkpoints" / ".last.pt.abcd1234.tmp",
        run / "report" / ".data.json.0z9y8x7w.tmp",
        run / "report" / ".crop_test_0.png.q1w2e3r4.tmp",
        run / "teacher_cache" / ".teacher_ab12.pt.zz99yy88.tmp",
    ]
    mine = [run / ".notes.txt.tmp", run / "results.json.tmp", run / "report.html"]
    for p in [*left, *mine]:
        p.write_text("x")
    assert sorted(remove_stale_temp_files(run)) == sorted(left)
    assert all(p.exists() for p in mine) and not any(p.exists() for p in left)


def watch_writes(monkeypatch: pytest.MonkeyPatch, root: Path, appendable: tuple[str, ...] = ()) -> list[str]:
    """From now on, every file under ``root`` opened for writing under its real name (not a temporary of
    :mod:`distill.run.atomic`), except appends to the files named ``appendable``."""
    root = root.resolve()
    direct: list[str] = []

    def watch(opener):
        def open_(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
            if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wxa+"):
                path = Path(file).resolve()
                inside = root == path or root in path.parents
                appended = path.name in appendable and mode.startswith("a")
                if inside and not appended and not atomic.is_temp_of(path):
                    direct.append(f"{path.relative_to(root)} ({mode})")
            return opener(file, mode, *args, **kwargs)

        return open_

    monkeypatch.setattr(builtins, "open", watch(builtins.open))
    monkeypatch.setattr(io, "open", watch(io.open))
    return direct


def _iqa_run(tmp_path: Path, out: Path) -> list[str]:
    from tests.test_distributed import register_toys, toy_recipe

    register_toys()
    return ["run", str(toy_recipe(tmp_path / "toy.yaml", "mrkd")), "--out", str(out), "--set", "train.progress=false"]


def _sr_run(tmp_path: Path, out: Path) -> list[str]:
    """A tiny SR teacher run: its report holds PNG crops beside the report data."""
    from tests.test_cqd import RECIPES
    from tests.test_mipkd import TINY_DATA

    sets = [f"data.root={tmp_path / 'div2k'}", f"data.synthetic.root={tmp_path / 'div2k'}", *TINY_DATA,
            "models.student.args={num_feat: 8, num_block: 2, upscale: 2}", "train.progress=false"]  # fmt: skip
    return [
        "run",
        str(RECIPES / "sr_teacher_quickstart.yaml"),
        "--out",
        str(out),
        *[a for x in sets for a in ("--set", x)],
    ]


@pytest.mark.parametrize("command", [_iqa_run, _sr_run], ids=["iqa", "sr"])
def test_a_run_opens_no_file_of_its_folder_for_writing_under_its_real_name(tmp_path, monkeypatch, one_thread, command):
    """Every file of the run folder goes through a temporary and a rename; metrics.jsonl is appended to (a cut last
    line is skipped on reading) and rewritten whole on resume."""
    from distill.cli import main

    out = (tmp_path / "run").resolve()
    argv = command(tmp_path, out)
    direct = watch_writes(monkeypatch, out, appendable=("metrics.jsonl",))
    assert main(argv) == 0
    assert (out / "report.html").is_file() and (out / "report" / "data.json").is_file()
    assert list(out.rglob("*.png")), "the run drew its plot or crops (files written like the others)"
    assert direct == [], f"written in place, a kill leaves them half-written: {direct}"


def test_commands_after_a_run_write_no_file_in_place(tmp_path, monkeypatch, one_thread):
    """predict (CSV), eval --json, report and export --format hf write each file through a temporary too."""
    from distill.cli import main
    from tests.test_mrkd_e2e import RECIPE, tiny

    out = (tmp_path / "run").resolve()
    assert main(["run", RECIPE, "--out", str(out), *tiny(tmp_path, "train.epochs=1")]) == 0
    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    for k in range(3):
        Image.new("RGB", (32, 32), (40 * k, 80, 120)).save(images / f"{k}.png")
    direct = watch_writes(monkeypatch, tmp_path)
    student = str(out / "student.pt")
    assert main(["predict", student, str(images), "--out", str(tmp_path / "scores.csv")]) == 0
    assert main(["eval", str(out), "test", "--json", str(tmp_path / "eval.json")]) == 0
    assert main(["report", str(out), "--out", str(tmp_path / "page.html")]) == 0
    assert main(["export", student, "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    assert all((tmp_path / n).is_file() for n in ("scores.csv", "eval.json", "page.html", "hf/config.json"))
    assert direct == [], f"written in place, a kill leaves them half-written: {direct}"
