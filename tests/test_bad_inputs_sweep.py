"""Classes of bad input an adversarial sweep of the CLI and the Python API found without a clear error.

Each test names the class: one rule, checked at one place, with the failing cases of the sweep as examples.
Everything runs on tiny model files and images written here (no training), so the file takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from distill.cli import main
from distill.errors import DistillError, RecipeError
from distill.models.convert import Converted, write_model_file
from distill.recipe.check import load_recipe
from distill.registry import DISTILLERS, MODELS

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "quickstart.yaml"


def no_data(tmp: Path) -> list[str]:
    """Overrides that make a recipe the checks let through fail at once on its data (never train for minutes)."""
    return ["--set", f"data.root={tmp / 'no_data'}", "--set", "data.synthetic=null"]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("distill: error: "), err
    return err[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A tiny SR model file (EDSR x2), a tiny IQA model file (ResNet-10 regressor) and two small PNGs."""
    tmp = tmp_path_factory.mktemp("sweep")
    torch.manual_seed(0)
    sr_args = {"num_feat": 4, "num_block": 1, "upscale": 2}
    write_model_file(Converted("edsr", sr_args, MODELS.build("edsr", **sr_args).state_dict()), tmp / "sr.pt", {})
    iqa_args = {"depth": 10, "width": 4}
    iqa = MODELS.build("resnet_regressor", **iqa_args)
    write_model_file(Converted("resnet_regressor", iqa_args, iqa.state_dict()), tmp / "iqa.pt", {})
    images = tmp / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(images / name)
    return {"sr": tmp / "sr.pt", "iqa": tmp / "iqa.pt", "images": images, "image": images / "a.png"}


# ------------------------------------------------------------------------ recipes: YAML that means two things
@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("name: a\nname: b\n", "name", 2),
        ("train:\n  epochs: 1\n  batch_size: 4\n  epochs: 2\n", "train.epochs", 4),
        ("models:\n  student:\n    args: {depth: 10, depth: 18}\n", "models.student.args.depth", 3),
    ],
    ids=["top", "nested", "flow"],
)
def test_a_key_written_twice_in_a_recipe_is_refused_naming_file_line_and_key(text, key, line, tmp_path, capsys):
    """yaml.safe_load keeps the last of two equal keys silently; a recipe that says two things is refused."""
    recipe = tmp_path / "dup.yaml"
    recipe.write_text(f"_base_: {RECIPE}\n{text}")
    assert main(["run", str(recipe), "--out", str(tmp_path / "out"), *no_data(tmp_path)]) == 2
    msg = _error_line(capsys)
    assert f"{recipe} (line {line + 1}" in msg and f"'{key}' appears twice" in msg, msg
    assert not (tmp_path / "out").exists()


def test_a_recipe_without_duplicates_still_loads_and_stays_data_only(tmp_path):
    recipe = tmp_path / "ok.yaml"
    recipe.write_text(f"_base_: {RECIPE}\ntrain: {{epochs: 1}}\noptim: {{student: {{lr: 0.01}}}}\n")
    loaded, _ = load_recipe(recipe)
    assert loaded.train.epochs == 1
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(RecipeError, match="malformed YAML"):
        load_recipe(evil)


# ------------------------------------------------------------ recipes: numbers the optimizer or model cannot use
@pytest.mark.parametrize(
    ("override", "key", "allowed"),
    [
        ("optim.student.momentum=-1", "optim.student.momentum", r"\[0, 1\)"),
        ("optim.student.momentum=1.5", "optim.student.momentum", r"\[0, 1\)"),
        ("optim.student.weight_decay=-0.1", "optim.student.weight_decay", "0 or more"),
        ("optim.student.betas=[1.5, 0.9]", "optim.student.betas", r"\[0, 1\)"),
        ("optim.student.betas=[0.9]", "optim.student.betas", "two numbers"),
        ("optim.teacher.clip_grad_norm=0", "optim.teacher.clip_grad_norm", "positive"),
        ("distiller.args.alpha=.nan", "distiller.args.alpha", "finite"),
        ("distiller.args.alpha=.inf", "distiller.args.alpha", "finite"),
        ("models.student.args.dropout=.nan", "models.student.args.dropout", "finite"),
    ],
)
def test_a_number_out_of_range_is_refused_before_training_naming_the_key(override, key, allowed, tmp_path, capsys):
    """Before: momentum -1 was torch's ValueError traceback at optimizer build; alpha .nan trained and failed at
    step 1 as a non-finite loss."""
    assert main(["run", str(RECIPE), "--out", str(tmp_path / "out"), "--set", override, *no_data(tmp_path)]) == 2
    msg = _error_line(capsys)
    assert f"--set: {key}: got " in msg, msg
    import re

    assert re.search(allowed, msg), msg
    assert not (tmp_path / "out").exists()


def test_sgd_nesterov_needs_momentum(tmp_path, capsys):
    sets = ["--set", "optim.student.optimizer=sgd", "--set", "optim.student.momentum=0"]
    sets += ["--set", "optim.student.nesterov=true"]
    assert main(["run", str(RECIPE), "--out", str(tmp_path / "out"), *sets, *no_data(tmp_path)]) == 2
    assert "optim.student.nesterov: " in _error_line(capsys)


# ------------------------------------------------------------- output files in a folder that does not exist yet
def test_eval_and_profile_json_in_a_new_folder_are_written(files, tmp_path, capsys):
    """check_output_file accepts a path whose folders can be created; every writer must then create them (before:
    eval --json and profile --json scored/profiled the model, then died with FileNotFoundError's traceback)."""
    out = tmp_path / "new" / "deeper" / "eval.json"
    assert main(["eval", str(files["sr"]), str(files["images"]), "--json", str(out)]) == 0
    assert json.loads(out.read_text())
    prof = tmp_path / "other" / "profile.json"
    args = ["profile", str(files["iqa"]), "--json", str(prof), "--repeats", "1", "--warmup", "0", "--shape", "3,16,16"]
    assert main(args) == 0
    assert json.loads(prof.read_text())
    capsys.readouterr()


# ------------------------------------------------------------ image-only options on a model whose outputs are not
@pytest.mark.parametrize("option", [["--tile", "16"], ["--self-ensemble"]])
def test_predict_refuses_image_options_for_a_model_that_outputs_no_images(option, files, tmp_path, capsys):
    """Before: distill predict on an IQA model ignored --tile / --self-ensemble silently (distill eval refused)."""
    out = tmp_path / "scores.csv"
    assert main(["predict", str(files["iqa"]), str(files["image"]), "--out", str(out), *option]) == 2
    msg = _error_line(capsys)
    assert option[0] in msg and "iqa model" in msg and "sr" in msg, msg
    assert not out.exists()


def test_eval_refuses_self_ensemble_for_a_model_that_outputs_no_images(files, tmp_path, capsys):
    assert main(["eval", str(files["iqa"]), str(files["images"]), "--self-ensemble"]) == 2
    assert "--self-ensemble" in _error_line(capsys)


def test_predict_with_tile_still_runs_an_sr_model(files, tmp_path, capsys):
    out = tmp_path / "x2"
    assert main(["predict", str(files["sr"]), str(files["image"]), "--out", str(out), "--tile", "8",
                 "--tile-overlap", "2"]) == 0  # fmt: skip
    assert (out / "a.png").is_file()
    capsys.readouterr()


# ------------------------------------------------------------------------- the Python API: wrong names and roles
def test_registry_build_with_a_wrong_argument_names_it_and_the_allowed_ones():
    """Before: a bare TypeError (`edsr() got an unexpected keyword argument`), without the valid arguments."""
    with pytest.raises(DistillError, match=r"model 'edsr': unknown argument 'num_feet'\. Did you mean 'num_feat'\? "
                                           r"Allowed: .*num_feat"):  # fmt: skip
        MODELS.build("edsr", num_feet=3)
    with pytest.raises(DistillError, match=r"loss 'l1'"):
        from distill.registry import LOSSES

        LOSSES.build("l1", weight_of_nothing=1)


def test_a_constructor_error_inside_a_registered_class_keeps_its_type():
    """Only the call's arguments are checked; what the constructor raises itself is not rewritten."""
    with pytest.raises((ValueError, DistillError)) as info:
        MODELS.build("resnet_regressor", depth=7)
    assert "depth" in str(info.value)


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        ("list", r"distiller 'MRKD': models must be a mapping of role name to nn\.Module \(roles: teacher, student\)"),
        ("ints", r"distiller 'MRKD': models\['(teacher|student)'\] is a int, not an nn\.Module"),
    ],
)
def test_a_distiller_built_with_models_of_the_wrong_kind_says_what_it_needs(models, expected):
    m = MODELS.build("edsr", num_feat=4, num_block=1, upscale=2)
    given = [m, m] if models == "list" else {"student": 1, "teacher": 2}
    with pytest.raises(RecipeError, match=expected) as info:
        DISTILLERS.build("mrkd", models=given)
    assert len(str(info.value)) < 300 and "\n" not in str(info.value)


# ------------------------------------------------------------------ library text quoted inside our one-line errors
@pytest.mark.parametrize("command", ["eval", "predict", "export", "convert"])
def test_a_truncated_model_file_is_named_in_a_short_line(command, files, tmp_path, capsys):
    """Before: eval/predict/export quoted torch's whole zip error (about 450 characters: "This is an internal miniz
    error. If you are seeing this error, there is a high likelihood …"); convert cut it mid-word at 120."""
    whole = tmp_path / "whole.pt"
    torch.save({"state_dict": {"w": torch.zeros(250_000)}}, whole)
    bad = tmp_path / "half.pt"
    bad.write_bytes(whole.read_bytes()[:100_000])  # torch: "failed finding central directory. This is an internal …"
    argv = {
        "eval": ["eval", str(bad), str(files["images"])],
        "predict": ["predict", str(bad), str(files["image"]), "--out", str(tmp_path / "o")],
        "export": ["export", str(bad), "--out", str(tmp_path / "o.ts")],
        "convert": ["convert", "basicsr", str(bad), str(tmp_path / "o.pt")],
    }[command]
    assert main(argv) == 2
    msg = _error_line(capsys)
    assert str(bad) in msg and "truncated" in msg and "miniz" not in msg, msg
    assert len(msg) < 400, msg


def test_first_line_keeps_short_messages_and_the_first_sentence_of_long_ones():
    from distill.errors import first_line

    assert first_line(ValueError("short. two sentences")) == "short. two sentences"
    long = "failed finding central directory. " + "This is an internal error. " * 10
    assert first_line(RuntimeError(long)) == "failed finding central directory"
    assert first_line(RuntimeError("x" * 300)).endswith("…") and len(first_line(RuntimeError("x" * 300))) == 160
    assert first_line(RuntimeError("")) == "RuntimeError"


# ---------------------------------------------------------------------- an SR pair whose HR image has gone missing
@pytest.mark.parametrize("writer", ["div2k", "sr_benchmark"])
def test_an_lr_image_without_its_hr_image_is_named(writer, tmp_path):
    """The LR folder lists the pairs; before, a deleted HR image made the set one image smaller without a word."""
    from distill.registry import DATASETS, WRITERS

    if writer == "div2k":
        root = Path(WRITERS.build("div2k", out=tmp_path / "d", n_train=2, n_valid=1, size=(24, 24), scales=[2]))
        hr, args = root / "DIV2K_train_HR" / "0001.png", {"split": "train", "scale": 2}
    else:
        root = Path(WRITERS.build("sr_benchmark", out=tmp_path / "d", sets=["Set5"], n_images=2, size=(24, 24),
                                  scales=[2])) / "Set5"  # fmt: skip
        hr, args = root / "HR" / "img_001.png", {"scale": 2}
    assert len(DATASETS.build(writer, root=str(root), **args)) == 2
    hr.unlink()
    with pytest.raises(DistillError, match=rf"LR image\(s\) without their HR image, e.g. .*x2\.png \({hr} not found\)"):
        DATASETS.build(writer, root=str(root), **args)
    assert len(DATASETS.build(writer, root=str(root), **args, lr="bicubic")) == 1  # HR alone: what is there is used


def test_a_key_written_twice_in_a_set_value_is_refused(tmp_path, capsys):
    item = "models.student.args={depth: 10, depth: 18}"
    assert main(["run", str(RECIPE), "--out", str(tmp_path / "out"), "--set", item, *no_data(tmp_path)]) == 2
    msg = _error_line(capsys)
    assert f"--set {item}: 'models.student.args.depth' appears twice" in msg, msg


# --------------------------------------------------- the Python API's Trainer refuses what a recipe's checks refuse
def optim_config(fields: dict):
    """An ``OptimConfig`` of ``fields``, its ``schedule`` given as a mapping."""
    from distill import OptimConfig
    from distill.recipe.config import ScheduleConfig

    fields = dict(fields)
    if "schedule" in fields:
        fields["schedule"] = ScheduleConfig(**fields["schedule"])
    return OptimConfig(**fields)


@pytest.mark.parametrize(
    ("optim", "train", "expected"),
    [
        ({"momentum": -1.0}, {}, r"Trainer: optim\.teacher\.momentum: got -1\.0, expected a number in \[0, 1\)"),
        ({"lr": float("nan")}, {}, r"Trainer: optim\.teacher\.lr: got nan, expected a finite learning rate >= 0"),
        ({"lr": -0.1}, {}, r"Trainer: optim\.teacher\.lr: got -0\.1, expected a finite learning rate >= 0"),
        ({}, {"batch_size": -1}, r"Trainer: train\.batch_size: got -1, expected a positive integer"),
        ({}, {"device": "tpu"}, r"Trainer: train\.device: got 'tpu': not a device"),
        # a schedule that would make the learning rate negative (eta_min -1 trained with lr -0.95: gradient ascent)
        ({"schedule": {"name": "cosine", "eta_min": -1.0}}, {}, r"schedule\.eta_min: got -1\.0, expected a number"),
        ({"schedule": {"name": "step", "gamma": -0.1}}, {}, r"schedule\.gamma: got -0\.1, expected a number >= 0"),
        ({"schedule": {"warmup": 2, "warmup_start": -1.0}}, {}, r"schedule\.warmup_start: got -1\.0, expected a"),
        ({"schedule": {"warmup": -1}}, {}, r"schedule\.warmup: got -1, expected an integer >= 0"),
        ({"schedule": {"name": "step", "step_size": 0}}, {}, r"schedule\.step_size: got 0, expected an integer >= 1"),
        ({"schedule": {"name": "multistep", "milestones": [5, 2]}}, {}, r"schedule\.milestones: got \[5, 2\]"),
        ({"schedule": {"name": "cosine", "t_max": 0}}, {}, r"schedule\.t_max: got 0, expected a positive integer"),
    ],
    ids=["momentum", "lr_nan", "lr_negative", "batch_size", "device", "eta_min", "gamma", "warmup_start", "warmup",
         "step_size", "milestones", "t_max"],
)  # fmt: skip
def test_the_trainer_checks_its_configs_like_a_recipe(optim, train, expected, tmp_path):
    """Before: torch's ValueError (momentum), RuntimeError (device), or a Trainer built with lr NaN / batch -1."""
    from distill import MRKD, OptimConfig, ResNetRegressor, TrainConfig, Trainer
    from distill.recipe.config import EvalConfig
    from tests.toy import ToyIQA

    models = {r: ResNetRegressor(depth=10, width=4) for r in ("teacher", "student")}
    config = TrainConfig(**{"iterations": 1, "batch_size": 4, "progress": False, **train})
    with pytest.raises(RecipeError, match=expected):
        Trainer(
            MRKD(models, alpha=1.0),
            ToyIQA(8, 32),
            {"test": ToyIQA(8, 32, seed=1)},
            optim={"teacher": optim_config(optim), "student": OptimConfig()},
            config=config,
            evaluation=EvalConfig(metrics=["srcc"]),
            out_dir=str(tmp_path / "run"),
        )
    assert not (tmp_path / "run").exists()
