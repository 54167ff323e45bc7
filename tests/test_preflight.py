"""Fail before training, never after: one table of bad inputs found when the run is built, run through the CLI.

Every case must exit with status 2, print exactly one line ``distill: error: ...`` (no traceback) naming the file,
key or sample and what to do, leave every existing file byte-identical, and run no training step.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from distill.cli import main
from distill.data.iqa.synthetic_kadid import write_synthetic_kadid
from distill.data.recognition.synthetic import write_synthetic_cub
from distill.data.sr.synthetic import write_synthetic_div2k
from distill.engine.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = str(ROOT / "recipes" / "quickstart.yaml")
CUB_RECIPE = str(ROOT / "recipes" / "cqd_quickstart_teacher.yaml")
SR_RECIPE = str(ROOT / "recipes" / "sr_teacher_quickstart.yaml")
COMMON = ("train.progress=false", "output.tensorboard=false", "data.synthetic=null")


def sets(*items: str) -> list[str]:
    return [arg for s in items for arg in ("--set", s)]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """Tiny synthetic KADID, CUB and DIV2K layouts, written once and copied by each case."""
    tmp = tmp_path_factory.mktemp("preflight")
    return {
        "kadid": write_synthetic_kadid(tmp / "kadid", n_refs=3, size=(40, 40), distortions=["gaussian_blur"]),
        "cub": write_synthetic_cub(tmp / "cub", n_classes=2, n_train=3, n_test=2, size=(64, 64)),
        "div2k": write_synthetic_div2k(tmp / "div2k", n_train=2, n_valid=1, size=(48, 48), scales=[2]),
    }


# ---------------------------------------------------------------------------------------------- data breakers
def first_image(data: Path, pattern: str) -> Path:
    return sorted(data.rglob(pattern))[0]


def resize_one(pattern: str, size: tuple[int, int]) -> Callable[[Path], str]:
    """Replace the first image matching ``pattern`` by a ``size`` (W, H) image; returns its file name."""

    def apply(data: Path) -> str:
        path = first_image(data, pattern)
        Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(path)
        return path.name

    return apply


def edit_box(line: int, cells: Callable[[list[str]], list[str]]) -> Callable[[Path], str]:
    """Rewrite line ``line`` (1-based) of ``bounding_boxes.txt``."""

    def apply(data: Path) -> str:
        path = data / "bounding_boxes.txt"
        rows = path.read_text().splitlines()
        rows[line - 1] = " ".join(cells(rows[line - 1].split()))
        path.write_text("\n".join(rows) + "\n")
        return str(line)

    return apply


def write_file(name: str, content: bytes) -> Callable[[Path], str]:
    def apply(tmp: Path) -> str:
        (tmp / name).write_bytes(content)
        return name

    return apply


def read_only_folder(tmp: Path) -> str:
    (tmp / "locked").mkdir()
    (tmp / "locked").chmod(0o555)
    return "locked"


@dataclass(frozen=True)
class Case:
    """One bad input: the dataset, how to break it, the command line and the error line it must produce."""

    name: str
    pattern: str  # regex; {data}, {tmp}, {sample} are filled in
    source: str = "kadid"  # kadid (quickstart), cub (CQD teacher quickstart), div2k (SR teacher quickstart)
    sets: tuple[str, ...] = ()
    data: Callable[[Path], str] | None = None  # breaks the copied data set; returns a sample name
    prepare: Callable[[Path], str] | None = None  # makes something in tmp; returns its name
    argv: tuple[str, ...] | None = None  # a whole command line instead of `run RECIPE --out ...`
    out: str = "{tmp}/out"


RUN_SETS = {
    "kadid": ("data.train.args.crop=null", "train.epochs=1", "train.batch_size=4", "eval.group_by=null"),
    "cub": ("train.epochs=1", "train.batch_size=2", "train.eval_batch_size=2"),
    "div2k": ("train.iterations=2", "train.batch_size=2", "train.eval_every=2"),
    "skimage": ("train.iterations=2", "train.batch_size=4", "data.train.args.length=8", "data.eval.test.args.length=8"),
}
RECIPES = {
    "kadid": QUICKSTART,
    "cub": CUB_RECIPE,
    "div2k": SR_RECIPE,
    "skimage": str(ROOT / "recipes" / "scnn_pretrain_quickstart.yaml"),
}

CASES = [
    # --- errors that used to appear only at the first evaluation, after training
    Case(
        "group_by_a_missing_field",
        r"eval\.group_by: 'colour' is not a field of the items of data\.eval\.test \(they have: .*distortion.*\)",
        sets=("eval.group_by=colour",),
    ),
    Case(
        "group_by_a_missing_field_cub",
        r"eval\.group_by: 'distortion' is not a field of the items of data\.eval\.test",
        source="cub",
        sets=("eval.group_by=distortion",),
    ),
    Case(
        "image_metric_on_scores",
        r"eval\.metrics: \['srcc', 'psnr'\] cannot be computed on split 'test' .*choose metrics for this task",
        sets=("eval.metrics=[srcc, psnr]",),
    ),
    Case(
        "unknown_metric_argument",
        r"eval\.metrics: .* cannot be computed on split 'test' \(TypeError: .*bogus",
        sets=("eval.metric_args={srcc: {bogus: 1}}",),
    ),
    # --- data that cannot batch or is silently wrong
    Case(
        "sizes_differ_without_crop",
        r"data\.train: images differ in size \(.*{sample} is 30×50.*\) and crop is null, so a batch of 4 "
        r"cannot be stacked; set data\.train\.args\.crop .* or train\.batch_size: 1",
        data=resize_one("I01_01_01.png", (50, 30)),
    ),
    Case(
        "sizes_differ_without_crop_in_eval",
        r"data\.eval\.test: images differ in size .*{sample} is 30×50.*train\.eval_batch_size: 1",
        data=resize_one("I03_01_01.png", (50, 30)),
        sets=("train.batch_size=1",),
    ),
    Case(
        "image_smaller_than_the_crop",
        r"data\.train: image .*{sample} is 20×20, smaller than crop=32; lower data\.train\.args\.crop",
        data=resize_one("I01_01_02.png", (20, 20)),
        sets=("data.train.args.crop=32",),
    ),
    Case(
        "cub_box_past_the_right_edge",
        r"{data}/bounding_boxes\.txt, line 2: the box of image 2 .* lies outside its \d+×\d+ image",
        source="cub",
        data=edit_box(2, lambda c: [c[0], c[1], c[2], "5000", c[4]]),
    ),
    Case(
        "cub_box_at_a_negative_corner",
        r"{data}/bounding_boxes\.txt, line 4: the box of image 4 \(x=-40, .* lies outside",
        source="cub",
        data=edit_box(4, lambda c: [c[0], "-40", *c[2:]]),
    ),
    Case(
        "labels_beyond_num_classes",
        r"models\.student\.args\.num_classes: 1, but data\.train has labels 0\.\.1 \(2 classes\); set num_classes to 2",
        source="cub",
        sets=("models.student.args.num_classes=1",),
    ),
    Case(
        "scnn_head_smaller_than_the_distortion_classes",
        r"models\.student\.args\.num_classes: 10, but data\.train has labels 0\.\.\d+ \(\d+ classes\); set num_classes",
        source="skimage",  # scikit-image's bundled photos: no data folder
        sets=("models.student.args.num_classes=10",),
    ),
    Case(
        "vgg_m_at_32_px",
        r"data\.train: the models cannot process its inputs of shape 3×32×32: .*Output size is too small.*larger",
        source="cub",
        sets=(
            "data.train.args.size=32",
            "data.eval.test.args.size=32",
            "data.eval.test_low_resolution.args.size=32",
        ),
    ),
    Case(
        "vgg_m_at_32_px_in_eval_only",
        r"data\.eval\.test: the models cannot process its inputs of shape 3×32×32",
        source="cub",
        sets=("data.eval.test.args.size=32",),
    ),
    Case(
        "hr_smaller_than_the_scale",
        r"data\.eval\.valid: HR image .*{sample} is 1×1, smaller than the scale 2; remove it",
        source="div2k",
        data=resize_one("DIV2K_valid_HR/*.png", (1, 1)),
        sets=("data.eval.valid.args.lr=bicubic",),
    ),
    Case(
        "hr_smaller_than_patch_times_scale",
        r"data\.train: HR image .*{sample} is 20×20, smaller than patch_size 16 × scale 2",
        source="div2k",
        data=resize_one("DIV2K_train_HR/*.png", (20, 20)),
        sets=("data.train.args.lr=bicubic",),
    ),
    # --- command line and file system
    Case(
        "binary_recipe_file",
        r"{tmp}/model\.bin: not a text file",
        prepare=write_file("model.bin", bytes(range(256)) * 4),
        argv=("run", "{tmp}/model.bin"),
    ),
    Case(
        "recipe_is_a_folder",
        r"{tmp}: cannot read recipe",
        argv=("run", "{tmp}"),
    ),
    Case("unknown_device", r"--set: train\.device: got 'tpu0': not a device", sets=("train.device=tpu0",)),
    Case("cuda_device_typo", r"train\.device: got 'cuda:x': not a device", sets=("train.device=cuda:x",)),
    Case(
        "device_torch_cannot_train_on",
        r"train\.device: got 'meta': distill trains on cpu, cuda or mps",
        sets=("train.device=meta",),
    ),
    Case("negative_workers", r"train\.num_workers: got -1, expected 0 .* or more", sets=("train.num_workers=-1",)),
    Case(
        "nan_learning_rate",
        r"optim\.student\.lr: got nan, expected a finite learning rate >= 0",
        sets=("optim.student.lr=.nan",),
    ),
    Case(
        "inf_learning_rate",
        r"optim\.teacher\.lr: got inf, expected a finite learning rate >= 0",
        sets=("optim.teacher.lr=.inf",),
    ),
    Case("nan_eta_min", r"optim\.student\.schedule\.eta_min: got nan", sets=("optim.student.schedule.eta_min=.nan",)),
    Case("zero_eval_batch", r"train\.eval_batch_size: got 0, expected a positive", sets=("train.eval_batch_size=0",)),
    Case("zero_checkpoint_minutes", r"train\.checkpoint_minutes: got 0\.0", sets=("train.checkpoint_minutes=0",)),
    Case(
        "set_path_the_recipe_lacks",
        r"^distill: error: --set: trian: unknown key for Recipe\. Did you mean 'train'\?",
        sets=("trian.epochs=2",),
    ),
    Case(
        "set_nested_path_the_recipe_lacks",
        r"^distill: error: --set: train\.optim: unknown key for TrainConfig",
        sets=("train.optim.lr=2",),
    ),
    Case(
        "seeds_not_integers",
        r"--seeds '0,one': expected distinct non-negative integers",
        argv=("run", QUICKSTART, "--seeds", "0,one", "--out", "{tmp}/out"),
    ),
    Case(
        "seeds_fractional",
        r"--seeds '1\.5': expected distinct non-negative integers",
        argv=("run", QUICKSTART, "--seeds", "1.5", "--out", "{tmp}/out"),
    ),
    Case(
        "out_is_a_file",
        r"--out {tmp}/taken: is a file, not a folder",
        prepare=write_file("taken", b"do not touch"),
        out="{tmp}/taken",
    ),
    Case(
        "out_under_a_file",
        r"--out {tmp}/taken/run: {tmp}/taken is a file, so nothing can be created under it",
        prepare=write_file("taken", b"do not touch"),
        out="{tmp}/taken/run",
    ),
    Case(
        "out_in_a_read_only_folder",
        r"--out {tmp}/locked/run: the folder {tmp}/locked is read-only",
        prepare=read_only_folder,
        out="{tmp}/locked/run",
    ),
    Case(
        "export_into_a_read_only_folder",
        r"--out {tmp}/locked/m\.ts: the folder {tmp}/locked is read-only",
        prepare=read_only_folder,
        argv=("export", "{student}", "--out", "{tmp}/locked/m.ts"),
    ),
    Case(
        "export_under_a_file",
        r"--out {tmp}/taken/m\.ts: {tmp}/taken is a file",
        prepare=write_file("taken", b"do not touch"),
        argv=("export", "{student}", "--out", "{tmp}/taken/m.ts"),
    ),
    Case(
        "predict_a_corrupt_image",
        r"cannot read image {tmp}/bad\.png: .*replace the file or leave it out",
        prepare=write_file("bad.png", b"\x89PNG not really"),
        argv=("predict", "{student}", "{tmp}/bad.png", "--out", "{tmp}/p.csv"),
    ),
    Case(
        "predict_into_a_read_only_folder",
        r"--out {tmp}/locked/p\.csv: the folder {tmp}/locked is read-only",
        prepare=read_only_folder,
        argv=("predict", "{student}", "{kadid_image}", "--out", "{tmp}/locked/p.csv"),
    ),
    # --- eval.metrics left to the task's default
    Case(
        "metric_args_for_a_metric_the_task_default_skips",
        r"eval\.metric_args\.psnr: 'psnr' is not evaluated: eval\.metrics is not set, so it is the iqa task's "
        r"default \['srcc', 'plcc'\]",
        sets=("eval.metrics=null", "eval.metric_args={psnr: {crop_border: 2}}"),
    ),
    Case("empty_metrics", r"eval\.metrics: is empty; name at least one metric", sets=("eval.metrics=[]",)),
]


def digest(root: Path) -> dict[Path, str]:
    """Every file under ``root`` with the SHA-256 of its bytes."""
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def student(sources, tmp_path_factory) -> Path:
    """A tiny finished quickstart run's student.pt (for export and predict)."""
    out = tmp_path_factory.mktemp("student") / "run"
    argv = ["run", QUICKSTART, "--out", str(out), *sets(*COMMON, *RUN_SETS["kadid"])]
    assert main([*argv, "--set", f"data.root={sources['kadid']}", "--set", "train.batch_size=8"]) == 0
    return out / "student.pt"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_fails_before_training_in_one_line(case: Case, sources, student, tmp_path, capsys, monkeypatch):
    data = tmp_path / case.source
    if case.source in sources:
        shutil.copytree(sources[case.source], data)
    sample = case.data(data) if case.data else (case.prepare(tmp_path) if case.prepare else None)
    kadid_image = first_image(sources["kadid"], "I01_01_01.png")
    fill = {"data": data, "tmp": tmp_path, "sample": sample, "student": student, "kadid_image": kadid_image}
    if case.argv is not None:
        argv = [a.format(**fill) for a in case.argv]
    else:
        out = case.out.format(**fill)
        root = (f"data.root={data}",) if case.source in sources else ()
        extra = (*COMMON, *root, *RUN_SETS[case.source], *case.sets)
        argv = ["run", RECIPES[case.source], "--out", out, *sets(*extra)]
    steps: list[int] = []
    monkeypatch.setattr(Trainer, "_train_step", lambda self, batch: steps.append(self.step))
    before = {**digest(tmp_path), **digest(student.parent)}
    capsys.readouterr()

    code = main(argv)

    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    try:
        assert code == 2, err
        assert len(lines) == 1 and lines[0].startswith("distill: error: "), err
        assert "Traceback" not in err
        escaped = {k: re.escape(str(v)) for k, v in fill.items()}
        assert re.search(case.pattern.format(**escaped), lines[0]), lines[0]
        assert steps == [], f"{len(steps)} training steps ran before the error"
        after = {**digest(tmp_path), **digest(student.parent)}
        assert {p: h for p, h in after.items() if p in before} == before, "an existing file changed"
        assert not (tmp_path / "out").exists(), "the run folder was created although nothing could run"
    finally:
        if (tmp_path / "locked").exists():
            (tmp_path / "locked").chmod(0o755)


@pytest.mark.slow  # tens of seconds of CPU: the default suite stays under ~10 min on 2 cores
def test_debug_works_anywhere_on_the_command_line(tmp_path):
    """``--debug`` before or after the command (and its arguments) shows the traceback instead of one line."""
    missing = str(tmp_path / "nowhere.yaml")
    for argv in (["--debug", "run", missing], ["run", "--debug", missing], ["run", missing, "--debug"]):
        proc = subprocess.run(
            [sys.executable, "-m", "distill", *argv], capture_output=True, text=True, cwd=ROOT, timeout=120
        )
        assert proc.returncode != 0 and "Traceback" in proc.stderr and "recipe file not found" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "distill", "run", missing], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"distill: error: {missing}: recipe file not found"
    ]


def test_usage_errors_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as info:
        main(["predict", "x.pt", "y.png", "--batch-size", "many"])
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distill: error: ") and "--batch-size" in lines[0]


def test_evaluation_only_keys_are_resume_safe(sources, tmp_path, capsys, monkeypatch):
    """A run stopped mid-way continues under corrected evaluation keys (group_by, metrics, eval_batch_size)."""
    out = tmp_path / "run"
    argv = ["run", QUICKSTART, "--out", str(out)]
    base = [*COMMON, f"data.root={sources['kadid']}", *RUN_SETS["kadid"], "train.epochs=2", "train.checkpoint_every=1"]
    train_step = Trainer._train_step

    def interrupt_at_step_3(self, batch):  # type: ignore[no-untyped-def]
        if self.step == 3:
            raise KeyboardInterrupt
        return train_step(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", interrupt_at_step_3)
    assert main([*argv, *sets(*base)]) == 130
    monkeypatch.setattr(Trainer, "_train_step", train_step)
    fixed = sets(*base, "eval.group_by=distortion", "eval.metrics=[srcc, krcc]", "train.eval_batch_size=3")
    assert main([*argv, *fixed, "--resume"]) == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())["results"]["test"]["student"]
    assert set(results["overall"]) == {"srcc", "krcc"} and set(results["groups"]) == {"01"}


def test_dry_pass_leaves_rng_buffers_and_mode_untouched(sources, tmp_path):
    """Building a run (which runs the dry pass) changes no model buffer and no global RNG state."""
    from distill.build import build_run
    from distill.engine.preflight import dry_run
    from distill.recipe.check import load_recipe
    from distill.run.checkpoint import rng_state

    recipe, resolved = load_recipe(QUICKSTART, [*COMMON, f"data.root={sources['kadid']}", *RUN_SETS["kadid"]])
    run = build_run(recipe, resolved, tmp_path / "run")
    trainer = run.trainer
    buffers = {k: v.clone() for k, v in trainer.distiller.named_buffers()}
    rng = rng_state()
    mode = [m.training for m in trainer.distiller.modules()]
    dry_run(trainer)
    assert all(torch.equal(buffers[k], v) for k, v in trainer.distiller.named_buffers())
    assert torch.equal(rng_state()["torch"], rng["torch"])
    assert [m.training for m in trainer.distiller.modules()] == mode


@pytest.mark.parametrize(
    ("source", "expected"), [("kadid", ["srcc", "plcc"]), ("cub", ["top1"]), ("div2k", ["psnr", "ssim"])]
)
def test_unset_metrics_are_the_tasks_default(source, expected, sources, tmp_path):
    """``eval.metrics: null`` evaluates the student's task defaults; results and the saved recipe name them."""
    out = tmp_path / "run"
    base = [*COMMON, f"data.root={sources[source]}", *RUN_SETS[source], "eval.metrics=null", "eval.group_by=null"]
    assert main(["run", RECIPES[source], "--out", str(out), *sets(*base)]) == 0
    results = json.loads((out / "results.json").read_text())["results"]
    assert all(list(r["overall"]) == expected for split in results.values() for r in split.values())
    assert yaml.safe_load((out / "recipe.yaml").read_text())["eval"]["metrics"] == expected
