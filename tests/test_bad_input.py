"""Bad input, everywhere: one table of broken recipes, data, checkpoints and a diverging loss, run through the CLI.

Every case must exit with status 2, print exactly one line ``distill: error: ...`` that names the file, key or sample
and says what to do, and leave every file that existed before untouched, with nothing half-written beside them
(checkpoints load, ``metrics.jsonl`` parses line by line, no temporary files).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from distill.cli import main
from distill.data.iqa.kadid import Kadid10k
from distill.data.iqa.synthetic_kadid import write_synthetic_kadid
from distill.run.checkpoint import CHECKPOINT_FORMAT

ROOT = Path(__file__).resolve().parent.parent
RECIPE = str(ROOT / "recipes" / "quickstart.yaml")
TYPES = ["gaussian_blur", "white_noise"]  # KADID types 01 and 11


def tiny(root: Path, *extra: str) -> list[str]:
    """Overrides that make the quickstart recipe a seconds-long run on the tiny set at ``root``."""
    sets = [
        f"data.root={root}",
        "data.synthetic=null",
        "data.train.args.crop=32",
        "train.epochs=1",
        "train.batch_size=8",
        "train.drop_last=false",  # every image is read in every epoch
        "train.progress=false",
        "eval.group_by=null",
        "output.tensorboard=false",
        *extra,
    ]
    return [arg for s in sets for arg in ("--set", s)]


@pytest.fixture(scope="module")
def world(tmp_path_factory, one_thread) -> dict[str, Path]:
    """A tiny synthetic KADID-layout set (3 references: I01, I02 train; I03 test) and one finished run on it."""
    tmp = tmp_path_factory.mktemp("bad_input")
    data = write_synthetic_kadid(tmp / "kadid", n_refs=3, size=(40, 40), distortions=TYPES)
    run = tmp / "finished_run"
    assert main(["run", RECIPE, "--out", str(run), *tiny(data)]) == 0
    return {"data": data, "run": run}


# ---------------------------------------------------------------------------------------------- case preparation
def train_image(data: Path, k: int = 0) -> Path:
    return Kadid10k(str(data), split="train").samples[k].path


def corrupt(data: Path, k: int = 0) -> str:
    path = train_image(data, k)
    path.write_bytes(b"this is not a PNG file" * 4)
    return path.name


def truncate(data: Path, k: int = 0) -> str:
    path = train_image(data, k)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path.name


def edit_label_row(data: Path, name: str, cells: str) -> None:
    """Replace the ``dmos.csv`` row of image ``name`` by ``cells``."""
    csv = data / "dmos.csv"
    rows = csv.read_text().splitlines()
    (i,) = [i for i, row in enumerate(rows) if row.startswith(f"{name},")]
    rows[i] = cells
    csv.write_text("\n".join(rows) + "\n")


def write_recipe(tmp: Path, text: str) -> list[str]:
    path = tmp / "bad.yaml"
    path.write_text(text)
    return [str(path)]


def truncated_checkpoint(finished: Path, out: Path) -> None:
    (out / "checkpoints").mkdir(parents=True)
    data = (finished / "checkpoints" / "last.pt").read_bytes()
    (out / "checkpoints" / "last.pt").write_bytes(data[: len(data) // 3])


def other_models_checkpoint(finished: Path, out: Path) -> None:
    """A training checkpoint of another model (as the Python API writes it: no recipe stored)."""
    (out / "checkpoints").mkdir(parents=True)
    state = torch.load(finished / "checkpoints" / "last.pt", weights_only=True)
    state["recipe"] = None
    state["distiller"] = {"models.student.conv.weight": torch.zeros(4, 3, 3, 3)}
    torch.save(state, out / "checkpoints" / "last.pt")


def exported_model_as_checkpoint(finished: Path, out: Path) -> None:
    (out / "checkpoints").mkdir(parents=True)
    shutil.copy(finished / "student.pt", out / "checkpoints" / "last.pt")


@dataclass(frozen=True)
class Case:
    """One bad input: how to make it, the overrides to run with, and the error line it must produce."""

    name: str
    pattern: str  # regex searched in the error line; {data}, {run}, {out}, {tmp}, {sample} are filled in
    sets: tuple[str, ...] = ()
    data: Callable[[Path], str | None] | None = None  # breaks the copied data set; may return a sample name
    recipe: str | None = None  # recipe text written to bad.yaml and run instead of the quickstart (with base)
    out: str = "new"  # "new": a fresh folder; "finished": the finished run's folder; "crafted": prepared by `ckpt`
    ckpt: Callable[[Path, Path], None] | None = None
    resume: bool = False


CASES = [
    Case(
        "malformed_yaml", r"bad\.yaml \(line \d+, column \d+\): malformed YAML", recipe="name: x\ntrain: {{epochs: 2\n"
    ),
    Case(
        "yaml_object_tag",
        r"bad\.yaml.*malformed YAML",
        recipe="name: !!python/object/apply:os.system ['touch {tmp}/PWNED']\n",
    ),
    Case(
        "misspelled_key",
        r"--set: train\.epoch: unknown key for TrainConfig\. Did you mean 'epochs'\? Allowed:",
        sets=("train.epoch=3",),
    ),
    Case(
        "unknown_key_in_file",
        r"bad\.yaml: trian: unknown key for Recipe\. Did you mean 'train'\?",
        recipe="_base_: {recipe}\ntrian: {{epochs: 2}}\n",
    ),
    Case("wrong_type", r"train\.batch_size: got 'big', expected an integer", sets=("train.batch_size=big",)),
    Case("wrong_type_bool", r"train\.drop_last: got 'maybe', expected true or false", sets=("train.drop_last=maybe",)),
    Case(
        "unknown_distiller",
        r"distiller\.name: unknown distiller 'mrdk'\. Did you mean 'mrkd'\?",
        ("distiller.name=mrdk",),
    ),
    Case("malformed_override", r"--set train\.epochs: expected KEY=VALUE", sets=("train.epochs",)),
    Case(
        "missing_dataset_folder",
        r"KADID-10k root '{tmp}/nowhere' does not exist.*distill data kadid10k",
        sets=("data.root={tmp}/nowhere",),
    ),
    Case(
        "missing_label_file",
        r"label file '{data}/dmos\.csv' is missing\. Unpack the official KADID-10k archive",
        data=lambda d: (d / "dmos.csv").unlink(),
    ),
    Case(
        "label_lists_missing_image",
        r"{data}/images/I01_01_02\.png listed in {data}/dmos\.csv not found\. Re-extract the archive",
        data=lambda d: (d / "images" / "I01_01_02.png").unlink(),
    ),
    Case(
        "label_not_a_number",
        r"{data}/dmos\.csv, line 3: dmos 'high' of I01_01_02\.png is not a finite number",
        data=lambda d: edit_label_row(d, "I01_01_02.png", "I01_01_02.png,I01.png,high,0"),
    ),
    Case(
        "label_names_a_foreign_file",
        r"{data}/dmos\.csv, line 2: 'holiday\.png' is not a KADID name like I01_01_01\.png",
        data=lambda d: edit_label_row(d, "I01_01_01.png", "holiday.png,I01.png,3.0,0"),
    ),
    Case(
        "corrupt_image",
        r"kadid10k: cannot decode image {data}/images/{sample}: .*replace it from the original archive, or skip and "
        r"count corrupt images with on_corrupt: skip .*--set data\.train\.args\.on_corrupt=skip",
        data=corrupt,
    ),
    Case(
        "truncated_image",
        r"cannot decode image {data}/images/{sample}: image file is truncated.*on_corrupt: skip",
        data=truncate,
    ),
    Case(
        "corrupt_image_in_a_loader_worker",
        r"^distill: error: kadid10k: cannot decode image {data}/images/{sample}: .*on_corrupt=skip\)$",
        sets=("train.num_workers=1",),
        data=corrupt,
    ),
    Case(
        "empty_test_split",
        r"kadid10k: split 'test' is empty because train_fraction is 1; change the fractions",
        sets=("data.eval.test.args.train_fraction=1.0",),
    ),
    Case(
        "empty_after_type_filter",
        r"kadid10k: no images of types \['10'\] in split 'train'",
        sets=("data.train.args.distortions=[jpeg]",),
    ),
    Case(
        "rerun_into_a_finished_run",
        r"{run}: already holds a run .*pass --resume .*nothing was overwritten",
        out="finished",
    ),
    Case(
        "resume_with_another_recipe",
        r"cannot resume: the recipe differs from the one the checkpoint was trained with at "
        r"models\.student\.args\.lcn_window \(7 -> 5\)\. Resume with the original recipe, "
        r"or start a new run with --out",
        sets=("models.student.args.lcn_window=5",),
        out="finished",
        resume=True,
    ),
    Case(
        "resume_a_truncated_checkpoint",
        r"{out}/checkpoints/last\.pt: not a readable checkpoint .*truncated or corrupt.*start a new run with --out",
        out="crafted",
        ckpt=truncated_checkpoint,
        resume=True,
    ),
    Case(
        "resume_another_models_checkpoint",
        r"checkpoint does not fit this distiller's models \(.*\); it was written by another model.*--out",
        out="crafted",
        ckpt=other_models_checkpoint,
        resume=True,
    ),
    Case(
        "resume_an_exported_model",
        r"not a distill training checkpoint \(format 'distill-model/1'\); --resume needs the checkpoints/last\.pt",
        out="crafted",
        ckpt=exported_model_as_checkpoint,
        resume=True,
    ),
    Case(
        "resume_without_checkpoint",
        r"{out}: nothing to resume .*start it again with --force instead of --resume",
        resume=True,
    ),
    Case(
        "diverging_mrkd_teacher",
        r"non-finite loss at step (\d+): term '\w+' = \S+\. Lower the learning rate, set "
        r"optim\.<group>\.clip_grad_norm, or train\.nonfinite: skip$",
        sets=(
            "optim.teacher.lr=1e12",
            "optim.teacher.clip_grad_norm=null",
            "train.checkpoint_every=1",
            "train.epochs=4",
        ),
    ),
]


# ------------------------------------------------------------------------------------------------------ checking
def signature(root: Path) -> dict[Path, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time (a changed byte changes one of them)."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def assert_nothing_half_written(root: Path) -> None:
    assert not [p for p in root.rglob("*.tmp")], "a temporary file was left behind"
    for pt in root.rglob("*.pt"):
        if "crafted" not in pt.parts:
            torch.load(pt, weights_only=True)  # complete and loadable without unpickling code
    for log in root.rglob("metrics.jsonl"):
        for line in log.read_text().splitlines():
            json.loads(line)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gives_one_line_exit_2_and_keeps_files(case: Case, world, tmp_path, capsys):
    data = tmp_path / "kadid"
    if case.out == "finished":  # the finished run's own data, so that only the case's key differs
        data = world["data"]
    else:
        shutil.copytree(world["data"], data)
    sample = case.data(data) if case.data else None
    out = {"new": tmp_path / "out", "finished": world["run"], "crafted": tmp_path / "crafted"}[case.out]
    if case.ckpt:
        case.ckpt(world["run"], out)
    fill = {"data": data, "run": world["run"], "out": out, "tmp": tmp_path, "sample": sample, "recipe": RECIPE}
    recipe = write_recipe(tmp_path, case.recipe.format(**fill)) if case.recipe else [RECIPE]
    sets = [s.format(**fill) for s in case.sets]
    args = ["run", *recipe, "--out", str(out), *tiny(data, *sets), *(["--resume"] if case.resume else [])]
    before = {**signature(tmp_path), **signature(world["run"]), **signature(world["data"])}
    capsys.readouterr()

    code = main(args)

    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("distill: error: "), err
    escaped = {k: re.escape(str(v)) for k, v in fill.items()}
    assert re.search(case.pattern.format(**escaped), lines[0]), lines[0]
    after = {**signature(tmp_path), **signature(world["run"]), **signature(world["data"])}
    changed = [str(p) for p, sig in before.items() if after.get(p) != sig]
    assert not changed, f"existing files changed or lost: {changed}"
    assert_nothing_half_written(tmp_path)
    assert not (tmp_path / "PWNED").exists(), "a YAML tag executed code"
    if case.name == "diverging_mrkd_teacher":  # the checkpoints of earlier steps are intact
        step = int(re.search(r"at step (\d+)", lines[0]).group(1))
        state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
        assert step >= 2 and state["step"] == step - 1
        assert all(torch.isfinite(v).all() for v in state["distiller"].values() if v.is_floating_point())


def test_a_corrupt_sample_is_skipped_and_counted_when_the_recipe_asks(world, tmp_path, capsys):
    data = tmp_path / "kadid"
    shutil.copytree(world["data"], data)
    names = {corrupt(data, 0), truncate(data, 1)}
    sets = ("data.train.args.on_corrupt=skip", "data.eval.test.args.on_corrupt=skip")
    assert main(["run", RECIPE, "--out", str(tmp_path / "out"), *tiny(data, *sets)]) == 0
    out = capsys.readouterr().out
    assert "note: 2 corrupt images skipped in 'train' (on_corrupt: skip)" in out
    summary = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {Path(p).name for p in summary["corrupt_skipped"]["train"]} == names
    assert "test" not in summary["corrupt_skipped"]  # the test split was clean


def test_python_m_distill_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntrain: [unclosed\n")
    proc = subprocess.run(
        [sys.executable, "-m", "distill", "run", str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(f"distill: error: {bad} (line ") and "malformed YAML" in proc.stderr


def test_checkpoints_and_recipes_are_data_only(world):
    """weights_only=True refuses a pickled object; recipes are read with yaml.safe_load."""
    import pickle

    class Payload:
        def __reduce__(self):  # would run code when unpickled
            return (print, ("unpickled",))

    path = world["run"].parent / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"format": CHECKPOINT_FORMAT, "x": Payload()}, fh, protocol=2)
    from distill.errors import CheckpointError
    from distill.run.checkpoint import load_checkpoint

    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("flags", [[], ["--quiet"]])
def test_a_broken_override_is_reported_as_typed_with_or_without_quiet(tmp_path, capsys, flags):
    """--quiet adds train.progress=false after the user's --set; when the user's own override breaks ``train``, the
    error names that override, never the one --quiet added."""
    recipe = str(ROOT / "recipes" / "quickstart.yaml")
    assert main(["run", recipe, "--set", "train=5", *flags, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "train: got 5, expected a mapping" in err and "progress" not in err
    assert not (tmp_path / "run").exists()
